"""Frame -> model tensor: sizes, numerics against the official recipe and transformers, placements."""
import math

import cv2
import numpy as np
import pytest

from depth_anything_ros.core.image_codec import decode_image, image_fields
from depth_anything_ros.core.paths import SAMPLE_IMAGE
from depth_anything_ros.core.placement import Placement, Rect, lower_bound_size, multiple_of, place, upper_bound_size
from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
from depth_anything_ros.core.recipe import IMAGENET_MEAN, IMAGENET_STD, Recipe

from helpers.data import data_file

MEAN = np.array(IMAGENET_MEAN, np.float64)
STD = np.array(IMAGENET_STD, np.float64)
CANVAS = (518, 686)   # the S100 model's fixed input (H, W)


def official_size(h, w, lower=518, multiple=14):
    """Depth-Anything-V2 `Resize(keep_aspect_ratio=True, ensure_multiple_of=14,
    resize_method='lower_bound')`, re-written from the official transform."""
    def constrain(x, min_val):
        y = (np.round(x / multiple) * multiple).astype(int)
        if y < min_val:
            y = (np.ceil(x / multiple) * multiple).astype(int)
        return int(y)
    scale_h, scale_w = lower / h, lower / w
    if scale_w > scale_h:
        scale_h = scale_w
    else:
        scale_w = scale_h
    return constrain(scale_h * h, lower), constrain(scale_w * w, lower)


def official_preprocess(bgr, size_hw=None):
    """The official recipe in float64: BGR->RGB, /255, bicubic resize, ImageNet norm, CHW."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
    h, w = size_hw or official_size(*bgr.shape[:2])
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
    rgb = (rgb - MEAN) / STD
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def codec_frame(bgr):
    """A bgr8 frame as the codec decodes it from its message fields."""
    return decode_image(**image_fields(np.ascontiguousarray(bgr), 'bgr8'))


def load_bgr(relpath):
    bgr = cv2.imread(data_file(relpath), cv2.IMREAD_COLOR)
    assert bgr is not None, relpath
    return bgr


# ---------------------------------------------------------------- (a) sizes

def test_lower_bound_size_vga():
    assert lower_bound_size(480, 640, 518) == (518, 686)
    assert lower_bound_size(640, 480, 518) == (686, 518)


@pytest.mark.parametrize('h,w', [(480, 640), (1080, 1920), (720, 1280), (1362, 2048), (425, 640),
                                 (1200, 800), (518, 518), (100, 100), (64, 2000), (3000, 41),
                                 (519, 519), (1, 1)])
def test_lower_bound_size_rules(h, w):
    oh, ow = lower_bound_size(h, w, 518)
    assert oh % 14 == 0 and ow % 14 == 0
    assert oh >= 518 and ow >= 518
    assert min(oh, ow) < 518 + 14            # the shorter side is the lower bound, rounded up
    # aspect kept up to the rounding to 14 px of each side
    assert abs(ow / oh - w / h) <= (w / h) * (14 / oh + 14 / ow)
    assert (oh, ow) == official_size(h, w)


def test_multiple_of():
    assert multiple_of(690.67, 14) == 686
    assert multiple_of(517.0, 14, 518) == 518
    assert multiple_of(511.0, 14, 518) == 518      # round gives 504 < 518: ceil instead
    assert multiple_of(700, 14) == 700


# ---------------------------------------------------------------- (b) official recipe

OFFICIAL_PHOTOS = ['redwood_synthetic/color/00000.jpg', 'tum_rgbd/TUM_color.png',
                   'natural_images/dav2_demo08.jpg',
                   'natural_images/unsplash_jonathan-borba-CnthDZXCdoY-unsplash.jpg']
GREY_LEVEL = 1 / 255 / min(IMAGENET_STD)     # one 8-bit step in normalized units: 0.0175


def official_preprocess_8bit(bgr, size_hw=None):
    """The official recipe with the resized image rounded and clipped to 8 bits, which is
    what interpolation 'cubic_uint8' does (it resizes the uint8 image)."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
    h, w = size_hw or official_size(*bgr.shape[:2])
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
    rgb = np.clip(np.round(rgb * 255), 0, 255) / 255
    return np.ascontiguousarray(((rgb - MEAN) / STD).transpose(2, 0, 1))


