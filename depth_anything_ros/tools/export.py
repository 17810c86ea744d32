"""export: a real DA-V2 checkpoint (Hugging Face directory or original .pth) -> ONNX."""
from __future__ import annotations

import os

HELP = ('export a Depth Anything V2 checkpoint (Hugging Face directory with config.json + '
        'model.safetensors, or an original .pth) to ONNX opset 17 (pixel_values -> predicted_depth), '
        'check it against PyTorch, optionally also write a dynamic-int8 model')


def add_arguments(parser):
    parser.add_argument('checkpoint', nargs='?', help='Hugging Face checkpoint directory or original DA-V2 .pth file')
    parser.add_argument('--checkpoint', dest='checkpoint_option', metavar='CHECKPOINT',
                        help='the same, as an option')
    parser.add_argument('--out', required=True, help='output .onnx path')
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument('--size', help='fixed input HxW, multiples of 14 (518x686 for the S100 toolchain)')
    shape.add_argument('--dynamic', action='store_true', help='dynamic input height and width (the default)')
    parser.add_argument('--quantize', choices=('int8',),
                        help='also write <out>_int8.onnx: ONNX Runtime dynamic int8 on MatMul')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest accepted |ONNX - PyTorch|, relative to the depth peak when that '
                             'is above 1 (default 1e-3)')
    parser.add_argument('--metric-max-depth', type=float,
                        help='.pth metric models: range in metres (20 Hypersim, 80 Virtual KITTI; '
                             'read from the file name when it says)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random check input')


def run(args) -> int:
    from ..tool_support.errors import CliError, parse_model_size
    if (args.checkpoint is None) == (args.checkpoint_option is None):
        raise CliError('give the checkpoint once: a Hugging Face directory or a .pth file '
                       '(positional or --checkpoint)')
    args.checkpoint = args.checkpoint or args.checkpoint_option
    size = parse_model_size(args.size) if args.size else None
    if not args.out.endswith('.onnx'):
        raise CliError(f"--out '{args.out}' must end in .onnx")
    if not os.path.exists(args.checkpoint):
        raise CliError(f"checkpoint '{args.checkpoint}' does not exist")
    try:
        from ..torch_models import export as core
    except ImportError as exc:
        raise CliError(f"{exc}: exporting needs torch, transformers and onnx (pip install '.[test-models]')") from exc
    try:
        model = core.load_checkpoint(args.checkpoint, args.metric_max_depth)
    except core.ExportError as exc:
        raise CliError(str(exc)) from exc
    print(f'loaded {args.checkpoint}: {core.describe(model)}')

    core.export_onnx(model, args.out, size)
    shape = 'dynamic HxW' if size is None else f'{size[0]}x{size[1]}'
    print(f'wrote {args.out}: opset 17, {core.INPUT_NAME} 1x3x{shape} -> {core.OUTPUT_NAME}')

    check = core.parity(model, args.out, size, args.seed)
    bound = args.tolerance * max(1.0, check['peak'])
    h, w = check['input_hw']
    print(f'ONNX Runtime vs PyTorch on a random {h}x{w} input: max abs error {check["max_abs"]:.3g} '
          f'(depth peak {check["peak"]:.4g}, bound {bound:.3g})')
    if not check['max_abs'] <= bound:  # NaN fails too
        print(f'FAILED: {args.out} differs from PyTorch by more than {bound:.3g}')
        return 1

    if args.quantize == 'int8':
        from ..core.metrics import compare_depth
        path = core.quantize_int8(args.out, core.int8_path(args.out))
        m = compare_depth(core.onnx_depth(path, check['pixels']), check['onnx'])
        mb = os.path.getsize(path) / 1e6
        print(f'wrote {path} ({mb:.1f} MB): dynamic int8 on MatMul; against the fp32 ONNX on the same input: '
              f"cosine {m['cosine']:.6f}  rel_l1 {m['rel_l1']:.6f}  abs_rel {m['abs_rel']:.6f}")
    return 0
