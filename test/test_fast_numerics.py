"""The compiled implementations of the official numerics (core/kernels.py), each against the official
formula itself, with every instruction set this CPU runs (x86-64: the baseline, AVX2, AVX-512):

- `cubic`: against the official call, cv2.resize(float64 image, INTER_CUBIC); NV12 frames against
  OpenCV's own conversion (cvtColor) followed by that call;
- align_corners upsampling: against F.interpolate(align_corners=True)'s formula written out in
  float64 here;
- the colorizer's picture: against the pixel-centre bilinear formula in float64 and OpenCV's
  colormap (cv2.applyColorMap), and its percentiles against np.percentile.

No PyTorch: these run on the board's stack too (numpy 1.21.5, OpenCV 4.5.4).
"""
import cv2
import numpy as np
import pytest

from depth_anything_ros.core import kernels, postprocess
from depth_anything_ros.core.image_codec import bgr_to_nv12, decode_image, image_fields, to_rgb
from depth_anything_ros.core.postprocess import COLORMAPS, Colorizer
from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
from depth_anything_ros.core.recipe import Recipe

from helpers.data import data_file

pytestmark = pytest.mark.unit

INSTRUCTION_SETS = kernels.INSTRUCTION_SETS[:kernels.INSTRUCTION_SETS.index(kernels.instruction_set()) + 1]


@pytest.fixture(params=INSTRUCTION_SETS, autouse=True)
def instruction_set(request):
    """Every test here runs once per compiled variant of the kernels this CPU can run."""
    before = kernels.instruction_set(request.param)
    yield request.param
    kernels.instruction_set(before)


# ---------------------------------------------------------------- cubic resize

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


def official_resize(rgb: np.ndarray, hw: tuple) -> np.ndarray:
    """The official call: cv2.resize of the float64 image, INTER_CUBIC (HxWx3 out). OpenCV 4.5 (the
    board's) refuses a 1x1 3-channel image: its 2x2 copy resizes to the same constant."""
    if rgb.shape[:2] == (1, 1):
        rgb = np.repeat(np.repeat(rgb, 2, 0), 2, 1)
    out = cv2.resize(rgb.astype(np.float64), (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)
    return out if out.ndim == 3 else out[..., None]


def grey_levels(tensor: np.ndarray) -> np.ndarray:
    """A normalization-'none' NCHW tensor as HxWx3 grey levels."""
    return tensor[0].transpose(1, 2, 0).astype(np.float64) * 255


# float32 arithmetic from 8-bit values: measured at most 1.0e-4 grey levels on these images
CUBIC_BOUND = 1e-3


@pytest.mark.parametrize('name', list(_hard_images()))
@pytest.mark.parametrize('canvas', [None, (518, 686), (64, 80)])   # dynamic (up), fixed, down
def test_cubic_is_the_float_resize(name, canvas):
    """The model input before normalization, in grey levels, against cv2.resize(float64). A clipped
    overshoot would be off by tens of grey levels: upsampled, every image here overshoots [0, 255]
    by 28-63 levels."""
    image = _hard_images()[name]
    bgr = image if image.ndim == 3 else cv2.merge([image, np.roll(image, 1, 1), 255 - image])
    tensor, placement = RgbPreprocessor(rgb_input(canvas), Recipe(normalization='none')).tensor(
        decode_image(**image_fields(bgr, 'bgr8')))
    official = official_resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), placement.canvas_hw)
    assert np.abs(grey_levels(tensor) - official).max() < CUBIC_BOUND
    if canvas != (64, 80):
        assert official.min() < -20 and official.max() > 275


@pytest.mark.parametrize('in_hw,out_hw', [((1, 1), (5, 7)), ((2, 3), (1, 1)), ((7, 5), (20, 3)), ((5, 9), (5, 9)),
                                          ((4, 300), (9, 13)), ((300, 4), (2, 30)), ((33, 47), (518, 686))])
def test_cubic_at_every_scale_and_border(in_hw, out_hw):
    """Tiny and lopsided sizes, where every tap replicates a border (OpenCV clamps taps to the image)."""
    rgb = np.random.default_rng(in_hw[0] * 1000 + out_hw[1]).integers(0, 256, in_hw + (3,), dtype=np.uint8)
    planes = np.full((3,) + out_hw, np.nan, np.float32)
    kernels.cubic_planes(rgb, planes, (0, 1, 2), (1, 1, 1), (0, 0, 0))
    assert np.abs(planes.transpose(1, 2, 0) - official_resize(rgb, out_hw)).max() < CUBIC_BOUND


