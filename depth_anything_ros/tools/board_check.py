"""board-check: on a first RDK S100, one Markdown report that settles what a machine without a
BPU cannot: the runtime and the compiled model's tensors as hbm_runtime reports them, which
input recipe the compiled model agrees with (against its float ONNX on photos), BPU throughput
by caller threads (the `hrt_model_exec perf` table), CPU per stage on the board's CPU, and a
camera -> node -> sink run.

Each section is measured on its own: one that fails is written with its error and the others
go on (exit code 1 then). The measurements are the ones `compare` and `bench` make
(tool_support/measure.py, ros/camera_load.py).
"""
from __future__ import annotations

import os
import time

HELP = ('on the RDK S100: write one Markdown report (runtime and tensors, agreement with the float '
        'ONNX per recipe, the hrt_model_exec perf table, CPU per stage, a camera -> node -> sink run) '
        'to send back')
SECTIONS = ('runtime', 'agreement', 'throughput', 'stages', 'node')
STAGE_SIZE = '1920x1080'
# D-Robotics' figures for depth_any.hbm (hrt_model_exec perf, /work/shared/models/README.md)
PUBLISHED_PERF = '1 thread 137.38 ms / 7.27 FPS; 2, 4 and 8 threads 7.54 FPS'


def add_arguments(parser):
    from ..tool_support.options import add_param_options
    parser.add_argument('--model', dest='model_path', required=True, metavar='HBM',
                        help='the compiled model, e.g. depth_any.hbm')
    parser.add_argument('--float-model', required=True, metavar='ONNX',
                        help='the float ONNX of the same network at the same input size (`depth-anything-ros '
                             'export --model-size 518x686`), run on the CPU with ONNX Runtime as the reference')
    parser.add_argument('--out', default='board_check.md', help='the report (default board_check.md)')
    add_param_options(parser, ('workers', 'nv12_range'), what='the node run: ')
    parser.add_argument('--what', default=','.join(SECTIONS),
                        help=f"comma list of sections to run (default all: {','.join(SECTIONS)})")
    parser.add_argument('--threads', default='1,2,4', help='caller threads of the perf table (default 1,2,4)')
    parser.add_argument('--frames', type=int, default=20,
                        help='runs per perf row and frames per stage timing (default 20)')
    parser.add_argument('--camera', default='1920x1080@30',
                        help='camera -> node -> sink run: WxH@frames/s (default 1920x1080@30)')
    parser.add_argument('--camera-encoding', default='nv12', choices=('nv12', 'bgr8'),
                        help="that camera's encoding (default nv12, as mipi_cam's)")
    parser.add_argument('--seconds', type=float, default=30.0, help='length of that run (default 30)')
    parser.add_argument('--domain', type=int, help='ROS_DOMAIN_ID of that run (default: a random one in '
                                                   '120-200, away from a robot\'s)')
    parser.add_argument('images', nargs='*', metavar='IMAGES',
                        help='photos for the agreement check (default: the ones shipped in the package)')


class Report:
    """Markdown sections, written to `path` after each one (a run cut short keeps what it measured);
    a section that raises is written with its error, the rest go on."""

    def __init__(self, path: str, title: str):
        self.path = path
        self.lines = [f'# {title}']
        self.failed = []

    def add(self, lines: list) -> None:
        self.lines += lines
        self.save()

    def save(self) -> None:
        with open(self.path, 'w', encoding='utf-8') as f:
            f.write(self.text())

    def section(self, title: str, build) -> None:
        print(f'board-check: {title} ...', flush=True)
        self.lines += ['', f'## {title}', '']
        start = time.monotonic()
        try:
            self.lines += build()
        except Exception as exc:  # noqa: BLE001 - one section's failure must not lose the others
            first = (str(exc).strip().splitlines() or [''])[0]
            self.failed.append(title)
            self.lines.append(f'**Failed**: `{type(exc).__name__}: {first}`')
        self.add(['', f'_({time.monotonic() - start:.0f} s)_'])

    def text(self) -> str:
        return '\n'.join(self.lines) + '\n'


