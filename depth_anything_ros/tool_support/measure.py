"""Measurements the tools share (bench, board-check): CPU per stage of the node's
FrameProcessor with inference replayed, engine throughput by caller threads (the
`hrt_model_exec perf` table), and the agreement of two models on the same images."""
from __future__ import annotations

import threading
import time

import numpy as np

from ..core.output_topics import MessageBuffers
from ..engines import Engine


def sample_frame(size: str, encoding: str):
    """(Image fields of the sample camera frame at `size` in `encoding`, a function that turns
    them into a Frame as the node does)."""
    from types import SimpleNamespace

    import cv2

    from ..core.camera_messages import camera_frame
    from ..core.image_codec import encode_bgr
    from ..core.paths import SAMPLE_IMAGE
    from .sizes import camera_size
    w, h = camera_size(size)
    fields = encode_bgr(cv2.resize(cv2.imread(SAMPLE_IMAGE), (w, h)), encoding)
    return fields, lambda: camera_frame(SimpleNamespace(**fields)).decode()


class ReplayEngine(Engine):
    """The engine's inputs and outputs, answering every call with one recorded output:
    the processing around inference, timed without it."""
    name = 'replay'

    def __init__(self, engine, output):
        self.path, self.inputs, self.outputs, self.output = engine.path, engine.inputs, engine.outputs, output

    def run(self, feeds):
        return self.output


STAGES = ('decode', 'preprocess', 'postprocess', 'colorize', 'message fill')


def stage_samples(processors: list, size: str, encoding: str, frames: int, clock=time.perf_counter) -> list:
    """Milliseconds of each CPU stage of the node's FrameProcessor on one camera frame, inference
    excluded (the processors run a ReplayEngine): per processor {stage: [one value per frame]}.
    The processors take turns, half of the frames each time (A B A B), so a change in the
    machine's load reaches each alike; not frame by frame, where each pipeline's allocations
    would land on memory the other one just returned to the system (page faults, ms per frame).

    clock=time.perf_counter gives wall time; time.process_time the CPU time of all
    threads (OpenCV spreads some stages over cores, so it can exceed wall time)."""
    _, decode = sample_frame(size, encoding)
    samples = [{k: [] for k in STAGES} for _ in processors]
    for processor in processors:
        processor.estimator.clock = clock
    halves = (frames - frames // 2, frames // 2)
    for processor, times, count in ((p, t, n) for n in halves for p, t in zip(processors, samples)):
        for _ in range(count):
            buffers = _TimedBuffers(clock)  # as the node does it: straight into message buffers
            t0 = clock()
            frame = decode()  # validation and zero-copy views; colour conversion is preprocessing
            decoded = clock() - t0
            timings = processor.finish(frame, processor.infer(frame), ('depth', 'colorized'), arrays=buffers).timings
            # the outputs are gone, as the node's are once published: their buffers go back to the pool
            for key, dt in (('decode', decoded), ('message fill', buffers.seconds),
                            *((k, timings[k]) for k in ('preprocess', 'postprocess', 'colorize'))):
                times[key].append(dt * 1e3)
    for processor in processors:
        processor.estimator.clock = time.perf_counter
    return samples


def stage_times(processor, size: str, encoding: str, frames: int, clock=time.perf_counter) -> dict:
    """Median milliseconds of each stage (see stage_samples)."""
    times = stage_samples([processor], size, encoding, frames, clock)[0]
    return {k: float(np.median(v)) for k, v in times.items()}


class _TimedBuffers(MessageBuffers):
    """The node's message buffers, timing their allocation (`seconds`)."""

    def __init__(self, clock):
        super().__init__()
        self.clock, self.seconds = clock, 0.0

    def new_buffer(self, height: int, width: int, encoding: str) -> tuple:
        t = self.clock()
        made = super().new_buffer(height, width, encoding)
        self.seconds += self.clock() - t
        return made


def engine_throughput(engine, feeds: dict, threads: int, frames: int) -> dict:
    """`threads` callers sharing `frames` runs, like `hrt_model_exec perf --thread_num`."""
    counter = iter(range(frames))
    lock = threading.Lock()
    latencies = []

    def worker():
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            t = time.perf_counter()
            engine.run(feeds)
            with lock:
                latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    total = time.perf_counter() - start
    return {'threads': threads, 'frames': frames, 'total_ms': total * 1e3,
            'latency_ms': float(np.mean(latencies)) * 1e3, 'fps': frames / total}


def fast_options(cfg: dict) -> dict:
    """The parameters with the faster approximate options (what the package did before it
    followed the official numerics): 8-bit cubic resize, OpenCV pixel-centre upsampling."""
    return {**cfg, 'interpolation': 'cubic_uint8', 'upsampling': 'pixel_centres'}


def replay_processor(cfg: dict, engine, size: str, encoding: str):
    """The node's FrameProcessor for `cfg` with `engine` replaced by its recorded answer to a
    `size` `encoding` frame: what stage_times measures."""
    from .options import processor_from_config
    processor = processor_from_config(cfg, engine=engine)
    feeds, _ = processor.estimator.preprocess(sample_frame(size, encoding)[1]())
    return processor_from_config(cfg, engine=ReplayEngine(engine, engine.run(feeds)))


def image_depths(processor, images: list) -> list:
    """A FrameProcessor's depth of each image file, at the image's size."""
    from .files import read_frame
    return [processor.process(read_frame(path), ('depth',)).depth for path in images]


def compare_on_images(model_a, model_b, images: list) -> list:
    """compare_depth of two FrameProcessors' depth on each image file, at the image's size (so
    models with different input sizes compare too); one dict per image, in order."""
    from ..core.depth_metrics import compare_depth
    from .files import read_frame
    rows = []
    for path in images:
        frame = read_frame(path)
        rows.append(compare_depth(model_a.process(frame, ('depth',)).depth, model_b.process(frame, ('depth',)).depth))
    return rows


def mean_metrics(rows: list) -> dict:
    """The mean of each metric over rows (NaN ones left out)."""
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
