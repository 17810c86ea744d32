"""Model output -> image-aligned depth (inverse of every placement), and the colorizer."""

import cv2
import numpy as np
import pytest
from helpers.threads import run_in_threads

from depth_anything_ros.core.image_codec import decode_image, image_fields
from depth_anything_ros.core.postprocess import (
    COLORMAPS, RANGE_MODES, Colorizer, model_depth_2d, restore_depth)
from depth_anything_ros.core.placement import Placement, Rect
from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
from depth_anything_ros.core.recipe import Recipe

from helpers.data import data_file

CANVAS = (518, 686)
SIZES = [(480, 640), (1080, 1920), (640, 480), (300, 500), (518, 686), (97, 131)]


def smooth_photo(h, w):
    """A real photo, resized to h x w and blurred so that resampling errors stay small."""
    bgr = cv2.imread(data_file('redwood_synthetic/color/00000.jpg'))
    bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
    sigma = max(h, w) / 60
    return cv2.GaussianBlur(bgr, (0, 0), sigma)


def normalized_red(bgr):
    return (bgr[:, :, 2] / 255.0 - 0.485) / 0.229


@pytest.mark.parametrize('image_hw', SIZES)
@pytest.mark.parametrize('canvas,mode', [(None, 'letterbox'), (CANVAS, 'stretch'),
                                         (CANVAS, 'letterbox'), (CANVAS, 'crop')])
def test_restore_inverts_placement(image_hw, canvas, mode):
    """pixel_centres upsampling after the 8-bit resize: the exact inverse of the forward resize."""
    h, w = image_hw
    bgr = smooth_photo(h, w)
    tensor, placement = RgbPreprocessor(rgb_input(canvas),
                                        Recipe(resize_mode=mode, interpolation='cubic_uint8')).tensor(
        decode_image(**image_fields(bgr, 'bgr8')))
    fake_depth = tensor[0, 0]                     # normalized red at model resolution
    restored = restore_depth(fake_depth, placement, upsampling='pixel_centres')
    assert restored.shape == (h, w) and restored.dtype == np.float32
    direct = normalized_red(bgr)

    src = placement.source
    inside = np.zeros((h, w), bool)
    inside[src.y:src.y + src.height, src.x:src.x + src.width] = True
    assert np.all(np.isfinite(restored[inside]))
    if mode == 'crop' and canvas is not None and (src.width, src.height) != (w, h):
        assert np.all(np.isnan(restored[~inside]))
        assert (~inside).sum() > 0
    else:
        assert inside.all()
    err = np.abs(restored[inside] - direct[inside])
    # Values span about 4 units; one grey level is 0.017. Both directions use OpenCV's
    # pixel-centre convention, so what is left is the 8-bit rounding of the resized
    # image and interpolation error: measured mean 0.002-0.005, 99th pct <= 0.016, and
    # exactly 0 for 518x686. (An align_corners=True inverse, as in the official code,
    # measured mean 0.033 on the 97x131 image, which is upscaled 5x.)
    assert err.mean() < 0.01, err.mean()
    assert np.percentile(err, 99) < 0.04, np.percentile(err, 99)
    if image_hw == CANVAS and placement.source == Rect(0, 0, w, h):
        assert err.max() < 1e-5


def test_restore_detects_a_wrong_placement():
    """The check above can fail: a letterboxed map read as a stretched one is off."""
    bgr = smooth_photo(1080, 1920)
    tensor, placement = RgbPreprocessor(rgb_input(CANVAS), Recipe(resize_mode='letterbox')).tensor(
        decode_image(**image_fields(bgr, 'bgr8')))
    wrong = Placement(placement.image_hw, CANVAS, placement.source, Rect(0, 0, CANVAS[1], CANVAS[0]))
    err = np.abs(restore_depth(tensor[0, 0], wrong) - normalized_red(bgr))
    assert err.mean() > 0.1


