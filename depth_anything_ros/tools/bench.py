"""bench: per-stage CPU time, engine throughput by thread count, the whole graph, and the
node under a camera load (published frames/s, latency, drops by reason per worker count)."""
from __future__ import annotations

import threading
import time

import numpy as np

from ..engines import Engine

HELP = ('benchmark: CPU time per stage at a camera resolution, engine throughput by threads '
        '(the hrt_model_exec perf table), and end-to-end graph frames/s against the bare engine')


def add_arguments(parser):
    from ..tool_support.options import ENGINE, RECIPE, add_param_options
    add_param_options(parser, ENGINE + RECIPE + ('workers',))
    parser.add_argument('--what', default='stages,threads', help='comma list of stages, threads, graph, load')
    parser.add_argument('--size', default='1920x1080', help='camera WxH for the stage timings')
    parser.add_argument('--encoding', default='bgr8', help='camera encoding for the stage timings')
    parser.add_argument('--frames', type=int, default=20, help='frames per measurement')
    parser.add_argument('--threads', default='1,2,4,8', help='thread counts for the perf table')
    parser.add_argument('--seconds', type=float, default=30.0, help='graph and load run length')
    parser.add_argument('--camera-rate', type=float, default=10.0,
                        help='graph run: camera frames/s (keep it above what the model does)')
    parser.add_argument('--load', default='1280x720@30', help='load run: camera WxH@frames/s')
    parser.add_argument('--load-workers', default='1,2,4', help='load run: worker counts')
    parser.add_argument('--domain', type=int, help='ROS_DOMAIN_ID of the graph and load runs (default: a '
                                                   'random one in 120-200, away from a robot\'s)')


def _sample_frame(size: str, encoding: str):
    import cv2

    from ..core.image_codec import decode_image, encode_bgr
    from ..core.paths import SAMPLE_IMAGE
    from ..tool_support.errors import parse_size
    w, h = parse_size(size, '--size', 'WxH')
    fields = encode_bgr(cv2.resize(cv2.imread(SAMPLE_IMAGE), (w, h)), encoding)
    return fields, lambda: decode_image(fields['height'], fields['width'], fields['encoding'],
                                        fields['is_bigendian'], fields['step'], fields['data'])


class ReplayEngine(Engine):
    """The engine's inputs and outputs, answering every call with one recorded output:
    the processing around inference, timed without it."""
    name = 'replay'

    def __init__(self, engine, output):
        self.path, self.inputs, self.outputs, self.output = engine.path, engine.inputs, engine.outputs, output

    def run(self, feeds):
        return self.output


def stage_times(processor, size: str, encoding: str, frames: int, clock=time.perf_counter) -> dict:
    """Median milliseconds of each CPU stage of the node's FrameProcessor on one camera frame,
    inference excluded (`processor` runs a ReplayEngine).

    clock=time.perf_counter gives wall time; time.process_time the CPU time of all
    threads (OpenCV spreads some stages over cores, so it can exceed wall time)."""
    from ..core.image_codec import image_buffer
    _, decode = _sample_frame(size, encoding)
    processor.estimator.clock = clock
    samples = {k: [] for k in ('decode', 'preprocess', 'postprocess', 'colorize', 'message fill')}
    for _ in range(frames):
        fill = []

        def allocate(height, width, encoding):  # as the node does it: straight into message buffers
            t = clock()
            buffer = image_buffer(height, width, encoding)[1]
            fill.append(clock() - t)
            return buffer
        t0 = clock()
        frame = decode()  # validation and zero-copy views; colour conversion is preprocessing
        decoded = clock() - t0
        out = processor.finish(frame, processor.infer(frame), ('depth', 'colorized'), allocate=allocate)
        for key, dt in (('decode', decoded), ('message fill', sum(fill)),
                        *((k, out.timings[k]) for k in ('preprocess', 'postprocess', 'colorize'))):
            samples[key].append(dt * 1e3)
    processor.estimator.clock = time.perf_counter
    return {k: float(np.median(v)) for k, v in samples.items()}


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


