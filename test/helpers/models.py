"""The tiny test models: DA-V2's and DA3's real architectures with random weights, built with PyTorch
(the main job) or handed over ready-made (DEPTH_TEST_MODELS: the board job, whose Python has no
PyTorch). conftest's fixtures name them; tests that use one are in the slow tier (conftest)."""
import functools
import hashlib
import os

import pytest

from .data import REPO


# The builders: a change to either makes new models (scripts/test-board.sh hashes the same files).
BUILDERS = ('build.py', 'da3_build.py')


def kept_model_dir(kept: str) -> str:
    """DEPTH_TEST_MODELS' subfolder for this version of the builders: a changed builder never reuses
    old models."""
    digest = hashlib.sha256()
    for name in BUILDERS:
        with open(os.path.join(REPO, 'depth_anything_ros', 'torch_models', name), 'rb') as f:
            digest.update(f.read())
    folder = os.path.join(kept, digest.hexdigest()[:12])
    os.makedirs(folder, exist_ok=True)
    return folder


def cached_model(model_dir: str, name: str, build) -> str:
    """model_dir/name, made by build(path) unless already there. Building needs PyTorch or onnx,
    which the board job's Python lacks: it gets the files the main job built (DEPTH_TEST_MODELS)."""
    path = os.path.join(model_dir, name)
    if not os.path.exists(path):
        try:
            build(path + '.part')
        except ImportError as exc:
            pytest.fail(f'test model {path} is missing and cannot be built here ({exc}): build it in an '
                        'environment with PyTorch and onnx, with DEPTH_TEST_MODELS set to the same folder')
        os.replace(path + '.part', path)
    return path


def tiny_model(model_dir: str, name: str, size_hw, metric_max_depth=None, seed=0) -> str:
    """A tiny DA-V2 ONNX model (fixed `size_hw`, or dynamic H/W for None), built once per folder."""
    def build(path):
        from depth_anything_ros.torch_models.build import make_test_model
        make_test_model(path, size_hw=size_hw, tiny=True, seed=seed, metric_max_depth=metric_max_depth)
    return cached_model(model_dir, name, build)


def da3_model(model_dir: str, architecture: str, size_hw: tuple, seed: int) -> str:
    """A tiny DA3 ONNX of `architecture` (da3_build.ARCHITECTURES) at `size_hw`, built once per folder,
    named as models.yaml knows it (da3metric-large_378x504.onnx) in a folder of its seed."""
    folder = os.path.join(model_dir, f'da3_seed{seed}')
    os.makedirs(folder, exist_ok=True)

    def build(path):
        from depth_anything_ros.torch_models.da3_build import make_da3_test_model
        make_da3_test_model(path, architecture, size_hw, tiny=True, seed=seed)
    return cached_model(folder, f'{architecture}_{size_hw[0]}x{size_hw[1]}.onnx', build)


def official_dinov2_pos_encoding(module, _embeddings, height, width):
    """The position-embedding interpolation of the DINOv2 code DA-V2 ships, re-written here
    independently of the package: bicubic with scale_factor (h0 + 0.1) / 37, antialias off,
    the grid unchanged at the trained square size."""
    import torch
    pos = module.position_embeddings
    side, dim = 37, pos.shape[2]
    h0, w0 = height // 14, width // 14
    if h0 == side and w0 == side and height == width:
        return pos
    grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, scale_factor=((h0 + 0.1) / side, (w0 + 0.1) / side),
                                           mode='bicubic', antialias=False)
    assert grid.shape[2:] == (h0, w0)
    return torch.cat((pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


def tiny_model_with(pos_encoding):
    """The tiny test network (seed 0, the weights of the tiny ONNX models) with `pos_encoding`
    as its position-embedding interpolation."""
    from depth_anything_ros.torch_models.build import build_torch_model
    model = build_torch_model(tiny=True, seed=0)
    module = model.backbone.embeddings
    module.interpolate_pos_encoding = functools.partial(pos_encoding, module)
    return model
