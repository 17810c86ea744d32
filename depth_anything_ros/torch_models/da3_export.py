"""Depth Anything 3 checkpoints -> the official network (for export to ONNX).

Layouts, as the official package loads them:
- a Hugging Face directory (config.json + model.safetensors): `DepthAnything3.from_pretrained`,
  whose state dict is the API wrapper's, every key under `model.`;
- a lone .safetensors, .pth or .pt with that layout, or the bare network's keys;
- an original training .pth (`module.net.…`, `module.all_heads.…`; metric ones without `module.`),
  renamed by the package's own `convert_general_state_dict` / `convert_metric_state_dict`, as
  its `load_pretrained_weights` does.
The architecture is read off the weights (ViT width, sky head); Mono and Metric share one network,
so only a name (config.json's model_name, or the file's) tells them apart. Nested models (two
networks, metric scaling from predicted intrinsics) are not monocular models: not supported.
"""
from __future__ import annotations

import json
import os

from .da3_build import build_network, load_official_config
from .export import ExportError

CLS_TOKEN = 'backbone.pretrained.cls_token'
SKY_HEAD = 'head.scratch.sky_output_conv2.0.weight'
MAIN_SERIES_BY_WIDTH = {384: 'da3-small', 768: 'da3-base', 1024: 'da3-large', 1536: 'da3-giant'}
SKY_MODELS = ('da3mono-large', 'da3metric-large')   # one network (identical configs)
WEIGHT_SUFFIXES = ('.safetensors', '.pth', '.pt')
# Parts of a checkpoint the monocular network has no place for: DA3-Giant's Gaussian-splatting head.
UNUSED_PREFIXES = ('gs_head.', 'gs_adapter.')


def is_da3_checkpoint(path: str) -> bool:
    """Whether path holds Depth Anything 3 weights (reads names only, not the tensors)."""
    try:
        return any(_is_da3_key(key) for key in _key_names(path))
    except ExportError:
        return False


def _is_da3_key(key: str) -> bool:
    return key.endswith(CLS_TOKEN) or key.endswith('net.pretrained.cls_token')


def _weights_file(path: str) -> str:
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        found = sorted(n for n in os.listdir(path) if n.endswith('.safetensors'))
        if found:
            return os.path.join(path, found[0])
        raise ExportError(f"'{path}' has no .safetensors weights (a DA3 Hugging Face directory holds "
                          'config.json and model.safetensors)')
    raise ExportError(f"checkpoint '{path}' does not exist")


def _key_names(path: str) -> list:
    weights = _weights_file(path)
    if weights.endswith('.safetensors'):
        from safetensors import safe_open
        try:
            with safe_open(weights, 'pt') as f:
                return list(f.keys())
        except Exception as exc:  # safetensors raises its own error types
            raise ExportError(f"cannot read '{weights}' as safetensors: {exc}") from exc
    return list(_read_state(weights, mmap=True))


def _read_state(path: str, mmap: bool = False) -> dict:
    import torch
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    if not path.endswith(WEIGHT_SUFFIXES):
        raise ExportError(f"'{path}' is not a .safetensors, .pth or .pt file")
    try:
        state = torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
    except Exception as exc:
        raise ExportError(f"cannot read '{path}' as a PyTorch state dict: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get('model'), dict):
        state = state['model']
    if not isinstance(state, dict):
        raise ExportError(f"'{path}' holds no state dict")
    return state


def network_state(state: dict) -> dict:
    """Any supported layout -> the keys of DepthAnything3Net's own state dict."""
    from depth_anything_3.utils import model_loading
    if any(k.startswith('module.') for k in state):      # training layout
        state = model_loading.convert_general_state_dict(state)
    elif any(k.startswith('net.') for k in state):       # metric training layout
        state = model_loading.convert_metric_state_dict(state)
    if any(k.startswith(('da3.', 'model.da3.', 'da3_metric.', 'model.da3_metric.')) for k in state):
        raise ExportError('a Nested DA3 checkpoint (two networks) is not a monocular model: export '
                          'DA3Metric-Large or a main-series model instead')
    return {k.removeprefix('model.'): v for k, v in state.items()}


def architecture(state: dict) -> str:
    """The registry name of the network a (network-layout) state dict fits."""
    if CLS_TOKEN not in state:
        raise ExportError(f'not a Depth Anything 3 state dict (no {CLS_TOKEN})')
    width = int(state[CLS_TOKEN].shape[-1])
    if SKY_HEAD in state:
        if width != 1024:
            raise ExportError(f'a DPT + sky head on a ViT of width {width}: no such official model')
        return SKY_MODELS[0]
    if width not in MAIN_SERIES_BY_WIDTH:
        raise ExportError(f'ViT width {width} fits no official DA3 model')
    return MAIN_SERIES_BY_WIDTH[width]


def model_name(path: str, arch: str) -> str:
    """The published model a checkpoint is: config.json's model_name, else the path's name for
    the Mono/Metric network the weights cannot tell apart, else the architecture."""
    config = os.path.join(path, 'config.json') if os.path.isdir(path) else None
    if config and os.path.isfile(config):
        with open(config, encoding='utf-8') as f:
            named = json.load(f).get('model_name')
        if isinstance(named, str) and named.lower() in load_registry():
            return named.lower()
    if arch in SKY_MODELS:
        base = os.path.basename(os.path.normpath(path)).lower()
        return next((m for m, word in zip(SKY_MODELS, ('mono', 'metric')) if word in base),
                    ' or '.join(SKY_MODELS))
    return arch


def load_registry():
    from .da3_build import official_modules
    return official_modules()[1].MODEL_REGISTRY


def load_da3_checkpoint(path: str):
    """(official DepthAnything3Net in eval mode with the checkpoint's weights, model name)."""
    state = network_state(_read_state(_weights_file(path)))
    arch = architecture(state)
    net = build_network(load_official_config(arch))
    unused = [k for k in state if k.startswith(UNUSED_PREFIXES)]
    result = net.load_state_dict({k: v for k, v in state.items() if k not in unused}, strict=False)
    # A partly loaded network would export silently with random layers. Tied weights (DualDPT's
    # aux heads share one LayerNorm) are saved once by safetensors' save_model: one name loads all.
    missing = _untied(net, set(result.missing_keys), set(state))
    if missing:
        raise ExportError(f"'{path}' lacks {len(missing)} weights of {arch}, e.g. {sorted(missing)[:3]}")
    if result.unexpected_keys:
        raise ExportError(f"'{path}' has {len(result.unexpected_keys)} weights {arch} has no place for, "
                          f'e.g. {sorted(result.unexpected_keys)[:3]}')
    return net.eval(), model_name(path, arch)


def _untied(net, missing: set, present: set) -> set:
    """The missing names that share no tensor with a name the checkpoint has."""
    storage = {name: t.untyped_storage().data_ptr() for name, t in net.state_dict().items()}
    loaded = {storage[name] for name in present if name in storage}
    return {name for name in missing if storage[name] not in loaded}


def describe(net, name: str) -> str:
    from .da3_build import output_names
    total = sum(p.numel() for p in net.parameters()) / 1e6
    width = net.backbone.pretrained.embed_dim
    return (f'Depth Anything 3 {name}, ViT width {width}, {len(net.backbone.pretrained.blocks)} layers, '
            f"{total:.2f} M parameters, outputs {', '.join(output_names(net))}")
