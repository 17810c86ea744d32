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


STAGES = ('decode', 'preprocess', 'postprocess', 'colorize', 'message fill')


def stage_samples(processors: list, size: str, encoding: str, frames: int, clock=time.perf_counter) -> list:
    """Milliseconds of each CPU stage of the node's FrameProcessor on one camera frame, inference
    excluded (the processors run a ReplayEngine): per processor {stage: [one value per frame]}.
    The processors take turns, half of the frames each time (A B A B), so a change in the
    machine's load reaches each alike; not frame by frame, where each pipeline's allocations
    would land on memory the other one just returned to the system (page faults, ms per frame).

    clock=time.perf_counter gives wall time; time.process_time the CPU time of all
    threads (OpenCV spreads some stages over cores, so it can exceed wall time)."""
    from ..core.image_codec import image_buffer
    _, decode = _sample_frame(size, encoding)
    samples = [{k: [] for k in STAGES} for _ in processors]
    for processor in processors:
        processor.estimator.clock = clock
    halves = (frames - frames // 2, frames // 2)
    for processor, times, count in ((p, t, n) for n in halves for p, t in zip(processors, samples)):
        for _ in range(count):
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
                times[key].append(dt * 1e3)
    for processor in processors:
        processor.estimator.clock = time.perf_counter
    return samples


def stage_times(processor, size: str, encoding: str, frames: int, clock=time.perf_counter) -> dict:
    """Median milliseconds of each stage (see stage_samples)."""
    times = stage_samples([processor], size, encoding, frames, clock)[0]
    return {k: float(np.median(v)) for k, v in times.items()}


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


def node_arguments(cfg: dict) -> list:
    """`-p name:=value` for every parameter that is not at its default."""
    from ..core.params import PARAMS
    return [arg for p in PARAMS if cfg[p.name] != p.default for arg in ('-p', f'{p.name}:={cfg[p.name]}')]


class _LoadClient:
    """Camera and depth recorder in this process: stamps are publish times, so the
    latency of a depth frame is its arrival time minus its stamp (one clock)."""

    def __init__(self, domain: int):
        import os

        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from ..ros.process_graph import ros_env
        # Large images need the graph's Fast DDS profile here too (read when DDS starts).
        os.environ.setdefault('FASTRTPS_DEFAULT_PROFILES_FILE', ros_env(domain)['FASTRTPS_DEFAULT_PROFILES_FILE'])
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('bench_load', context=self.context)
        self.image_type = Image
        self.pub = self.node.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.arrivals = []  # (stamp ns, arrival ns)
        self.diagnostics = {}
        self.node.create_subscription(Image, 'depth', self._on_depth, QoSProfile(depth=50))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()  # returns once the executor is shut down
        except Exception:  # noqa: BLE001 - the context went first
            pass

    def _on_depth(self, msg):
        self.arrivals.append((msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, time.time_ns()))

    def _on_diagnostics(self, msg):
        self.diagnostics = {kv.key: kv.value for kv in msg.status[0].values}

    def publish(self, fields: dict):
        msg = self.image_type()
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        msg.header.frame_id = 'camera'
        for name, value in fields.items():
            setattr(msg, name, value)
        self.pub.publish(msg)

    def drops(self) -> dict:
        return {k[len('drops_'):]: int(v) for k, v in self.diagnostics.items() if k.startswith('drops_')}

    def close(self):
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        import rclpy
        rclpy.try_shutdown(context=self.context)


def load_run(cfg: dict, seconds: float, size: str, rate: float, domain: int | None = None) -> dict:
    """The node with parameters `cfg` under a camera publishing `size` bgr8 frames at `rate`/s for
    `seconds`: published frames/s, latency p50/p95 (ms, publish to depth arrival), drops by reason."""
    import random

    from ..ros.process_graph import RosGraph
    fields, _ = _sample_frame(size, 'bgr8')
    domain = random.randint(120, 200) if domain is None else domain
    with RosGraph(domain) as graph:
        graph.start('node', graph.node_command(*node_arguments({**cfg, 'diagnostics_period': 0.5})))
        client = _LoadClient(domain)
        try:
            deadline = time.monotonic() + 120
            while not client.arrivals and time.monotonic() < deadline:  # discovery and warm-up
                client.publish(fields)
                time.sleep(0.2)
            time.sleep(3.0)
            before, start = client.drops(), time.time_ns()
            period, tick = 1.0 / rate, time.monotonic()
            sent = 0
            while time.monotonic() - tick < seconds:
                client.publish(fields)
                sent += 1
                time.sleep(max(0.0, tick + sent * period - time.monotonic()))
            end = time.time_ns()
            time.sleep(5.0)  # in-flight frames land; two diagnostics periods pass
            after = client.drops()
            latencies = [(got - stamp) / 1e6 for stamp, got in client.arrivals if start <= stamp < end]
        finally:
            client.close()
    p50, p95 = np.percentile(latencies, (50, 95)) if latencies else (float('nan'),) * 2
    drops = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)}
    return {'workers': cfg['workers'], 'offered_fps': sent / seconds, 'published_fps': len(latencies) / seconds,
            'p50_ms': float(p50), 'p95_ms': float(p95), 'drops': drops}


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
        end_to_end = load_run(cfg, args.seconds, '640x480', args.camera_rate, args.domain)['published_fps']
        print(f'\ngraph: {end_to_end:.2f} frames/s end to end vs bare engine {bare:.2f} frames/s '
              f"({cfg['workers']} workers x {threads} threads, camera {args.camera_rate:g}/s): "
              f'ratio {end_to_end / bare:.3f}')
    if 'load' in what:
        _print_load(cfg, args)
    return 0


