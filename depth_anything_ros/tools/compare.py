"""compare: two models on the same images, e.g. the float ONNX vs the BPU .hbm."""
from __future__ import annotations

from ..tool_support.files import add_recipe_arguments, expand_images, open_estimator, recipe_overrides, read_frame

HELP = ('run two models on the same images and print how closely their depth agrees '
        '(cosine similarity, relative L1 and AbsRel of A against reference B, per image and mean); '
        'meant for one network run two ways, e.g. the quantized .hbm against the float ONNX')


def add_arguments(parser):
    from ..engines import ENGINE_CHOICES
    parser.add_argument('--a', required=True, metavar='MODEL_A', help='first model (.onnx or .hbm)')
    parser.add_argument('--b', required=True, metavar='MODEL_B',
                        help='second model; metrics treat it as the reference')
    parser.add_argument('--engine-a', default='auto', choices=ENGINE_CHOICES)
    parser.add_argument('--engine-b', default='auto', choices=ENGINE_CHOICES)
    parser.add_argument('--input-size', type=int, default=518,
                        help='dynamic-shape models: shorter side (default 518)')
    # Each model its own recipe (the float ONNX and the .hbm want different inputs); an
    # option without suffix sets both, one with -a/-b a single model.
    add_recipe_arguments(parser, '', 'both models; ')
    add_recipe_arguments(parser, '-a', 'model A; ')
    add_recipe_arguments(parser, '-b', 'model B; ')
    parser.add_argument('images', nargs='+', metavar='IMAGES', help='image files or directories')


def _overrides(args, suffix: str) -> dict:
    both = recipe_overrides(args)
    return {k: v if v != 'auto' else both[k] for k, v in recipe_overrides(args, suffix).items()}


def run(args) -> int:
    import numpy as np

    from ..core.metrics import compare_depth
    images = expand_images(args.images)
    est_a = open_estimator(args.a, args.engine_a, args.input_size, **_overrides(args, '-a'))
    est_b = open_estimator(args.b, args.engine_b, args.input_size, **_overrides(args, '-b'))
    print(f'A: {est_a.engine.describe()}')
    print(f'B: {est_b.engine.describe()} (reference)')
    rows = []
    for path in images:
        frame = read_frame(path)
        # Both at the image's size, so models with different input sizes compare too.
        m = compare_depth(est_a.estimate(frame).depth, est_b.estimate(frame).depth)
        rows.append(m)
        print(f"{path}: cosine {m['cosine']:.6f}  rel_l1 {m['rel_l1']:.6f}  abs_rel {m['abs_rel']:.6f}")
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    print(f"mean over {len(rows)} images: cosine {mean['cosine']:.6f}  rel_l1 {mean['rel_l1']:.6f}  "
          f"abs_rel {mean['abs_rel']:.6f}")
    return 0
