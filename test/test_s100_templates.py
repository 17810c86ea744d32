"""The S100 hb_compile templates (models/s100/) and `calibration-data`, checked without the toolchain.

The compiled model is modelled here independently of the package's own code: its run-time input is
what the node feeds (the node's preprocessor chosen from the model's inputs), and its in-model steps
are the template's as hb_compile 3.x reads them (horizon_tc_ui 3.5: the normalization follows from
which of mean_value, scale_value and std_value are set; values separated by commas or spaces;
input_space_and_range 'regular', the default, decodes NV12 as full range, 'bt601_video' as BT.601
video range). Decoding uses the textbook formulas (BT.601 video range: Y' = 1.164 (Y - 16); full
range, JFIF: R = Y + 1.402 (V - 128), ...), rounded to whole pixels. The float model gets the node's
ImageNet-normalized tensor; both must agree within one 8-bit level.
"""
import dataclasses
import os

import cv2
import numpy as np
import pytest
import yaml

from depth_anything_ros import cli
from depth_anything_ros.engines import Engine, TensorSpec
from depth_anything_ros.core.image_codec import Frame
from depth_anything_ros.core.estimator import make_preprocessor
from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
from depth_anything_ros.core.recipe import IMAGENET_STD, Recipe
from depth_anything_ros.tools.calibration import pick_evenly

from helpers.frames import nv12_frame

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name -> file: DA-V2's and DA3 Mono/Metric's, each for a float (featuremap) and an NV12 input.
TEMPLATES = {name: os.path.join(REPO, 'models', 's100', f'{file}.yaml') for name, file in (
    ('featuremap', 'depth_anything_featuremap'), ('nv12', 'depth_anything_nv12'),
    ('da3_featuremap', 'da3_featuremap'), ('da3_nv12', 'da3_nv12'))}
# The ONNX each is written for: DA-V2 Small at the S100 model's size, DA3Metric at DA3's 4:3 size.
ONNX_SIZE = {'featuremap': '518x686', 'nv12': '518x686', 'da3_featuremap': '378x504', 'da3_nv12': '378x504'}
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


def input_kind(name: str) -> str:
    """'featuremap' or 'nv12': a template's run-time input, from its name in TEMPLATES."""
    return name.rsplit('_', 1)[-1]


def runtime_feeds(kind: str, frame: Frame, hw: tuple, resize_mode: str, nv12_range: str = 'video',
                  recipe: Recipe = Recipe()) -> dict:
    """What the node feeds the compiled model for `frame` (default: the official recipe)."""
    engine = SpecEngine(model_inputs(kind, hw))
    recipe = dataclasses.replace(recipe, resize_mode=resize_mode)
    return make_preprocessor(engine, recipe, nv12_range=nv12_range)(frame)[0]


def _chroma(uv: np.ndarray) -> tuple:
    return tuple(uv[..., i].repeat(2, 0).repeat(2, 1).astype(np.float64) - 128 for i in (0, 1))


