"""The S100 hb_compile templates (models/s100/) and `calibration-data`, checked without the toolchain.

The compiled model is modelled here independently of the package's own code: its run-time input is
what the node feeds (the node's preprocessor chosen from the model's inputs), and its in-model steps
are the template's. For NV12 that is YUV -> RGB on the 0-255 pixel scale with the BT.601 video-range
formulas (the convention of OpenCV and of D-Robotics' own NV12 helpers; what the BPU uses is assumed,
not documented in what we could read), rounded to whole pixels, then `(pixel - mean_value) *
scale_value` per channel. The float model gets the node's ImageNet-normalized tensor; both must agree
within one 8-bit level.
"""
import os

import cv2
import numpy as np
import pytest
import yaml

from depth_anything_ros import cli
from depth_anything_ros.engines import Engine, TensorSpec
from depth_anything_ros.core.image_codec import Frame, bgr_to_nv12
from depth_anything_ros.core.estimator import make_preprocessor
from depth_anything_ros.core.preprocess import IMAGENET_STD, RgbPreprocessor
from depth_anything_ros.tools.calibration import pick_evenly

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = {kind: os.path.join(REPO, 'models', 's100', f'depth_anything_{kind}.yaml')
             for kind in ('featuremap', 'nv12')}
SAMPLE = os.path.join(REPO, 'depth_anything_ros', 'samples', 'robot_camera.jpg')
# One 8-bit pixel level after ImageNet normalization, on the channel where it is largest.
LEVEL = 1 / (255 * min(IMAGENET_STD))
INT16 = {'model_config': {'all_node_type': 'int16', 'model_output_type': 'int16'}}
NO_PADDING = {'input_no_padding': True, 'output_no_padding': True}


def load(path) -> dict:
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


