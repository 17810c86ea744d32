"""Property-based fuzzing of everything a message's bytes reach before and after the model.

Whatever arrives, decoding either raises ImageFormatError (the node counts it as a bad
frame) or gives an image to_rgb turns into HxWx3 uint8; the postprocessing never raises
on any float the model may output (NaN and inf included) and keeps shapes and dtypes.
"""
import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from depth_anything_ros.core.image_codec import (
    SUPPORTED_ENCODINGS, ImageFormatError, decode_compressed, decode_image, to_rgb)
from depth_anything_ros.core.postprocess import COLORMAPS, RANGE_MODES, Colorizer, restore_depth
from depth_anything_ros.core.placement import place
from depth_anything_ros.core.recipe import RESIZE_MODES
from depth_anything_ros.core.temporal import DepthSmoother

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes per row and rows, per canonical encoding, to aim lengths and steps near the edge.
_LAYOUT = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'mono16': 2,
           'yuyv': 2, 'uyvy': 2, 'yuv422': 2, 'yuv422_yuy2': 2, 'nv12': 1, 'nv21': 1,
           'bayer_rggb8': 1, 'bayer_bggr8': 1, 'bayer_gbrg8': 1, 'bayer_grbg8': 1}

# Supported names twice over: most messages should get past the name check.
encodings = st.one_of(
    st.sampled_from(SUPPORTED_ENCODINGS),
    st.sampled_from(SUPPORTED_ENCODINGS),
    st.sampled_from(SUPPORTED_ENCODINGS).map(lambda e: f' {e.upper()} '),   # spelling variants
    st.sampled_from(['32FC1', '16UC1', 'bayer_rggb16', 'rgb16', '8UC3', '', 'nv', 'yuv420']),
    st.text(max_size=12),
)
sizes = st.one_of(st.integers(1, 64), st.integers(1, 64), st.integers(-2, 0),
                  st.sampled_from([480, 481, 720, 1080]))


def _payload(draw, need):
    """Random bytes, mostly sized around `need` (the minimum that decodes)."""
    length = draw(st.one_of(
        st.integers(0, 64),
        st.sampled_from([max(need - 1, 0), need, need + 1]),
        st.sampled_from([need, need + 3]),
        st.integers(max(need - 16, 0), need + 64),
    ))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()


@st.composite
def image_messages(draw):
    encoding = draw(encodings)
    height, width = draw(sizes), draw(sizes)
    per_pixel = _LAYOUT.get(encoding.strip().lower(), draw(st.integers(1, 4)))
    row_bytes = max(width, 0) * per_pixel
    step = draw(st.one_of(
        st.integers(-4, 300),
        st.sampled_from([row_bytes, row_bytes + 1, row_bytes + 7]),
        st.sampled_from([row_bytes - 1, row_bytes, row_bytes + 64]),
    ))
    rows = max(height, 1) * (3 if encoding.strip().lower() in ('nv12', 'nv21') else 2) // 2
    need = max(step, 0) * (rows - 1) + row_bytes
    data = _payload(draw, min(need, 8_000_000))
    wrap = draw(st.sampled_from([bytes, bytearray, memoryview]))
    return height, width, encoding, draw(st.integers(0, 1)), step, wrap(data)


