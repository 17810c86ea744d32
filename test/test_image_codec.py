"""sensor_msgs/Image fields <-> numpy: every encoding, padded rows, malformed input."""
import array

import cv2
import numpy as np
import pytest

from depth_anything_ros.core.image_codec import (
    SUPPORTED_ENCODINGS, ImageFormatError, canonical_encoding, decode_compressed, decode_image, image_fields,
    rgb_to_nv12, to_rgb)

from helpers import hostile_images
from helpers.data import data_file

H, W = 24, 32   # even sizes so that every encoding, 4:2:0 and 4:2:2 included, can hold them
PAD = 7         # odd on purpose: rows start at unaligned offsets


def _rng(seed=0):
    return np.random.default_rng(seed)


def _pack_rows(rows: np.ndarray, pad: int, seed: int = 1) -> tuple:
    """(step, data): `rows` (N, row_bytes uint8) with `pad` garbage bytes after every row."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    garbage = _rng(seed).integers(0, 256, (rows.shape[0], pad), dtype=np.uint8)
    padded = np.concatenate([rows, garbage], axis=1)
    return padded.shape[1], padded.tobytes()


def _random_rgb(h=H, w=W, seed=0):
    return _rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth_rgb(h=H, w=W):
    """A smooth colour image: chroma subsampling loses little on it."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 60 + 60 * x / (w - 1)           # about 2 levels per pixel
    g = 180 - 45 * y / (h - 1)
    b = 100 + 30 * np.sin(x / w * np.pi) * np.cos(y / h * np.pi)
    return np.clip(np.stack([r, g, b], -1), 0, 255).round().astype(np.uint8)


def _i420_planes(rgb):
    """Limited-range BT.601 Y (HxW), U and V (H/2 x W/2), as OpenCV's YUV->RGB decoders expect."""
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    y = i420[:h]
    u = i420[h:h + h // 4].reshape(h // 2, w // 2)
    v = i420[h + h // 4:].reshape(h // 2, w // 2)
    return y, u, v


def _nv(rgb, order):
    y, u, v = _i420_planes(rgb)
    first, second = (u, v) if order == 'nv12' else (v, u)
    chroma = np.stack([first, second], axis=-1).reshape(rgb.shape[0] // 2, rgb.shape[1])
    return np.concatenate([y, chroma], axis=0)            # (H*3/2) x W


def _yuv422(rgb, order):
    """Packed 4:2:2 (HxWx2) with chroma per horizontal pixel pair.

    Rows are duplicated before the 4:2:0 conversion, so each chroma row of the
    doubled image belongs to exactly one original row (4:2:2, not 4:2:0).
    """
    h, w = rgb.shape[:2]
    y, u, v = _i420_planes(np.repeat(rgb, 2, axis=0))
    y = y[::2]                                             # H x W
    out = np.empty((h, w, 2), np.uint8)
    if order == 'yuyv':
        out[:, :, 0] = y
        out[:, 0::2, 1] = u
        out[:, 1::2, 1] = v
    else:  # uyvy
        out[:, :, 1] = y
        out[:, 0::2, 0] = u
        out[:, 1::2, 0] = v
    return out


# ---------------------------------------------------------------- packed, exact

PACKED_CASES = {
    'rgb8': lambda rgb: rgb,
    'bgr8': lambda rgb: rgb[:, :, ::-1],
    'rgba8': lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)]),
    'bgra8': lambda rgb: np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 200, np.uint8)]),
}


@pytest.mark.parametrize('encoding', sorted(PACKED_CASES))
@pytest.mark.parametrize('pad', [0, PAD])
def test_packed_colour_round_trip(encoding, pad):
    rgb = _random_rgb()
    pixels = PACKED_CASES[encoding](rgb)
    step, data = _pack_rows(pixels.reshape(H, -1), pad)
    frame = decode_image(H, W, encoding, 0, step, data)
    assert frame.encoding == encoding
    assert (frame.height, frame.width) == (H, W)
    np.testing.assert_array_equal(frame.pixels, pixels)
    out = to_rgb(frame)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('pad', [0, PAD])