def run(args) -> int:
    from ..core.paths import SAMPLE_DIR
    from ..tool_support.errors import CliError
    from ..tool_support.sizes import camera_at_rate
    from ..tool_support.files import expand_images
    from ..tool_support.options import config_from_args
    for option, path in (('--model', args.model_path), ('--float-model', args.float_model)):
        if not os.path.isfile(path):
            raise CliError(f"{option} '{path}' is not a file")
    what = [w for w in args.what.split(',') if w]
    if not what or set(what) - set(SECTIONS):
        raise CliError(f"--what '{args.what}' is not a comma list of {', '.join(SECTIONS)}")
    threads = _counts(args.threads, '--threads')
    if args.frames < 1 or args.seconds <= 0:
        raise CliError('--frames and --seconds must be positive')
    camera = camera_at_rate(args.camera, '--camera', '1920x1080@30')
    images = expand_images(args.images or [SAMPLE_DIR])
    cfg = {**config_from_args(args), 'engine': 'hbm'}
    engine = _open_hbm(cfg)
    report = Report(args.out, 'depth_anything_ros board check')
    try:
        report.add(header(args, images))
    except OSError as exc:
        raise CliError(f"cannot write --out '{args.out}': {exc.strerror or exc}") from exc
    sections = {
        'runtime': ('Runtime and model', lambda: runtime_section(engine)),
        'agreement': ('Agreement with the float model, per recipe',
                      lambda: agreement_section(cfg, engine, args.float_model, images)),
        'throughput': ('BPU throughput by caller threads',
                       lambda: throughput_section(cfg, engine, threads, args.frames)),
        'stages': (f'CPU per stage at {STAGE_SIZE}', lambda: stage_section(cfg, engine, args.frames)),
        'node': ('Camera -> node -> sink', lambda: node_section(cfg, args, camera)),
    }
    for name in SECTIONS:
        if name in what:
            report.section(*sections[name])
    failed = f"; failed: {', '.join(report.failed)}" if report.failed else ''
    print(f"board-check: wrote '{args.out}'{failed}; send it back")
    return 1 if report.failed else 0


def _counts(text: str, option: str) -> list:
    from ..tool_support.errors import CliError
    try:
        counts = [int(v) for v in text.split(',')]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise CliError(f"{option} '{text}' is not a comma list of positive whole numbers, e.g. 1,2,4")
    return counts


def _open_hbm(cfg: dict):
    """The compiled model through the node's hbm engine; on a machine without hbm_runtime the
    one line that says what to install."""
    from ..core.dependencies import MissingDependency
    from ..engines import EngineError, MissingRuntime, open_engine
    from ..tool_support.errors import CliError
    try:
        return open_engine(cfg['model_path'], 'hbm')
    except MissingRuntime as exc:
        raise MissingDependency(str(exc)) from exc
    except EngineError as exc:
        raise CliError(str(exc)) from exc


def header(args, images: list) -> list:
    import datetime
    import platform
    import sys

    import cv2
    import numpy as np

    from ..core.model_catalog import sha256_of
    board = _read('/proc/device-tree/model') or 'unknown (no /proc/device-tree/model)'
    lines = [f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
             f'- board: {board}; {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}',
             f'- Python {platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}, '
             f'depth_anything_ros {_version("depth_anything_ros")}',
             f'- command: `depth-anything-ros board-check {" ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""}`']
    for what, path in (('compiled model', args.model_path), ('float model', args.float_model)):
        lines.append(f'- {what}: `{path}`, {os.path.getsize(path)} bytes, sha256 `{sha256_of(path)}`')
    lines.append(f'- photos: {", ".join(f"`{os.path.basename(p)}`" for p in images)}')
    return lines


def _read(path: str) -> str:
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').strip('\x00 \n')
    except OSError:
        return ''


def _version(distribution: str) -> str:
    import importlib.metadata
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed as a distribution'


# -- runtime and model ----------------------------------------------------------------------

