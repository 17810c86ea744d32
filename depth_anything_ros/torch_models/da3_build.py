"""Depth Anything 3 networks from the official package, for tests, benchmarks and export.

The network is the official one: `depth_anything_3`'s own config (`MODEL_REGISTRY`) built by its
own `create_object`, its own backbone and head code. Random-weight builds have the real graph and
cost; their depth means nothing. Tiny variants keep every part of the graph (rotary embedding,
camera token, global attention, DualDPT or DPT + sky head) with fewer layers and channels.

Only monocular use is exported: one image in, the depth head's maps out. The official forward also
fills sky pixels with a percentile of the rest (`DepthAnything3Net._process_mono_sky_estimation`):
data-dependent, so it stays out of the graph and belongs to post-processing. Needs torch and
`depth-anything-3` (installed with --no-deps: requirements/dev-no-deps.txt); the node never imports this.
"""
from __future__ import annotations

import contextlib
import os
import warnings

from ..core.placement import PATCH
from .build import spread_weights

# The Apache-2.0 models the node targets; the other registry entries (Large, Giant: CC BY-NC,
# Nested: two networks) build the same way but are not offered as test architectures.
ARCHITECTURES = ('da3-small', 'da3-base', 'da3mono-large', 'da3metric-large')
INPUT_NAME = 'pixel_values'
# What each head gives for monocular depth: DualDPT (main series) depth + confidence; its ray
# outputs and the camera decoder serve pose estimation and are left out of the graph. DPT
# (Mono, Metric) depth + sky. Depth grows with distance (exp activation); depth_conf is exp + 1;
# sky is a ReLU output, not a probability (the official code thresholds it at 0.3 and 0.5).
OUTPUTS_WITH_CONFIDENCE = ('depth', 'depth_conf')
OUTPUTS_WITH_SKY = ('depth', 'sky')
# Same graph, far fewer channels and layers: the main series keeps alt_start before its last
# out_layers, so the camera token, the rotary embedding and global attention are all in the graph.
# 2 heads of 32: the 2D rotary embedding needs head widths divisible by 4.
TINY_BACKBONE = dict(embed_dim=64, num_heads=2)
TINY_NET = {
    'main': dict(depth=6, out_layers=[2, 3, 4, 5], alt_start=2, qknorm_start=2, rope_start=2),
    'mono': dict(depth=4, out_layers=[0, 1, 2, 3], alt_start=-1, qknorm_start=-1, rope_start=-1),
}
TINY_HEAD = dict(features=16, out_channels=[8, 16, 32, 64])


def official_modules():
    """The official package's config loader, registry and model modules (quiet: its INFO log
    prints a line per backbone built)."""
    os.environ.setdefault('DA3_LOG_LEVEL', 'WARN')
    from depth_anything_3 import cfg, registry
    from depth_anything_3.model.dinov2 import vision_transformer
    return cfg, registry, vision_transformer


def load_official_config(name: str, tiny: bool = False):
    """The package's config of a registry model (OmegaConf); tiny: fewer layers and channels."""
    cfg, registry, _ = official_modules()
    if name not in registry.MODEL_REGISTRY:
        raise ValueError(f"'{name}' is not a Depth Anything 3 model (known: {', '.join(registry.MODEL_REGISTRY)})")
    config = cfg.load_config(registry.MODEL_REGISTRY[name])
    if tiny:
        _make_tiny(config)
    return config


def _series(config) -> str:
    return 'main' if config.net.cat_token else 'mono'


def _make_tiny(config) -> None:
    width = TINY_BACKBONE['embed_dim']
    config.net.name = 'vits'   # the tiny ViT stands in for ViT-S (build_network)
    config.net.update({k: v for k, v in TINY_NET[_series(config)].items() if k != 'depth'})
    config.head.dim_in = 2 * width if config.net.cat_token else width
    config.head.update(TINY_HEAD)
    if 'cam_dec' in config:
        config.cam_dec.dim_in = 2 * width
        config.cam_enc.dim_out = width


