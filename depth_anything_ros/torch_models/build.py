"""Build DA-V2 models with random weights, for tests and benchmarks only.

The architecture is the real one (transformers' DepthAnything with the
V2-Small config, position embeddings interpolated as the official DINOv2
does); the weights are random, so the depth they give means nothing. Needs
torch and transformers, which the node itself never imports.
"""
from __future__ import annotations

import os

# Depth-Anything-V2-Small-hf, from models/README.md.
SMALL = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, neck_hidden_sizes=[48, 96, 192, 384],
             fusion_hidden_size=64, head_hidden_size=32)
# Same graph, far fewer channels and layers: seconds to build, milliseconds to run.
TINY = dict(hidden_size=48, num_hidden_layers=4, num_attention_heads=2, neck_hidden_sizes=[8, 16, 32, 48],
            fusion_hidden_size=16, head_hidden_size=8)
INPUT_NAME, OUTPUT_NAME = 'pixel_values', 'predicted_depth'
CUBIC_A = -0.75          # PyTorch's bicubic coefficient
POS_EMBED_OFFSET = 0.1   # the official DINOv2 `interpolate_offset`


def build_torch_model(tiny: bool = False, seed: int = 0, metric_max_depth: float | None = None):
    """A DepthAnythingForDepthEstimation in eval mode with seeded random weights."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    size = TINY if tiny else SMALL
    depth_every = size['num_hidden_layers'] // 4
    backbone = Dinov2Config(
        hidden_size=size['hidden_size'], num_hidden_layers=size['num_hidden_layers'],
        num_attention_heads=size['num_attention_heads'], patch_size=14, image_size=518,
        out_indices=[depth_every * i for i in (1, 2, 3, 4)], apply_layernorm=True,
        reshape_hidden_states=False)
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=size['hidden_size'],
        reassemble_factors=[4, 2, 1, 0.5], patch_size=14,
        neck_hidden_sizes=size['neck_hidden_sizes'], fusion_hidden_size=size['fusion_hidden_size'],
        head_hidden_size=size['head_hidden_size'],
        depth_estimation_type='metric' if metric_max_depth else 'relative',
        max_depth=int(metric_max_depth) if metric_max_depth else 1)  # transformers types it int
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).eval()
    spread_weights(model, seed)
    return use_official_pos_embedding(model)


def use_official_pos_embedding(model):
    """Interpolate the position embeddings as the DINOv2 inside DA-V2 does (in place; returns model).

    Official: F.interpolate(grid, scale_factor=((h0 + 0.1) / 37, (w0 + 0.1) / 37), mode='bicubic')
    on the 37x37 grid, h0 = H // 14, w0 = W // 14; the grid as is at the trained square size.
    transformers interpolates to size=(h0, w0) instead, which samples other positions (2-6 % of
    the depth range at non-square sizes). F.interpolate takes only Python floats as scale, which a
    trace freezes, so the same sampling is written as two cubic weight matrices built from the
    input's shape: the exported graph stays right at every size of a dynamic model.
    """
    import functools
    import math
    module = model.backbone.embeddings
    _, positions, dim = module.position_embeddings.shape
    # Read here, not in the trace: there a tensor's shape is a traced value, not a Python int.
    module.interpolate_pos_encoding = functools.partial(
        _official_pos_encoding, module, math.isqrt(positions - 1), dim, module.patch_embeddings.patch_size[0])
    return model


def _official_pos_encoding(module, side: int, dim: int, patch: int, embeddings, height, width):
    import torch
    pos = module.position_embeddings
    height, width = (v if isinstance(v, torch.Tensor) else torch.tensor(v) for v in (height, width))
    h0, w0 = height // patch, width // patch
    # Scale exactly 1 (identity weights) where the official code returns the grid unchanged.
    kept = (h0 == side) & (w0 == side) & (height == width)
    offset = POS_EMBED_OFFSET * (~kept).to(torch.float32)
    grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = _cubic_weights(h0, side, offset) @ grid @ _cubic_weights(w0, side, offset).T
    return torch.cat((pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


def _cubic_weights(n_out, n_in: int, offset):
    """(n_out, n_in) matrix of PyTorch's bicubic resize with scale (n_out + offset) / n_in:
    source = (dst + 0.5) / scale - 0.5, four taps clamped at the borders, A = -0.75."""
    import torch
    a = CUBIC_A
    src = (torch.arange(n_out).to(torch.float32) + 0.5) * (n_in / (n_out.to(torch.float32) + offset)) - 0.5
    base = torch.floor(src)
    t = src - base
    taps = (((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
            ((a + 2) * t - (a + 3)) * t * t + 1,
            ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
            ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a)
    columns = torch.arange(n_in)
    weights = 0
    for k, w in enumerate(taps):
        index = torch.clamp(base.to(torch.int64) + (k - 1), 0, n_in - 1)
        weights = weights + w[:, None] * (index[:, None] == columns[None, :]).to(torch.float32)
    return weights


def spread_weights(model, seed: int):
    """Re-draw weights so that random-weight depth varies across the image.

    With the default init DA-V2's head ReLU often outputs a constant 0 and DA3's depth stays
    within a few percent of 1 (its position embeddings start at zero): either would make a
    parity test pass trivially.
    """
    import torch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('bias'):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
            elif name.endswith(('position_embeddings', 'pos_embed')):  # transformers' DA-V2, DA3
                # As large as the patch embeddings they are added to, as in trained
                # weights: where they are sampled then shows in the depth.
                param.copy_(torch.randn(param.shape, generator=gen))
            elif param.ndim >= 2:
                fan_in = param[0].numel()
                param.copy_(torch.randn(param.shape, generator=gen) / fan_in ** 0.5)


def _traceable_head_forward(self, hidden_states, patch_height, patch_width):
    """transformers' head forward without the int() that freezes H/W in a trace."""
    import torch.nn.functional as F
    depth = self.conv1(hidden_states[self.head_in_index])
    depth = F.interpolate(depth, (patch_height * self.patch_size, patch_width * self.patch_size),
                          mode='bilinear', align_corners=True)
    depth = self.conv3(self.activation1(self.conv2(depth)))
    return (self.activation2(depth) * self.max_depth).squeeze(dim=1)


def export_onnx(model, out_path: str, size_hw: tuple | None) -> str:
    """Export to ONNX (opset 17, legacy exporter); size_hw None: dynamic H/W."""
    import torch
    from unittest import mock
    from transformers.models.depth_anything import modeling_depth_anything as mda
    h, w = size_hw or (518, 518)
    use_official_pos_embedding(model)   # whoever built the model, the graph is the official one
    dummy = torch.zeros(1, 3, h, w)
    dynamic = None if size_hw else {INPUT_NAME: {2: 'height', 3: 'width'},
                                     OUTPUT_NAME: {1: 'height', 2: 'width'}}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + '.tmp'
    # dynamo=False: the dynamo exporter wraps every softmax in NaN checks (~46 % slower in ORT).
    with mock.patch.object(mda.DepthAnythingDepthEstimationHead, 'forward', _traceable_head_forward):
        torch.onnx.export(model, (dummy,), tmp, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
    os.replace(tmp, out_path)
    return out_path


def make_test_model(out_path: str, size_hw: tuple | None = (518, 686), tiny: bool = False,
                    seed: int = 0, metric_max_depth: float | None = None) -> str:
    model = build_torch_model(tiny=tiny, seed=seed, metric_max_depth=metric_max_depth)
    return export_onnx(model, out_path, size_hw)