def test_restore_uses_pixel_centres():
    """Image pixel x samples model coordinate (x + 0.5) * W' / W - 0.5, as cv2.resize does
    (clamped at the borders): the exact inverse of the forward resize."""
    depth = np.tile(np.arange(9, dtype=np.float32), (7, 1)) + 100 * np.arange(7, dtype=np.float32)[:, None]
    p = Placement((30, 40), (7, 9), Rect(0, 0, 40, 30), Rect(0, 0, 9, 7))
    out = restore_depth(depth, p, upsampling='pixel_centres')
    yy, xx = np.mgrid[0:30, 0:40]
    mx = np.clip((xx + 0.5) * 9 / 40 - 0.5, 0, 8)
    my = np.clip((yy + 0.5) * 7 / 30 - 0.5, 0, 6)
    # measured max error 4.5e-5; an align_corners=True inverse would be off by up to 33
    np.testing.assert_allclose(out, mx + 100 * my, rtol=0, atol=1e-3)


def test_restore_aligns_corners_by_default():
    """Image pixel x samples model coordinate x * (W' - 1) / (W - 1), as the official
    F.interpolate(align_corners=True): the first and last pixels are the model's corners."""
    depth = np.tile(np.arange(9, dtype=np.float32), (7, 1)) + 100 * np.arange(7, dtype=np.float32)[:, None]
    p = Placement((30, 40), (7, 9), Rect(0, 0, 40, 30), Rect(0, 0, 9, 7))
    out = restore_depth(depth, p)
    yy, xx = np.mgrid[0:30, 0:40]
    # measured max error 1.5e-5; the pixel-centre inverse is off by up to 33 here
    np.testing.assert_allclose(out, xx * 8 / 39 + 100 * yy * 6 / 29, rtol=0, atol=1e-3)


@pytest.mark.parametrize('placement', [
    Placement((1080, 1920), (518, 924), Rect(0, 0, 1920, 1080), Rect(0, 0, 924, 518)),   # dynamic
    Placement((375, 1242), (518, 686), Rect(0, 0, 1242, 375), Rect(0, 0, 686, 518)),     # stretch
    Placement((1080, 1920), (518, 686), Rect(0, 0, 1920, 1080), Rect(0, 66, 686, 386)),  # letterbox
    Placement((1080, 1920), (518, 686), Rect(235, 0, 1450, 1080), Rect(0, 0, 686, 518)),  # crop
    Placement((1, 5), (3, 4), Rect(0, 0, 5, 1), Rect(0, 0, 4, 3)),                       # one row
])
@pytest.mark.dev_tools
def test_restore_equals_torch_align_corners(placement):
    """Against the official upsampling itself, on a rough random map (large neighbour steps)."""
    torch = pytest.importorskip('torch')
    depth = np.random.default_rng(2).random(placement.canvas_hw).astype(np.float32)
    src, dst = placement.source, placement.target
    content = torch.from_numpy(depth[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width].copy())
    ref = torch.nn.functional.interpolate(content[None, None], (src.height, src.width), mode='bilinear',
                                          align_corners=True)[0, 0].numpy()
    buffer = np.full(placement.image_hw, -1.0, np.float32)     # a message buffer, written in place
    out = restore_depth(depth, placement, buffer)
    assert out is buffer
    inside = out[src.y:src.y + src.height, src.x:src.x + src.width]
    # measured 5.2e-5 of the range 1: PyTorch's float32 sample positions are up to 4e-5
    # pixel off the exact ones, which this computes
    assert np.abs(inside - ref).max() < 2e-4
    assert np.isnan(out).sum() == out.size - inside.size


