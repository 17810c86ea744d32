"""calibration-data: PTQ calibration samples for the RDK S100 toolchain.

Each sample is exactly what the node feeds the model (RgbPreprocessor on the
fixed canvas), so the quantizer sees the same value distribution as the
running node: same resize mode, same padding, same normalization.
"""
from __future__ import annotations

import os

HELP = ('write calibration samples (float32 NCHW 1x3xHxW .npy, one per image) for the S100 '
        'toolchain, preprocessed exactly like the node does')
FORMATS = ('npy',)


def add_arguments(parser):
    from ..preprocess import NORMALIZATIONS, RESIZE_MODES
    parser.add_argument('--model-size', default='518x686',
                        help="the compiled model's input HxW (default 518x686, depth_any.hbm)")
    parser.add_argument('--out', required=True, help='output directory (created if missing)')
    parser.add_argument('--resize-mode', default='letterbox', choices=RESIZE_MODES,
                        help="use the node's resize_mode (default letterbox)")
    parser.add_argument('--normalization', default='imagenet', choices=NORMALIZATIONS,
                        help="use the node's normalization (default imagenet)")
    parser.add_argument('--format', default='npy', choices=FORMATS)
    parser.add_argument('images', nargs='+', metavar='IMAGES', help='image files or directories')


def sample_name(index: int, image_path: str) -> str:
    stem = os.path.splitext(os.path.basename(image_path))[0]
    return f'{index:05d}_{stem}.npy'  # index first: unique and in input order


def run(args) -> int:
    import numpy as np

    from ..cli import CliError, parse_size
    from ..preprocess import RgbPreprocessor
    from .compare import expand_images, read_frame
    canvas = parse_size(args.model_size, '--model-size')
    images = expand_images(args.images)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create --out '{args.out}': {exc}") from exc
    preprocess = RgbPreprocessor(canvas, 'NCHW', args.resize_mode, normalization=args.normalization)
    for index, path in enumerate(images):
        tensor, _ = preprocess(read_frame(path))
        np.save(os.path.join(args.out, sample_name(index, path)), tensor.astype(np.float32, copy=False))
    print(f"wrote {len(images)} samples of 1x3x{canvas[0]}x{canvas[1]} float32 to '{args.out}' "
          f'({args.resize_mode}, {args.normalization}); calibrate with the same settings the node runs')
    return 0
