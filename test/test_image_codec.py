"""sensor_msgs/Image fields <-> numpy: every encoding, padded rows, malformed input."""
import array

import cv2
import numpy as np
import pytest

from depth_anything_ros.image_codec import (
    SUPPORTED_ENCODINGS, ImageFormatError, canonical_encoding, decode_image, image_fields, to_rgb)

from conftest import shared_data

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
    bgr = cv2.imread(shared_data('nyu_depth_v2/rgb/rgb_00000.jpg'))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    nv = _nv(rgb, 'nv12')
    step, data = _pack_rows(nv, 64)
    out = to_rgb(decode_image(h, w, 'nv12', 0, step, data))
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert err.mean() < 2.0, err.mean()   # measured 1.07: edges lose chroma detail, the bulk is close


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
                'yuyv', 'uyvy', 'yuv422', 'yuv422_yuy2'):
        assert enc in SUPPORTED_ENCODINGS
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
    ('nv12', W, H * 3 // 2), ('yuyv', 2 * W, H)])
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
        decode_image(H, W, 'bayer_rggb8', 0, W, bytes(W * H))


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


@pytest.mark.parametrize('pixels,encoding', [
    (np.zeros((H, W), np.float64), '32FC1'),
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