def test_mono8_round_trip(pad):
    gray = _rng(3).integers(0, 256, (H, W), dtype=np.uint8)
    step, data = _pack_rows(gray, pad)
    frame = decode_image(H, W, 'mono8', 0, step, data)
    assert frame.pixels.shape == (H, W)
    np.testing.assert_array_equal(frame.pixels, gray)
    np.testing.assert_array_equal(to_rgb(frame), np.dstack([gray] * 3))


@pytest.mark.parametrize('bigendian', [0, 1])
@pytest.mark.parametrize('pad', [0, PAD])
def test_mono16_round_trip(bigendian, pad):
    values = _rng(4).integers(0, 65536, (H, W)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0x0102, 0xFF00   # byte order matters for these
    raw = values.astype('>u2' if bigendian else '<u2').view(np.uint8).reshape(H, 2 * W)
    step, data = _pack_rows(raw, pad)
    frame = decode_image(H, W, 'mono16', bigendian, step, data)
    assert frame.pixels.dtype == np.uint16 and frame.pixels.dtype.isnative
    assert frame.pixels.shape == (H, W)
    np.testing.assert_array_equal(frame.pixels, values)
    # The RGB view shows the high byte.
    np.testing.assert_array_equal(to_rgb(frame), np.dstack([(values >> 8).astype(np.uint8)] * 3))


@pytest.mark.parametrize('data', [None, object(), 3.5])
def test_any_decoder_failure_is_an_image_format_error(data):
    """Not a buffer at all: whatever numpy raises inside comes out as a bad image, the one
    exception the node counts (anything else would escape its callback and end the node)."""
    with pytest.raises(ImageFormatError, match='cannot decode'):
        decode_image(2, 2, 'mono16', 0, 4, data)
    with pytest.raises(ImageFormatError):
        decode_compressed('jpeg', data)


def test_mono16_byte_order_is_honoured():
    raw = bytes([0x01, 0x02])
    assert decode_image(1, 1, 'mono16', 0, 2, raw).pixels[0, 0] == 0x0201
    assert decode_image(1, 1, 'mono16', 1, 2, raw).pixels[0, 0] == 0x0102


# ---------------------------------------------------------------- YUV, tolerant

@pytest.mark.parametrize('encoding', ['nv12', 'nv21'])
@pytest.mark.parametrize('pad', [0, PAD])
def test_nv_round_trip(encoding, pad):
    rgb = _smooth_rgb()
    nv = _nv(rgb, encoding)
    step, data = _pack_rows(nv, pad)
    frame = decode_image(H, W, encoding, 0, step, data)
    np.testing.assert_array_equal(frame.pixels, nv)
    out = to_rgb(frame)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    # Exactly what OpenCV gives on the unpadded buffer: padding handled right.
    code = cv2.COLOR_YUV2RGB_NV12 if encoding == 'nv12' else cv2.COLOR_YUV2RGB_NV21
    np.testing.assert_array_equal(out, cv2.cvtColor(nv, code))
    # And close to the source image (limited-range rounding + 4:2:0 subsampling).
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert err.max() <= 6, err.max()
    assert err.mean() < 2.0, err.mean()


def test_nv12_and_nv21_chroma_order_differs():
    rgb = _smooth_rgb()
    nv = _nv(rgb, 'nv12')
    as_nv12 = to_rgb(decode_image(H, W, 'nv12', 0, W, nv.tobytes()))
    as_nv21 = to_rgb(decode_image(H, W, 'nv21', 0, W, nv.tobytes()))
    # Reading U/V swapped must give visibly wrong colours.
    assert np.abs(as_nv21.astype(int) - rgb.astype(int)).mean() > 10
    assert np.abs(as_nv12.astype(int) - rgb.astype(int)).mean() < 2


@pytest.mark.parametrize('encoding,layout', [('yuyv', 'yuyv'), ('yuv422_yuy2', 'yuyv'),
                                             ('uyvy', 'uyvy'), ('yuv422', 'uyvy'),
                                             ('YUV422_YUY2', 'yuyv')])
@pytest.mark.parametrize('pad', [0, PAD])
def test_yuv422_round_trip(encoding, layout, pad):
    rgb = _smooth_rgb()
    packed = _yuv422(rgb, layout)
    step, data = _pack_rows(packed.reshape(H, 2 * W), pad)
    frame = decode_image(H, W, encoding, 0, step, data)
    assert frame.encoding == layout
    np.testing.assert_array_equal(frame.pixels, packed)
    out = to_rgb(frame)
    code = cv2.COLOR_YUV2RGB_YUYV if layout == 'yuyv' else cv2.COLOR_YUV2RGB_UYVY
    np.testing.assert_array_equal(out, cv2.cvtColor(packed, code))
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert err.max() <= 6, err.max()
    assert err.mean() < 2.0, err.mean()


def test_real_photo_nv12_close_to_rgb():
    bgr = cv2.imread(data_file('redwood_synthetic/color/00000.jpg'))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    nv = _nv(rgb, 'nv12')
    step, data = _pack_rows(nv, 64)
    out = to_rgb(decode_image(h, w, 'nv12', 0, step, data))
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert err.mean() < 2.0, err.mean()   # measured 1.07: edges lose chroma detail, the bulk is close


# ---------------------------------------------------------------- NV12 colour ranges

def _jfif_nv(rgb, order):
    """Full-range (JFIF) 4:2:0 by the textbook formulas, chroma the mean of each 2x2 block."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    h, w = y.shape
    block = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
    first, second = (block(u), block(v)) if order == 'nv12' else (block(v), block(u))
    chroma = np.stack([first, second], axis=-1).reshape(h // 2, w)
    return np.clip(np.rint(np.concatenate([y, chroma])), 0, 255).astype(np.uint8)


@pytest.mark.parametrize('encoding', ['nv12', 'nv21'])
def test_full_range_nv12_decodes_in_its_range(encoding):
    """nv12_range 'full': a JPEG-style full-range frame decodes back to its colours; read as video
    range (OpenCV's convention) its contrast is stretched by 255/219: dark greys darker, light
    greys lighter by 10-20 levels."""
    rgb = _smooth_rgb()
    rgb[:2, :4] = 40
    rgb[2:4, :4] = 220
    nv = _jfif_nv(rgb, encoding)
    frame = decode_image(H, W, encoding, 0, W, nv.tobytes())
    full = to_rgb(frame, 'full')
    err = np.abs(full.astype(int) - rgb.astype(int))
    assert err.max() <= 3 and err.mean() < 1.0, (err.max(), err.mean())
    video = to_rgb(frame).astype(int)
    assert 26 <= video[:2, :4].min() and video[:2, :4].max() <= 30      # 1.164 (40 - 16)
    assert 235 <= video[2:4, :4].min() and video[2:4, :4].max() <= 239  # 1.164 (220 - 16)


def test_full_range_encoding_is_jfifs():
    rgb = _smooth_rgb()
    got = rgb_to_nv12(rgb, 'full').astype(int)
    assert np.abs(got - _jfif_nv(rgb, 'nv12').astype(int)).max() <= 1
    np.testing.assert_array_equal(rgb_to_nv12(rgb), _nv(rgb, 'nv12'))   # video range: OpenCV's, unchanged
    black, white = (rgb_to_nv12(np.full((2, 2, 3), v, np.uint8), r)[0, 0] for v, r in
                    ((0, 'full'), (255, 'full')))
    assert (black, white) == (0, 255)
    with pytest.raises(ValueError, match='nv12_range|NV12 range'):
        rgb_to_nv12(rgb, 'studio')


# ---------------------------------------------------------------- Bayer, demosaiced

BAYER = ('bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8')


def _mosaic(rgb, encoding):
    """Sample each pixel's one colour as the ROS name says: its letters are the top-left
    2x2 block of the sensor, row by row (rggb: R G / G B)."""
    pattern = encoding.split('_')[1][:4]
    channel = np.array(['rgb'.index(c) for c in pattern]).reshape(2, 2)
    y, x = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    return rgb[y, x, channel[y % 2, x % 2]]


@pytest.mark.parametrize('encoding', BAYER)
@pytest.mark.parametrize('colour', [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 120, 40)])
def test_bayer_flat_colour_survives(encoding, colour):
    """A flat red image stays red (and so on): the ROS->OpenCV pattern mapping is right."""
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = colour
    mosaic = _mosaic(rgb, encoding)
    frame = decode_image(H, W, encoding, 0, W, mosaic.tobytes())
    assert frame.encoding == encoding and frame.pixels.shape == (H, W)
    np.testing.assert_array_equal(frame.pixels, mosaic)
    out = to_rgb(frame)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1:-1, 1:-1], rgb[1:-1, 1:-1])    # interior exact
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert err.mean() < 5, err.mean()                                  # borders close


@pytest.mark.parametrize('encoding', BAYER)
@pytest.mark.parametrize('pad', [0, PAD])
def test_bayer_smooth_image_round_trip(encoding, pad):
    rgb = _smooth_rgb()
    mosaic = _mosaic(rgb, encoding)
    step, data = _pack_rows(mosaic, pad)
    out = to_rgb(decode_image(H, W, encoding, 0, step, data))
    err = np.abs(out[1:-1, 1:-1].astype(int) - rgb[1:-1, 1:-1].astype(int))
    assert err.max() <= 3, err.max()          # bilinear demosaicing of a smooth image: measured 1
    # any other pattern name reads the same bytes as visibly wrong colours
    for other in BAYER:
        if other != encoding:
            wrong = to_rgb(decode_image(H, W, other, 0, step, data))
            assert np.abs(wrong.astype(int) - rgb.astype(int)).mean() > 10, other


def test_bayer_real_photo_close_to_rgb():
    rgb = cv2.cvtColor(cv2.imread(data_file('redwood_synthetic/color/00000.jpg')), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    step, data = _pack_rows(_mosaic(rgb, 'bayer_rggb8'), 64)
    out = to_rgb(decode_image(h, w, 'bayer_rggb8', 0, step, data))
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert err.mean() < 4.0, err.mean()       # measured 2.3: edges lose detail, the bulk is close


@pytest.mark.parametrize('h,w', [(1, 1), (1, 5), (3, 1), (3, 3), (5, 7)])
def test_bayer_tiny_and_odd_sizes(h, w):
    frame = decode_image(h, w, 'bayer_gbrg8', 0, w, bytes(range(h * w)))
    assert to_rgb(frame).shape == (h, w, 3)


# ---------------------------------------------------------------- input types, views

@pytest.mark.parametrize('wrap', [bytes, bytearray, lambda b: array.array('B', b), memoryview])
def test_data_containers(wrap):
    rgb = _random_rgb()
    frame = decode_image(H, W, 'rgb8', 0, 3 * W, wrap(rgb.tobytes()))
    np.testing.assert_array_equal(to_rgb(frame), rgb)


def test_decode_is_zero_copy_and_read_only():
    rgb = _random_rgb()
    step, data = _pack_rows(rgb.reshape(H, -1), PAD)
    buf = bytearray(data)
    frame = decode_image(H, W, 'rgb8', 0, step, buf)
    assert np.shares_memory(frame.pixels, np.frombuffer(buf, np.uint8))
    assert not frame.pixels.flags.writeable


def test_supported_encodings_and_aliases():
    for enc in ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', 'nv12', 'nv21',
                'yuyv', 'uyvy', 'yuv422', 'yuv422_yuy2',
                'bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8'):
        assert enc in SUPPORTED_ENCODINGS
    # every listed name decodes (nothing listed that decode_image would reject by name)
    png = cv2.imencode('.png', np.zeros((2, 2), np.uint8))[1].tobytes()
    for enc in SUPPORTED_ENCODINGS:
        try:
            frame = decode_image(2, 2, enc, 0, 8, bytes(64))
        except ImageFormatError:
            frame = decode_image(2, 2, enc, 0, 8, png)      # compressed-in-Image names
        assert to_rgb(frame).shape == (2, 2, 3)
    assert canonical_encoding(' BGR8 ') == 'bgr8'
    assert canonical_encoding('yuv422') == 'uyvy'
    assert canonical_encoding('yuv422_yuy2') == 'yuyv'


# ---------------------------------------------------------------- malformed input

def test_step_smaller_than_row_rejected():
    with pytest.raises(ImageFormatError, match='step'):
        decode_image(H, W, 'rgb8', 0, 3 * W - 1, bytes(3 * W * H))
    with pytest.raises(ImageFormatError, match='step'):
        decode_image(H, W, 'mono16', 0, W, bytes(2 * W * H))
    with pytest.raises(ImageFormatError, match='step'):
        decode_image(H, W, 'nv12', 0, W - 2, bytes(W * H * 2))


@pytest.mark.parametrize('encoding,row_bytes,rows', [
    ('rgb8', 3 * W, H), ('bgra8', 4 * W, H), ('mono16', 2 * W, H),
    ('nv12', W, H * 3 // 2), ('yuyv', 2 * W, H), ('bayer_grbg8', W, H)])
def test_truncated_data_rejected(encoding, row_bytes, rows):
    step = row_bytes + PAD
    enough = step * (rows - 1) + row_bytes
    decode_image(H, W, encoding, 0, step, bytes(enough))    # the minimum is accepted
    with pytest.raises(ImageFormatError, match='bytes'):
        decode_image(H, W, encoding, 0, step, bytes(enough - 1))
    with pytest.raises(ImageFormatError):
        decode_image(H, W, encoding, 0, step, b'')


def test_unknown_encoding_rejected():
    with pytest.raises(ImageFormatError, match='unsupported encoding'):
        decode_image(H, W, '32FC1', 0, 4 * W, bytes(4 * W * H))
    with pytest.raises(ImageFormatError, match='unsupported encoding'):
        decode_image(H, W, 'bayer_rggb16', 0, 2 * W, bytes(2 * W * H))


@pytest.mark.parametrize('h,w', [(0, W), (H, 0), (0, 0), (-1, W)])
def test_empty_size_rejected(h, w):
    with pytest.raises(ImageFormatError, match='empty'):
        decode_image(h, w, 'rgb8', 0, 3 * max(w, 1), bytes(3 * W * H))


@pytest.mark.parametrize('encoding,h,w', [('nv12', H, W + 1), ('nv12', H + 1, W),
                                          ('nv21', H + 1, W + 1), ('yuyv', H, W + 1),
                                          ('uyvy', H, W + 1), ('yuv422', H, W + 1)])
def test_odd_sizes_rejected(encoding, h, w):
    with pytest.raises(ImageFormatError, match='even'):
        decode_image(h, w, encoding, 0, 4 * w, bytes(4 * w * 2 * h))


def test_yuv422_odd_height_is_fine():
    rgb = _smooth_rgb(H + 1, W)
    packed = _yuv422(rgb[:H], 'yuyv')
    packed = np.concatenate([packed, packed[-1:]], axis=0)
    frame = decode_image(H + 1, W, 'yuyv', 0, 2 * W, packed.tobytes())
    assert to_rgb(frame).shape == (H + 1, W, 3)


def test_image_format_error_is_value_error():
    assert issubclass(ImageFormatError, ValueError)


# ---------------------------------------------------------------- image_fields

def test_image_fields_32fc1():
    depth = _rng(5).normal(size=(H, W)).astype(np.float32)
    depth[0, 0] = np.nan
    fields = image_fields(depth, '32FC1')
    assert isinstance(fields['data'], array.array) and fields['data'].typecode == 'B'
    assert (fields['height'], fields['width']) == (H, W)
    assert fields['encoding'] == '32FC1' and fields['is_bigendian'] == 0
    assert fields['step'] == 4 * W
    assert len(fields['data']) == 4 * W * H
    back = np.frombuffer(fields['data'], dtype=np.float32).reshape(H, W)
    np.testing.assert_array_equal(back, depth)   # NaN compares equal here


def test_image_fields_bgr8_and_non_contiguous_input():
    bgr = _random_rgb(H, 2 * W)[:, ::2]           # strided view
    assert not bgr.flags.c_contiguous
    fields = image_fields(bgr, 'bgr8')
    assert isinstance(fields['data'], array.array) and fields['data'].typecode == 'B'
    assert fields['step'] == 3 * W
    back = np.frombuffer(fields['data'], dtype=np.uint8).reshape(H, W, 3)
    np.testing.assert_array_equal(back, bgr)
    frame = decode_image(**fields)
    np.testing.assert_array_equal(to_rgb(frame), bgr[:, :, ::-1])


def test_image_fields_16uc1_is_little_endian():
    mm = _rng(6).integers(0, 65536, (H, W)).astype(np.uint16)
    mm[0, 0] = 0x0102
    fields = image_fields(mm, '16UC1')
    assert fields['encoding'] == '16UC1' and fields['is_bigendian'] == 0 and fields['step'] == 2 * W
    assert bytes(fields['data'][:2]) == bytes([0x02, 0x01])
    np.testing.assert_array_equal(np.frombuffer(fields['data'], '<u2').reshape(H, W), mm)
    # and decodes as the same numbers through the mono16 path (same layout)
    frame = decode_image(H, W, 'mono16', fields['is_bigendian'], fields['step'], fields['data'])
    np.testing.assert_array_equal(frame.pixels, mm)


@pytest.mark.parametrize('pixels,encoding', [
    (np.zeros((H, W), np.float64), '32FC1'),
    (np.zeros((H, W), np.int32), '16UC1'),
    (np.zeros((H, W, 1), np.uint16), '16UC1'),
    (np.zeros((H, W, 1), np.float32), '32FC1'),
    (np.zeros((H, W, 3), np.float32), 'bgr8'),
    (np.zeros((H, W), np.uint8), 'bgr8'),
    (np.zeros((H, W, 3), np.uint16), 'rgb8'),
])
def test_image_fields_wrong_dtype_or_shape(pixels, encoding):
    with pytest.raises(ValueError):
        image_fields(pixels, encoding)


def test_mjpeg_inside_an_image_message_is_decoded():
    """TROS's hobot_usb_cam publishes MJPEG bytes in sensor_msgs/Image."""
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 30, 30)
    ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    frame = decode_image(48, 64, 'mjpeg', 0, 0, jpeg.tobytes())
    assert (frame.height, frame.width) == (48, 64)
    assert np.abs(to_rgb(frame).astype(int) - rgb).mean() < 4
    with pytest.raises(ImageFormatError):
        decode_image(48, 64, 'jpeg', 0, 0, b'\xff\xd8 broken')


# ---------------------------------------------------------------- decode_compressed: hostile payloads

@pytest.mark.parametrize('payload', [
    b'P6\n100000 100000\n255\n' + bytes(30),        # a tiny header claiming 10^10 pixels
    b'PF\n60000 60000\n-1.0\n' + bytes(12),
])
def test_compressed_huge_header_is_a_format_error(payload):
    """Formats other than jpeg/png (OpenCV would read these, or raise cv2.error on their
    size) come out as ImageFormatError, which the node counts as a bad frame."""
    from depth_anything_ros.core.image_codec import decode_compressed
    with pytest.raises(ImageFormatError, match='neither jpeg nor png'):
        decode_compressed('jpeg', payload)


@pytest.mark.parametrize('payload', [
    b'PF\n1 1\n-1.0\n' + np.float32([0.5, 0.25, 1.0]).tobytes(),     # PFM colour
    b'Pf\n2 1\n-1.0\n' + np.float32([0.5, 0.25]).tobytes(),           # PFM grey
    cv2.imencode('.hdr', np.ones((2, 3, 3), np.float32))[1].tobytes(),
])
def test_compressed_float_image_is_a_format_error(payload):
    """imdecode reads float formats too; labelled bgr8/mono8 they reached the 8-bit
    preprocessing (which indexes a table with the pixels) as floats."""
    from depth_anything_ros.core.image_codec import decode_compressed
    assert cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED).dtype == np.float32
    with pytest.raises(ImageFormatError, match='neither jpeg nor png'):
        decode_compressed('png', payload)
    with pytest.raises(ImageFormatError):
        decode_image(1, 1, 'png', 0, 0, payload)


