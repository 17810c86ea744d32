"""make-test-model: a DA-V2-architecture ONNX with random weights."""
from __future__ import annotations

HELP = ('build a Depth Anything V2 (Small architecture) ONNX model with RANDOM weights, for tests '
        'and benchmarks: same graph and cost as the real model, meaningless depth')


def add_arguments(parser):
    parser.add_argument('--out', required=True, help='output .onnx path')
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument('--size', default='518x686', help='fixed input HxW (default 518x686, the S100 model)')
    shape.add_argument('--dynamic', action='store_true', help='dynamic input height and width')
    parser.add_argument('--tiny', action='store_true', help='tiny variant of the same architecture (fast tests)')
    parser.add_argument('--seed', type=int, default=0, help='weight seed')
    parser.add_argument('--metric', type=float, metavar='MAX_M',
                        help='metric head (sigmoid x MAX_M metres) instead of relative inverse depth')


def run(args) -> int:
    from ..tool_support.errors import CliError, parse_model_size
    size = None if args.dynamic else parse_model_size(args.size)
    if not args.out.endswith('.onnx'):
        raise CliError(f"--out '{args.out}' must end in .onnx")
    from ..torch_models.build import make_test_model
    try:
        path = make_test_model(args.out, size_hw=size, tiny=args.tiny, seed=args.seed,
                               metric_max_depth=args.metric)
    except ImportError as exc:
        raise CliError(f'{exc}: building test models needs torch and transformers '
                       "(pip install '.[test-models]')") from exc
    kind = 'tiny' if args.tiny else 'Small'
    print(f"wrote {path}: DA-V2 {kind} architecture, input {'dynamic' if size is None else f'{size[0]}x{size[1]}'}, "
          'RANDOM weights (depth from it means nothing)')
    return 0
