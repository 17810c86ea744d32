"""Real DA-V2 checkpoints -> ONNX (opset 17), checked against PyTorch, optionally int8.

Inputs: a Hugging Face checkpoint directory (config.json + model.safetensors,
e.g. Depth-Anything-V2-Small-hf) or an original `.pth` state dict from the
DA-V2 repository, whose keys are renamed onto transformers' model here. Needs
torch, transformers and onnxruntime; the node never imports this module.
"""
from __future__ import annotations

import math
import os
import re

from ..core.depth_type import metric_name
from .build import INPUT_NAME, OUTPUT_NAME, export_onnx, use_official_pos_embedding

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Traced at 518x518, so the dynamic check runs another, non-square size.
DYNAMIC_CHECK_HW = (364, 490)
# Original DA-V2 `intermediate_layer_idx` + 1 (transformers counts the embeddings as stage 0).
OUT_INDICES_BY_DEPTH = {12: [3, 6, 9, 12], 24: [5, 12, 18, 24], 40: [10, 20, 30, 40]}


class ExportError(ValueError):
    """A checkpoint that cannot be loaded or exported; the message says what to fix."""


def load_checkpoint(path: str, metric_max_depth: float | None = None, num_heads: int | None = None):
    """A DepthAnythingForDepthEstimation in eval mode from a HF directory or an original .pth,
    with the official position-embedding interpolation (see use_official_pos_embedding)."""
    if os.path.isdir(path):
        return use_official_pos_embedding(load_hf_directory(path))
    if os.path.isfile(path) and path.endswith(('.pth', '.pt')):
        return use_official_pos_embedding(load_original_pth(path, metric_max_depth, num_heads))
    if os.path.isfile(path):
        raise ExportError(f"'{path}' is neither a Hugging Face checkpoint directory nor an original "
                          'DA-V2 .pth state dict')
    raise ExportError(f"checkpoint '{path}' does not exist")


def load_hf_directory(path: str):
    from transformers import DepthAnythingForDepthEstimation
    if not os.path.isfile(os.path.join(path, 'config.json')):
        raise ExportError(f"'{path}' is not a Hugging Face checkpoint directory: it has no config.json "
                          '(download config.json and model.safetensors from '
                          'huggingface.co/depth-anything/Depth-Anything-V2-Small-hf)')
    if not any(n.endswith(('.safetensors', '.bin')) for n in os.listdir(path)):
        raise ExportError(f"'{path}' has a config.json but no weights (model.safetensors)")
    try:
        model, info = DepthAnythingForDepthEstimation.from_pretrained(path, output_loading_info=True)
    except Exception as exc:  # transformers raises many types for a bad config or file
        raise ExportError(f"transformers cannot load '{path}': {exc}") from exc
    # A partly loaded model would export silently with random layers.
    missing = sorted(info.get('missing_keys') or ())
    if missing:
        raise ExportError(f"'{path}' lacks {len(missing)} weights of the model, e.g. {missing[:3]}")
    head = model.head
    if head.max_depth is None:  # relative configs may say null; the ReLU head ignores the scale
        head.max_depth = 1
    return model.eval()


def load_original_pth(path: str, metric_max_depth: float | None = None, num_heads: int | None = None):
    import torch
    from transformers import DepthAnythingForDepthEstimation
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        raise ExportError(f"cannot read '{path}' as a PyTorch state dict: {exc}") from exc
    for wrapper in ('model', 'state_dict'):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    if 'pretrained.cls_token' not in state:
        raise ExportError(f"'{path}' is not an original Depth Anything V2 state dict "
                          "(no 'pretrained.cls_token'); for Hugging Face checkpoints pass the directory")
    if metric_max_depth is None:
        metric, metric_max_depth = metric_name(path)
        if metric and metric_max_depth is None:
            raise ExportError(f"'{path}' looks like a metric model: give its range "
                              '(--metric-max-depth 20 for Hypersim, 80 for Virtual KITTI)')
    config = config_from_original(state, metric_max_depth, num_heads)
    model = DepthAnythingForDepthEstimation(config).eval()
    if metric_max_depth:
        model.head.max_depth = float(metric_max_depth)
    renamed = original_to_hf(state, config.backbone_config.hidden_size)
    renamed = _adapt_attention_names(renamed, model.state_dict().keys())
    try:
        model.load_state_dict(renamed, strict=True)
    except RuntimeError as exc:
        raise ExportError(f"'{path}' does not fit the DA-V2 architecture: {str(exc)[:500]}") from exc
    return model


