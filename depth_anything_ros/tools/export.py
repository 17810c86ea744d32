"""export: a real Depth Anything checkpoint (DA-V2 Hugging Face directory or original .pth; DA3
safetensors or .pth) -> ONNX."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

HELP = ('export a Depth Anything checkpoint to ONNX opset 17 and check it against PyTorch: DA-V2 (Hugging '
        'Face directory with config.json + model.safetensors, or an original .pth; pixel_values -> '
        'predicted_depth) or DA3 (Hugging Face directory, .safetensors or .pth; pixel_values -> depth + '
        'depth_conf or sky, one fixed --model-size); optionally also write a dynamic-int8 model')
# DA3's own input sizes (longer side 504, multiples of 14) for the usual camera shapes.
DA3_SIZE_HINT = '378x504 for 4:3 cameras, 280x504 for 16:9, 504x378 for 3:4 portrait'


def add_arguments(parser):
    parser.add_argument('checkpoint', nargs='?', help='checkpoint directory or file (DA-V2 or DA3)')
    parser.add_argument('--checkpoint', dest='checkpoint_option', metavar='CHECKPOINT',
                        help='the same, as an option')
    parser.add_argument('--out', required=True, help='output .onnx path')
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument('--model-size', metavar='HxW',
                       help='fixed input HxW, multiples of 14 (518x686 for the S100 toolchain; DA3 needs '
                            f'one: {DA3_SIZE_HINT})')
    shape.add_argument('--dynamic', action='store_true',
                       help='dynamic input height and width (the default for DA-V2; DA3 cannot)')
    parser.add_argument('--quantize', choices=('int8',),
                        help='also write <out>_int8.onnx: ONNX Runtime dynamic int8 on MatMul')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest accepted |ONNX - PyTorch|, relative to the output peak when that '
                             'is above 1 (default 1e-3)')
    parser.add_argument('--metric-max-depth', type=float,
                        help='DA-V2 .pth metric models: range in metres (20 Hypersim, 80 Virtual KITTI; '
                             'read from the file name when it says)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random check input')


@dataclass
class Loaded:
    description: str
    export: Callable        # (out path, size or None) -> None
    reference: Callable     # (pixels) -> {output name: PyTorch's output}


def run(args) -> int:
    from ..tool_support.errors import CliError
    from ..tool_support.sizes import model_size
    if (args.checkpoint is None) == (args.checkpoint_option is None):
        raise CliError('give the checkpoint once: a directory or a weights file (positional or --checkpoint)')
    args.checkpoint = args.checkpoint or args.checkpoint_option
    size = model_size(args.model_size) if args.model_size else None
    if not args.out.endswith('.onnx'):
        raise CliError(f"--out '{args.out}' must end in .onnx")
    if not os.path.exists(args.checkpoint):
        raise CliError(f"checkpoint '{args.checkpoint}' does not exist")
    from ..torch_models import export as core
    try:
        loaded = _load_da3(args, size) if _is_da3(args.checkpoint) else _load_da_v2(args, core)
    except core.ExportError as exc:
        raise CliError(str(exc)) from exc
    except ImportError as exc:
        raise CliError(f"{exc}: exporting needs torch, transformers and onnx (pip install '.[test-models]'), "
                       'and for DA3 the official code: pip install --no-deps depth-anything-3==0.1.1') from exc
    print(f'loaded {args.checkpoint}: {loaded.description}')

    loaded.export(args.out, size)
    try:
        check = core.parity(loaded.reference, args.out, size, args.seed)
    except core.ExportError as exc:
        raise CliError(str(exc)) from exc
    shape = 'dynamic HxW' if size is None else f'{size[0]}x{size[1]}'
    print(f"wrote {args.out}: opset 17, {core.INPUT_NAME} 1x3x{shape} -> {', '.join(check['errors'])}")
    if not _within_tolerance(check, args.tolerance):
        print(f'FAILED: {args.out} differs from PyTorch by more than the tolerance')
        return 1
    if args.quantize == 'int8':
        _write_int8(core, args.out, check)
    return 0


def _is_da3(path: str) -> bool:
    from ..torch_models.da3_export import is_da3_checkpoint
    return is_da3_checkpoint(path)


def _load_da_v2(args, core) -> Loaded:
    model = core.load_checkpoint(args.checkpoint, args.metric_max_depth)
    return Loaded(core.describe(model), lambda out, size: core.export_onnx(model, out, size),
                  lambda pixels: {core.OUTPUT_NAME: core.torch_depth(model, pixels)})


def _load_da3(args, size) -> Loaded:
    from ..tool_support.errors import CliError
    from ..torch_models import da3_build, da3_export
    if args.dynamic or size is None:
        raise CliError('DA3 exports at one fixed input size (a traced DA3 graph fails at any other): '
                       f'give --model-size HxW, {DA3_SIZE_HINT}')
    if args.metric_max_depth is not None:
        raise CliError('--metric-max-depth is for DA-V2 metric .pth files; DA3Metric gives canonical '
                       'depth (metres = depth * focal / 300)')
    net, name = da3_export.load_da3_checkpoint(args.checkpoint)
    return Loaded(da3_export.describe(net, name), lambda out, hw: da3_build.export_da3_onnx(net, out, hw),
                  lambda pixels: da3_build.torch_outputs(net, pixels))


def _within_tolerance(check: dict, tolerance: float) -> bool:
    h, w = check['input_hw']
    ok = True
    for name, error in check['errors'].items():
        bound = tolerance * max(1.0, error['peak'])
        print(f'ONNX Runtime vs PyTorch on a random {h}x{w} input, {name}: max abs error '
              f"{error['max_abs']:.3g} (peak {error['peak']:.4g}, bound {bound:.3g})")
        ok = ok and error['max_abs'] <= bound  # NaN fails too
    return ok


def _write_int8(core, out: str, check: dict) -> None:
    from ..core.depth_metrics import compare_depth
    path = core.quantize_int8(out, core.int8_path(out))
    first = next(iter(check['onnx']))
    m = compare_depth(core.onnx_depth(path, check['pixels']), check['onnx'][first])
    mb = os.path.getsize(path) / 1e6
    print(f'wrote {path} ({mb:.1f} MB): dynamic int8 on MatMul; {first} against the fp32 ONNX on the same input: '
          f"cosine {m['cosine']:.6f}  rel_l1 {m['rel_l1']:.6f}  abs_rel {m['abs_rel']:.6f}")
