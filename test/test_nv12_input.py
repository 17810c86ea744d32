"""Nv12Preprocessor: NV12 and RGB frames to a model's NV12 planes (core/nv12_input.py).

References are computed independently with OpenCV (plane resizes, I420 conversion)."""
import cv2
import numpy as np

from depth_anything_ros.engines import TensorSpec
from depth_anything_ros.core.image_codec import Frame, decode_image
from depth_anything_ros.core.nv12_input import Nv12Preprocessor
from depth_anything_ros.core.placement import Rect
from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
from depth_anything_ros.core.recipe import IMAGENET_MEAN, Recipe

from helpers.frames import bgr_frame, nv12_frame, nv12_specs


def planes(feeds):
    return feeds['y'][0, :, :, 0], feeds['uv'][0]


def nv12_to_rgb(y, uv):
    return cv2.cvtColor(np.concatenate([y, uv.reshape(uv.shape[0], -1)]), cv2.COLOR_YUV2RGB_NV12)


def test_nv12_plane_resize_matches_reference(image):
    """Luma bicubic (as the RGB recipe), chroma bilinear (bicubic rings into colour fringes)."""
    frame = nv12_frame(image)
    pre = Nv12Preprocessor(nv12_specs(518, 686), Recipe(resize_mode='stretch'))
    feeds, placement = pre(frame)
    y, uv = planes(feeds)
    src_y, src_uv = frame.pixels[:720], frame.pixels[720:].reshape(360, 640, 2)
    np.testing.assert_array_equal(y, cv2.resize(src_y, (686, 518), interpolation=cv2.INTER_CUBIC))
    np.testing.assert_array_equal(uv, cv2.resize(src_uv, (343, 259), interpolation=cv2.INTER_LINEAR))
    assert feeds['y'].shape == (1, 518, 686, 1) and feeds['uv'].shape == (1, 259, 343, 2)
    assert placement.target.width == 686 and placement.source.width == 1280


def test_nv12_letterbox_is_even_aligned_and_padded_with_the_mean_colour(image):
    frame = nv12_frame(cv2.resize(image, (1280, 700)))  # content 686x375: odd height
    feeds, p = Nv12Preprocessor(nv12_specs(518, 686), Recipe(resize_mode='letterbox'))(frame)
    t = p.target
    assert all(v % 2 == 0 for v in (t.x, t.y, t.width, t.height)) and abs(t.height - 375) <= 2
    y, uv = planes(feeds)
    src_y, src_uv = frame.pixels[:700], frame.pixels[700:].reshape(350, 640, 2)
    np.testing.assert_array_equal(y[t.y:t.y + t.height],
                                  cv2.resize(src_y, (t.width, t.height), interpolation=cv2.INTER_CUBIC))
    np.testing.assert_array_equal(uv[t.y // 2:(t.y + t.height) // 2],
                                  cv2.resize(src_uv, (t.width // 2, t.height // 2),
                                             interpolation=cv2.INTER_LINEAR))
    # Padding decodes to the ImageNet mean, which is what the RGB path's zero pad means.
    pad_rgb = nv12_to_rgb(y[:2, :2], uv[:1, :1])[0, 0].astype(float)
    assert t.y > 0 and np.abs(pad_rgb - np.array(IMAGENET_MEAN) * 255).max() <= 1.5


def test_nv12_crop_cuts_chroma_at_even_positions(image):
    pre = Nv12Preprocessor(nv12_specs(518, 686), Recipe(resize_mode='crop'))
    # place() crops x 163..1117 (954 wide); chroma pairs force 162..1118.
    assert pre.placement(bgr_frame(image)).source == Rect(163, 0, 954, 720)
    feeds, p = pre(nv12_frame(image))
    assert p.source == Rect(162, 0, 956, 720)
    src_y = nv12_frame(image).pixels[:720, 162:162 + 956]
    np.testing.assert_array_equal(planes(feeds)[0],
                                  cv2.resize(src_y, (686, 518), interpolation=cv2.INTER_CUBIC))


def test_rgb_frames_are_resized_then_converted_to_nv12(image):
    feeds, _ = Nv12Preprocessor(nv12_specs(140, 182), Recipe(resize_mode='stretch'))(bgr_frame(image))
    # Independent reference: resize in BGR, OpenCV I420, interleave U and V.
    small = cv2.resize(image, (182, 140), interpolation=cv2.INTER_LINEAR)
    i420 = cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    n = 140 * 182
    u, v = i420[n:n + n // 4].reshape(70, 91), i420[n + n // 4:].reshape(70, 91)
    y, uv = planes(feeds)
    np.testing.assert_array_equal(y, i420[:n].reshape(140, 182))
    np.testing.assert_array_equal(uv[..., 0], u)
    np.testing.assert_array_equal(uv[..., 1], v)


def test_padded_rows_nv21_and_packed_give_the_same_planes(image):
    frame = nv12_frame(image)
    specs = nv12_specs(140, 182)
    ref_y, ref_uv = planes(Nv12Preprocessor(specs, Recipe(resize_mode='letterbox'))(frame)[0])
    # A camera message with 64 padding bytes per row.
    step = 1280 + 64
    padded = np.zeros((1080, step), np.uint8)
    padded[:, :1280] = frame.pixels
    msg = decode_image(720, 1280, 'nv12', 0, step, padded.tobytes())
    y, uv = planes(Nv12Preprocessor(specs, Recipe(resize_mode='letterbox'))(msg)[0])
    assert np.array_equal(y, ref_y) and np.array_equal(uv, ref_uv)
    nv21 = frame.pixels.copy()
    nv21[720:] = frame.pixels[720:].reshape(360, 640, 2)[..., ::-1].reshape(360, 1280)
    y21, uv21 = planes(Nv12Preprocessor(specs, Recipe(resize_mode='letterbox'))(Frame('nv21', nv21, 720, 1280))[0])
    assert np.array_equal(y21, ref_y) and np.array_equal(uv21, ref_uv)
    packed_spec = [TensorSpec('nv12', (1, 210, 182, 1), np.dtype(np.uint8), 'NHWC')]
    packed = Nv12Preprocessor(packed_spec, Recipe(resize_mode='letterbox'))(frame)[0]['nv12'][0, :, :, 0]
    assert np.array_equal(packed[:140], ref_y) and np.array_equal(packed[140:], ref_uv.reshape(70, 182))


def test_nv12_model_input_close_to_the_rgb_path(image):
    """What the model sees: NV12 feeds decoded vs the RGB path on the same frame
    decoded to RGB. Differences: bilinear planes vs bicubic RGB, chroma resampling."""
    frame = nv12_frame(image)
    feeds, p = Nv12Preprocessor(nv12_specs(518, 686), Recipe(resize_mode='stretch'))(frame)
    seen = nv12_to_rgb(*planes(feeds)).astype(np.float32)
    rgb = cv2.cvtColor(frame.pixels, cv2.COLOR_YUV2RGB_NV12)
    tensor, p_ref = RgbPreprocessor(rgb_input((518, 686)), Recipe(resize_mode='stretch', normalization='none')).tensor(
        Frame('rgb8', rgb, 720, 1280))
    diff = np.abs(seen - tensor[0].transpose(1, 2, 0) * 255)
    assert p == p_ref
    # Measured: mean 0.86, 99th percentile 6.6 grey levels (edges).
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 10