@pytest.mark.parametrize('encoding, dtype, shape', [('32FC1', np.float32, (5, 7)), ('bgr8', np.uint8, (5, 7, 3)),
                                                     ('16UC1', np.uint16, (5, 7))])
def test_image_buffer_shares_memory_with_the_message_data(encoding, dtype, shape):
    from depth_anything_ros.core.image_codec import image_buffer
    fields, view = image_buffer(5, 7, encoding)
    assert view.shape == shape and view.dtype == dtype and isinstance(fields['data'], array.array)
    view[...] = np.arange(view.size, dtype=dtype).reshape(shape)
    back = np.frombuffer(fields['data'], dtype).reshape(shape)
    np.testing.assert_array_equal(back, view)
    assert fields['step'] * fields['height'] == len(fields['data'])


def test_message_buffers_are_reused_once_nobody_holds_them():
    """The node publishes and drops each frame's messages: the next frame writes into the same memory
    (no allocation, no zeroing), whatever it held before."""
    from depth_anything_ros.core.image_codec import image_buffer
    fields, view = image_buffer(6, 8, '32FC1')
    view[...] = 7.0
    first = id(fields['data'])
    del fields, view
    fields, view = image_buffer(6, 8, '32FC1')
    assert id(fields['data']) == first
    assert (view == 7.0).all()                    # a reused buffer holds the last image: callers write every pixel


