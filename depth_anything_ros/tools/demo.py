"""demo: the whole graph on this machine, camera -> depth node -> sink, no launch needed."""
from __future__ import annotations

import os

HELP = ('run the sample camera, the depth node and a sink as separate ROS 2 processes, '
        'save colorized depth and print the frame rate')
DEFAULT_TEST_MODEL = 'da_v2_small_random_518x686.onnx'
REAL_MODEL = 'da_v2_small_onnx'  # models.yaml: DA-V2 Small as ONNX, one direct file (Apache-2.0)


def add_arguments(parser):
    from ..engines import model_file_text
    parser.add_argument('--model', help=f'model file: {model_file_text()} (default: DA-V2 Small ONNX, '
                                        'downloaded once with `models fetch`; offline: a RANDOM-weight test '
                                        'model of the real architecture, whose depth means nothing)')
    parser.add_argument('--no-download', action='store_true',
                        help='do not try to download real weights: use the random-weight test model')
    parser.add_argument('--model-url', help='download the real model from this URL instead (a mirror)')
    parser.add_argument('--seconds', type=float, default=30.0, help='how long to run (default 30)')
    parser.add_argument('--out', metavar='DIR', default='demo_out',
                        help='where colorized depth PNGs go (default demo_out)')
    parser.add_argument('--rate', type=float, default=10.0, help='camera frames per second')
    parser.add_argument('--camera-size', default='640x480', metavar='WxH', help='camera WxH')
    parser.add_argument('--encoding', default='bgr8', choices=['bgr8', 'rgb8', 'mono8', 'nv12'])
    parser.add_argument('--image', help='camera image (default: the built-in robot camera frame)')
    parser.add_argument('--video', help='camera video, looped')
    parser.add_argument('--params', help='node parameters file (default: config/depth.yaml)')


def default_model() -> str:
    from ..core.paths import cache_dir
    from ..torch_models.build import make_test_model
    path = os.path.join(cache_dir(), DEFAULT_TEST_MODEL)
    if not os.path.exists(path):
        print(f'demo: building a random-weight DA-V2 Small test model at {path} (once)...', flush=True)
        make_test_model(path, size_hw=(518, 686))
    return path


def real_model(url: str | None = None, dest: str | None = None, entry=None, timeout: float = 20.0) -> tuple:
    """(path, None) of DA-V2 Small ONNX (`entry`: its models.yaml entry by default), fetched once into
    the cache (checksum checked when the entry has one), or (None, why) when it cannot be downloaded here."""
    from ..core.model_catalog import load_catalog
    from ..tool_support.download import FetchError, fetch
    entry = entry or load_catalog().find(REAL_MODEL)
    try:
        path, _, _ = fetch(entry, dest, url, timeout)
    except (FetchError, OSError) as exc:
        return None, str(exc)
    return path, None


def pick_model(args) -> tuple:
    """(model path, True if it is the random-weight test model)."""
    if args.model:
        return args.model, False
    if not args.no_download:
        path, why = real_model(args.model_url)
        if path:
            return path, False
        print(f'demo: no real weights ({why}); using the random-weight test model instead', flush=True)
    return default_model(), True


def run(args) -> int:
    from ..tool_support.errors import CliError
    from ..ros.process_graph import RosGraph
    from ..core.paths import share_path
    model, random_weights = pick_model(args)
    if not os.path.isfile(model):
        raise CliError(f"model '{model}' does not exist")
    params = args.params or share_path('config', 'depth.yaml')
    camera = ['camera', '--rate', str(args.rate), '--camera-size', args.camera_size, '--encoding', args.encoding]
    camera += ['--image', args.image] if args.image else []
    camera += ['--video', args.video] if args.video else []
    with RosGraph() as graph:
        print(f'demo: model {model}; ROS_DOMAIN_ID={graph.env["ROS_DOMAIN_ID"]}; '
              f'{args.seconds:.0f} s; colorized depth -> {args.out}/', flush=True)
        if random_weights:
            print('demo: NOTE the test model has random weights: the pictures show the pipeline '
                  'working, not depth quality.', flush=True)
        graph.start('node', graph.node_command('--params-file', params, '-p', f'model_path:={model}'))
        graph.start('camera', graph.cli_command(*camera))
        sink = graph.start('sink', graph.cli_command('sink', '--out', args.out,
                                                     '--seconds', str(args.seconds)), echo=True)
        sink.wait(timeout=args.seconds + 60)
        codes = graph.stop()
    print(f'demo: exit codes {codes}', flush=True)
    return 0 if all(c == 0 for c in codes.values()) else 1