def bt601_video_to_rgb(y: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """NV12 planes -> HxWx3 RGB pixels 0-255 (BT.601 video range, chroma shared by 2x2 pixels)."""
    u, v = _chroma(uv)
    luma = 1.164 * (y.astype(np.float64) - 16)
    rgb = np.stack([luma + 1.596 * v, luma - 0.392 * u - 0.813 * v, luma + 2.017 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255)


def full_range_to_rgb(y: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """NV12 planes -> HxWx3 RGB pixels 0-255 (JFIF full range, chroma shared by 2x2 pixels)."""
    u, v = _chroma(uv)
    luma = y.astype(np.float64)
    rgb = np.stack([luma + 1.402 * v, luma - 0.344136 * u - 0.714136 * v, luma + 1.772 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255)


DECODE = {'bt601_video': bt601_video_to_rgb, 'regular': full_range_to_rgb}


def toolchain_values(params: dict, key: str):
    """A per-channel key as hb_compile 3.x reads it: commas or spaces, one value for all channels."""
    text = str(params.get(key) or '').replace(',', ' ').replace("'", ' ').replace('"', ' ').split()
    if not text:
        return None
    values = np.array([float(v) for v in text])
    return values.repeat(3) if values.size == 1 else values


def in_model_steps(config: dict, feeds: dict) -> np.ndarray:
    """What the float ONNX inside the compiled model receives, from the run-time feeds."""
    params = config['input_parameters']
    mean, scale, std = (toolchain_values(params, k) for k in ('mean_value', 'scale_value', 'std_value'))
    if params['input_type_rt'] == 'featuremap':
        assert mean is None and scale is None and std is None
        (tensor,) = feeds.values()
        return tensor
    assert params['input_type_rt'] == 'nv12' and params['input_layout_train'] == 'NCHW'
    y = next(a for n, a in feeds.items() if n.endswith('_y'))[0, :, :, 0]
    uv = next(a for n, a in feeds.items() if n.endswith('_uv'))[0]
    pixels = DECODE[params.get('input_space_and_range') or 'regular'](y, uv)
    if params['input_type_train'] == 'bgr':
        pixels = pixels[..., ::-1]
    mean = 0 if mean is None else mean
    scale = (1 / std if std is not None else 1) if scale is None else scale
    return ((pixels - mean) * scale).transpose(2, 0, 1)[None]


def float_model_tensor(frame: Frame, hw: tuple, resize_mode: str) -> np.ndarray:
    """The node's preprocessing for the float model: ImageNet normalization."""
    return RgbPreprocessor(rgb_input(hw), Recipe(resize_mode=resize_mode, normalization='imagenet')).tensor(frame)[0]


def banded_sample(hw=(96, 128)) -> np.ndarray:
    """bgr8: the package sample, with a band of saturated and extreme colours (clipping)."""
    bgr = cv2.resize(cv2.imread(SAMPLE), (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    colours = [(0, 0, 0), (255, 255, 255), (0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]
    for i, colour in enumerate(colours):
        bgr[:16, i * 16:(i + 1) * 16] = colour
    return bgr


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

@pytest.mark.parametrize('name', sorted(TEMPLATES))
def test_template_states_its_toolchain_and_the_older_int16_form(name):
    text = open(TEMPLATES[name], encoding='utf-8').read()
    assert 'hb_compile 3.5' in text
    assert 'optimization: set_all_nodes_int16' in text  # the 3.3 spelling, in a comment
    config = load(TEMPLATES[name])
    assert 'optimization' not in config['calibration_parameters']


@pytest.mark.parametrize('name', sorted(TEMPLATES))
def test_common_keys(name):
    config = load(TEMPLATES[name])
    model, inputs = config['model_parameters'], config['input_parameters']
    assert model['march'] == 'nash-e'
    assert model['onnx_model'].endswith(f'_{ONNX_SIZE[name]}.onnx')
    assert inputs['input_name'] == ''  # hb_compile reads it: `pixel_values` and `image` exports both work
    assert inputs['input_layout_train'] == 'NCHW'
    calibration = config['calibration_parameters']
    assert calibration == {'cal_data_dir': f'./calibration_{name}', 'quant_config': INT16}
    compiler = config['compiler_parameters']
    assert compiler['extra_params'] == NO_PADDING
    assert compiler['compile_mode'] == 'latency' and compiler['optimize_level'] == 'O2'


# hb_compile 3.x (horizon_tc_ui 3.5) warns that these do nothing or are derived otherwise
# (models/s100/README.md); calibration_type 'default' is listed as deprecated there as well.
DEPRECATED = {'input_parameters': ('norm_type', 'input_layout_rt'),
              'calibration_parameters': ('cal_data_type', 'preprocess_on', 'calibration_type'),
              'model_parameters': ('layer_out_dump', 'log_level', 'set_node_data_type'),
              'compiler_parameters': ('hbdk3_compatible_mode',)}


def test_no_deprecated_key_in_models_s100():
    folder = os.path.join(REPO, 'models', 's100')
    yamls = sorted(name for name in os.listdir(folder) if name.endswith('.yaml'))
    assert yamls == sorted(os.path.basename(p) for p in TEMPLATES.values())
    for name in yamls:
        config = load(os.path.join(folder, name))
        for section, keys in DEPRECATED.items():
            assert not set(keys) & set(config.get(section) or {}), (name, section)


@pytest.mark.parametrize('name', ['featuremap', 'da3_featuremap'])
def test_featuremap_template_keys(name):
    inputs = load(TEMPLATES[name])['input_parameters']
    assert inputs == {'input_name': '', 'input_type_rt': 'featuremap', 'input_type_train': 'featuremap',
                      'input_layout_train': 'NCHW'}


@pytest.mark.parametrize('name', ['nv12', 'da3_nv12'])
def test_nv12_template_keys(name):
    inputs = load(TEMPLATES[name])['input_parameters']
    assert (inputs['input_type_rt'], inputs['input_type_train']) == ('nv12', 'rgb')
    assert inputs['input_space_and_range'] == 'bt601_video'   # the node's NV12: OpenCV's video range
    assert set(inputs) == {'input_name', 'input_type_rt', 'input_type_train', 'input_layout_train',
                           'input_space_and_range', 'mean_value', 'scale_value'}


# -- by computation: the template's in-model steps give the float model's tensor ------------------

@pytest.mark.parametrize('name', sorted(TEMPLATES))
def test_template_reproduces_the_float_preprocessing(name):
    error = level_error(TEMPLATES[name], nv12_frame(banded_sample()))
    # featuremap: the node's own tensor; nv12: OpenCV's decode vs the BT.601 formulas, one level at most
    assert (error == 0 if input_kind(name) == 'featuremap' else error <= 1.01), f'{error:.1f} levels apart'


def test_check_rejects_mean_scale_on_the_0_1_scale(tmp_path):
    """The NV12 template before issue 14 (ImageNet constants for [0, 1] data) must fail the check:
    on 0-255 pixels they feed the network values up to about 1100."""
    config = load(TEMPLATES['nv12'])
    config['input_parameters'].update(mean_value='0.485 0.456 0.406', scale_value='4.3668 4.4643 4.4444')
    old = tmp_path / 'old_nv12.yaml'
    old.write_text(yaml.safe_dump(config))
    assert level_error(str(old), nv12_frame(banded_sample())) > 1000


def test_nv12_letterbox_padding_reaches_the_model_as_the_float_models_zero():
    """The node pads NV12 with the ImageNet mean colour; after the in-model steps the padding must be
    what the float model's padding is (0), within the rounding of that colour to YUV levels."""
    frame = nv12_frame(banded_sample((48, 128)))  # wider than the canvas: bands above and below
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
    cv2.imwrite(str(folder / 'a.png'), banded_sample())
    cv2.imwrite(str(folder / 'b.png'), banded_sample((77, 101)))  # odd sizes, another aspect ratio
    return folder


@pytest.mark.parametrize('template', sorted(TEMPLATES))
def test_calibration_data_is_what_the_compiled_model_feeds_its_onnx(capsys, tmp_path, image_dir, template):
    """The samples of each template, DA3's with the recipe the node gives the compiled model of its
    onnx_model's name ('da3': its two-step resize), DA-V2's with the official one."""
    from depth_anything_ros.core.model_catalog import load_catalog
    hw = (56, 84)
    out = tmp_path / 'calibration'
    argv = ['calibration-data', '--for', TEMPLATES[template], '--model-size', f'{hw[0]}x{hw[1]}',
            '--resize-mode', 'letterbox', '--out', str(out), str(image_dir)]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(out)) == ['00000_a.npy', '00001_b.npy']
    config = load(TEMPLATES[template])
    recipe = load_catalog().recipes['da3' if template.startswith('da3') else 'official']
    kind = input_kind(template)
    for index, name in enumerate(('a', 'b')):
        bgr = cv2.imread(str(image_dir / f'{name}.png'))
        frame = Frame('bgr8', bgr, *bgr.shape[:2])
        expected = in_model_steps(config, runtime_feeds(kind, frame, hw, 'letterbox', recipe=recipe))
        sample = np.load(out / f'{index:05d}_{name}.npy')
        assert sample.dtype == np.float32 and sample.shape == (1, 3) + hw
        if kind == 'featuremap':
            np.testing.assert_array_equal(sample, expected)
        else:  # the tool decodes with OpenCV; this test with the formulas
            assert np.abs(sample - expected).max() <= 1.01 * LEVEL
    printed = capsys.readouterr().out
    assert f'for {kind} template' in printed
    assert ("recipe 'da3" in printed) == (template == 'da3_featuremap')   # NV12: the planes, not the recipe's resize


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


def write_template(tmp_path, name: str, **changes) -> str:
    """The NV12 template with input_parameters changed (None deletes a key)."""
    config = load(TEMPLATES['nv12'])
    for key, value in changes.items():
        config['input_parameters'].pop(key, None) if value is None else config['input_parameters'].update({key: value})
    path = tmp_path / f'{name}.yaml'
    path.write_text(yaml.safe_dump(config))
    return str(path)


def calibrate(tmp_path, template: str, image, *options) -> np.ndarray:
    out = tmp_path / f'out_{os.path.basename(template)}_{len(options)}'
    argv = ['calibration-data', '--for', template, '--model-size', '56x84', '--out', str(out), *options, str(image)]
    assert cli.main(argv) == 0
    (name,) = os.listdir(out)
    return np.load(out / name)


# Modern templates: no norm_type; both separators; std_value instead of scale_value (x / std).
@pytest.mark.parametrize('changes', [
    {'mean_value': '123.675,116.28,103.53', 'scale_value': '0.01712475,0.017507,0.01742919'},
    {'mean_value': "'123.675, 116.28, 103.53'", 'scale_value': '0.01712475 0.017507 0.01742919'},
    {'scale_value': None, 'std_value': '58.395,57.12,57.375'},
    {'scale_value': None, 'std_value': '58.395 57.12 57.375', 'norm_type': 'data_mean_and_std'},
    {'norm_type': 'data_mean_and_scale'},   # the old spelling, saying what the values say
])
def test_calibration_reads_templates_as_hb_compile_does(tmp_path, changes):
    image = tmp_path / 'model_size.png'   # no resize: the NV12 and float paths resample differently
    cv2.imwrite(str(image), banded_sample((56, 84)))
    shipped = calibrate(tmp_path, TEMPLATES['nv12'], image)
    variant = calibrate(tmp_path, write_template(tmp_path, 'variant', **changes), image)
    np.testing.assert_allclose(variant, shipped, rtol=2e-4, atol=1e-4)  # 1/std vs the rounded scale
    bgr = cv2.imread(str(image))
    feeds = runtime_feeds('nv12', Frame('bgr8', bgr, *bgr.shape[:2]), (56, 84), 'stretch')
    for template in (TEMPLATES['nv12'], str(tmp_path / 'variant.yaml')):
        assert np.abs(variant - in_model_steps(load(template), feeds)).max() <= 1.01 * LEVEL


def test_mean_only_and_scale_only_templates(tmp_path, image_dir):
    image = image_dir / 'a.png'
    bgr = cv2.imread(str(image))
    feeds = runtime_feeds('nv12', Frame('bgr8', bgr, *bgr.shape[:2]), (56, 84), 'stretch')
    pixels = in_model_steps({'input_parameters': {'input_type_rt': 'nv12', 'input_type_train': 'rgb',
                                                  'input_layout_train': 'NCHW',
                                                  'input_space_and_range': 'bt601_video'}}, feeds)
    mean_only = calibrate(tmp_path, write_template(tmp_path, 'm', scale_value=None, mean_value='128'), image)
    assert np.abs(mean_only - (pixels - 128)).max() <= 1.01
    scale_only = calibrate(tmp_path, write_template(tmp_path, 's', mean_value=None, scale_value='0.5'), image)
    assert np.abs(scale_only - pixels * 0.5).max() <= 0.51


def test_bgr_training_order_and_nhwc_layout(tmp_path, image_dir):
    image = image_dir / 'a.png'
    rgb_nchw = calibrate(tmp_path, write_template(tmp_path, 'rgb', mean_value='0', scale_value='1'), image)
    bgr_nhwc = calibrate(tmp_path, write_template(tmp_path, 'bgr', mean_value='0', scale_value='1',
                                                  input_type_train='bgr', input_layout_train='NHWC'), image)
    assert bgr_nhwc.shape == (1, 56, 84, 3)
    np.testing.assert_array_equal(bgr_nhwc[0].transpose(2, 0, 1)[::-1], rgb_nchw[0])


def test_the_two_nv12_ranges_decode_differently_each_as_its_formula(tmp_path, image_dir):
    """input_space_and_range decides how the BPU reads the same planes: 'regular' (full range) on the
    node's video-range planes lifts black to 16 and dims white to 235; each sample is its range's
    textbook decode of the node's planes."""
    from depth_anything_ros.tools.calibration import load_template, nv12_in_model
    video, full = TEMPLATES['nv12'], write_template(tmp_path, 'full', input_space_and_range='regular')
    frame = Frame('bgr8', banded_sample(), 96, 128)   # has black and white patches
    feeds = runtime_feeds('nv12', frame, (96, 128), 'stretch')
    y, uv = feeds['pixel_values_y'], feeds['pixel_values_uv']
    samples = {path: nv12_in_model({'y': y, 'uv': uv}, load_template(path)) for path in (video, full)}
    for path, sample in samples.items():
        want = in_model_steps(load(path), feeds)
        assert np.abs(sample - want).max() <= 1.01 * LEVEL, path
    gap = np.abs(samples[video] - samples[full]) / LEVEL
    assert gap.max() >= 15 and gap.max() <= 21
    black = samples[full][0, :, :16, :16]   # on the 0-255 scale: (16 - mean) * scale
    assert np.allclose(black * 255 * np.array(IMAGENET_STD)[:, None, None] + np.array([123.675, 116.28, 103.53])[
        :, None, None], 16, atol=0.6)


def test_full_range_nodes_calibrate_a_regular_template(tmp_path, image_dir):
    """--nv12-range full (a full-range camera): the node's planes are full range, and a template with
    input_space_and_range 'regular' decodes them back: the ImageNet tensor within a level or two."""
    image = tmp_path / 'model_size.png'
    cv2.imwrite(str(image), banded_sample((56, 84)))
    template = write_template(tmp_path, 'regular', input_space_and_range='regular')
    sample = calibrate(tmp_path, template, image, '--nv12-range', 'full')
    bgr = cv2.imread(str(image))
    frame = Frame('bgr8', bgr, *bgr.shape[:2])
    feeds = runtime_feeds('nv12', frame, (56, 84), 'stretch', nv12_range='full')
    assert np.abs(sample - in_model_steps(load(template), feeds)).max() <= 1.01 * LEVEL
    video = np.abs(sample - calibrate(tmp_path, TEMPLATES['nv12'], image))  # through video range
    assert video.max() > 0 and np.median(video) <= LEVEL   # chroma is averaged differently at edges


@pytest.mark.parametrize('changes, options, message', [
    ({'input_space_and_range': None}, [], "input_space_and_range 'regular' by default"),   # today's bug
    ({'input_space_and_range': 'regular'}, [], "set input_space_and_range: 'bt601_video'"),
    ({}, ['--nv12-range', 'full'], "set input_space_and_range: 'regular'"),
])
def test_calibration_refuses_an_nv12_range_the_node_does_not_send(capsys, tmp_path, image_dir, changes, options,
                                                                  message):
    template = write_template(tmp_path, 't', **changes)
    argv = ['calibration-data', '--for', template, '--out', str(tmp_path / 'c'), *options, str(image_dir)]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('inputs, message', [
    ({'input_type_rt': 'featuremap', 'input_type_train': 'featuremap', 'norm_type': 'data_mean_and_scale'},
     "norm_type 'data_mean_and_scale' disagrees"),
    ({'input_type_rt': 'featuremap', 'input_type_train': 'featuremap', 'mean_value': '1'}, 'remove mean'),
    ({'input_type_rt': 'featuremap', 'input_type_train': 'rgb'}, "input_type_train 'rgb'"),
    ({'input_type_rt': 'rgb', 'input_type_train': 'rgb'}, "input_type_rt 'rgb'"),
    ({'input_type_rt': 'nv12;nv12'}, 'input_type_rt'),
    ({'norm_type': 'no_preprocess'}, "norm_type 'no_preprocess' disagrees"),
    ({'norm_type': 'data_mean'}, 'norm_type'),
    ({'std_value': '58 57 57'}, 'scale_value and std_value'),
    ({'mean_value': '1 2'}, 'mean_value'),
    ({'mean_value': 'a b c'}, 'mean_value'),
    ({'scale_value': '0'}, 'scale_value'),
    ({'input_space_and_range': 'bt709'}, 'input_space_and_range'),
    ({'input_type_train': 'yuv444'}, 'input_type_train'),
    ({'input_layout_train': None}, 'input_layout_train'),
])
def test_calibration_refuses_templates_it_cannot_read_naming_the_key(capsys, tmp_path, image_dir, inputs, message):
    if inputs.get('input_type_rt', 'nv12') == 'nv12':
        template = write_template(tmp_path, 't', **inputs)
    else:
        template = str(tmp_path / 't.yaml')
        (tmp_path / 't.yaml').write_text(yaml.safe_dump({'input_parameters': inputs}))
    argv = ['calibration-data', '--for', template, '--out', str(tmp_path / 'c'), str(image_dir)]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_calibration_with_the_d_robotics_sample_recipe(tmp_path, image_dir):
    """--recipe d_robotics_sample: the D-Robotics sample's input (stretch, nearest, per-pixel
    z-score), what the node feeds depth_any.hbm with `recipe: d_robotics_sample`."""
    out = tmp_path / 'dr'
    argv = ['calibration-data', '--recipe', 'd_robotics_sample', '--model-size', '56x84', '--out', str(out),
            str(image_dir / 'a.png')]
    assert cli.main(argv) == 0
    bgr = cv2.imread(str(image_dir / 'a.png'))
    sample_recipe = Recipe(resize_mode='stretch', normalization='pixel_zscore', interpolation='nearest')
    expected = RgbPreprocessor(rgb_input((56, 84)), sample_recipe).tensor(Frame('bgr8', bgr, *bgr.shape[:2]))[0]
    np.testing.assert_array_equal(np.load(out / '00000_a.npy'), expected)
    official = RgbPreprocessor(rgb_input((56, 84)), Recipe(resize_mode='stretch')).tensor(
        Frame('bgr8', bgr, *bgr.shape[:2]))[0]
    assert np.abs(expected - official).max() > 0.5          # the two recipes really differ
    assert cli.main(argv[:1] + ['--recipe', 'mine'] + argv[3:]) == 2