class KeptMessage:
    """What a subscriber or a test's sink keeps: a message holding the data array."""
    def __init__(self, fields):
        self.data = fields['data']


@pytest.mark.parametrize('keep', ['fields', 'view', 'slice', 'message'])
def test_a_buffer_held_anywhere_is_never_handed_out(keep):
    from depth_anything_ros.core.image_codec import BufferPool
    import depth_anything_ros.core.image_codec as codec
    pool = BufferPool()
    original, codec.MESSAGE_BUFFERS = codec.MESSAGE_BUFFERS, pool
    try:
        fields, view = codec.image_buffer(4, 5, 'bgr8')
        view[...] = 42
        kept = {'fields': fields, 'view': view, 'slice': view[1:, 2:], 'message': KeptMessage(fields)}[keep]
        del fields, view
        for _ in range(5):                          # more than the pool keeps per size
            other, other_view = codec.image_buffer(4, 5, 'bgr8')
            other_view[...] = 0
        assert pool.held() <= 3
        pixels = kept if keep in ('view', 'slice') else np.frombuffer(kept['data'] if keep == 'fields' else kept.data,
                                                                       np.uint8)
        assert (pixels == 42).all()
    finally:
        codec.MESSAGE_BUFFERS = original


def test_buffer_pool_keeps_a_few_buffers_of_the_last_sizes():
    from depth_anything_ros.core.image_codec import BufferPool
    pool = BufferPool(sizes=2, per_size=3)
    held = [pool.take(n) for n in (10, 10, 10, 10, 10, 20, 30)]
    assert pool.held() == 2                       # sizes 20 and 30: one each; size 10's gone
    assert [len(b) for b in held] == [10] * 5 + [20, 30]
    del held
    assert pool.held() == 2 and len(pool.take(30)) == 30