@st.composite
def plausible_messages(draw):
    """Supported, well-formed-looking messages (boundaries explored by the test above
    rarely get this far): random pixels, padded rows, some one byte short."""
    encoding = draw(st.sampled_from([e for e in SUPPORTED_ENCODINGS if e in _LAYOUT]))
    height, width = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    if draw(st.booleans()):                        # 4:2:0 and 4:2:2 want even sizes
        height, width = height + height % 2, width + width % 2
    row_bytes = width * _LAYOUT[encoding]
    step = row_bytes + draw(st.integers(0, 9))
    rows = height * 3 // 2 if encoding in ('nv12', 'nv21') else height
    need = step * (rows - 1) + row_bytes
    length = need + draw(st.sampled_from([-1, 0, 0, 0, 5]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    data = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    return height, width, encoding, draw(st.integers(0, 1)), step, data


def _check_frame(frame, height=None, width=None):
    if height is not None:
        assert (frame.height, frame.width) == (height, width)
    rgb = to_rgb(frame)
    assert isinstance(rgb, np.ndarray)
    assert rgb.shape == (frame.height, frame.width, 3) and rgb.dtype == np.uint8


@FUZZ
@given(image_messages())
@example((24, 32, 'bayer_rggb8', 0, 32, bytes(24 * 32)))
@example((1, 1, 'bayer_bggr8', 1, 1, b'\x07'))
@example((2, 2, 'nv12', 0, 2, bytes(6)))
@example((1, 2, 'yuyv', 0, 4, bytes(4)))
@example((3, 1, 'mono16', 1, 2, bytes(6)))
@example((4, 4, 'rgb8', 0, 11, bytes(100)))                      # step below a row
@example((10 ** 6, 10 ** 6, 'rgb8', 0, 3 * 10 ** 6, bytes(9)))  # absurd sizes, no data
@example((2, 2, 'png', 0, 0, b'PF\n1 1\n-1.0\n' + bytes(12)))   # a float PFM inside an Image
def test_decode_image_only_raises_format_errors(message):
    _decode_or_reject(message)


@FUZZ
@given(plausible_messages())
def test_plausible_messages_decode_or_raise_format_errors(message):
    _decode_or_reject(message)


def _decode_or_reject(message):
    """A message either decodes to a consistent frame or raises ImageFormatError, nothing else."""
    height, width, encoding, is_bigendian, step, data = message
    try:
        frame = decode_image(height, width, encoding, is_bigendian, step, data)
    except ImageFormatError:
        event('rejected')
        return
    event('decoded')
    compressed = encoding.strip().lower() in ('jpeg', 'mjpeg', 'png')  # sized by their own bytes
    _check_frame(frame, *(() if compressed else (height, width)))


def _real_encoded():
    bgr = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = [cv2.imencode(ext, img)[1].tobytes() for ext, img in [
        ('.jpg', bgr), ('.png', bgr), ('.png', bgr[:, :, 0]),
        ('.png', bgr.astype(np.uint16) * 257), ('.png', cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)),
        ('.bmp', bgr), ('.ppm', bgr)]]
    return out


REAL = _real_encoded()


@st.composite
def mangled(draw):
    """A real jpeg/png/bmp/ppm cut short, with bytes flipped, or glued to junk: reaches
    deeper into the decoders than uniform random bytes do."""
    data = bytearray(draw(st.sampled_from(REAL)))
    data = data[:draw(st.one_of(st.just(len(data)), st.integers(0, len(data))))]
    for _ in range(draw(st.integers(0, 4))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    return bytes(data) + draw(st.binary(max_size=16))


@FUZZ
@given(st.one_of(st.binary(max_size=512), mangled()),
       st.sampled_from(['jpeg', 'png', 'bgr8; jpeg compressed bgr8', '']))
@example(b'P6\n100000 100000\n255\n' + bytes(30), 'jpeg')    # OpenCV's size assertion
@example(b'PF\n1 1\n-1.0\n' + bytes(12), 'png')              # float pixels
@example(REAL[3], 'png')                                      # 16-bit colour
@example(REAL[4], 'png')                                      # with alpha
def test_decode_compressed_only_raises_format_errors(data, fmt):
    try:
        frame = decode_compressed(fmt, data)
    except ImageFormatError:
        event('rejected')
        return
    event('decoded')
    _check_frame(frame)


def test_unmangled_seeds_decode():
    """The property above is not vacuous: every jpeg/png seed decodes as it is (bmp and
    ppm are refused: CompressedImage carries jpeg or png)."""
    for payload in REAL[:-2]:
        frame = decode_compressed('x', payload)
        _check_frame(frame)
        assert (frame.height, frame.width) == (12, 16)
    for payload in REAL[-2:]:
        with pytest.raises(ImageFormatError, match='neither jpeg nor png'):
            decode_compressed('x', payload)


# ---------------------------------------------------------------- postprocessing

any_float32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
depth_maps = hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24),
                        elements=any_float32)


@st.composite
def placements(draw, canvas_hw):
    """Where an image of some size went on a model canvas (as the preprocessor decides)."""
    h, w = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    p = place((h, w), canvas_hw, draw(st.sampled_from(RESIZE_MODES)), 518)
    # Even extreme aspect ratios keep at least one pixel each way.
    for r in (p.source, p.target):
        assert r.width >= 1 and r.height >= 1, p
    return p


@FUZZ
@given(depth_maps, st.data(), st.sampled_from(sorted(COLORMAPS)), st.sampled_from(RANGE_MODES),
       st.tuples(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6)))
@example(np.full((3, 3), np.nan, np.float32), None, 'gray', 'smoothed', (0.0, 1.0))
@example(np.float32([[3.4e38, -3.4e38], [np.inf, -np.inf]]), None, 'jet', 'percentile', (0.0, 1.0))
@example(np.float32([[1e-45, 0.0], [-1e-45, 1e-38]]), None, 'inferno', 'minmax', (0.0, 1.0))
def test_colorizer_and_restore_never_raise(depth, data, colormap, range_mode, fixed):
    lo, span = fixed
    colorizer = Colorizer(colormap, range_mode, fixed_range=(lo, lo + span), smoothing=0.5)
    for _ in range(2):                                       # the smoothed state is used too
        out = colorizer(depth)
        assert out.shape == depth.shape + (3,) and out.dtype == np.uint8
        assert np.all(out[~np.isfinite(depth)] == 0)         # NaN/inf drawn black
    placement = None if data is None else data.draw(placements(depth.shape))
    if placement is None:
        return
    h, w = placement.image_hw
    restored = restore_depth(depth, placement)
    assert restored.shape == (h, w) and restored.dtype == np.float32
    out = colorizer(depth, placement)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8


@FUZZ
@given(depth_maps, depth_maps, st.floats(0.0, 0.99), st.floats(1e-3, 10.0))
def test_depth_smoother_never_raises(first, second, alpha, scene_cut):
    smoother = DepthSmoother(alpha, scene_cut)
    for frame in (first, second, second):
        out = smoother(frame)
        assert out.shape == frame.shape and out.dtype == np.float32
        # where the current frame is finite the output is too (overflowing blends fall back)
        assert np.isfinite(out[np.isfinite(frame)]).all()