def run(args) -> int:
    from ..core.frame_processor import default_intra_op_threads
    from ..tool_support.options import config_from_args, processor_from_config
    what = set(args.what.split(','))
    cfg = config_from_args(args)
    threads = cfg['intra_op_threads'] or default_intra_op_threads(cfg['workers'])
    processor = processor_from_config(cfg)
    engine = processor.estimator.engine
    print(f'model: {engine.describe()}')
    frame = _sample_frame('640x480', 'bgr8')[1]()
    feeds, _ = processor.estimator.preprocess(frame)
    if 'stages' in what:
        _print_stages(cfg, processor, args)
    if 'threads' in what:
        print('\nengine throughput (as hrt_model_exec perf):')
        print(f'  {"threads":>7} {"frames":>7} {"total ms":>10} {"avg latency ms":>15} {"FPS":>7}')
        for n in (int(t) for t in args.threads.split(',')):
            r = engine_throughput(engine, feeds, n, args.frames)
            print(f'  {r["threads"]:>7} {r["frames"]:>7} {r["total_ms"]:>10.1f} {r["latency_ms"]:>15.1f} '
                  f'{r["fps"]:>7.2f}')
    if 'graph' in what:
        bare = engine_throughput(engine, feeds, cfg['workers'], args.frames)['fps']
        engine.close()
        from ..ros.bench_graph import load_run
        fields = _sample_frame('640x480', 'bgr8')[0]
        end_to_end = load_run(cfg, args.seconds, fields, args.camera_rate, args.domain)['published_fps']
        print(f'\ngraph: {end_to_end:.2f} frames/s end to end vs bare engine {bare:.2f} frames/s '
              f"({cfg['workers']} workers x {threads} threads, camera {args.camera_rate:g}/s): "
              f'ratio {end_to_end / bare:.3f}')
    if 'load' in what:
        _print_load(cfg, args)
    return 0


def _print_stages(cfg, processor, args):
    from ..tool_support.options import processor_from_config
    engine = processor.estimator.engine
    feeds, _ = processor.estimator.preprocess(_sample_frame(args.size, args.encoding)[1]())
    replay = ReplayEngine(engine, engine.run(feeds))
    processor = processor_from_config(cfg, engine=replay)
    wall = stage_times(processor, args.size, args.encoding, args.frames)
    cpu = stage_times(processor, args.size, args.encoding, args.frames, time.process_time)
    print(f'\nper {args.size} {args.encoding} frame, inference excluded (median of {args.frames}, ms):')
    print(f'  {"stage":<13} {"wall":>8} {"CPU":>8}')
    for stage in wall:
        print(f'  {stage:<13} {wall[stage]:8.2f} {cpu[stage]:8.2f}')
    print(f'  {"sum":<13} {sum(wall.values()):8.2f} {sum(cpu.values()):8.2f}')
    fast = processor_from_config(fast_options(cfg), engine=replay)
    if fast.estimator.recipe.settings != processor.estimator.recipe.settings:
        # Same run, same frame: what the exact numerics cost against the fast options.
        fast_wall = stage_times(fast, args.size, args.encoding, args.frames)
        print(f'\npre/postprocessing wall ms, {processor.estimator.recipe.name} vs fast options '
              f'(interpolation {fast.estimator.recipe.interpolation}, upsampling {fast.estimator.recipe.upsampling}):')
        for stage in ('preprocess', 'postprocess'):
            print(f'  {stage:<13} {wall[stage]:8.2f} {fast_wall[stage]:8.2f}')


def _print_load(cfg, args):
    from ..ros.bench_graph import load_run
    size, rate = args.load.split('@')
    fields = _sample_frame(size, 'bgr8')[0]
    print(f'\nload: camera {size} bgr8 at {rate}/s for {args.seconds:g} s per worker count:')
    print(f'  {"workers":>7} {"offered/s":>9} {"published/s":>11} {"p50 ms":>8} {"p95 ms":>8}  drops by reason')
    for workers in (int(w) for w in args.load_workers.split(',')):
        r = load_run({**cfg, 'workers': workers}, args.seconds, fields, float(rate), args.domain)
        drops = ', '.join(f'{k} {v}' for k, v in sorted(r['drops'].items())) or 'none'
        print(f'  {workers:>7} {r["offered_fps"]:>9.1f} {r["published_fps"]:>11.2f} {r["p50_ms"]:>8.0f} '
              f'{r["p95_ms"]:>8.0f}  {drops}', flush=True)