@pytest.mark.parametrize('relpath', OFFICIAL_PHOTOS)
def test_matches_the_official_float_recipe(relpath):
    """The default (interpolation 'cubic' on the float image) is the official tensor up to
    float32 arithmetic: measured max 1.4e-6 (a ten-thousandth of a grey level)."""
    bgr = load_bgr(relpath)
    tensor, placement = RgbPreprocessor(rgb_input(None)).tensor(codec_frame(bgr))
    ref = official_preprocess(bgr)
    assert tensor.dtype == np.float32
    assert tensor.shape == (1,) + ref.shape
    assert placement.canvas_hw == ref.shape[1:]
    diff = np.abs(tensor[0].astype(np.float64) - ref)
    assert diff.max() < 5e-4, diff.max()


@pytest.mark.parametrize('relpath', OFFICIAL_PHOTOS)
def test_cubic_uint8_matches_official_recipe_rounded_to_8_bits(relpath):
    bgr = load_bgr(relpath)
    tensor, placement = RgbPreprocessor(rgb_input(None), Recipe(interpolation='cubic_uint8')).tensor(codec_frame(bgr))
    ref = official_preprocess_8bit(bgr)
    assert tensor.shape == (1,) + ref.shape
    diff = np.abs(tensor[0].astype(np.float64) - ref)
    # OpenCV's fixed-point 8-bit bicubic rounds a few pixels the other way: measured
    # max exactly one grey level, at 0.004-0.02 % of the values; mean 1e-6 to 3e-6.
    assert diff.max() < GREY_LEVEL + 1e-5, diff.max()
    assert (diff > 1e-3).mean() < 1e-3, (diff > 1e-3).mean()
    assert diff.mean() < 2e-5, diff.mean()


@pytest.mark.parametrize('relpath', OFFICIAL_PHOTOS)
def test_cubic_uint8_is_near_the_official_float_recipe(relpath):
    """The fast option against the official float64 recipe: 8-bit rounding everywhere (half a
    grey level) and clipped bicubic overshoot at strong edges (up to 0.76 here, at about 1 %
    of values)."""
    bgr = load_bgr(relpath)
    tensor, _ = RgbPreprocessor(rgb_input(None), Recipe(interpolation='cubic_uint8')).tensor(codec_frame(bgr))
    ref = official_preprocess(bgr)
    diff = np.abs(tensor[0].astype(np.float64) - ref)
    # measured: mean 0.0043-0.0065, 99th pct 0.0086-0.048, > 1 grey level at 0.2-1.8 %
    assert diff.mean() < 0.015, diff.mean()
    assert np.percentile(diff, 99) < 0.1, np.percentile(diff, 99)
    assert (diff > GREY_LEVEL).mean() < 0.05, (diff > GREY_LEVEL).mean()
    # where the official values are inside [0, 1] before normalizing, only rounding is left
    rgb01 = ref * STD[:, None, None] + MEAN[:, None, None]
    unclipped = (rgb01 > 1 / 255) & (rgb01 < 254 / 255)
    assert diff[unclipped].max() < GREY_LEVEL + 1e-5, diff[unclipped].max()


def test_nhwc_layout_is_the_transpose():
    bgr = load_bgr('tum_rgbd/TUM_color.png')
    frame = codec_frame(bgr)
    nchw, _ = RgbPreprocessor(rgb_input(None)).tensor(frame)
    nhwc, _ = RgbPreprocessor(rgb_input(None, 'NHWC')).tensor(frame)
    assert nhwc.shape == (1, 518, 686, 3)
    assert nhwc.flags.c_contiguous and nchw.flags.c_contiguous
    np.testing.assert_array_equal(nhwc[0], nchw[0].transpose(1, 2, 0))


# ---------------------------------------------------------------- (c) hand-computed

@pytest.mark.parametrize('colour', [(0, 0, 0), (255, 255, 255), (200, 60, 30), (124, 116, 104)])
@pytest.mark.parametrize('canvas,mode', [(None, 'letterbox'), (CANVAS, 'stretch'), (CANVAS, 'crop')])
def test_constant_colour(colour, canvas, mode):
    rgb = np.empty((90, 160, 3), np.uint8)
    rgb[:] = colour
    frame = decode_image(**image_fields(rgb, 'rgb8'))
    tensor, _ = RgbPreprocessor(rgb_input(canvas), Recipe(resize_mode=mode)).tensor(frame)
    expected = (np.array(colour) / 255.0 - MEAN) / STD
    for c in range(3):
        np.testing.assert_allclose(tensor[0, c], expected[c], rtol=0, atol=1e-5)