def test_restore_round_trip_of_a_ramp():
    """A linear ramp survives resize (bicubic) and restore (bilinear) away from the borders."""
    h, w = 300, 400
    ramp = np.tile(np.linspace(0, 255, w), (h, 1))
    bgr = np.dstack([np.zeros((h, w)), np.zeros((h, w)), ramp]).round().astype(np.uint8)
    for canvas, mode in [(None, 'letterbox'), (CANVAS, 'stretch'), (CANVAS, 'crop'), (CANVAS, 'letterbox')]:
        recipe = Recipe(resize_mode=mode, normalization='none', interpolation='cubic_uint8')
        tensor, placement = RgbPreprocessor(rgb_input(canvas), recipe).tensor(decode_image(**image_fields(bgr, 'bgr8')))
        out = restore_depth(tensor[0, 0], placement, upsampling='pixel_centres') * 255
        src = placement.source
        inner = (slice(src.y + 3, src.y + src.height - 3), slice(src.x + 3, src.x + src.width - 3))
        err = np.abs(out[inner] - bgr[:, :, 2][inner])
        assert err.max() < 0.75, (mode, err.max())          # 8-bit rounding: half a level + eps


def test_restore_identity_placement_returns_input():
    depth = np.random.default_rng(0).normal(size=(37, 53)).astype(np.float32)
    p = Placement((37, 53), (37, 53), Rect(0, 0, 53, 37), Rect(0, 0, 53, 37))
    out = restore_depth(depth, p)
    assert out.shape == depth.shape
    np.testing.assert_allclose(out, depth, rtol=0, atol=1e-6)


def test_restore_uses_only_the_target_rectangle():
    depth = np.full((20, 30), 1000.0, np.float32)              # padding full of junk
    depth[5:15, 0:30] = 2.0
    p = Placement((40, 120), (20, 30), Rect(0, 0, 120, 40), Rect(0, 5, 30, 10))
    out = restore_depth(depth, p)
    np.testing.assert_allclose(out, 2.0)


def test_model_depth_2d():
    d = np.random.default_rng(1).random((5, 7))
    for shape in [(1, 5, 7), (1, 1, 5, 7), (5, 7)]:
        out = model_depth_2d(d.reshape(shape))
        assert out.shape == (5, 7) and out.dtype == np.float32
        np.testing.assert_allclose(out, d, rtol=1e-6)
    assert model_depth_2d(d.astype(np.float16)[None]).dtype == np.float32
    with pytest.raises(ValueError):
        model_depth_2d(np.zeros((2, 5, 7)))
    with pytest.raises(ValueError):
        model_depth_2d(np.zeros((1, 5, 7, 2)))


# ---------------------------------------------------------------- colorizer

def ramp(h=10, w=256):
    return np.tile(np.linspace(0.5, 3.0, w, dtype=np.float32), (h, 1))


def colormap_lut(colormap):
    levels = np.arange(256, dtype=np.uint8)[None]
    cmap = COLORMAPS[colormap]
    lut = cv2.cvtColor(levels, cv2.COLOR_GRAY2BGR) if cmap is None else cv2.applyColorMap(levels, cmap)
    return lut[0].astype(int)                                   # 256 x 3


@pytest.mark.parametrize('colormap', sorted(COLORMAPS))
def test_colorizer_every_colormap(colormap):
    depth = ramp()
    out = Colorizer(colormap, 'minmax')(depth)
    assert out.shape == (10, 256, 3) and out.dtype == np.uint8
    assert len(np.unique(out.reshape(-1, 3), axis=0)) > 50     # a real range of colours
    # every pixel is the colour of its grey level, give or take one level of rounding
    lut = colormap_lut(colormap)
    level = np.round((depth - 0.5) * (255 / 2.5)).astype(int)
    matched = np.zeros(depth.shape, bool)
    for shift in (0, -1, 1):
        matched |= np.all(out.astype(int) == lut[np.clip(level + shift, 0, 255)], axis=-1)
    assert matched.all(), f'{(~matched).sum()} pixels off the colormap'