def runtime_section(engine) -> list:
    """What hbm_runtime says about itself and the model (HB_HBMRuntime.pyi's properties)."""
    import hbm_runtime
    rt, name = engine.runtime, engine.model_name
    sched = rt.sched_params[name]
    lines = [f'- hbm_runtime: package {_version("hbm-runtime")}, library `{rt.version()}`',
             f"- models in the file: {', '.join(f'`{m}`' for m in rt.model_names)}; checked: `{name}`",
             f'- scheduling as loaded: priority {sched.priority}, BPU cores {list(sched.bpu_cores)}, '
             f'device {sched.deviceId}, custom id {sched.customId}', '']
    for kind in ('input', 'output'):
        lines += [f'{kind.capitalize()}s:', '',
                  '| name | shape | dtype | quantization | strides (bytes) | description |', '|---' * 6 + '|']
        table = {prop: getattr(rt, f'{kind}_{prop}')[name]
                 for prop in ('shapes', 'dtypes', 'quants', 'strides', 'descs')}
        for tensor in getattr(rt, f'{kind}_names')[name]:
            lines.append(f"| `{tensor}` | {list(table['shapes'][tensor])} | "
                         f"{_enum_name(hbm_runtime.hbDNNDataType, table['dtypes'][tensor])} | "
                         f"{_quant_text(hbm_runtime, table['quants'][tensor])} | {list(table['strides'][tensor])} | "
                         f"{_cell(table['descs'][tensor])} |")
        lines.append('')
    for what, descs in (('model description', rt.model_descs), ('hbm description', rt.hbm_descs)):
        text = str(descs.get(name, '')).strip()
        lines += [f'{what.capitalize()} (compile parameters, if the toolchain wrote them):', '', '```',
                  text[:8000] or '(empty)', '```', '']
    lines.append(f'The node reads: {engine.describe()}')
    return lines


def _enum_name(enum, value) -> str:
    name = getattr(value, 'name', None)
    if name:
        return str(name)
    for attr in dir(enum):
        if not attr.startswith('_') and getattr(enum, attr) == value:
            return attr
    return str(value)


def _quant_text(module, quant) -> str:
    import numpy as np
    if quant is None or quant.quant_type != module.hbDNNQuantiType.SCALE:
        return 'none'
    scale = np.asarray(quant.scale).reshape(-1)
    zero = np.asarray(quant.zero_point).reshape(-1)
    shown = ', '.join(f'{v:.6g}' for v in scale[:3]) + (', ...' if scale.size > 3 else '')
    return (f'SCALE, axis {quant.axis}, {scale.size} scale(s) [{shown}], zero point '
            f'{sorted(set(zero.tolist()))[:3] if zero.size else [0]}')


def _cell(text) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')[:200] or '-'


# -- agreement --------------------------------------------------------------------------------

def agreement_section(cfg: dict, engine, float_model: str, images: list) -> list:
    """The compiled model and the float ONNX on the same photos, for every recipe of models.yaml:
    on the same input (how faithfully the BPU computes the network on that recipe's input: inputs
    outside the calibrated range clip in its int16 input quantizer), and against the float model
    fed the official way (the depth the node's output is worth with that recipe)."""
    from ..core.depth_metrics import compare_depth
    from ..core.model_catalog import load_catalog
    from ..core.recipe import OFFICIAL
    from ..tool_support.measure import image_depths, mean_metrics
    from ..tool_support.options import processor_from_config
    float_cfg = {**cfg, 'model_path': float_model, 'engine': 'onnxruntime'}
    reference = processor_from_config({**float_cfg, 'recipe': OFFICIAL})
    reference_depths = image_depths(reference, images)   # each network runs once per photo and recipe
    rows, per_image = [], {}
    for name in sorted(load_catalog().recipes, key=lambda n: (n != OFFICIAL, n)):
        bpu_depths = image_depths(processor_from_config({**cfg, 'recipe': name}, engine=engine), images)
        float_depths = reference_depths if name == OFFICIAL else image_depths(
            processor_from_config({**float_cfg, 'recipe': name}, engine=reference.estimator.engine), images)
        same = [compare_depth(a, b) for a, b in zip(bpu_depths, float_depths)]
        official = [compare_depth(a, b) for a, b in zip(bpu_depths, reference_depths)]
        rows.append((name, mean_metrics(same), mean_metrics(official), min(r['cosine'] for r in same)))
        per_image[name] = [r['cosine'] for r in same]
    best = max(rows, key=lambda row: row[1]['cosine'])
    lines = ['| recipe | cosine, same input | correlation, same input | cosine vs float (official input) | '
             'correlation vs float (official input) | worst photo, cosine same input |', '|---|---|---|---|---|---|']
    lines += [f"| `{name}` | {same['cosine']:.6f} | {same['correlation']:.6f} | {official['cosine']:.6f} | "
              f"{official['correlation']:.6f} | {worst:.6f} |" for name, same, official, worst in rows]
    lines += ['', f"The compiled model agrees best with recipe **`{best[0]}`** (mean cosine {best[1]['cosine']:.6f} "
              'with the float model on the same input).', '',
              '| photo | ' + ' | '.join(f'`{name}`' for name, *_ in rows) + ' |', '|---' * (len(rows) + 1) + '|']
    lines += [f'| `{os.path.basename(path)}` | ' + ' | '.join(f'{per_image[name][i]:.6f}' for name, *_ in rows) + ' |'
              for i, path in enumerate(images)]
    lines += ['', '- Same input: the recipe the model was calibrated for agrees best (D-Robotics report about '
              '0.999 for their int16 `depth_any.hbm`); well below that, its inputs left the calibrated range.',
              '- Against the float model fed the official way: the depth the node publishes with that recipe, '
              'next to the network run as its authors do. Random-weight test models say nothing about depth '
              'quality; real weights do.']
    return lines


