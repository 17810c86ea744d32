"""Camera messages to Frames (core/camera_messages.py) and outputs to topics and message fields
(core/output_topics.py): the one description the node and `bag` share, on any object with the fields."""
import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from depth_anything_ros.core.camera_messages import (CompressedFrame, RawFrame, camera_frame, check_camera_info,
                                                     stamp_ns)
from depth_anything_ros.core.frame_processor import FrameOutputs
from depth_anything_ros.core.image_codec import ImageFormatError, bgr_to_nv12, decode_image, encode_bgr
from depth_anything_ros.core.output_topics import (COLORIZED, CONFIDENCE, DEPTH, MILLIMETRES, POINTS, RELATIVE, SKY,
                                                   MessageBuffers, destinations, requested_outputs, routed)
from depth_anything_ros.core.params import defaults
from depth_anything_ros.core.pointcloud import pointcloud2_fields

from helpers import hostile_images
from helpers.frames import sample_bgr

BGR = sample_bgr(64, 48)


def image(**fields):
    """A sensor_msgs/Image as any message library has it: its fields."""
    return SimpleNamespace(**{**encode_bgr(BGR, 'bgr8'), **fields})


def compressed(fmt, data):
    return SimpleNamespace(format=fmt, data=data)


def jpeg(bgr=BGR) -> bytes:
    return cv2.imencode('.jpg', bgr)[1].tobytes()


def test_a_raw_image_is_viewed_on_arrival():
    msg = image()
    pending = camera_frame(msg)
    assert isinstance(pending, RawFrame)
    frame = pending.decode()
    assert (frame.encoding, frame.height, frame.width) == ('bgr8', 48, 64)
    np.testing.assert_array_equal(frame.pixels, BGR)
    assert np.shares_memory(frame.pixels, np.frombuffer(msg.data, np.uint8))   # a view, no copy


@pytest.mark.parametrize('make', [
    lambda: compressed('bgr8; jpeg compressed bgr8', jpeg()),            # image_transport's compressed
    lambda: image(encoding='mjpeg', height=48, width=64, step=0, data=jpeg()),   # hobot_usb_cam's MJPEG in an Image
    lambda: image(encoding='JPEG ', height=48, width=64, step=0, data=jpeg()),   # spelled loosely
])
def test_jpeg_is_header_checked_on_arrival_and_decoded_later(make, monkeypatch):
    from depth_anything_ros.core import image_codec
    decoded = []
    real = image_codec.cv2.imdecode
    monkeypatch.setattr(image_codec.cv2, 'imdecode', lambda *a: decoded.append(1) or real(*a))
    pending = camera_frame(make())
    assert isinstance(pending, CompressedFrame) and decoded == []
    frame = pending.decode()
    assert decoded == [1] and (frame.height, frame.width) == (48, 64)
    np.testing.assert_array_equal(frame.pixels, cv2.imdecode(np.frombuffer(jpeg(), np.uint8), cv2.IMREAD_COLOR))


@pytest.mark.parametrize('make', [
    lambda payload: compressed('jpeg', payload),
    lambda payload: image(encoding='jpeg', data=payload),
])
def test_a_header_over_the_pixel_limit_is_refused_on_arrival(make):
    with pytest.raises(ImageFormatError, match='20000x20000.*max_input_pixels'):
        camera_frame(make(hostile_images.jpeg_claiming(20000, 20000)))
    with pytest.raises(ImageFormatError, match='max_input_pixels 1000'):
        camera_frame(make(jpeg()), max_pixels=1000)


@pytest.mark.parametrize('fmt', ['16UC1; compressedDepth png', '32FC1; compressedDepth', 'compresseddepth'])
def test_a_compressed_depth_image_is_refused_whatever_it_holds(fmt):
    """image_transport's compressedDepth: a depth map, not a camera image, even when its bytes are a png."""
    png = cv2.imencode('.png', np.zeros((8, 8), np.uint16))[1].tobytes()
    with pytest.raises(ImageFormatError, match='compressed depth image, not a camera image'):
        camera_frame(compressed(fmt, png))


