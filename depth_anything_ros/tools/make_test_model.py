"""make-test-model: a Depth Anything ONNX (DA-V2 or DA3 architecture) with random weights."""
from __future__ import annotations

from ..torch_models.da3_build import ARCHITECTURES as DA3_ARCHITECTURES  # plain names: no torch imported

HELP = ('build a Depth Anything ONNX model with RANDOM weights, for tests and benchmarks: DA-V2 Small '
        '(transformers) or a DA3 architecture (the official depth-anything-3 package); same graph and '
        'cost as the real model, meaningless depth')
DA_V2 = 'da-v2-small'
DEFAULT_SIZE = {DA_V2: '518x686', 'da3': '378x504'}   # the S100 model; DA3's size for 4:3 cameras


def add_arguments(parser):
    parser.add_argument('--out', required=True, help='output .onnx path')
    parser.add_argument('--architecture', choices=(DA_V2,) + DA3_ARCHITECTURES, default=DA_V2,
                        help=f'network to build (default {DA_V2}); DA3 ones output depth (growing with '
                             'distance) and depth_conf (main series) or sky (Mono, Metric)')
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument('--model-size', metavar='HxW',
                       help=f"fixed input HxW, multiples of 14 (default {DEFAULT_SIZE[DA_V2]}, the S100 model; "
                            f"DA3: {DEFAULT_SIZE['da3']}, its input for 4:3 cameras)")
    shape.add_argument('--dynamic', action='store_true', help='dynamic input height and width (DA-V2 only)')
    parser.add_argument('--tiny', action='store_true', help='tiny variant of the same architecture (fast tests)')
    parser.add_argument('--seed', type=int, default=0, help='weight seed')
    parser.add_argument('--metric', type=float, metavar='MAX_M',
                        help='DA-V2: metric head (sigmoid x MAX_M metres) instead of relative inverse depth')


def run(args) -> int:
    from ..tool_support.errors import CliError
    from ..tool_support.sizes import model_size
    da3 = args.architecture != DA_V2
    if da3 and args.dynamic:
        raise CliError('--dynamic is for DA-V2: a DA3 model has one fixed input size (--model-size HxW)')
    if da3 and args.metric is not None:
        raise CliError('--metric is for DA-V2: the metric DA3 is --architecture da3metric-large')
    size = None if args.dynamic else model_size(args.model_size or DEFAULT_SIZE['da3' if da3 else DA_V2])
    if not args.out.endswith('.onnx'):
        raise CliError(f"--out '{args.out}' must end in .onnx")
    try:
        path = _build(args, size)
    except ImportError as exc:
        needs = 'torch and depth-anything-3 (requirements/dev.txt)' if da3 else 'torch and transformers'
        raise CliError(f"{exc}: building test models needs {needs} (pip install '.[test-models]')") from exc
    kind = f"{args.architecture}{' tiny' if args.tiny else ''}"
    print(f"wrote {path}: {kind} architecture, input {'dynamic' if size is None else f'{size[0]}x{size[1]}'}, "
          'RANDOM weights (depth from it means nothing)')
    return 0


def _build(args, size) -> str:
    if args.architecture == DA_V2:
        from ..torch_models.build import make_test_model
        return make_test_model(args.out, size_hw=size, tiny=args.tiny, seed=args.seed, metric_max_depth=args.metric)
    from ..torch_models.da3_build import make_da3_test_model
    return make_da3_test_model(args.out, args.architecture, size_hw=size, tiny=args.tiny, seed=args.seed)