def test_cubic_mono_and_rgba():
    photo = cv2.imread(data_file('natural_images/dav2_demo08.jpg'))
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(photo, cv2.COLOR_BGR2RGBA)
    for frame, rgb in ((decode_image(**image_fields(gray, 'mono8')), cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)),
                       (_rgba_frame(rgba), rgba[:, :, :3])):
        tensor, placement = RgbPreprocessor(rgb_input(None), Recipe(normalization='none')).tensor(frame)
        assert np.abs(grey_levels(tensor) - official_resize(rgb, placement.canvas_hw)).max() < CUBIC_BOUND


def _rgba_frame(rgba):
    h, w = rgba.shape[:2]
    return decode_image(h, w, 'rgba8', 0, w * 4, rgba.tobytes())


def test_cubic_from_padded_rows_into_nhwc_and_letterbox():
    """Rows with a stride (a message's step), an NHWC tensor (planes 12 bytes apart) and a letterbox
    rectangle: the same numbers as a plain NCHW tensor."""
    bgr = cv2.resize(cv2.imread(data_file('natural_images/dav2_demo08.jpg')), (333, 250))
    padded = np.zeros((250, 333 * 3 + 7), np.uint8)
    padded[:, :333 * 3] = bgr.reshape(250, -1)
    frame = decode_image(250, 333, 'bgr8', 0, 333 * 3 + 7, padded.tobytes())
    for canvas, mode in ((None, 'stretch'), ((518, 686), 'letterbox')):
        nchw, placement = RgbPreprocessor(rgb_input(canvas), Recipe(resize_mode=mode)).tensor(frame)
        nhwc, _ = RgbPreprocessor(rgb_input(canvas, 'NHWC'), Recipe(resize_mode=mode)).tensor(frame)
        np.testing.assert_array_equal(nhwc[0].transpose(2, 0, 1), nchw[0])
        t = placement.target
        content = nchw[0, :, t.y:t.y + t.height, t.x:t.x + t.width].transpose(1, 2, 0).astype(np.float64)
        official = official_resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (t.height, t.width))
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        assert np.abs(content - (official / 255 - mean) / std).max() < CUBIC_BOUND / 255 / 0.224
        if mode == 'letterbox':
            assert t.height < 518 and not nchw[0, :, :t.y].any() and not nchw[0, :, t.y + t.height:].any()


def _random_nv12(h, w, seed):
    """Every Y, U and V value, at random: the conversion's saturation and rounding everywhere."""
    return np.random.default_rng(seed).integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)


@pytest.mark.parametrize('encoding,code', [('nv12', cv2.COLOR_YUV2RGB_NV12), ('nv21', cv2.COLOR_YUV2RGB_NV21)])
def test_nv12_conversion_is_opencvs_to_the_bit(encoding, code):
    """At the frame's own size the cubic weights are 0, 1, 0, 0: the planes are the converted pixels
    themselves, which must be OpenCV's to the bit (any rectangle, odd corners included)."""
    nv12 = _random_nv12(64, 96, 1)
    rgb = cv2.cvtColor(nv12, code)
    for x, y, w, h in ((0, 0, 96, 64), (1, 3, 51, 40), (7, 0, 1, 1), (94, 62, 2, 2)):
        planes = np.empty((3, h, w), np.float32)
        kernels.cubic_planes_nv12(nv12, (x, y, w, h), encoding == 'nv21', planes, (0, 1, 2), (1, 1, 1), (0, 0, 0))
        np.testing.assert_array_equal(planes.transpose(1, 2, 0), rgb[y:y + h, x:x + w])


@pytest.mark.parametrize('mode,canvas', [('stretch', None), ('crop', (518, 686)), ('letterbox', (517, 685))])
def test_nv12_is_the_official_resize_of_opencvs_rgb(mode, canvas):
    """A 1080p camera frame: the same tensor as converting it whole with OpenCV, then resizing it."""
    bgr = cv2.resize(cv2.imread(data_file('natural_images/dav2_demo08.jpg')), (1920, 1080))
    frame = decode_image(1080, 1920, 'nv12', 0, 1920, bgr_to_nv12(bgr).tobytes())
    tensor, placement = RgbPreprocessor(rgb_input(canvas), Recipe(resize_mode=mode, normalization='none')).tensor(frame)
    s, t = placement.source, placement.target
    rgb = to_rgb(frame)[s.y:s.y + s.height, s.x:s.x + s.width]
    content = grey_levels(tensor)[t.y:t.y + t.height, t.x:t.x + t.width]
    assert np.abs(content - official_resize(rgb, (t.height, t.width))).max() < CUBIC_BOUND