def test_tros_zero_copy_messages_use_their_data_size():
    """hbm_img_msgs/HbmMsg1080P: a fixed 6 MB buffer, a NUL-padded encoding, the image in data_size."""
    nv12 = bgr_to_nv12(BGR).tobytes()
    msg = SimpleNamespace(encoding=b'nv12' + b'\0' * 8, height=48, width=64, step=64,
                          data=nv12 + b'\xff' * (6220800 - len(nv12)), data_size=len(nv12))
    frame = camera_frame(msg).decode()
    assert (frame.encoding, frame.height, frame.width) == ('nv12', 48, 64)
    np.testing.assert_array_equal(frame.pixels, np.frombuffer(nv12, np.uint8).reshape(72, 64))


def test_the_same_frame_from_an_rclpy_message_and_from_plain_fields():
    from sensor_msgs.msg import Image
    fields = encode_bgr(BGR, 'rgb8')
    msg = Image()
    for name, value in fields.items():
        setattr(msg, name, value)
    ours = camera_frame(msg).decode()
    np.testing.assert_array_equal(ours.pixels, camera_frame(SimpleNamespace(**fields)).decode().pixels)
    np.testing.assert_array_equal(ours.pixels, decode_image(**fields).pixels)


@pytest.mark.dev_tools
def test_the_same_frame_from_a_rosbags_message():
    rosbags = pytest.importorskip('rosbags.typesys')
    types = rosbags.get_typestore(rosbags.Stores.ROS2_HUMBLE).types
    header = types['std_msgs/msg/Header'](stamp=types['builtin_interfaces/msg/Time'](sec=1, nanosec=2), frame_id='c')
    fields = encode_bgr(BGR, 'bgr8')
    msg = types['sensor_msgs/msg/Image'](header=header, **{**fields, 'data': np.frombuffer(fields['data'], np.uint8)})
    np.testing.assert_array_equal(camera_frame(msg).decode().pixels, BGR)
    assert stamp_ns(msg.header) == 1_000_000_002


@pytest.mark.parametrize('msg', [SimpleNamespace(), SimpleNamespace(format=None, data=b''),
                                 image(data=None), image(height='x')])
def test_whatever_the_fields_the_answer_is_image_format_error(msg):
    with pytest.raises(ImageFormatError):
        camera_frame(msg)


def test_stamps_and_camera_info():
    assert stamp_ns(SimpleNamespace(stamp=SimpleNamespace(sec=3, nanosec=7))) == 3_000_000_007
    k = [300.0, 0, 160, 0, 300, 120, 0, 0, 1]
    check_camera_info(SimpleNamespace(k=k, width=320, height=240), (640, 480))    # the same camera, twice the size
    with pytest.raises(ValueError, match='does not describe 80x240'):
        check_camera_info(SimpleNamespace(k=k, width=320, height=240), (80, 240))
    with pytest.raises(ValueError, match='focal'):
        check_camera_info(SimpleNamespace(k=[0.0] * 9, width=320, height=240))


# ---------------------------------------------------------------- outputs

def processor(metric=False, aligned=False, canonical=False):
    """What destinations() reads of a FrameProcessor: a metric model, a reference aligner, DA3Metric."""
    return SimpleNamespace(metric=metric or aligned or canonical, relative_fallback=aligned or canonical)


def asked(**publish):
    """requested_outputs of the node's parameters with these publish_* set."""
    return requested_outputs(defaults(**{f'publish_{k}': v for k, v in publish.items()}))