def test_colorizer_gray_is_monotone():
    depth = ramp()
    out = Colorizer('gray', 'minmax')(depth)
    assert np.array_equal(out[:, :, 0], out[:, :, 1]) and np.array_equal(out[:, :, 0], out[:, :, 2])
    row = out[0, :, 0].astype(int)
    assert np.all(np.diff(row) >= 0)
    assert row[0] == 0 and row[-1] == 255
    assert len(np.unique(row)) > 200


def test_colorizer_nan_is_black():
    depth = ramp()
    depth[2:5, 100:150] = np.nan
    for colormap in COLORMAPS:
        out = Colorizer(colormap)(depth)
        assert np.all(out[2:5, 100:150] == 0)
        assert out[6:, 100:150].any()
        assert out[:, 151:].all(axis=-1).any()                 # the rest is drawn


@pytest.mark.parametrize('range_mode', RANGE_MODES)
def test_colorizer_constant_and_empty_depth(range_mode):
    out = Colorizer('inferno', range_mode)(np.full((8, 9), 2.5, np.float32))
    assert out.shape == (8, 9, 3)
    assert len(np.unique(out.reshape(-1, 3), axis=0)) == 1
    out = Colorizer('inferno', range_mode)(np.full((8, 9), np.nan, np.float32))
    assert np.all(out == 0)


def test_colorizer_ranges():
    rng = np.random.default_rng(2)
    depth = rng.uniform(1.0, 2.0, (50, 50)).astype(np.float32)
    depth[0, 0] = 100.0                                          # one outlier
    depth[0, 1] = np.nan
    minmax = Colorizer('gray', 'minmax')
    pct = Colorizer('gray', 'percentile', (2.0, 98.0))
    lo, hi = minmax.value_range(depth)
    assert (lo, hi) == (pytest.approx(float(np.nanmin(depth))), 100.0)
    plo, phi = pct.value_range(depth)
    valid = depth[np.isfinite(depth)]
    assert plo == pytest.approx(np.percentile(valid, 2)) and phi == pytest.approx(np.percentile(valid, 98))
    assert phi < 2.0
    # min-max: the outlier squeezes everything else into the darkest levels;
    # percentile: the bulk spreads over the whole range.
    assert minmax(depth)[1:, :, 0].max() <= 3
    assert pct(depth)[1:, :, 0].max() == 255 and pct(depth)[1:, :, 0].min() == 0


def test_colorizer_range_of_a_large_map():
    """The range may come from a subsample: it stays within a few colour levels of the exact
    one (measured 0.7 and 1.5 levels on this uncorrelated-noise map, the hard case)."""
    rng = np.random.default_rng(3)
    depth = cv2.GaussianBlur(rng.normal(size=(1080, 1920)).astype(np.float32), (0, 0), 5)
    exact = np.percentile(depth, (2, 98))
    level = (exact[1] - exact[0]) / 255
    lo, hi = Colorizer('gray', 'percentile').value_range(depth)
    assert abs(lo - exact[0]) < 4 * level and abs(hi - exact[1]) < 4 * level


@pytest.mark.parametrize('mode', ['letterbox', 'crop', 'stretch'])
def test_colorizer_onto_the_image(mode):
    """With a placement the picture is drawn at image size; unseen pixels (crop) are black."""
    h, w = 1080, 1920
    bgr = smooth_photo(h, w)
    tensor, placement = RgbPreprocessor(rgb_input(CANVAS), Recipe(resize_mode=mode)).tensor(
        decode_image(**image_fields(bgr, 'bgr8')))
    model_depth = tensor[0, 0].copy()
    dst = placement.target
    # junk in the letterbox padding: neither drawn nor part of the colour range
    model_depth[:dst.y, :] = 1e6
    model_depth[dst.y + dst.height:, :] = -1e6
    model_depth[:, :dst.x] = 1e6
    model_depth[:, dst.x + dst.width:] = -1e6
    out = Colorizer('gray', 'minmax')(model_depth, placement)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    src = placement.source
    inside = np.zeros((h, w), bool)
    inside[src.y:src.y + src.height, src.x:src.x + src.width] = True
    assert np.all(out[~inside] == 0)
    if mode == 'crop':
        assert (~inside).any()
    # where the model saw the image, the grey picture follows the (normalized red) input
    gray = out[:, :, 0][inside].astype(float)
    red = bgr[:, :, 2][inside].astype(float)
    assert np.corrcoef(gray, red)[0, 1] > 0.99
    assert gray.min() <= 1 and gray.max() >= 254              # min-max of the content only


