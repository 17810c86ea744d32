"""Depth Anything 3 networks from the official package: random-weight builds, fixed-size ONNX export,
checkpoint loading (torch_models/da3_build.py, da3_export.py; `make-test-model` and `export`).

What this proves (random weights; no real checkpoint can be downloaded here):
- the tiny main-series (rotary, camera token, global attention, DualDPT) and Mono/Metric (DPT + sky)
  networks export through `make-test-model` to ONNX named pixel_values -> depth + depth_conf / sky,
  and ONNX Runtime matches PyTorch within 1e-5 of each output's peak (measured 1e-6 to 4e-6);
- the exported graph is the official forward up to the data-dependent sky fill: PyTorch's maps of
  the graph == DepthAnything3Net.forward's (depth at non-sky pixels, depth_conf, sky);
- the rotary patch gives the official positions (meshgrid == cartesian_prod, same order);
- a full DA3-Small in the Hugging Face layout (`model.` keys, as DepthAnything3.from_pretrained loads)
  exports through `export --model-size` and matches PyTorch; a training-layout .pth (renamed by the
  package's own converters) loads into the same network; Mono/Metric layouts map the same way;
- bad inputs exit 2 with a message that says what to do.
"""
import json
import os
import re

import numpy as np
import pytest

from depth_anything_ros import cli

pytestmark = [pytest.mark.slow, pytest.mark.dev_tools]

BOUND = 1e-5            # |ONNX - PyTorch| <= BOUND * max(1, peak)
TINY_HW = (126, 168)    # 9 x 12 patches: non-square, so rows and columns cannot be swapped unseen
SMALL_HW = (112, 154)


def _onnx_outputs(path, pixels):
    from depth_anything_ros.torch_models.export import onnx_outputs
    return onnx_outputs(path, pixels)


def _assert_close(got: dict, ref: dict):
    assert list(got) == list(ref)
    for name, expected in ref.items():
        assert got[name].shape == expected.shape, name
        assert expected.std() > 0.01 * np.abs(expected).mean(), name   # random weights that vary
        error = np.abs(got[name] - expected).max()
        assert error <= BOUND * max(1.0, np.abs(expected).max()), (name, error)


@pytest.mark.parametrize('architecture,outputs', [('da3-small', ['depth', 'depth_conf']),
                                                  ('da3mono-large', ['depth', 'sky'])])
def test_tiny_model_exports_the_official_forward(tmp_path, capsys, architecture, outputs):
    import torch

    from depth_anything_ros.engines import open_engine
    from depth_anything_ros.torch_models.da3_build import build_da3_model, torch_outputs
    from depth_anything_ros.torch_models.export import random_input
    path = str(tmp_path / 'tiny.onnx')
    assert cli.main(['make-test-model', '--architecture', architecture, '--tiny', '--model-size',
                     f'{TINY_HW[0]}x{TINY_HW[1]}', '--seed', '3', '--out', path]) == 0
    assert f'{architecture} tiny architecture' in capsys.readouterr().out
    engine = open_engine(path)
    assert [(t.name, t.shape) for t in engine.inputs] == [('pixel_values', (1, 3) + TINY_HW)]
    assert [(t.name, t.shape) for t in engine.outputs] == [(n, (1,) + TINY_HW) for n in outputs]

    net = build_da3_model(architecture, tiny=True, seed=3)
    pixels = random_input(TINY_HW, seed=5)
    ref = torch_outputs(net, pixels)
    _assert_close(_onnx_outputs(path, pixels), ref)

    with torch.no_grad():
        official = net(torch.from_numpy(pixels)[:, None])     # (B, S=1, 3, H, W), no camera input
    if architecture == 'da3-small':
        for name in outputs:
            np.testing.assert_array_equal(official[name][:, 0].numpy(), ref[name])
    else:
        np.testing.assert_array_equal(official.sky[:, 0].numpy(), ref['sky'])
        ground = ref['sky'] < 0.3          # the official fill changes only score >= 0.3
        assert 0 < ground.mean() < 1
        np.testing.assert_array_equal(official.depth[:, 0].numpy()[ground], ref['depth'][ground])
        assert not np.array_equal(official.depth[:, 0].numpy(), ref['depth'])


def test_rotary_patch_gives_the_official_positions():
    import torch
    from depth_anything_3.model.dinov2.layers.rope import PositionGetter

    from depth_anything_ros.torch_models.da3_build import traceable_rotary
    official = PositionGetter()(2, 9, 12, torch.device('cpu'))
    with traceable_rotary():
        patched = PositionGetter()(2, 9, 12, torch.device('cpu'))
    assert torch.equal(official, patched) and official.shape == (2, 108, 2)


def test_tiny_configs_keep_the_graph():
    """Tiny variants narrow the official configs; every part of the graph stays."""
    from depth_anything_ros.torch_models.da3_build import build_da3_model
    small = build_da3_model('da3-small', tiny=True)
    vit = small.backbone.pretrained
    assert vit.rope is not None and vit.alt_start == 2 and small.backbone.cat_token
    assert type(small.head).__name__ == 'DualDPT' and small.cam_dec is not None
    assert any(b.attn.q_norm.__class__.__name__ == 'LayerNorm' for b in vit.blocks)
    mono = build_da3_model('da3metric-large', tiny=True)
    assert type(mono.head).__name__ == 'DPT' and mono.head.use_sky_head and mono.cam_dec is None
    assert mono.backbone.pretrained.rope is None and not mono.backbone.cat_token
    for net in (small, mono):
        assert sum(p.numel() for p in net.parameters()) < 1e6


