"""compare: two models on the same images, e.g. the float ONNX vs the BPU .hbm."""
from __future__ import annotations

HELP = ('run two models on the same images and print how closely their depth agrees '
        '(cosine similarity, relative L1, AbsRel and depth correlation of A against reference B, per image '
        'and mean); '
        'meant for one network run two ways, e.g. the quantized .hbm against the float ONNX')


def add_arguments(parser):
    from ..core.params import in_groups
    from ..tool_support.options import add_param_options
    # Each model its own engine and recipe (the float ONNX and the .hbm want different inputs): an
    # option without suffix sets both, one with -a/-b a single model.
    shared = ('engine',) + in_groups('recipe')
    parser.add_argument('--a', required=True, dest='model_path_a', metavar='MODEL_A', help='first model')
    parser.add_argument('--b', required=True, dest='model_path_b', metavar='MODEL_B',
                        help='second model; metrics treat it as the reference')
    add_param_options(parser, shared, what='both models: ')
    add_param_options(parser, shared, '-a', 'model A: ', inherit=True)
    add_param_options(parser, shared, '-b', 'model B: ', inherit=True)
    parser.add_argument('images', nargs='+', metavar='IMAGES', help='image files or directories')


def run(args) -> int:
    from ..tool_support.files import expand_images
    from ..tool_support.measure import compare_on_images, mean_metrics
    from ..tool_support.options import processor_from_args
    images = expand_images(args.images)
    model_a = processor_from_args(args, '-a', fallback_suffix='')
    model_b = processor_from_args(args, '-b', fallback_suffix='')
    print(f'A: {model_a.estimator.engine.describe()}')
    print(f'B: {model_b.estimator.engine.describe()} (reference)')
    rows = compare_on_images(model_a, model_b, images)
    for path, m in zip(images, rows):
        print(f"{path}: cosine {m['cosine']:.6f}  rel_l1 {m['rel_l1']:.6f}  abs_rel {m['abs_rel']:.6f}  "
              f"correlation {m['correlation']:.6f}")
    mean = mean_metrics(rows)
    print(f"mean over {len(rows)} images: cosine {mean['cosine']:.6f}  rel_l1 {mean['rel_l1']:.6f}  "
          f"abs_rel {mean['abs_rel']:.6f}  correlation {mean['correlation']:.6f}")
    return 0