# -- BPU throughput and CPU ------------------------------------------------------------------------

def throughput_section(cfg: dict, engine, threads: list, frames: int) -> list:
    from ..tool_support.measure import engine_throughput, sample_frame
    from ..tool_support.options import processor_from_config
    processor = processor_from_config(cfg, engine=engine)
    feeds, _ = processor.estimator.preprocess(sample_frame(STAGE_SIZE, 'bgr8')[1]())
    lines = ['| threads | frames | total ms | avg latency ms | FPS |', '|---|---|---|---|---|']
    for n in threads:
        r = engine_throughput(engine, feeds, n, frames)
        lines.append(f"| {r['threads']} | {r['frames']} | {r['total_ms']:.1f} | {r['latency_ms']:.1f} | "
                     f"{r['fps']:.2f} |")
    lines += ['', f'Inference only, as `hrt_model_exec perf --thread_num N`; D-Robotics publish for '
              f'`depth_any.hbm`: {PUBLISHED_PERF}.']
    return lines


def stage_section(cfg: dict, engine, frames: int) -> list:
    from ..tool_support.measure import replay_processor, stage_times
    columns = {}
    for encoding in ('bgr8', 'nv12'):
        processor = replay_processor(cfg, engine, STAGE_SIZE, encoding)
        columns[encoding] = (stage_times(processor, STAGE_SIZE, encoding, frames),
                             stage_times(processor, STAGE_SIZE, encoding, frames, time.process_time))
    stages = list(columns['bgr8'][0])
    lines = ['| stage | bgr8 wall ms | bgr8 CPU ms | nv12 wall ms | nv12 CPU ms |', '|---|---|---|---|---|']
    for stage in stages + ['sum']:
        cells = [sum(t.values()) if stage == 'sum' else t[stage] for enc in ('bgr8', 'nv12') for t in columns[enc]]
        lines.append(f'| {stage} | ' + ' | '.join(f'{v:.2f}' for v in cells) + ' |')
    lines += ['', f'Median of {frames} frames, inference replayed (`bench --what stages`); CPU time is all '
              f"threads' (OpenCV spreads some stages over cores); {processor.estimator.recipe.describe()}."]
    return lines


def node_section(cfg: dict, args, camera: tuple) -> list:
    from ..ros.camera_load import load_run
    from ..tool_support.measure import sample_frame
    size, rate = camera
    fields = sample_frame(size, args.camera_encoding)[0]
    r = load_run(cfg, args.seconds, fields, rate, args.domain)
    drops = ', '.join(f'{k} {v}' for k, v in sorted(r['drops'].items())) or 'none'
    return ['| camera | workers | offered/s | published/s | latency p50 ms | latency p95 ms | drops by reason |',
            '|---|---|---|---|---|---|---|',
            f"| {size} {args.camera_encoding} @ {rate:g}/s | {r['workers']} | {r['offered_fps']:.1f} | "
            f"{r['published_fps']:.2f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {drops} |", '',
            f'The node as a process of its own, the camera and the depth subscriber in this one, {args.seconds:g} s '
            '(latency: camera stamp to depth arrival, one clock). Frames beyond what inference takes are '
            '`superseded`: the newest frame wins.']