def _print_stages(cfg, processor, args):
    """The stage table of the configured recipe and, measured in the same run, taking turns, of
    the fast options: the baseline the exact numerics are held against. The sum row is the
    median of each frame's sum."""
    from ..tool_support.options import processor_from_config
    engine = processor.estimator.engine
    feeds, _ = processor.estimator.preprocess(_sample_frame(args.size, args.encoding)[1]())
    replay = ReplayEngine(engine, engine.run(feeds))
    runs = [processor_from_config(cfg, engine=replay)]
    fast = processor_from_config(fast_options(cfg), engine=replay)
    if fast.estimator.recipe.settings != runs[0].estimator.recipe.settings:
        runs.append(fast)
    names = [runs[0].estimator.recipe.name, 'fast options'][:len(runs)]
    wall = stage_samples(runs, args.size, args.encoding, args.frames)
    cpu = stage_samples(runs, args.size, args.encoding, args.frames, time.process_time)
    print(f'\nper {args.size} {args.encoding} frame, inference excluded (ms, median of {args.frames} '
          'frames; CPU: process time, all threads; the recipes take turns, half of the frames each):')
    print(f'  {"":<13}' + ''.join(f' {name[:17]:>17}' for name in names))
    print(f'  {"stage":<13}' + f' {"wall":>8} {"CPU":>8}' * len(runs))
    medians = [[{k: float(np.median(v)) for k, v in run.items()} for run in clock] for clock in (wall, cpu)]
    for stage in STAGES:
        print(f'  {stage:<13}' + ''.join(f' {medians[0][i][stage]:8.2f} {medians[1][i][stage]:8.2f}'
                                          for i in range(len(runs))))
    totals = [[np.sum([run[k] for k in STAGES], axis=0) for run in clock] for clock in (wall, cpu)]
    print(f'  {"sum":<13}' + ''.join(f' {np.median(totals[0][i]):8.2f} {np.median(totals[1][i]):8.2f}'
                                      for i in range(len(runs))))
    print('  CPU sum, frames p25-p75: ' + ', '.join(
        f'{np.percentile(totals[1][i], 25):.2f}-{np.percentile(totals[1][i], 75):.2f} ({names[i]})'
        for i in range(len(runs))))
    if len(runs) > 1:
        print(f'fast options: interpolation {fast.estimator.recipe.interpolation}, upsampling '
              f'{fast.estimator.recipe.upsampling} (approximate numerics, see the README\'s Recipes)')


def _print_load(cfg, args):
    size, rate = args.load.split('@')
    print(f'\nload: camera {size} bgr8 at {rate}/s for {args.seconds:g} s per worker count:')
    print(f'  {"workers":>7} {"offered/s":>9} {"published/s":>11} {"p50 ms":>8} {"p95 ms":>8}  drops by reason')
    for workers in (int(w) for w in args.load_workers.split(',')):
        r = load_run({**cfg, 'workers': workers}, args.seconds, size, float(rate), args.domain)
        drops = ', '.join(f'{k} {v}' for k, v in sorted(r['drops'].items())) or 'none'
        print(f'  {workers:>7} {r["offered_fps"]:>9.1f} {r["published_fps"]:>11.2f} {r["p50_ms"]:>8.0f} '
              f'{r["p95_ms"]:>8.0f}  {drops}', flush=True)