# ---------------------------------------------------------------- (d) transformers

def _dpt_processor():
    pil = pytest.importorskip('PIL.Image', reason='transformers image processors need pillow')
    transformers = pytest.importorskip('transformers')
    cls = getattr(transformers, 'DPTImageProcessorPil', None) or transformers.DPTImageProcessor
    return cls(do_resize=True, size={'height': 518, 'width': 518}, keep_aspect_ratio=True,
               ensure_multiple_of=14, resample=pil.BICUBIC, do_rescale=True,
               do_normalize=True, image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
               do_pad=False)


# 4:3 images only: for sizes far from 518 transformers' keep_aspect_ratio picks the scale closer
# to 1 (425x640 -> 350x518) where the official recipe uses the lower bound (-> 518x784).
@pytest.mark.parametrize('relpath', ['redwood_synthetic/color/00000.jpg', 'redwood_synthetic/color/00004.jpg',
                                     'tum_rgbd/TUM_color.png'])
@pytest.mark.dev_tools
def test_close_to_transformers_processor(relpath):
    bgr = load_bgr(relpath)
    tensor, _ = RgbPreprocessor(rgb_input(None)).tensor(codec_frame(bgr))
    ref = _dpt_processor()(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), return_tensors='np')['pixel_values']
    assert ref.shape == tensor.shape
    # PIL bicubic (a=-0.5, antialiased, float) vs OpenCV (a=-0.75, 8-bit): measured mean abs
    # diff 0.006-0.007, 99th percentile 0.05-0.07
    diff = np.abs(ref.astype(np.float64) - tensor)
    assert diff.mean() < 0.02, diff.mean()
    assert np.percentile(diff, 99) < 0.2


# ---------------------------------------------------------------- (e) encodings

# ---------------------------------------------------------------- Depth Anything 3's resize (issue 22)

@pytest.mark.parametrize('wh, expected', [((1920, 1080), (280, 504)), ((1280, 720), (280, 504)),
                                          ((640, 480), (378, 504)), ((480, 640), (504, 378)),
                                          ((800, 1200), (504, 336)), ((320, 240), (378, 504)),
                                          ((504, 378), (378, 504)), ((1242, 375), (154, 504))])
def test_upper_bound_size(wh, expected):
    """The official examples (1920x1080 -> 504x280 after 504x284, 640x480 -> 504x378), enlarging
    too; checked against the official InputProcessor itself in test_da3_parity.py."""
    assert upper_bound_size(wh[1], wh[0], 504) == expected