# ---------------------------------------------------------------- checkpoints

@pytest.fixture(scope='module')
def small_net():
    """A full-size DA3-Small (the published architecture) with random weights."""
    from depth_anything_ros.torch_models.da3_build import build_da3_model
    return build_da3_model('da3-small', seed=4)


def _training_layout(state: dict, prefix: str = 'module.') -> dict:
    """The names of the original training checkpoints, as the package's convert_general_state_dict
    reverses them (written here from its rename list): net, all_heads, fc_rot, _ray, sky_mask, and a
    camera_token beside camera_token_extra that the converter drops."""
    renames = [('backbone.', 'net.', True), ('head.', 'all_heads.head.', True),
               ('cam_enc.', 'all_heads.camera_cond_head.', True), ('cam_dec.', 'all_heads.camera_head.', True),
               ('.fc_qvec.', '.fc_rot.', False), ('_aux.', '_ray.', False),
               ('sky_output_conv2', 'output_conv2_additional.sky_mask', False),
               ('pretrained.camera_token', 'pretrained.camera_token_extra', False)]
    out = {}
    for key, value in state.items():
        for old, new, at_start in renames:
            if at_start and key.startswith(old):
                key = new + key[len(old):]
            elif not at_start:
                key = key.replace(old, new)
        out[prefix + key] = value
    if 'net.pretrained.camera_token_extra' in {k.removeprefix(prefix) for k in out}:
        out[prefix + 'net.pretrained.camera_token'] = out[prefix + 'net.pretrained.camera_token_extra'] * 0
    return out


def test_hf_directory_exports(small_net, tmp_path, capsys):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_model

    from depth_anything_ros.torch_models.da3_build import torch_outputs
    from depth_anything_ros.torch_models.export import random_input
    hf = tmp_path / 'DA3-SMALL'
    hf.mkdir()
    (hf / 'config.json').write_text(json.dumps({'model_name': 'da3-small'}))
    # DepthAnything3 (the API class, a PyTorchModelHubMixin) holds the network as `model` and is
    # saved by safetensors' save_model, which keeps one name of tied weights.
    wrapper = torch.nn.Module()
    wrapper.model = small_net
    save_model(wrapper, str(hf / 'model.safetensors'))
    with safe_open(str(hf / 'model.safetensors'), 'pt') as f:
        assert len(list(f.keys())) < len(wrapper.state_dict())   # the aux heads' shared LayerNorm
    out = str(tmp_path / 'da3_small.onnx')
    size = f'{SMALL_HW[0]}x{SMALL_HW[1]}'
    assert cli.main(['export', str(hf), '--out', out, '--model-size', size]) == 0
    printed = capsys.readouterr().out
    assert 'Depth Anything 3 da3-small, ViT width 384, 12 layers, 34.30 M parameters' in printed
    assert f'pixel_values 1x3x{size} -> depth, depth_conf' in printed
    assert len(re.findall(r'max abs error', printed)) == 2
    pixels = random_input(SMALL_HW, seed=8)
    _assert_close(_onnx_outputs(out, pixels), torch_outputs(small_net, pixels))


def test_training_layouts_load_into_the_same_network(small_net, tmp_path):
    import torch

    from depth_anything_ros.torch_models.da3_build import build_da3_model
    from depth_anything_ros.torch_models.da3_export import architecture, load_da3_checkpoint, network_state
    path = tmp_path / 'da3_small_train.pth'
    torch.save(_training_layout(small_net.state_dict()), path)
    loaded, name = load_da3_checkpoint(str(path))
    assert name == 'da3-small'
    want, got = small_net.state_dict(), loaded.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)

    # Mono/Metric: metric checkpoints carry no `module.` (convert_metric_state_dict adds it).
    mono = build_da3_model('da3metric-large', tiny=True).state_dict()
    for prefix in ('', 'module.'):
        mapped = network_state(_training_layout(mono, prefix))
        assert mapped.keys() == mono.keys() and all(torch.equal(mapped[k], mono[k]) for k in mono)
    full_width = {**mono, 'backbone.pretrained.cls_token': torch.zeros(1, 1, 1024)}
    assert architecture(full_width) == 'da3mono-large'   # the Metric network is the same


def test_bad_checkpoints_exit_2(small_net, tmp_path, capsys):
    import torch
    from safetensors.torch import save_file
    out = str(tmp_path / 'x.onnx')
    state = {k: v.clone() for k, v in small_net.state_dict().items()}   # untied: save_file refuses shared
    path = str(tmp_path / 'da3.safetensors')
    save_file(state, path)
    assert cli.main(['export', path, '--out', out]) == 2
    assert '--model-size HxW' in capsys.readouterr().err
    assert cli.main(['export', path, '--out', out, '--dynamic']) == 2
    assert 'one fixed input size' in capsys.readouterr().err
    del state['head.scratch.output_conv2.0.weight']
    save_file(state, path)
    assert cli.main(['export', path, '--out', out, '--model-size', '112x154']) == 2
    assert 'lacks 1 weights of da3-small' in capsys.readouterr().err
    nested = str(tmp_path / 'nested.pth')
    torch.save({f'model.da3.{k}': v for k, v in list(state.items())[:5]}, nested)
    assert cli.main(['export', nested, '--out', out, '--model-size', '112x154']) == 2
    assert 'Nested' in capsys.readouterr().err
    assert not os.path.exists(out)
    for option in (['--dynamic'], ['--metric', '20']):
        assert cli.main(['make-test-model', '--architecture', 'da3-small', '--out', out] + option) == 2
        assert 'is for DA-V2' in capsys.readouterr().err
