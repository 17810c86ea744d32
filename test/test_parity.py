"""The package's depth == the official Depth Anything V2 recipe, on the same random weights.

The reference is written here from the official code, independently of the package:
BGR -> RGB, /255 to float64, cv2 float bicubic resize (shorter side 518, multiples of 14;
or stretched to 518x686 for a fixed model), ImageNet mean/std, the network with the official
DINOv2 position-embedding interpolation (conftest.official_dinov2_pos_encoding), output
upsampled with F.interpolate(bilinear, align_corners=True). The package runs the exported tiny
ONNX through the node's FrameProcessor (build_processor) with its default (official) recipe.

Random weights mean nothing as depth, but they amplify input differences: a grey level of
rounding moves this model's depth by percent of its range, so 1e-3 proves the recipe.
Images: crops of the package's sample photo at 4:3, 16:9, portrait 3:4 and KITTI's 3.3:1.
"""
import cv2
import numpy as np
import pytest

torch = pytest.importorskip('torch')

from depth_anything_ros.core.image_codec import decode_image, image_fields   # noqa: E402
from depth_anything_ros.core.params import defaults              # noqa: E402
from depth_anything_ros.core.paths import SAMPLE_IMAGE           # noqa: E402
from depth_anything_ros.core.processor_factory import build_processor    # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.dev_tools]

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
# (width, height): 4:3, 16:9, portrait, KITTI 1242x375 (3.3:1)
SIZES = [(640, 480), (1280, 720), (600, 800), (1242, 375)]
BOUND = 1e-3   # of the reference's depth range, at every pixel


def sample_image(width, height):
    """The sample photo (1280x720) centre-cropped to the aspect ratio, then resized."""
    bgr = cv2.imread(SAMPLE_IMAGE, cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    if w / h > width / height:
        cw, ch = round(h * width / height), h
    else:
        cw, ch = w, round(w * height / width)
    crop = bgr[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
    return np.ascontiguousarray(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))


def official_size(h, w, lower=518, multiple=14):
    """The official Resize(keep_aspect_ratio, ensure_multiple_of=14, 'lower_bound')."""
    scale = max(lower / h, lower / w)

    def constrain(x):
        y = int(np.round(x / multiple) * multiple)
        return y if y >= lower else int(np.ceil(x / multiple) * multiple)
    return constrain(scale * h), constrain(scale * w)


def official_depth(model, bgr, size_hw):
    """infer_image of the official code, in float64 up to the network."""
    h, w = bgr.shape[:2]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
    rgb = cv2.resize(rgb, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_CUBIC)
    x = torch.from_numpy(np.ascontiguousarray(((rgb - MEAN) / STD).transpose(2, 0, 1), np.float32))[None]
    with torch.no_grad():
        depth = model(pixel_values=x).predicted_depth
        depth = torch.nn.functional.interpolate(depth[:, None], (h, w), mode='bilinear', align_corners=True)
    return depth[0, 0].numpy().astype(np.float64)


def relative_error(ours, ref):
    span = ref.max() - ref.min()
    assert span > 0 and ref.std() > 0.1 * abs(ref.mean())   # a map with detail, not a constant
    return float(np.max(np.abs(ours.astype(np.float64) - ref)) / span)


def estimate(processor, bgr):
    """(model-resolution depth, FrameOutputs) of the node's two steps on one frame."""
    frame = decode_image(**image_fields(bgr, 'bgr8'))
    model = processor.infer(frame)
    result = processor.finish(frame, model, ('depth',))
    assert result.depth.shape == bgr.shape[:2] and result.depth.dtype == np.float32
    return model.depth, result


def processor(model_path, **parameters):
    return build_processor(defaults(model_path=model_path, **parameters))


@pytest.fixture(scope='module')
def dynamic_estimator(tiny_dynamic_model):
    return processor(tiny_dynamic_model)


@pytest.fixture(scope='module')
def fixed_estimator(tiny_fixed_model):
    return processor(tiny_fixed_model, resize_mode='stretch')


# Measured (max |ours - official| / range, tiny architecture): dynamic 1.1e-5 to 3.6e-5
# (worst: 1242x375 -> 518x1722), fixed 518x686 stretched 1.1e-5 to 1.4e-5: ONNX Runtime
# vs PyTorch float rounding.
@pytest.mark.parametrize('width,height', SIZES)
def test_dynamic_model_matches_the_official_recipe(dynamic_estimator, official_torch_model, width, height):
    bgr = sample_image(width, height)
    size_hw = official_size(height, width)
    model_depth, result = estimate(dynamic_estimator, bgr)
    assert model_depth.shape == size_hw
    err = relative_error(result.depth, official_depth(official_torch_model, bgr, size_hw))
    print(f'dynamic {width}x{height} -> {size_hw}: max error {err:.2e} of the depth range')
    assert err < BOUND, err


@pytest.mark.parametrize('width,height', SIZES)
def test_fixed_model_stretched_matches_the_official_recipe(fixed_estimator, official_torch_model, width, height):
    bgr = sample_image(width, height)
    model_depth, result = estimate(fixed_estimator, bgr)
    assert model_depth.shape == (518, 686)
    err = relative_error(result.depth, official_depth(official_torch_model, bgr, (518, 686)))
    print(f'fixed 518x686, {width}x{height} stretched: max error {err:.2e} of the depth range')
    assert err < BOUND, err


# The faster options, measured on the same images (worst max error / range): cubic_uint8
# 8.2e-3, pixel_centres 9.1e-2 (docs/recipes.md).
@pytest.mark.parametrize('option', [{'interpolation': 'cubic_uint8'}, {'upsampling': 'pixel_centres'}])
def test_fast_options_are_outside_the_bound(tiny_dynamic_model, official_torch_model, option):
    """Each approximation is caught by the bound: the parity tests above can fail."""
    estimator = processor(tiny_dynamic_model, **option)
    worst = 0.0
    for width, height in SIZES:
        bgr = sample_image(width, height)
        ref = official_depth(official_torch_model, bgr, official_size(height, width))
        worst = max(worst, relative_error(estimate(estimator, bgr)[1].depth, ref))
    print(f'{option}: worst max error {worst:.2e} of the depth range')
    assert BOUND < worst < 0.2, worst


def test_wrong_channel_order_is_caught(dynamic_estimator, official_torch_model):
    bgr = sample_image(640, 480)
    ref = official_depth(official_torch_model, bgr, (518, 686))
    _, swapped = estimate(dynamic_estimator, np.ascontiguousarray(bgr[:, :, ::-1]))
    assert relative_error(swapped.depth, ref) > 0.05


def test_timings_reported(dynamic_estimator):
    _, result = estimate(dynamic_estimator, sample_image(640, 480))
    assert set(result.timings) == {'preprocess', 'inference', 'postprocess', 'colorize', 'metric_outputs'}
    assert all(v >= 0 for v in result.timings.values())
