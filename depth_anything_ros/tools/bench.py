"""bench: per-stage CPU time, engine throughput by thread count, the whole graph, and the
node under a camera load (published frames/s, latency, drops by reason per worker count)."""
from __future__ import annotations

import time

HELP = ('benchmark: CPU time per stage at a camera resolution, engine throughput by threads '
        '(the hrt_model_exec perf table), and end-to-end graph frames/s against the bare engine')


def add_arguments(parser):
    from ..core.params import in_groups
    from ..tool_support.options import add_param_options
    add_param_options(parser, in_groups('engine', 'recipe') + ('workers',))
    parser.add_argument('--what', default='stages,threads', help='comma list of stages, threads, graph, load')
    parser.add_argument('--camera-size', default='1920x1080', metavar='WxH', help='camera WxH for the stage timings')
    parser.add_argument('--encoding', default='bgr8', help='camera encoding for the stage timings')
    parser.add_argument('--instruction-set', help='compiled passes to time: baseline, avx2 or avx512 (x86-64; '
                                                  'default: the fastest this CPU runs)')
    parser.add_argument('--frames', type=int, default=20, help='frames per measurement')
    parser.add_argument('--threads', default='1,2,4,8', help='thread counts for the perf table')
    parser.add_argument('--seconds', type=float, default=30.0, help='graph and load run length')
    parser.add_argument('--camera-rate', type=float, default=10.0,
                        help='graph run: camera frames/s (keep it above what the model does)')
    parser.add_argument('--load', default='1280x720@30', help='load run: camera WxH@frames/s')
    parser.add_argument('--load-workers', default='1,2,4', help='load run: worker counts')
    parser.add_argument('--domain', type=int, help='ROS_DOMAIN_ID of the graph and load runs (default: a '
                                                   'random one in 120-200, away from a robot\'s)')


def run(args) -> int:
    from ..core.processor_factory import default_intra_op_threads
    from ..ros.camera_load import load_run
    from ..tool_support.measure import engine_throughput, sample_frame
    from ..tool_support.options import config_from_args, processor_from_config
    from ..tool_support.sizes import camera_at_rate
    what = set(args.what.split(','))
    load = camera_at_rate(args.load, '--load', '1280x720@30') if 'load' in what else None  # before measuring
    cfg = config_from_args(args)
    threads = cfg['intra_op_threads'] or default_intra_op_threads(cfg['workers'])
    processor = processor_from_config(cfg)
    engine = processor.estimator.engine
    print(f'model: {engine.describe()}')
    camera, decode = sample_frame('640x480', 'bgr8')
    feeds, _ = processor.estimator.preprocess(decode())
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
        end_to_end = load_run(cfg, args.seconds, camera, args.camera_rate, args.domain)['published_fps']
        print(f'\ngraph: {end_to_end:.2f} frames/s end to end vs bare engine {bare:.2f} frames/s '
              f"({cfg['workers']} workers x {threads} threads, camera {args.camera_rate:g}/s): "
              f'ratio {end_to_end / bare:.3f}')
    if load:
        _print_load(cfg, args, *load)
    return 0


def _print_stages(cfg, processor, args):
    """The stage table of the configured recipe and, measured in the same run, taking turns, of
    the fast options: the baseline the exact numerics are held against. The sum row is the
    median of each frame's sum."""
    import numpy as np

    from ..core.kernels import instruction_set
    from ..tool_support.errors import CliError
    from ..tool_support.measure import STAGES, fast_options, replay_processor, stage_samples
    from ..tool_support.options import processor_from_config
    runs = [replay_processor(cfg, processor.estimator.engine, args.camera_size, args.encoding)]
    fast = processor_from_config(fast_options(cfg), engine=runs[0].estimator.engine)
    if fast.estimator.recipe.settings != runs[0].estimator.recipe.settings:
        runs.append(fast)
    names = [runs[0].estimator.recipe.name, 'fast options'][:len(runs)]
    variant = args.instruction_set or instruction_set()
    try:
        before = instruction_set(variant)
    except ValueError as exc:  # not a name, or not on this CPU
        raise CliError(f'--instruction-set: {exc}') from exc
    try:
        wall = stage_samples(runs, args.camera_size, args.encoding, args.frames)
        cpu = stage_samples(runs, args.camera_size, args.encoding, args.frames, time.process_time)
    finally:
        instruction_set(before)
    print(f'\nper {args.camera_size} {args.encoding} frame, inference excluded (ms, median of {args.frames} '
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
              f'{fast.estimator.recipe.upsampling} (approximate numerics, see docs/recipes.md)')
    print(f'compiled passes: {variant} variant (core/kernels.py)')


def _print_load(cfg, args, size: str, rate: float):
    from ..ros.camera_load import load_run
    from ..tool_support.measure import sample_frame
    camera = sample_frame(size, 'bgr8')[0]
    print(f'\nload: camera {size} bgr8 at {rate}/s for {args.seconds:g} s per worker count:')
    print(f'  {"workers":>7} {"offered/s":>9} {"published/s":>11} {"p50 ms":>8} {"p95 ms":>8}  drops by reason')
    for workers in (int(w) for w in args.load_workers.split(',')):
        r = load_run({**cfg, 'workers': workers}, args.seconds, camera, rate, args.domain)
        drops = ', '.join(f'{k} {v}' for k, v in sorted(r['drops'].items())) or 'none'
        print(f'  {workers:>7} {r["offered_fps"]:>9.1f} {r["published_fps"]:>11.2f} {r["p50_ms"]:>8.0f} '
              f'{r["p95_ms"]:>8.0f}  {drops}', flush=True)