@pytest.mark.parametrize('wh', [(1920, 1080), (640, 480), (320, 240), (333, 777)])
def test_area_cubic_is_two_opencv_resizes_of_the_8_bit_image(wh):
    """To DA3's own size: the longer side first (AREA down, CUBIC up), then to multiples of 14
    (CUBIC if a side grows, else AREA), on uint8, then ImageNet-normalized."""
    w, h = wh
    bgr = cv2.resize(cv2.imread(SAMPLE_IMAGE), wh, interpolation=cv2.INTER_AREA)
    size = upper_bound_size(h, w, 504)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    scale = 504 / max(w, h)
    step = cv2.resize(rgb, (round(w * scale), round(h * scale)),
                      interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    if step.shape[:2] != size:
        grows = size[0] > step.shape[0] or size[1] > step.shape[1]
        step = cv2.resize(step, size[::-1], interpolation=cv2.INTER_CUBIC if grows else cv2.INTER_AREA)
    expected = ((step / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    ours, placement = RgbPreprocessor(rgb_input(size), Recipe(interpolation='area_cubic')).tensor(codec_frame(bgr))
    assert placement.canvas_hw == size
    assert np.abs(ours[0] - expected).max() < 1e-5


def test_da3_resize_with_a_model_of_another_size_says_what_happens():
    """A 16:9 camera on the 4:3 model: stretched (resize_mode), and the start-up says which model
    size would feed it as the official code does; none said when the model is that size."""
    from types import SimpleNamespace

    from depth_anything_ros.core.estimator import DepthEstimator
    engine = SimpleNamespace(inputs=[rgb_input((378, 504))], outputs=[])
    estimator = DepthEstimator(engine, Recipe(interpolation='area_cubic'))
    note = estimator.input_note(720, 1280)
    assert "resize_mode 'stretch'" in note and '280x504' in note and '--model-size 280x504' in note
    assert estimator.input_note(480, 640) is None and estimator.input_note(960, 1280) is None
    assert DepthEstimator(engine, Recipe()).input_note(720, 1280) is None      # DA-V2's recipe: no such rule
    _, placement = RgbPreprocessor(rgb_input((378, 504)), Recipe(interpolation='area_cubic',
                                                                           resize_mode='letterbox')).tensor(
        codec_frame(cv2.resize(cv2.imread(SAMPLE_IMAGE), (1280, 720))))
    assert (placement.target.width, placement.target.height) == (504, 284)   # aspect kept, one resize


def test_bgr8_and_rgb8_give_identical_tensors():
    bgr = load_bgr('redwood_synthetic/color/00002.jpg')
    pre = RgbPreprocessor(rgb_input(None))
    from_bgr, p1 = pre.tensor(codec_frame(bgr))
    from_rgb, p2 = pre.tensor(decode_image(**image_fields(np.ascontiguousarray(bgr[:, :, ::-1]), 'rgb8')))
    # OpenCV's float resize rounds a channel differently by its place in the pixel: 1e-6.
    np.testing.assert_allclose(from_bgr, from_rgb, rtol=0, atol=1e-5)
    assert p1 == p2


def test_bgr_channel_order_reverses_the_planes():
    bgr = load_bgr('redwood_synthetic/color/00002.jpg')
    rgb_tensor, _ = RgbPreprocessor(rgb_input(CANVAS), Recipe(normalization='none')).tensor(codec_frame(bgr))
    bgr_tensor, _ = RgbPreprocessor(rgb_input(CANVAS), Recipe(normalization='none', channel_order='bgr')).tensor(
        codec_frame(bgr))
    np.testing.assert_array_equal(bgr_tensor[0], rgb_tensor[0, ::-1])
    assert np.abs(bgr_tensor[0, 0] - bgr_tensor[0, 2]).mean() > 0.01   # a colour photo


def test_d_robotics_recipe_by_hand():
    """stretch + nearest + per-pixel (x - mean) / sqrt(var + 1e-5), written out per pixel."""
    bgr = np.random.default_rng(5).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    bgr[0, 0] = 77                                                   # a grey pixel: all zero
    recipe = Recipe(resize_mode='stretch', interpolation='nearest', normalization='pixel_zscore')
    tensor, _ = RgbPreprocessor(rgb_input(CANVAS), recipe).tensor(codec_frame(bgr))
    rgb = cv2.resize(bgr, (CANVAS[1], CANVAS[0]), interpolation=cv2.INTER_NEAREST)[:, :, ::-1]
    for y, x in [(0, 0), (100, 200), (517, 685), (300, 7)]:
        px = rgb[y, x].astype(np.float64)
        expected = (px - px.mean()) / np.sqrt(px.var() + 1e-5)
        np.testing.assert_allclose(tensor[0, :, y, x], expected, rtol=0, atol=1e-5)
    assert np.abs(tensor).max() <= np.sqrt(2) + 1e-6


def test_nv12_close_to_rgb():
    bgr = load_bgr('redwood_synthetic/color/00002.jpg')
    h, w = bgr.shape[:2]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    u = i420[h:h + h // 4].reshape(h // 2, w // 2)
    v = i420[h + h // 4:].reshape(h // 2, w // 2)
    nv12 = np.concatenate([i420[:h], np.stack([u, v], -1).reshape(h // 2, w)])
    pre = RgbPreprocessor(rgb_input(None))
    from_nv12, _ = pre.tensor(decode_image(h, w, 'nv12', 0, w, nv12.tobytes()))
    from_rgb, _ = pre.tensor(codec_frame(bgr))
    diff = np.abs(from_nv12 - from_rgb)
    # measured mean 0.017, about one grey level (1/255/0.229 = 0.017 in these units)
    assert diff.mean() < 0.03, diff.mean()


def test_mono8_gives_equal_channels_before_normalization():
    gray = load_bgr('tum_rgbd/TUM_color.png')[:, :, 1].copy()
    tensor, _ = RgbPreprocessor(rgb_input(None), Recipe(normalization='none')).tensor(
        decode_image(*gray.shape, 'mono8', 0, gray.shape[1], gray.tobytes()))
    np.testing.assert_allclose(tensor[0, 0], tensor[0, 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(tensor[0, 0], tensor[0, 2], rtol=0, atol=1e-6)
    assert tensor[0, 0].std() > 0.05


# ---------------------------------------------------------------- (f) placements

IMAGE_SIZES = [(1080, 1920), (480, 640), (640, 480)]


def _inside(rect, h, w):
    return (rect.x >= 0 and rect.y >= 0 and rect.width > 0 and rect.height > 0
            and rect.x + rect.width <= w and rect.y + rect.height <= h)


@pytest.mark.parametrize('image_hw', IMAGE_SIZES)
@pytest.mark.parametrize('mode', ['stretch', 'letterbox', 'crop'])
def test_placement_rectangles(image_hw, mode):
    h, w = image_hw
    ch, cw = CANVAS
    p = place(image_hw, CANVAS, mode, 518)
    assert p.image_hw == image_hw and p.canvas_hw == CANVAS
    assert _inside(p.source, h, w)
    assert _inside(p.target, ch, cw)
    src, dst = p.source, p.target
    if mode == 'stretch':
        assert src == Rect(0, 0, w, h) and dst == Rect(0, 0, cw, ch)
    elif mode == 'letterbox':
        assert src == Rect(0, 0, w, h)
        assert dst.width == cw or dst.height == ch            # fills one axis
        assert abs(dst.width - dst.height * w / h) <= 1        # aspect within 1 px
        assert abs(2 * dst.x + dst.width - cw) <= 1            # centred
        assert abs(2 * dst.y + dst.height - ch) <= 1
    else:
        assert dst == Rect(0, 0, cw, ch)
        assert src.width == w or src.height == h              # uses one full axis
        assert abs(src.width - src.height * cw / ch) <= 1      # canvas aspect within 1 px
        assert abs(2 * src.x + src.width - w) <= 1
        assert abs(2 * src.y + src.height - h) <= 1


def _gradient_bgr(h, w):
    """BGR image with red = x ramp, green = y ramp, blue = 128."""
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([np.full((h, w), 128), (y * 255 // max(h - 1, 1)),
                      (x * 255 // max(w - 1, 1))]).astype(np.uint8)


@pytest.mark.parametrize('image_hw', IMAGE_SIZES)
def test_letterbox_padding_is_normalized_zero(image_hw):
    bgr = _gradient_bgr(*image_hw)
    tensor, p = RgbPreprocessor(rgb_input(CANVAS), Recipe(resize_mode='letterbox')).tensor(codec_frame(bgr))
    assert tensor.shape == (1, 3) + CANVAS
    dst = p.target
    inside = np.zeros(CANVAS, bool)
    inside[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width] = True
    pad = tensor[0][:, ~inside]
    assert pad.size > 0                                        # every size here needs padding
    assert np.all(pad == 0)
    # the image really is in the content rectangle: its blue (128) is not the normalized zero
    np.testing.assert_allclose(tensor[0, 2][inside], (128 / 255 - MEAN[2]) / STD[2], atol=1e-5)


@pytest.mark.parametrize('image_hw', IMAGE_SIZES)
def test_crop_and_stretch_fill_the_canvas(image_hw):
    bgr = _gradient_bgr(*image_hw)
    frame = codec_frame(bgr)
    for mode in ('crop', 'stretch'):
        tensor, _ = RgbPreprocessor(rgb_input(CANVAS), Recipe(resize_mode=mode)).tensor(frame)
        assert tensor.shape == (1, 3) + CANVAS
        # blue is 128 everywhere: no canvas pixel is left at the normalized zero
        np.testing.assert_allclose(tensor[0, 2], (128 / 255 - MEAN[2]) / STD[2], atol=1e-5)


def test_crop_keeps_the_centre():
    h, w = 1080, 1920
    bgr = _gradient_bgr(h, w)
    tensor, p = RgbPreprocessor(rgb_input(CANVAS), Recipe(resize_mode='crop', normalization='none')).tensor(
        codec_frame(bgr))
    red = tensor[0, 0]
    # red = x / (w-1): the crop covers x in [src.x, src.x + src.width)
    assert red[:, 0].mean() == pytest.approx(p.source.x / (w - 1), abs=0.01)
    assert red[:, -1].mean() == pytest.approx((p.source.x + p.source.width - 1) / (w - 1), abs=0.01)
    assert p.source.x > 0


def test_dynamic_placement_is_identity_rectangles():
    p = place((480, 640), None, 'letterbox', 518)
    assert p == Placement((480, 640), (518, 686), Rect(0, 0, 640, 480), Rect(0, 0, 686, 518))


# ---------------------------------------------------------------- (g) other normalizations

TINY_RGB = np.array([[[10, 20, 30], [50, 50, 50], [255, 0, 0]],
                     [[0, 0, 0], [200, 100, 0], [1, 2, 4]]], np.uint8)


def _tiny_tensor(normalization):
    frame = decode_image(**image_fields(TINY_RGB, 'rgb8'))
    tensor, _ = RgbPreprocessor(rgb_input((2, 3)), Recipe(resize_mode='stretch', normalization=normalization)).tensor(
        frame)
    assert tensor.shape == (1, 3, 2, 3)
    return tensor[0].transpose(1, 2, 0).astype(np.float64)     # HxWx3


def test_normalization_none():
    np.testing.assert_allclose(_tiny_tensor('none'), TINY_RGB / 255.0, rtol=0, atol=1e-6)


def test_normalization_pixel_zscore():
    out = _tiny_tensor('pixel_zscore')
    # (10, 20, 30): mean 20, population std sqrt(200/3)
    s = math.sqrt(200 / 3)
    np.testing.assert_allclose(out[0, 0], [-10 / s, 0, 10 / s], atol=1e-5)
    # grey pixels have std 0: zeros, not NaN
    np.testing.assert_array_equal(out[0, 1], [0, 0, 0])
    np.testing.assert_array_equal(out[1, 0], [0, 0, 0])
    # (255, 0, 0): mean 85, std 85*sqrt(2)
    np.testing.assert_allclose(out[0, 2], [math.sqrt(2), -1 / math.sqrt(2), -1 / math.sqrt(2)], atol=1e-5)
    # every pixel: zero mean, unit std (where not grey)
    pix = TINY_RGB.reshape(-1, 3).astype(np.float64)
    expected = (pix - pix.mean(1, keepdims=True)) / np.maximum(pix.std(1, keepdims=True), 1e-6)
    np.testing.assert_allclose(out.reshape(-1, 3), expected, atol=1e-5)


def test_normalization_imagenet_tiny():
    np.testing.assert_allclose(_tiny_tensor('imagenet'), (TINY_RGB / 255.0 - MEAN) / STD, atol=1e-5)


# ---------------------------------------------------------------- (h) bad arguments

def test_bad_arguments():
    with pytest.raises(ValueError, match='resize_mode'):
        RgbPreprocessor(rgb_input(CANVAS), Recipe(resize_mode='squash'))
    with pytest.raises(ValueError, match='normalization'):
        RgbPreprocessor(rgb_input(CANVAS), Recipe(normalization='zscore'))
    with pytest.raises(ValueError, match='resize_mode'):
        place((480, 640), CANVAS, 'fit', 518)


@pytest.mark.parametrize('mode, canvas', [('letterbox', (518, 686)), ('crop', (518, 686)), ('stretch', (518, 686)),
                                          ('letterbox', (517, 685))])
def test_nv12_plane_resize_path_matches_full_conversion(mode, canvas):
    """NV12 frames are resized plane by plane, then converted at model size (odd
    rectangles fall back to converting the whole frame first): both give the same input."""
    from depth_anything_ros.core.image_codec import bgr_to_nv12, to_rgb
    bgr = cv2.resize(load_bgr(SAMPLE_IMAGE), (1920, 1080))  # a real camera frame
    nv12 = bgr_to_nv12(bgr)
    frame = decode_image(1080, 1920, 'nv12', 0, 1920, nv12.tobytes())
    pre = RgbPreprocessor(rgb_input(canvas), Recipe(resize_mode=mode))
    fast, placement = pre.tensor(frame)
    rgb = np.ascontiguousarray(to_rgb(frame))
    reference, _ = pre.tensor(decode_image(**image_fields(rgb, 'rgb8')))
    content = (slice(None), slice(None), slice(placement.target.y, placement.target.y + placement.target.height),
               slice(placement.target.x, placement.target.x + placement.target.width))
    diff = np.abs(fast[content] - reference[content])
    # measured mean 0.0068-0.0074 (under half a grey level: 1/255/0.229 = 0.017), mostly bilinear
    # chroma; 0.0 where an odd rectangle (crop, the 517x685 canvas) takes the full-conversion path
    assert diff.mean() < 0.017, diff.mean()