def config_from_original(state: dict, metric_max_depth: float | None = None, num_heads: int | None = None):
    """DepthAnythingConfig read off the tensor shapes of an original state dict."""
    from transformers import DepthAnythingConfig, Dinov2Config
    hidden = state['pretrained.cls_token'].shape[-1]
    blocks = {int(m.group(1)) for k in state if (m := re.match(r'pretrained\.blocks\.(\d+)\.norm1\.weight$', k))}
    if not blocks:
        raise ExportError('the state dict has no pretrained.blocks.N layers (chunked or giant '
                          'checkpoints are not supported)')
    if any('mlp.w12' in k for k in state):
        raise ExportError('SwiGLU (ViT-giant) checkpoints are not supported')
    depth = max(blocks) + 1
    positions = state['pretrained.pos_embed'].shape[1] - 1
    side = math.isqrt(positions)
    mlp_hidden = int(state['pretrained.blocks.0.mlp.fc1.weight'].shape[0])
    if mlp_hidden % hidden:
        raise ExportError(f'MLP width {mlp_hidden} is not a multiple of the hidden size {hidden}')
    mlp_ratio = mlp_hidden // hidden  # transformers takes an int
    backbone = Dinov2Config(
        hidden_size=hidden, num_hidden_layers=depth,
        # DINOv2 uses 64-wide heads at every size; the count is not in the weights' shapes.
        num_attention_heads=num_heads or max(1, hidden // 64), mlp_ratio=mlp_ratio,
        patch_size=14, image_size=side * 14,
        out_indices=OUT_INDICES_BY_DEPTH.get(depth, [depth // 4 * i for i in (1, 2, 3, 4)]),
        apply_layernorm=True, reshape_hidden_states=False)
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=hidden, reassemble_factors=[4, 2, 1, 0.5],
        patch_size=14,
        neck_hidden_sizes=[int(state[f'depth_head.projects.{i}.weight'].shape[0]) for i in range(4)],
        fusion_hidden_size=int(state['depth_head.scratch.layer1_rn.weight'].shape[0]),
        head_hidden_size=int(state['depth_head.scratch.output_conv2.0.weight'].shape[0]),
        depth_estimation_type='metric' if metric_max_depth else 'relative',
        # transformers 5 types max_depth as int; load_original_pth sets a fractional range on the head.
        max_depth=int(metric_max_depth) if metric_max_depth and float(metric_max_depth).is_integer() else 1)


# (original pattern, transformers name); refinenet k feeds fusion layer 4 - k.
_RENAMES = [
    (r'pretrained\.cls_token', 'backbone.embeddings.cls_token'),
    (r'pretrained\.mask_token', 'backbone.embeddings.mask_token'),
    (r'pretrained\.pos_embed', 'backbone.embeddings.position_embeddings'),
    (r'pretrained\.patch_embed\.proj\.(weight|bias)', r'backbone.embeddings.patch_embeddings.projection.\1'),
    (r'pretrained\.blocks\.(\d+)\.norm([12])\.(weight|bias)', r'backbone.encoder.layer.\1.norm\2.\3'),
    (r'pretrained\.blocks\.(\d+)\.attn\.proj\.(weight|bias)', r'backbone.encoder.layer.\1.attention.o_proj.\2'),
    (r'pretrained\.blocks\.(\d+)\.ls([12])\.gamma', r'backbone.encoder.layer.\1.layer_scale\2.lambda1'),
    (r'pretrained\.blocks\.(\d+)\.mlp\.(fc[12])\.(weight|bias)', r'backbone.encoder.layer.\1.mlp.\2.\3'),
    (r'pretrained\.norm\.(weight|bias)', r'backbone.layernorm.\1'),
    (r'depth_head\.projects\.(\d)\.(weight|bias)', r'neck.reassemble_stage.layers.\1.projection.\2'),
    (r'depth_head\.resize_layers\.([013])\.(weight|bias)', r'neck.reassemble_stage.layers.\1.resize.\2'),
    (r'depth_head\.scratch\.layer([1-4])_rn\.weight', lambda m: f'neck.convs.{int(m[1]) - 1}.weight'),
    (r'depth_head\.scratch\.refinenet([1-4])\.out_conv\.(weight|bias)',
     lambda m: f'neck.fusion_stage.layers.{4 - int(m[1])}.projection.{m[2]}'),
    (r'depth_head\.scratch\.refinenet([1-4])\.resConfUnit([12])\.conv([12])\.(weight|bias)',
     lambda m: f'neck.fusion_stage.layers.{4 - int(m[1])}.residual_layer{m[2]}.convolution{m[3]}.{m[4]}'),
    (r'depth_head\.scratch\.output_conv1\.(weight|bias)', r'head.conv1.\1'),
    (r'depth_head\.scratch\.output_conv2\.0\.(weight|bias)', r'head.conv2.\1'),
    (r'depth_head\.scratch\.output_conv2\.2\.(weight|bias)', r'head.conv3.\1'),
]
_QKV = re.compile(r'pretrained\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$')


def original_to_hf(state: dict, hidden: int) -> dict:
    """Rename an original DA-V2 state dict onto transformers' DepthAnythingForDepthEstimation."""
    out, unknown = {}, []
    for key, value in state.items():
        if m := _QKV.match(key):
            # One fused (3*hidden, ...) projection in the original; q, k, v in that order.
            for part, chunk in zip(('q_proj', 'k_proj', 'v_proj'), value.split(hidden, dim=0)):
                out[f'backbone.encoder.layer.{m[1]}.attention.{part}.{m[2]}'] = chunk.clone()
            continue
        for pattern, target in _RENAMES:
            if m := re.fullmatch(pattern, key):
                out[m.expand(target) if isinstance(target, str) else target(m)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ExportError(f'{len(unknown)} weights have no place in the DA-V2 architecture, e.g. {unknown[:3]}')
    return out


def _adapt_attention_names(state: dict, model_keys) -> dict:
    """transformers < 5 names the attention projections attention.attention.query etc."""
    if any('.attention.q_proj.' in k for k in model_keys):
        return state
    old = {'attention.q_proj.': 'attention.attention.query.', 'attention.k_proj.': 'attention.attention.key.',
           'attention.v_proj.': 'attention.attention.value.', 'attention.o_proj.': 'attention.output.dense.'}
    renamed = {}
    for key, value in state.items():
        for new, legacy in old.items():
            key = key.replace(new, legacy)
        renamed[key] = value
    return renamed


def describe(model) -> str:
    config = model.config
    params = sum(p.numel() for p in model.parameters()) / 1e6
    kind = config.depth_estimation_type
    if kind == 'metric':
        kind += f' (metres, max {config.max_depth:g})'
    return (f'DA-V2, ViT hidden {config.backbone_config.hidden_size}, '
            f'{config.backbone_config.num_hidden_layers} layers, {params:.2f} M parameters, {kind} depth')


def random_input(size_hw: tuple, seed: int = 0):
    """A random image normalized like the real preprocessing (values in ImageNet's range)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    image = rng.random((1, 3) + tuple(size_hw), dtype=np.float32)
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    return (image - mean) / std


def torch_depth(model, pixel_values):
    import torch
    with torch.no_grad():
        return model(torch.from_numpy(pixel_values)).predicted_depth.numpy()


def onnx_depth(path: str, pixel_values):
    """The first output (depth) of an ONNX model."""
    return next(iter(onnx_outputs(path, pixel_values).values()))


def onnx_outputs(path: str, pixel_values) -> dict:
    """Every output of an ONNX model, by name, as the package's ONNX Runtime engine loads it."""
    from ..engines.onnxruntime_engine import OnnxRuntimeEngine
    engine = OnnxRuntimeEngine(path)
    return engine.run({engine.inputs[0].name: pixel_values})


def parity(reference, onnx_path: str, size_hw: tuple | None, seed: int = 0) -> dict:
    """PyTorch vs ONNX Runtime on one random input. reference(pixels) -> {output name: array};
    per output: max abs error and the peak |value|."""
    import numpy as np
    pixels = random_input(size_hw or DYNAMIC_CHECK_HW, seed)
    ref = reference(pixels)
    got = onnx_outputs(onnx_path, pixels)
    errors = {}
    for name, expected in ref.items():
        if name not in got or got[name].shape != expected.shape:
            found = got[name].shape if name in got else 'missing'
            raise ExportError(f'ONNX output {name}: {found}, PyTorch gives {expected.shape}')
        errors[name] = {'max_abs': float(np.max(np.abs(got[name] - expected))),
                        'peak': float(np.max(np.abs(expected)))}
    return {'errors': errors, 'input_hw': tuple(pixels.shape[2:]), 'pixels': pixels, 'torch': ref, 'onnx': got}


def int8_path(onnx_path: str) -> str:
    root, ext = os.path.splitext(onnx_path)
    return f'{root}_int8{ext}'


def quantize_int8(onnx_path: str, out_path: str) -> str:
    """ONNX Runtime dynamic int8 on MatMul only (quantizing Conv too is slower on x86 here)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic
    tmp = out_path + '.tmp.onnx'
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is for static quantization
    try:
        quantize_dynamic(onnx_path, tmp, op_types_to_quantize=['MatMul'], weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    os.replace(tmp, out_path)
    return out_path


__all__ = ['ExportError', 'load_checkpoint', 'export_onnx', 'parity', 'quantize_int8', 'int8_path',
           'INPUT_NAME', 'OUTPUT_NAME']