def test_bad_buffers_are_errors_not_crashes():
    planes = np.empty((3, 4, 5), np.float32)
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match='float32'):
        kernels.cubic_planes(image, planes.astype(np.float64), (0, 1, 2), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match='uint8'):
        kernels.cubic_planes(image.astype(np.uint16), planes, (0, 1, 2), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match='channels'):
        kernels.cubic_planes(image, planes, (0, 1, 3), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match='3 planes'):
        kernels.cubic_planes(image, planes[:2], (0, 1, 2), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match='non-empty'):
        kernels.cubic_planes(image[:0], planes, (0, 1, 2), (1, 1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match='not inside'):
        kernels.cubic_planes_nv12(np.zeros((12, 8), np.uint8), (2, 2, 8, 4), False, planes, (0, 1, 2), (1, 1, 1),
                                  (0, 0, 0))
    with pytest.raises(ValueError, match='even'):
        kernels.cubic_planes_nv12(np.zeros((12, 7), np.uint8), (0, 0, 7, 8), False, planes, (0, 1, 2), (1, 1, 1),
                                  (0, 0, 0))
    with pytest.raises((ValueError, BufferError, TypeError)):
        kernels.align_corners(np.zeros((4, 4), np.float32), np.zeros((8, 8), np.float32)[::2, ::2])
    readonly = np.zeros((8, 8), np.float32)
    readonly.flags.writeable = False
    with pytest.raises((ValueError, BufferError, TypeError)):
        kernels.align_corners(np.zeros((4, 4), np.float32), readonly)
    with pytest.raises(ValueError, match='lut'):
        kernels.colormap_linear(np.zeros((4, 4), np.float32), np.zeros((8, 8, 3), np.uint8), bytes(10))
    with pytest.raises(ValueError, match='finite'):
        kernels.colormap_linear(np.zeros((4, 4), np.float32), np.zeros((8, 8, 3), np.uint8), bytes(768), 0, np.inf)


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


@pytest.mark.parametrize('in_hw,out_hw', [((518, 924), (1080, 1920)), ((518, 686), (375, 1242)),
                                          ((518, 686), (240, 320)), ((3, 4), (1, 5)), ((3, 4), (7, 1)),
                                          ((1, 1), (4, 6)), ((518, 1722), (375, 1242)), ((5, 6), (41, 43))])
def test_align_corners_is_the_official_formula(in_hw, out_hw):
    """On a rough random map (neighbours differ by up to the whole range). Measured max 1.2e-7
    of the range 1 (float32 rounding; PyTorch's own float32 positions are 4e-5 px off these)."""
    depth = np.random.default_rng(2).random(in_hw).astype(np.float32)
    out = np.full(out_hw, np.nan, np.float32)
    assert kernels.align_corners(depth, out) is out
    assert np.abs(out - official_align_corners(depth, out_hw)).max() < 1e-6


def test_align_corners_into_a_view():
    """Crop mode writes into a rectangle of the message buffer: rows with a stride; the model's
    content is a rectangle of its output (letterbox)."""
    depth = np.random.default_rng(3).random((30, 40)).astype(np.float32)
    buffer = np.full((50, 90), -1.0, np.float32)
    kernels.align_corners(depth[5:25, 5:35], buffer[5:45, 10:80])
    assert np.abs(buffer[5:45, 10:80] - official_align_corners(depth[5:25, 5:35], (40, 70))).max() < 1e-6
    assert (buffer[:5] == -1).all() and (buffer[:, :10] == -1).all() and (buffer[:, 80:] == -1).all()


# ---------------------------------------------------------------- colorizer

def centre_bilinear(gray: np.ndarray, out_hw: tuple) -> np.ndarray:
    """cv2.resize(INTER_LINEAR)'s pixel-centre map in float64: output i samples (i + 0.5) n / N - 0.5,
    clamped to the edge samples."""
    def taps(n_in, n_out):
        f = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        left = np.floor(f)
        frac = np.where(left < 0, 0, f - left)
        left = np.maximum(left, 0).astype(int)
        frac = np.where(left >= n_in - 1, 0, frac)
        left = np.minimum(left, n_in - 1)
        return left, np.minimum(left + 1, n_in - 1), frac
    g = gray.astype(np.float64)
    y0, y1, fy = taps(g.shape[0], out_hw[0])
    x0, x1, fx = taps(g.shape[1], out_hw[1])
    rows = g[:, x0] * (1 - fx) + g[:, x1] * fx
    return rows[y0] * (1 - fy)[:, None] + rows[y1] * fy[:, None]


@pytest.mark.parametrize('in_hw,out_hw', [((518, 924), (1080, 1920)), ((37, 53), (37, 53)), ((518, 686), (240, 320)),
                                          ((1, 1), (3, 5)), ((20, 30), (41, 7))])
def test_colormap_picture_is_the_pixel_centre_resize(in_hw, out_hw):
    """The grey picture's levels are the bilinear resize rounded to nearest (a level off only where
    float32 and float64 round a half differently), within one level of OpenCV's 8-bit resize."""
    gray = cv2.GaussianBlur(np.random.default_rng(5).integers(0, 256, in_hw, dtype=np.uint8), (0, 0), 2)
    out = np.zeros(out_hw + (3,), np.uint8)
    kernels.colormap_linear(gray.astype(np.float32), out, postprocess._colormap_lut('gray'))
    levels = out[:, :, 0].astype(int)
    exact = centre_bilinear(gray, out_hw)
    assert np.abs(levels - exact).max() <= 0.5 + 1e-3
    assert np.abs(levels - cv2.resize(gray, out_hw[::-1], interpolation=cv2.INTER_LINEAR)).max() <= 1


def test_colormap_levels_clip_and_nan_is_the_lowest():
    """Values below the range take level 0, above it (+inf, 1e30 included) 255, NaN 0: as OpenCV's
    saturating conversion to 8 bits after capping at the top of the range."""
    values = np.array([[-np.inf, -1e30, -5.0, 0.0, 1.0, 2.0, 3.0, 9.0, 1e30, np.inf, np.nan]], np.float32)
    out = np.zeros((1, values.shape[1], 3), np.uint8)
    assert kernels.colormap_linear(values, out, postprocess._colormap_lut('gray'), 1.0, 127.5) == 3  # NaN, +-inf
    assert out[0, :, 0].tolist() == [0, 0, 0, 0, 0, 128, 255, 255, 255, 255, 0]
    assert kernels.colormap_linear(values[:, 1:-3], np.zeros((40, 90, 3), np.uint8), bytes(768), 1.0, 127.5) == 0


@pytest.mark.parametrize('colormap', sorted(COLORMAPS))
@pytest.mark.parametrize('width', [53, 64, 203])  # AVX-512 looks 64 pixels up at once, the rest one by one
def test_colormap_is_opencvs(colormap, width):
    gray8 = np.random.default_rng(4).integers(0, 256, (37, width), dtype=np.uint8)
    gray8[0, :3] = (0, 128, 255)
    expected = cv2.cvtColor(gray8, cv2.COLOR_GRAY2BGR) if COLORMAPS[colormap] is None \
        else cv2.applyColorMap(gray8, COLORMAPS[colormap])
    out = np.zeros((37, width, 3), np.uint8)
    kernels.colormap_linear(gray8.astype(np.float32), out, postprocess._colormap_lut(colormap))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(Colorizer(colormap, 'fixed', fixed_range=(0, 255))(gray8.astype(np.float32)),
                                  expected)


def test_colormap_into_a_view():
    """Crop mode: the picture goes into the source rectangle of the message buffer, nothing beside it;
    letterbox: the model's content is a rectangle of its output."""
    depth = np.random.default_rng(6).random((30, 40)).astype(np.float32)
    buffer = np.full((50, 90, 3), 7, np.uint8)
    lut = postprocess._colormap_lut('inferno')
    kernels.colormap_linear(depth[5:25, 5:35], buffer[5:45, 10:81], lut, 0.2, 300.0)
    expected = np.zeros((40, 71, 3), np.uint8)
    kernels.colormap_linear(np.ascontiguousarray(depth[5:25, 5:35]), expected, lut, 0.2, 300.0)
    np.testing.assert_array_equal(buffer[5:45, 10:81], expected)
    assert (buffer[:5] == 7).all() and (buffer[45:] == 7).all() and (buffer[:, :10] == 7).all() \
        and (buffer[:, 81:] == 7).all()


@pytest.mark.parametrize('size', [1, 2, 3, 10, 20000])
@pytest.mark.parametrize('percentiles', [(2.0, 98.0), (0.0, 100.0), (50.0, 50.5)])
@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_percentiles_are_numpys(size, percentiles, dtype):
    """float32 values sorted as they are, interpolated in float64: np.percentile of their float64 copy."""
    values = np.random.default_rng(size).normal(size=size).astype(dtype)
    np.testing.assert_allclose(postprocess._percentiles(values.copy(), percentiles),
                               np.percentile(values.astype(np.float64), percentiles), rtol=0, atol=1e-12)


def test_percentiles_of_huge_values_do_not_overflow():
    values = np.array([-3.4e38, -3e38, 3e38, 3.4e38], np.float32)
    lo, hi = postprocess._percentiles(values, (2.0, 98.0))
    assert np.isfinite(lo) and np.isfinite(hi) and lo < -3e38 and hi > 3e38
