"""The fast implementations of the official numerics, each against the official formula itself.

- `cubic`: the 8-bit frame resized as int16 (128 per grey level) by OpenCV's 16-bit cubic,
  against the official call, cv2.resize on the float64 image;
- align_corners upsampling, both implementations (block products with the interpolation
  matrix where numpy has an optimized BLAS, numpy gathers elsewhere), against
  F.interpolate(align_corners=True)'s formula written out in float64 here;
- the colorizer's percentiles (np.percentile) and packed colormap lookup (cv2.applyColorMap).

No PyTorch: these run on the board's stack too (numpy 1.21.5, OpenCV 4.5.4).
"""
import cv2
import numpy as np
import pytest

from depth_anything_ros.core import postprocess
from depth_anything_ros.core.image_codec import decode_image, image_fields
from depth_anything_ros.core.postprocess import COLORMAPS, Colorizer
from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
from depth_anything_ros.core.recipe import Recipe

from helpers.data import data_file

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- cubic resize in int16

def _hard_images():
    """Edges that make the cubic overshoot most (0 next to 255 at every scale), a photo, noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:400]
    checker = (((yy // 1 + xx // 1) % 2) * 255).astype(np.uint8)        # one-pixel checkerboard
    blocks = (((yy // 3 + xx // 3) % 2) * 255).astype(np.uint8)         # 3-pixel blocks
    dot = np.zeros((300, 400), np.uint8)
    dot[150, 200] = 255                                                 # a lone bright pixel
    hole = np.full((300, 400), 255, np.uint8)
    hole[::7, ::7] = 0                                                  # lone dark pixels
    photo = cv2.imread(data_file('natural_images/dav2_demo08.jpg'))
    return {'checker': checker, 'blocks': blocks, 'dot': dot, 'hole': hole, 'photo': photo,
            'noise': rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)}


@pytest.mark.parametrize('name', list(_hard_images()))
@pytest.mark.parametrize('canvas', [None, (518, 686), (64, 80)])   # dynamic (up), fixed, down
def test_int16_cubic_is_the_float_resize(name, canvas):
    """The model input before normalization, in grey levels, against cv2.resize(float64): OpenCV's
    16-bit cubic rounds to 1/128 of a grey level and computes in float32 (measured max 0.0100
    grey levels on these images). A wrapped int16 or a clipped overshoot would be off by
    tens of grey levels: upsampled, every image here overshoots [0, 255] by 28-63 levels."""
    image = _hard_images()[name]
    bgr = image if image.ndim == 3 else cv2.merge([image, np.roll(image, 1, 1), 255 - image])
    tensor, placement = RgbPreprocessor(rgb_input(canvas), Recipe(normalization='none')).tensor(
        decode_image(**image_fields(bgr, 'bgr8')))
    h, w = placement.canvas_hw
    official = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float64), (w, h),
                          interpolation=cv2.INTER_CUBIC)
    ours = tensor[0].transpose(1, 2, 0).astype(np.float64) * 255
    assert np.abs(ours - official).max() < 1 / 32, np.abs(ours - official).max()
    if canvas != (64, 80):
        assert official.min() < -20 and official.max() > 275


def test_int16_cubic_mono_and_rgba():
    photo = cv2.imread(data_file('natural_images/dav2_demo08.jpg'))
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(photo, cv2.COLOR_BGR2RGBA)
    for pixels, encoding, rgb in ((gray, 'mono8', cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)),
                                  (rgba, 'rgba8', rgba[:, :, :3])):
        tensor, placement = RgbPreprocessor(rgb_input(None), Recipe(normalization='none')).tensor(
            decode_image(**image_fields(pixels, encoding))
                                                                      if encoding != 'rgba8' else _rgba_frame(rgba))
        h, w = placement.canvas_hw
        official = cv2.resize(rgb.astype(np.float64), (w, h), interpolation=cv2.INTER_CUBIC)
        assert np.abs(tensor[0].transpose(1, 2, 0) * 255 - official).max() < 1 / 32


def _rgba_frame(rgba):
    h, w = rgba.shape[:2]
    return decode_image(h, w, 'rgba8', 0, w * 4, rgba.tobytes())


# ---------------------------------------------------------------- align_corners upsampling

def official_align_corners(content: np.ndarray, out_hw: tuple) -> np.ndarray:
    """F.interpolate(mode='bilinear', align_corners=True) written out as PyTorch's CPU kernel
    computes it: output pixel (i, j) samples input (i s, j t), s = float32(H - 1) / (h - 1) and
    i s in float32 (upsample_bilinear2d's area_pixel_compute_source_index); the blend in float64."""
    def taps(n_in, n_out):
        scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
        x = (np.arange(n_out, dtype=np.float32) * scale).astype(np.float64)
        left = np.minimum(np.floor(x).astype(int), n_in - 1)
        return left, np.minimum(left + 1, n_in - 1), x - left
    c = content.astype(np.float64)
    y0, y1, fy = taps(c.shape[0], out_hw[0])
    x0, x1, fx = taps(c.shape[1], out_hw[1])
    rows = c[:, x0] * (1 - fx) + c[:, x1] * fx
    return rows[y0] * (1 - fy)[:, None] + rows[y1] * fy[:, None]


IMPLEMENTATIONS = [postprocess._banded_products, postprocess._gathers]


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('in_hw,out_hw', [((518, 924), (1080, 1920)), ((518, 686), (375, 1242)),
                                          ((518, 686), (240, 320)), ((3, 4), (1, 5)), ((3, 4), (7, 1)),
                                          ((1, 1), (4, 6)), ((518, 1722), (375, 1242))])
def test_align_corners_is_the_official_formula(implementation, in_hw, out_hw):
    """On a rough random map (neighbours differ by up to the whole range). Measured max 1.2e-7
    of the range 1 (float32 rounding; PyTorch's own float32 positions are 4e-5 px off these)."""
    depth = np.random.default_rng(2).random(in_hw).astype(np.float32)
    out = np.full(out_hw, np.nan, np.float32)
    assert implementation(depth, out) is out
    assert np.abs(out - official_align_corners(depth, out_hw)).max() < 1e-6


def test_align_corners_into_a_view():
    """Crop mode writes into a rectangle of the message buffer: rows with a stride."""
    depth = np.random.default_rng(3).random((20, 30)).astype(np.float32)
    for implementation in IMPLEMENTATIONS:
        buffer = np.full((50, 90), -1.0, np.float32)
        implementation(depth, buffer[5:45, 10:80])
        assert np.abs(buffer[5:45, 10:80] - official_align_corners(depth, (40, 70))).max() < 1e-6
        assert (buffer[:5] == -1).all() and (buffer[:, :10] == -1).all() and (buffer[:, 80:] == -1).all()


def test_weight_blocks_are_the_interpolation_matrix():
    """The blocks tile the outputs, each row weighs its two taps to 1, and no block product is big
    enough for OpenBLAS to spread it over threads (which spin: CPU time for nothing)."""
    for n_in, n_out, length in ((924, 1920, 518), (518, 1080, 1920), (686, 320, 518), (4, 7, 5), (1, 3, 2)):
        blocks = postprocess._weight_blocks(n_in, n_out, length)
        assert [b[0].start for b in blocks] == list(range(0, n_out, blocks[0][0].stop))
        assert blocks[-1][0].stop == n_out
        dense = np.zeros((n_out, n_in))
        for outputs, inputs, weights in blocks:
            dense[outputs, inputs] = weights
            assert weights.size * length <= postprocess._BLOCK_MACS or weights.shape[0] == 1
        np.testing.assert_allclose(dense.sum(1), 1, atol=1e-6)
        ramp = np.arange(n_in, dtype=np.float64)
        expected = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0)
        np.testing.assert_allclose(dense @ ramp, expected, atol=1e-3)