def test_colorizer_onto_the_image_nan_is_black():
    depth = ramp(64, 64)
    depth[10:20, 10:20] = np.nan
    p = Placement((128, 128), (64, 64), Rect(0, 0, 128, 128), Rect(0, 0, 64, 64))
    out = Colorizer('inferno')(depth, p)
    assert out.shape == (128, 128, 3)
    assert np.all(out[22:38, 22:38] == 0)                     # the NaN block, scaled 2x
    assert out[60:, 60:].any(axis=-1).all()


def test_colorizer_bad_arguments():
    with pytest.raises(ValueError):
        Colorizer('rainbow')
    with pytest.raises(ValueError):
        Colorizer('inferno', 'median')
    for fixed in [(1.0, 1.0), (2.0, 1.0), (np.nan, 1.0), (0.0, np.inf)]:
        with pytest.raises(ValueError, match='fixed_range'):
            Colorizer('inferno', 'fixed', fixed_range=fixed)
    for smoothing in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match='smoothing'):
            Colorizer('inferno', 'smoothed', smoothing=smoothing)
    with pytest.raises(ValueError, match='percentiles'):
        Colorizer('inferno', 'percentile', (98.0, 2.0))


def test_colorizer_positional_arguments_unchanged():
    """The node builds Colorizer(colormap, color_range): the first two stay positional."""
    c = Colorizer('gray', 'minmax')
    assert (c.colormap, c.range_mode, c.percentiles) == ('gray', 'minmax', (2.0, 98.0))


# ---------------------------------------------------------------- colorizer: fixed and smoothed ranges

@pytest.mark.parametrize('colormap', sorted(COLORMAPS))
def test_colorizer_fixed_range_ends_and_clipping(colormap):
    lut = colormap_lut(colormap)
    values = np.array([[1.0, 3.0, 0.5, -1e30, 5.0, 1e30, 2.0]], np.float32)
    out = Colorizer(colormap, 'fixed', fixed_range=(1.0, 3.0))(values)[0].astype(int)
    np.testing.assert_array_equal(out[0], lut[0])       # min -> first colormap entry
    np.testing.assert_array_equal(out[1], lut[255])     # max -> last
    for i in (2, 3):
        np.testing.assert_array_equal(out[i], lut[0])   # below clips to the first
    for i in (4, 5):
        np.testing.assert_array_equal(out[i], lut[255])  # above clips to the last
    assert any(np.array_equal(out[6], lut[level]) for level in (127, 128))


def test_colorizer_fixed_range_ignores_the_frame():
    """Unlike per-frame ranges, the same value keeps its colour whatever else is in view."""
    a = ramp()
    b = a.copy()
    b[:, :50] = 10.0                                      # a far-out object enters
    fixed = Colorizer('gray', 'fixed', fixed_range=(0.5, 3.0))
    np.testing.assert_array_equal(fixed(a)[:, 50:], fixed(b)[:, 50:])
    minmax = Colorizer('gray', 'minmax')
    assert np.abs(minmax(a)[:, 50:].astype(int) - minmax(b)[:, 50:]).mean() > 50
    assert fixed.value_range(b) == (0.5, 3.0)


def linear_frame(lo, hi):
    """10001 evenly spaced values: the 2nd and 98th percentiles are lo + 0.02 and 0.98 of the span."""
    return np.linspace(lo, hi, 10001, dtype=np.float64).astype(np.float32)[None, :]