def build_network(config, tiny: bool = False):
    """The official DepthAnything3Net of a config, in eval mode. Tiny: DinoV2 builds the official
    DinoVisionTransformer with its own arguments, at TINY_BACKBONE's width and TINY_NET's depth
    (DinoV2 itself takes those from the ViT name alone)."""
    from unittest import mock
    cfg, _, vision_transformer = official_modules()
    from depth_anything_3.model.dinov2 import dinov2
    depth = TINY_NET[_series(config)]['depth']

    def tiny_vit(patch_size=16, num_register_tokens=0, **kwargs):  # vit_small's signature
        return vision_transformer.DinoVisionTransformer(
            patch_size=patch_size, depth=depth, mlp_ratio=4, num_register_tokens=num_register_tokens,
            **TINY_BACKBONE, **kwargs)

    with mock.patch.object(dinov2, 'vit_small', tiny_vit) if tiny else contextlib.nullcontext():
        return cfg.create_object(config).eval()


def build_da3_model(name: str = 'da3-small', tiny: bool = False, seed: int = 0):
    """An official DepthAnything3Net in eval mode with seeded random weights that spread the depth."""
    import torch
    torch.manual_seed(seed)
    net = build_network(load_official_config(name, tiny), tiny)
    spread_weights(net, seed)
    return net


def output_names(net) -> tuple:
    return OUTPUTS_WITH_SKY if getattr(net.head, 'use_sky_head', False) else OUTPUTS_WITH_CONFIDENCE


def monocular(net):
    """The network as one-image-in, maps-out module (what is exported)."""
    import torch

    class MonocularDepthAnything3(torch.nn.Module):
        """The official forward for one view (DepthAnything3Net.forward with no camera input), up to
        the depth head: pixel_values (1, 3, H, W) -> each of output_names (1, H, W)."""

        def __init__(self):
            super().__init__()
            self.net = net
            self.names = output_names(net)

        def forward(self, pixel_values):
            height, width = pixel_values.shape[-2:]
            feats, _ = self.net.backbone(pixel_values[:, None], cam_token=None, export_feat_layers=[])
            maps = self.net._process_depth_head(feats, height, width)
            return tuple(maps[name][:, 0] for name in self.names)

    return MonocularDepthAnything3().eval()


@contextlib.contextmanager
def traceable_rotary():
    """The rotary embedding's position grid without aten::cartesian_prod (no ONNX symbolic):
    the same (y, x) pairs in the same order from meshgrid. Its `int(positions.max())` becomes a
    constant of the trace, right for the fixed size the model is exported at."""
    from unittest import mock

    import torch
    from depth_anything_3.model.dinov2.layers import rope

    def positions(self, batch_size, height, width, device):
        y, x = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device),
                              indexing='ij')
        grid = torch.stack((y.reshape(-1), x.reshape(-1)), dim=-1)
        return grid.view(1, height * width, 2).expand(batch_size, -1, -1).clone()

    with mock.patch.object(rope.PositionGetter, '__call__', positions):
        yield


def export_da3_onnx(net, out_path: str, size_hw: tuple) -> str:
    """Export the monocular network to ONNX at one fixed input size (opset 17, legacy exporter).

    Fixed only: the graph traced at one size gives wrong shapes at run time at another."""
    import torch
    h, w = size_hw
    if h % PATCH or w % PATCH:
        raise ValueError(f'{h}x{w}: both sides must be multiples of {PATCH}')
    model = monocular(net)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + '.tmp'
    # dynamo=False, as for DA-V2: the dynamo exporter wraps every softmax in NaN checks. The trace
    # freezes shapes and Python conditions of the official code: right for this one size.
    with traceable_rotary(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(model, (torch.zeros(1, 3, h, w),), tmp, input_names=[INPUT_NAME],
                          output_names=list(model.names), opset_version=17, dynamo=False)
    os.replace(tmp, out_path)
    return out_path


def torch_outputs(net, pixel_values) -> dict:
    """The exported maps as PyTorch computes them: {name: (1, H, W) float32 array}."""
    import torch
    model = monocular(net)
    with torch.no_grad():
        maps = model(torch.from_numpy(pixel_values))
    return {name: m.numpy() for name, m in zip(model.names, maps)}


def make_da3_test_model(out_path: str, name: str = 'da3-small', size_hw: tuple = (378, 504),
                        tiny: bool = False, seed: int = 0) -> str:
    return export_da3_onnx(build_da3_model(name, tiny, seed), out_path, size_hw)
