"""compare: two models on the same images, e.g. the float ONNX vs the BPU .hbm."""
from __future__ import annotations

HELP = ('run two models on the same images and print how closely their depth agrees '
        '(cosine similarity, relative L1 and AbsRel of A against reference B, per image and mean); '
        'meant for one network run two ways, e.g. the quantized .hbm against the float ONNX')
# Each model its own engine and recipe (the float ONNX and the .hbm want different inputs): an
# option without suffix sets both, one with -a/-b a single model.
SHARED = ('engine', 'input_size', 'recipe', 'resize_mode', 'interpolation', 'normalization', 'channel_order',
          'upsampling')


def add_arguments(parser):
    from ..tool_support.options import add_param_options
    parser.add_argument('--a', required=True, dest='model_path_a', metavar='MODEL_A', help='first model')
    parser.add_argument('--b', required=True, dest='model_path_b', metavar='MODEL_B',
                        help='second model; metrics treat it as the reference')
    add_param_options(parser, SHARED, what='both models: ')
    add_param_options(parser, SHARED, '-a', 'model A: ', inherit=True)
    add_param_options(parser, SHARED, '-b', 'model B: ', inherit=True)
    parser.add_argument('images', nargs='+', metavar='IMAGES', help='image files or directories')


def run(args) -> int:
    import numpy as np

    from ..core.metrics import compare_depth
    from ..tool_support.files import expand_images, read_frame
    from ..tool_support.options import processor_from_args
    images = expand_images(args.images)
    model_a = processor_from_args(args, '-a', fallback_suffix='')
    model_b = processor_from_args(args, '-b', fallback_suffix='')
    print(f'A: {model_a.estimator.engine.describe()}')
    print(f'B: {model_b.estimator.engine.describe()} (reference)')
    rows = []
    for path in images:
        frame = read_frame(path)
        # Both at the image's size, so models with different input sizes compare too.
        m = compare_depth(model_a.process(frame, ('depth',)).depth, model_b.process(frame, ('depth',)).depth)
        rows.append(m)
        print(f"{path}: cosine {m['cosine']:.6f}  rel_l1 {m['rel_l1']:.6f}  abs_rel {m['abs_rel']:.6f}")
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    print(f"mean over {len(rows)} images: cosine {mean['cosine']:.6f}  rel_l1 {mean['rel_l1']:.6f}  "
          f"abs_rel {mean['abs_rel']:.6f}")
    return 0