# ---------------------------------------------------------------- colorizer

@pytest.mark.parametrize('size', [1, 2, 3, 10, 20000])
@pytest.mark.parametrize('percentiles', [(2.0, 98.0), (0.0, 100.0), (50.0, 50.5)])
def test_percentiles_are_numpys(size, percentiles):
    values = np.random.default_rng(size).normal(size=size)
    np.testing.assert_allclose(postprocess._percentiles(values.copy(), percentiles),
                               np.percentile(values, percentiles), rtol=0, atol=1e-12)


@pytest.mark.parametrize('colormap', sorted(COLORMAPS))
def test_packed_colormap_is_opencvs(colormap):
    gray8 = np.random.default_rng(4).integers(0, 256, (37, 53), dtype=np.uint8)
    gray8[0, :3] = (0, 128, 255)
    expected = cv2.cvtColor(gray8, cv2.COLOR_GRAY2BGR) if COLORMAPS[colormap] is None \
        else cv2.applyColorMap(gray8, COLORMAPS[colormap])
    out = np.zeros((37, 53, 3), np.uint8)
    np.testing.assert_array_equal(postprocess._colormapped(gray8, colormap, out), expected)
    np.testing.assert_array_equal(out, expected)                    # written into the buffer
    np.testing.assert_array_equal(Colorizer(colormap, 'fixed', fixed_range=(0, 255))(gray8.astype(np.float32)),
                                  expected)