def test_colorizer_smoothed_range_is_an_ema():
    c = Colorizer('gray', 'smoothed', smoothing=0.9)
    a, b = linear_frame(0.0, 10.0), linear_frame(100.0, 110.0)
    # frame 1 initializes: the percentile range of a, (0.2, 9.8)
    assert c.value_range(a) == pytest.approx((0.2, 9.8), abs=1e-5)
    # frame 2: 0.9 * (0.2, 9.8) + 0.1 * (100.2, 109.8)
    assert c.value_range(b) == pytest.approx((10.2, 19.8), abs=1e-4)
    # frame 3: 0.9 * (10.2, 19.8) + 0.1 * (100.2, 109.8)
    assert c.value_range(b) == pytest.approx((19.2, 28.8), abs=1e-4)
    # it keeps moving toward b's range without overshooting
    for _ in range(200):
        lo, hi = c.value_range(b)
    assert (lo, hi) == pytest.approx((100.2, 109.8), abs=1e-3)
    # frame_range has no state; reset() starts over
    assert c.frame_range(a) == pytest.approx((0.2, 9.8), abs=1e-5)
    c.reset()
    assert c.value_range(a) == pytest.approx((0.2, 9.8), abs=1e-5)


def test_colorizer_smoothed_keeps_state_on_an_empty_frame():
    c = Colorizer('gray', 'smoothed', smoothing=0.5)
    assert c.value_range(np.full((4, 4), np.nan, np.float32)) == (0.0, 1.0)   # nothing known yet
    first = c.value_range(linear_frame(0.0, 10.0))
    assert c.value_range(np.full((4, 4), np.nan, np.float32)) == first
    assert np.all(c(np.full((4, 4), np.nan, np.float32)) == 0)


def test_colorizer_smoothed_changes_colours_less_on_a_jump():
    """A bright object entering the view stretches a per-frame range and recolours the rest
    of the scene; the smoothed range moves only 10 % of the way on the first frame."""
    a = ramp(100, 200)
    b = a.copy()
    b[:, :20] = 6.0                                       # 10 % of the view, twice as far as the rest
    rest = (slice(None), slice(20, None))

    def change(colorizer):
        before = colorizer(a)[rest][:, :, 0].astype(int)
        after = colorizer(b)[rest][:, :, 0].astype(int)
        return np.abs(after - before).mean()

    smoothed = change(Colorizer('gray', 'smoothed', smoothing=0.9))
    minmax = change(Colorizer('gray', 'minmax'))
    percentile = change(Colorizer('gray', 'percentile'))
    # measured: smoothed 17 grey levels, minmax 86, percentile 88
    assert minmax > 50 and percentile > 50
    assert smoothed < 0.3 * minmax, (smoothed, minmax)
    assert smoothed < 0.3 * percentile, (smoothed, percentile)


def test_colorizer_smoothed_is_thread_safe():
    """4 threads x 50 frames with different ranges: nothing raises, and the state is an EMA
    of the ranges seen (a convex combination stays inside their hull)."""
    c = Colorizer('inferno', 'smoothed', smoothing=0.8)
    frames = [linear_frame(10.0 * i, 10.0 * i + 5.0) for i in range(4)]
    ranges = [c.frame_range(f) for f in frames]

    def work(i):
        for _ in range(50):
            out = c(frames[i])
            assert out.shape == (1, 10001, 3) and out.dtype == np.uint8

    errors = run_in_threads(work)
    assert not errors, errors
    lo, hi = c._smoothed
    assert min(r[0] for r in ranges) - 1e-6 <= lo <= max(r[0] for r in ranges) + 1e-6
    assert min(r[1] for r in ranges) - 1e-6 <= hi <= max(r[1] for r in ranges) + 1e-6
    # every frame spans 4.8 between its percentiles; any EMA of them spans the same
    assert hi - lo == pytest.approx(4.8, abs=1e-3)