class SpecEngine(Engine):
    """An engine that only describes its inputs: enough for the node's preprocessor choice."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.outputs = []


def model_inputs(kind: str, hw: tuple) -> list:
    """The compiled model's inputs as the BPU runtime reports them."""
    h, w = hw
    if kind == 'featuremap':
        return [TensorSpec('pixel_values', (1, 3, h, w), np.dtype(np.float32), 'NCHW')]
    return [TensorSpec('pixel_values_y', (1, h, w, 1), np.dtype(np.uint8), 'NHWC'),
            TensorSpec('pixel_values_uv', (1, h // 2, w // 2, 2), np.dtype(np.uint8), 'NHWC')]


def runtime_feeds(kind: str, frame: Frame, hw: tuple, resize_mode: str) -> dict:
    """What the node feeds the compiled model for `frame` (default normalization)."""
    return make_preprocessor(SpecEngine(model_inputs(kind, hw)), resize_mode)(frame)[0]


def bt601_video_to_rgb(y: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """NV12 planes -> HxWx3 RGB pixels 0-255 (BT.601 video range, chroma shared by 2x2 pixels)."""
    u = uv[..., 0].repeat(2, 0).repeat(2, 1).astype(np.float64) - 128
    v = uv[..., 1].repeat(2, 0).repeat(2, 1).astype(np.float64) - 128
    luma = 1.164 * (y.astype(np.float64) - 16)
    rgb = np.stack([luma + 1.596 * v, luma - 0.392 * u - 0.813 * v, luma + 2.017 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255)


def in_model_steps(config: dict, feeds: dict) -> np.ndarray:
    """What the float ONNX inside the compiled model receives, from the run-time feeds."""
    params = config['input_parameters']
    if params['input_type_rt'] == 'featuremap':
        assert params['norm_type'] == 'no_preprocess'
        (tensor,) = feeds.values()
        return tensor
    assert params['input_type_rt'] == 'nv12' and params['norm_type'] == 'data_mean_and_scale'
    y = next(a for n, a in feeds.items() if n.endswith('_y'))[0, :, :, 0]
    uv = next(a for n, a in feeds.items() if n.endswith('_uv'))[0]
    mean = np.array([float(v) for v in str(params['mean_value']).split()])
    scale = np.array([float(v) for v in str(params['scale_value']).split()])
    return ((bt601_video_to_rgb(y, uv) - mean) * scale).transpose(2, 0, 1)[None]


def float_model_tensor(frame: Frame, hw: tuple, resize_mode: str) -> np.ndarray:
    """The node's preprocessing for the float model: ImageNet normalization."""
    return RgbPreprocessor(hw, 'NCHW', resize_mode, normalization='imagenet')(frame)[0]


def sample_bgr(hw=(96, 128)) -> np.ndarray:
    """bgr8: the package sample, with a band of saturated and extreme colours (clipping)."""
    bgr = cv2.resize(cv2.imread(SAMPLE), (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    colours = [(0, 0, 0), (255, 255, 255), (0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]
    for i, colour in enumerate(colours):
        bgr[:16, i * 16:(i + 1) * 16] = colour
    return bgr


def nv12_frame(bgr: np.ndarray) -> Frame:
    return Frame('nv12', bgr_to_nv12(bgr), *bgr.shape[:2])


def level_error(template_path: str, frame: Frame, resize_mode: str = 'stretch') -> float:
    """Largest difference, in 8-bit levels, between the template's model input and the float
    model's, for an NV12 camera frame of the canvas size (no resize on either side)."""
    config = load(template_path)
    kind = config['input_parameters']['input_type_rt']
    hw = (frame.height, frame.width)
    got = in_model_steps(config, runtime_feeds(kind, frame, hw, resize_mode))
    want = float_model_tensor(frame, hw, resize_mode)
    assert got.shape == want.shape == (1, 3) + hw
    return float(np.abs(got - want).max() / LEVEL)


# -- the templates' keys ------------------------------------------------------------------------

@pytest.mark.parametrize('kind', sorted(TEMPLATES))
def test_template_states_its_toolchain_and_the_older_int16_form(kind):
    text = open(TEMPLATES[kind], encoding='utf-8').read()
    assert 'hb_compile 3.5' in text
    assert 'optimization: set_all_nodes_int16' in text  # the 3.3 spelling, in a comment
    config = load(TEMPLATES[kind])
    assert 'optimization' not in config['calibration_parameters']


@pytest.mark.parametrize('kind', sorted(TEMPLATES))
def test_common_keys(kind):
    config = load(TEMPLATES[kind])
    model, inputs = config['model_parameters'], config['input_parameters']
    assert model['march'] == 'nash-e'
    assert model['onnx_model'].endswith('_518x686.onnx')
    assert inputs['input_name'] == ''  # hb_compile reads it: `pixel_values` and `image` exports both work
    assert inputs['input_layout_train'] == 'NCHW'
    calibration = config['calibration_parameters']
    assert calibration['cal_data_type'] == 'float32'
    assert calibration['calibration_type'] == 'default'
    assert calibration['quant_config'] == INT16
    compiler = config['compiler_parameters']
    assert compiler['extra_params'] == NO_PADDING
    assert compiler['compile_mode'] == 'latency' and compiler['optimize_level'] == 'O2'


def test_featuremap_template_keys():
    inputs = load(TEMPLATES['featuremap'])['input_parameters']
    assert inputs == {'input_name': '', 'input_type_rt': 'featuremap', 'input_layout_rt': 'NCHW',
                      'input_type_train': 'featuremap', 'input_layout_train': 'NCHW',
                      'norm_type': 'no_preprocess'}


def test_nv12_template_keys():
    inputs = load(TEMPLATES['nv12'])['input_parameters']
    assert (inputs['input_type_rt'], inputs['input_type_train']) == ('nv12', 'rgb')
    assert inputs['norm_type'] == 'data_mean_and_scale'
    assert 'input_layout_rt' not in inputs  # NV12 has one layout; D-Robotics' recipes omit it


# -- by computation: the template's in-model steps give the float model's tensor ------------------

@pytest.mark.parametrize('kind', sorted(TEMPLATES))
def test_template_reproduces_the_float_preprocessing(kind):
    error = level_error(TEMPLATES[kind], nv12_frame(sample_bgr()))
    # featuremap: the node's own tensor; nv12: OpenCV's decode vs the BT.601 formulas, one level at most
    assert (error == 0 if kind == 'featuremap' else error <= 1.01), f'{error:.1f} levels apart'


def test_check_rejects_mean_scale_on_the_0_1_scale(tmp_path):
    """The NV12 template before issue 14 (ImageNet constants for [0, 1] data) must fail the check:
    on 0-255 pixels they feed the network values up to about 1100."""
    config = load(TEMPLATES['nv12'])
    config['input_parameters'].update(mean_value='0.485 0.456 0.406', scale_value='4.3668 4.4643 4.4444')
    old = tmp_path / 'old_nv12.yaml'
    old.write_text(yaml.safe_dump(config))
    assert level_error(str(old), nv12_frame(sample_bgr())) > 1000


def test_nv12_letterbox_padding_reaches_the_model_as_the_float_models_zero():
    """The node pads NV12 with the ImageNet mean colour; after the in-model steps the padding must be
    what the float model's padding is (0), within the rounding of that colour to YUV levels."""
    frame = nv12_frame(sample_bgr((48, 128)))  # wider than the canvas: bands above and below
    hw = (96, 128)
    got = in_model_steps(load(TEMPLATES['nv12']), runtime_feeds('nv12', frame, hw, 'letterbox'))
    want = float_model_tensor(frame, hw, 'letterbox')
    assert np.all(want[:, :, :8] == 0)
    assert np.abs(got[:, :, :8]).max() <= 2 * LEVEL


# -- calibration-data writes the runtime tensor after the in-model steps -----------------------

@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), sample_bgr())
    cv2.imwrite(str(folder / 'b.png'), sample_bgr((77, 101)))  # odd sizes, another aspect ratio
    return folder


@pytest.mark.parametrize('kind', sorted(TEMPLATES))
def test_calibration_data_is_what_the_compiled_model_feeds_its_onnx(capsys, tmp_path, image_dir, kind):
    hw = (56, 84)
    out = tmp_path / 'calibration'
    argv = ['calibration-data', '--for', TEMPLATES[kind], '--model-size', f'{hw[0]}x{hw[1]}',
            '--resize-mode', 'letterbox', '--out', str(out), str(image_dir)]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(out)) == ['00000_a.npy', '00001_b.npy']
    config = load(TEMPLATES[kind])
    for index, name in enumerate(('a', 'b')):
        bgr = cv2.imread(str(image_dir / f'{name}.png'))
        frame = Frame('bgr8', bgr, *bgr.shape[:2])
        expected = in_model_steps(config, runtime_feeds(kind, frame, hw, 'letterbox'))
        sample = np.load(out / f'{index:05d}_{name}.npy')
        assert sample.dtype == np.float32 and sample.shape == (1, 3) + hw
        if kind == 'featuremap':
            np.testing.assert_array_equal(sample, expected)
        else:  # the tool decodes with OpenCV; this test with the formulas
            assert np.abs(sample - expected).max() <= 1.01 * LEVEL
    assert f'for {kind} template' in capsys.readouterr().out


def test_calibration_for_a_template_by_kind_uses_the_installed_one(tmp_path, image_dir):
    by_kind, by_path = tmp_path / 'kind', tmp_path / 'path'
    common = ['--model-size', '56x84', str(image_dir / 'a.png')]
    assert cli.main(['calibration-data', '--for', 'nv12', '--out', str(by_kind)] + common) == 0
    assert cli.main(['calibration-data', '--for', TEMPLATES['nv12'], '--out', str(by_path)] + common) == 0
    np.testing.assert_array_equal(np.load(by_kind / '00000_a.npy'), np.load(by_path / '00000_a.npy'))


def test_calibration_reads_the_templates_own_mean_and_scale(tmp_path, image_dir):
    config = load(TEMPLATES['nv12'])
    config['input_parameters'].update(mean_value='0 0 0', scale_value='1')
    custom = tmp_path / 'custom.yaml'
    custom.write_text(yaml.safe_dump(config))
    out = tmp_path / 'c'
    argv = ['calibration-data', '--for', str(custom), '--model-size', '56x84', '--out', str(out),
            str(image_dir / 'a.png')]
    assert cli.main(argv) == 0
    sample = np.load(out / '00000_a.npy')
    assert sample.min() >= 0 and sample.max() <= 255 and sample.max() > 200  # plain 0-255 pixels


def test_calibration_caps_the_count_picking_evenly(capsys, tmp_path):
    folder = tmp_path / 'many'
    folder.mkdir()
    for i in range(7):
        cv2.imwrite(str(folder / f'{i}.png'), np.full((8, 8, 3), 20 * i, np.uint8))
    out = tmp_path / 'c'
    argv = ['calibration-data', '--max-samples', '3', '--model-size', '8x8', '--out', str(out), str(folder)]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(out)) == ['00000_0.npy', '00001_3.npy', '00002_6.npy']
    assert 'wrote 3 samples (of 7 images)' in capsys.readouterr().out
    assert pick_evenly(list(range(250)), 100)[::33] == [0, 83, 166, 249]
    assert pick_evenly([1, 2], 100) == [1, 2]


@pytest.mark.parametrize('argv, message', [
    (['--for', 'nv12', '--normalization', 'none'], 'mean_value/scale_value'),
    (['--for', 'nv12', '--model-size', '517x686'], 'multiples of 2'),
    (['--max-samples', '0'], '--max-samples'),
    (['--for', 'missing.yaml'], "cannot read template 'missing.yaml'"),
])
def test_calibration_rejects_bad_options(capsys, tmp_path, image_dir, argv, message):
    assert cli.main(['calibration-data', '--out', str(tmp_path / 'c')] + argv + [str(image_dir)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('inputs, message', [
    ({'input_type_rt': 'featuremap', 'norm_type': 'data_mean_and_scale'}, "norm_type 'no_preprocess'"),
    ({'input_type_rt': 'rgb', 'norm_type': 'no_preprocess'}, "input_type_rt 'rgb'"),
    ({'input_type_rt': 'nv12', 'norm_type': 'data_mean_and_scale', 'mean_value': '1 2',
      'scale_value': '1'}, 'mean_value'),
])
def test_calibration_rejects_templates_it_cannot_serve(capsys, tmp_path, image_dir, inputs, message):
    template = tmp_path / 't.yaml'
    template.write_text(yaml.safe_dump({'input_parameters': inputs}))
    argv = ['calibration-data', '--for', str(template), '--out', str(tmp_path / 'c'), str(image_dir)]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_calibration_with_depth_any_hbms_recipe(tmp_path, image_dir):
    """--recipe d_robotics_sample: the D-Robotics sample's input (stretch, nearest, per-pixel
    z-score), what the node feeds a model it knows as depth_any.hbm."""
    out = tmp_path / 'dr'
    argv = ['calibration-data', '--recipe', 'd_robotics_sample', '--model-size', '56x84', '--out', str(out),
            str(image_dir / 'a.png')]
    assert cli.main(argv) == 0
    bgr = cv2.imread(str(image_dir / 'a.png'))
    expected = RgbPreprocessor((56, 84), 'NCHW', 'stretch', normalization='pixel_zscore',
                               interpolation='nearest')(Frame('bgr8', bgr, *bgr.shape[:2]))[0]
    np.testing.assert_array_equal(np.load(out / '00000_a.npy'), expected)
    official = RgbPreprocessor((56, 84), 'NCHW', 'stretch')(Frame('bgr8', bgr, *bgr.shape[:2]))[0]
    assert np.abs(expected - official).max() > 0.5          # the two recipes really differ
    assert cli.main(argv[:1] + ['--recipe', 'mine'] + argv[3:]) == 2