@pytest.mark.parametrize('proc, requested, expected', [
    (processor(), asked(), (DEPTH, COLORIZED)),
    (processor(), ('depth', 'colorized', 'depth_mm', 'points'), (DEPTH, COLORIZED)),   # relative: no metres
    (processor(metric=True), asked(depth_mm=True), (DEPTH, COLORIZED, MILLIMETRES)),
    (processor(metric=True), asked(points=True), (DEPTH, COLORIZED, POINTS)),
    (processor(aligned=True), asked(depth_mm=True, points=True), (DEPTH, COLORIZED, RELATIVE, MILLIMETRES, POINTS)),
    (processor(canonical=True), asked(points=True, sky=True), (DEPTH, COLORIZED, RELATIVE, POINTS, SKY)),
    (processor(), asked(confidence=True), (DEPTH, COLORIZED, CONFIDENCE)),
])
def test_destinations(proc, requested, expected):
    assert destinations(proc, requested) == expected


def test_topics_follow_the_depth_topic():
    assert [d.topic() for d in (DEPTH, RELATIVE, COLORIZED, MILLIMETRES, POINTS, CONFIDENCE, SKY)] == [
        'depth', 'depth/relative', 'depth/colorized', 'depth/mm', 'depth/points', 'depth/confidence', 'depth/sky']
    assert RELATIVE.topic('/cam/depth') == '/cam/depth/relative'


def finished(metres, colorized=True, mm=False, points=False):
    """A FrameOutputs as FrameProcessor.finish leaves it, written into MessageBuffers."""
    buffers = MessageBuffers()
    depth = buffers.depth_array(3, 4)
    depth[:] = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    out = FrameOutputs(depth, metres)
    if colorized:
        out.colorized = buffers.colorized_array(3, 4)
        out.colorized[:] = 7
    if mm:
        out.depth_mm = np.full((3, 4), 1500, np.uint16)
    if points:
        out.points = (np.ones((5, 3), np.float32), None)
    return out, buffers


def test_depth_is_written_straight_into_its_message():
    out, buffers = finished(True)
    assert buffers.depth['encoding'] == '32FC1' and buffers.colorized['encoding'] == 'bgr8'
    np.testing.assert_array_equal(np.frombuffer(buffers.depth['data'], np.float32).reshape(3, 4), out.depth)
    assert bytes(buffers.colorized['data']) == bytes([7]) * 36
    assert isinstance(buffers.depth['data'], array.array)   # what Humble's field checks take in milliseconds


@pytest.mark.parametrize('metres, aligner, expected', [(True, True, DEPTH), (False, True, RELATIVE),
                                                       (False, False, DEPTH), (True, False, DEPTH)])
def test_depth_goes_to_relative_only_when_a_reference_could_not_align_it(metres, aligner, expected):
    out, buffers = finished(metres, colorized=False)
    assert routed(out, buffers, aligner) == [(expected, buffers.depth)]


def test_every_output_routed_with_its_fields():
    out, buffers = finished(True, mm=True, points=True)
    out.confidence = np.full((3, 4), 2.5, np.float32)
    out.sky = np.zeros((3, 4), np.uint8)
    out.sky[0] = 255
    routes = dict(routed(out, buffers, True))
    assert list(routes) == [DEPTH, COLORIZED, MILLIMETRES, POINTS, CONFIDENCE, SKY]
    confidence, sky = routes[CONFIDENCE], routes[SKY]
    assert (confidence['encoding'], sky['encoding'], sky['step']) == ('32FC1', 'mono8', 4)
    np.testing.assert_array_equal(np.frombuffer(confidence['data'], '<f4').reshape(3, 4), out.confidence)
    np.testing.assert_array_equal(np.frombuffer(sky['data'], np.uint8).reshape(3, 4), out.sky)
    assert routes[COLORIZED] is buffers.colorized
    mm = routes[MILLIMETRES]
    assert (mm['encoding'], mm['step']) == ('16UC1', 8)
    np.testing.assert_array_equal(np.frombuffer(mm['data'], '<u2').reshape(3, 4), out.depth_mm)
    assert routes[POINTS] == pointcloud2_fields(*out.points)