def test_buffer_pool_never_gives_one_buffer_to_two_threads():
    """Eight threads take a buffer each, all at once (a barrier), mark it, and look again once every
    thread has marked its own: a buffer given out twice shows another thread's mark."""
    from depth_anything_ros.core.image_codec import BufferPool
    import threading
    pool, threads_count = BufferPool(sizes=1, per_size=4), 8
    barrier, clashes = threading.Barrier(threads_count), []

    def worker(mark):
        for _ in range(30):
            view = np.frombuffer(pool.take(64), np.uint8)
            barrier.wait()
            view[...] = mark
            barrier.wait()
            if not (view == mark).all():
                clashes.append(mark)
            del view
            barrier.wait()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(1, threads_count + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not clashes and pool.held() == 4


# ---------------------------------------------------------------- pixel limit from the header (issue 11, B3)

@pytest.mark.parametrize('ext, shape', [('.jpg', (48, 64, 3)), ('.png', (30, 50)), ('.png', (7, 9, 4))])
def test_compressed_size_reads_the_header_of_real_files(ext, shape):
    from depth_anything_ros.core.image_codec import compressed_size
    data = cv2.imencode(ext, np.zeros(shape, np.uint8))[1]
    for form in (data.tobytes(), array.array('B', data.tobytes()), data, list(data.tobytes())):
        assert compressed_size(form) == (shape[1], shape[0])


def test_progressive_jpeg_with_metadata_segments_is_sized():
    from depth_anything_ros.core.image_codec import compressed_size
    ok, data = cv2.imencode('.jpg', np.zeros((33, 71, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    data = data.tobytes()
    app = b'\xff\xe1' + (2 + 5000).to_bytes(2, 'big') + bytes(5000)  # a large EXIF-like segment
    assert compressed_size(data[:2] + app + data[2:]) == (71, 33)


@pytest.mark.parametrize('make', ['jpeg', 'png'])
def test_header_over_the_pixel_limit_is_refused_before_decoding(make, monkeypatch):
    from depth_anything_ros.core import image_codec
    hostile = hostile_images
    data = hostile.jpeg_claiming(20000, 20000) if make == 'jpeg' else hostile.png_1bit(20000, 20000)
    assert len(data) < 60_000
    decoded = []
    monkeypatch.setattr(image_codec.cv2, 'imdecode', lambda *a: decoded.append(a))
    with pytest.raises(ImageFormatError, match='20000x20000 = 400.0 MP, over max_input_pixels'):
        image_codec.decode_compressed(make, data)
    with pytest.raises(ImageFormatError, match='over max_input_pixels'):
        decode_image(1, 1, make, 0, 0, data)
    assert decoded == []


def test_pixel_limit_is_a_parameter_and_applies_to_raw_images():
    from depth_anything_ros.core.image_codec import decode_compressed
    data = cv2.imencode('.png', np.zeros((30, 50), np.uint8))[1].tobytes()
    assert decode_compressed('png', data, max_pixels=1500).width == 50
    with pytest.raises(ImageFormatError, match='over max_input_pixels 1499'):
        decode_compressed('png', data, max_pixels=1499)
    with pytest.raises(ImageFormatError, match='3x1000 is over max_input_pixels 2999'):
        decode_image(1000, 3, 'mono8', 0, 3, bytes(3000), max_pixels=2999)


@pytest.mark.parametrize('payload, reason', [
    (b'\xff\xd8\xff\xda\x00\x02', 'no frame header'),       # scan before any SOF
    (b'\xff\xd8\x00\x00\x00\x00', 'marker expected'),
    (b'\xff\xd8\xff\xc0\x00\x11\x08', 'no frame header'),  # SOF cut short
    (b'\x89PNG\r\n\x1a\n\x00\x00', 'no IHDR'),
    (b'BM' + bytes(60), 'neither jpeg nor png'),
])
def test_broken_headers_are_format_errors(payload, reason):
    from depth_anything_ros.core.image_codec import compressed_size
    with pytest.raises(ImageFormatError, match=reason):
        compressed_size(payload)
