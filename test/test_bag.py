"""`depth-anything-ros bag`: rosbag2 in, rosbag2 with depth out (rosbags, no ROS install).

What this proves: from a bag of 5 bgr8 Images + CameraInfo (sqlite3 in, sqlite3 out) and of 5
jpeg CompressedImages + CameraInfo (mcap in, mcap out), the output bag holds /depth (32FC1) and
/depth/colorized (bgr8) as sensor_msgs/msg/Image, one per input frame, with the input's bag
timestamps, header stamps and frame_id (header stamps deliberately differ from the bag times), depth
and colorized pixels exactly equal to DepthEstimator + Colorizer on the same frame, and the
CameraInfo messages copied unchanged. A missing bag, a missing topic or an existing output exit 2.
"""
import os

import cv2
import numpy as np
import pytest

pytest.importorskip('rosbags')

from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from depth_anything_ros import cli  # noqa: E402
from depth_anything_ros.engines import open_engine  # noqa: E402
from depth_anything_ros.core.image_codec import Frame  # noqa: E402
from depth_anything_ros.core.paths import SAMPLE_IMAGE  # noqa: E402
from depth_anything_ros.core.estimator import DepthEstimator  # noqa: E402
from depth_anything_ros.core.postprocess import Colorizer  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.dev_tools]

STORE = get_typestore(Stores.ROS2_HUMBLE)
T = STORE.types
FRAMES = 5
H, W = 240, 320
T0 = 1_700_000_000_000_000_000


def _bgr_frames():
    base = cv2.imread(SAMPLE_IMAGE)
    base = cv2.resize(base, (W + 40 * FRAMES, H))
    return [np.ascontiguousarray(base[:, 40 * i:40 * i + W]) for i in range(FRAMES)]  # a pan


def _header(i):
    ns = T0 + i * 100_000_000 - 5_000_000  # camera stamp 5 ms before the bag time
    return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](sec=ns // 10**9, nanosec=ns % 10**9),
                                    frame_id='camera_optical')


def _camera_info(i):
    roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    k = np.array([300.0 + i, 0, W / 2, 0, 300.0, H / 2, 0, 0, 1])
    return T['sensor_msgs/msg/CameraInfo'](
        header=_header(i), height=H, width=W, distortion_model='plumb_bob', d=np.zeros(5), k=k,
        r=np.eye(3).ravel(), p=np.concatenate([k.reshape(3, 3), np.zeros((3, 1))], 1).ravel(),
        binning_x=0, binning_y=0, roi=roi)


def _write_input(path, compressed: bool, storage):
    frames, infos = _bgr_frames(), []
    topic = '/camera/image_raw/compressed' if compressed else '/camera/image_raw'
    msgtype = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    payloads = []
    with Writer(path, version=8, storage_plugin=storage) as writer:
        img_conn = writer.add_connection(topic, msgtype, typestore=STORE)
        info_conn = writer.add_connection('/camera/camera_info', 'sensor_msgs/msg/CameraInfo', typestore=STORE)
        for i, bgr in enumerate(frames):
            t = T0 + i * 100_000_000
            if compressed:
                data = np.frombuffer(cv2.imencode('.jpg', bgr)[1].tobytes(), np.uint8)
                msg = T[msgtype](header=_header(i), format='bgr8; jpeg compressed bgr8', data=data)
                payloads.append(cv2.imdecode(data, cv2.IMREAD_COLOR))  # what the tool should see
            else:
                msg = T[msgtype](header=_header(i), height=H, width=W, encoding='bgr8', is_bigendian=0,
                                 step=W * 3, data=bgr.reshape(-1))
                payloads.append(bgr)
            writer.write(img_conn, t, STORE.serialize_cdr(msg, msgtype))
            info = STORE.serialize_cdr(_camera_info(i), 'sensor_msgs/msg/CameraInfo')
            infos.append(bytes(info))
            writer.write(info_conn, t + 1000, info)
    return topic, payloads, infos


def _read_output(path):
    topics, messages = {}, {}
    with AnyReader([path], default_typestore=STORE) as reader:
        for conn in reader.connections:
            topics[conn.topic] = conn.msgtype
        for conn, t, raw in reader.messages():
            messages.setdefault(conn.topic, []).append((t, raw, reader.deserialize(raw, conn.msgtype)))
    return topics, messages


@pytest.mark.parametrize('compressed,storage', [(False, 'sqlite3'), (True, 'mcap')])
def test_depth_bag_matches_the_pipeline(tmp_path, tiny_fixed_model, compressed, storage, capsys):
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    src, out = tmp_path / 'in', tmp_path / 'out'
    topic, payloads, infos = _write_input(src, compressed, plugin)
    assert cli.main(['bag', str(src), '--topic', topic, '--out', str(out), '--storage', storage,
                     '--model', tiny_fixed_model]) == 0
    assert f'{FRAMES} depth frames' in capsys.readouterr().out
    assert any(n.endswith('.mcap' if storage == 'mcap' else '.db3') for n in os.listdir(out))

    topics, messages = _read_output(out)
    assert topics == {'/depth': 'sensor_msgs/msg/Image', '/depth/colorized': 'sensor_msgs/msg/Image',
                      '/camera/camera_info': 'sensor_msgs/msg/CameraInfo'}
    assert {k: len(v) for k, v in messages.items()} == {k: FRAMES for k in topics}
    # CameraInfo: same bag times and the very same bytes.
    assert [t for t, _, _ in messages['/camera/camera_info']] == [T0 + i * 100_000_000 + 1000 for i in range(FRAMES)]
    assert [bytes(raw) for _, raw, _ in messages['/camera/camera_info']] == infos

    estimator = DepthEstimator(open_engine(tiny_fixed_model))
    colorizer = Colorizer()
    for i, bgr in enumerate(payloads):
        model = estimator.model_depth(Frame('bgr8', bgr, H, W))
        model_depth, placement = model.depth, model.placement
        expected_depth = estimator.restore(model_depth, placement)
        expected_color = colorizer(model_depth, placement)
        for name, encoding in (('/depth', '32FC1'), ('/depth/colorized', 'bgr8')):
            t, _, msg = messages[name][i]
            assert t == T0 + i * 100_000_000
            ref = _header(i)
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == \
                (ref.stamp.sec, ref.stamp.nanosec, 'camera_optical')
            assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (H, W, encoding, 0)
        depth_msg = messages['/depth'][i][2]
        depth = np.frombuffer(depth_msg.data.tobytes(), np.float32).reshape(H, depth_msg.step // 4)[:, :W]
        np.testing.assert_array_equal(depth, expected_depth)
        assert np.isfinite(depth).all() and depth.std() > 0
        color_msg = messages['/depth/colorized'][i][2]
        color = np.frombuffer(color_msg.data.tobytes(), np.uint8).reshape(H, color_msg.step)[:, :W * 3]
        np.testing.assert_array_equal(color.reshape(H, W, 3), expected_color)


def test_bad_inputs_exit_2(tmp_path, tiny_fixed_model, capsys):
    src, out = tmp_path / 'in', tmp_path / 'out'
    topic, _, _ = _write_input(src, False, StoragePlugin.SQLITE3)
    model = ['--model', tiny_fixed_model]
    assert cli.main(['bag', str(tmp_path / 'missing'), '--topic', topic, '--out', str(out)] + model) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert cli.main(['bag', str(src), '--topic', '/nope', '--out', str(out)] + model) == 2
    err = capsys.readouterr().err
    assert "'/nope'" in err and topic in err  # names the topics that are there
    assert cli.main(['bag', str(src), '--topic', '/camera/camera_info', '--out', str(out)] + model) == 2
    assert 'not an image topic' in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()
    assert cli.main(['bag', str(src), '--topic', topic, '--out', str(out)] + model) == 2
    assert 'already exists' in capsys.readouterr().err


def test_a_metric_bag_gets_the_nodes_metric_outputs(tmp_path, tiny_metric_model, capsys):
    """A metric model with --publish-depth-mm --publish-points: the bag gets depth/mm and depth/points
    as the node publishes them (made by the same FrameProcessor), points from the camera_info beside
    the image topic. Each camera_info is recorded just after its image, so the first frame has none
    yet: its points are skipped and said so, as the node does."""
    from depth_anything_ros.core.pointcloud import depth_to_points, scaled_intrinsics, to_millimetres
    src, out = tmp_path / 'in', tmp_path / 'out'
    topic, payloads, _ = _write_input(src, False, StoragePlugin.SQLITE3)
    assert cli.main(['bag', str(src), '--topic', topic, '--out', str(out), '--model', tiny_metric_model,
                     '--max-depth', '10', '--publish-depth-mm', '--publish-points', '--points-decimation', '8',
                     '--no-points-rgb']) == 0
    assert 'skipped 1 x points: no_camera_info' in capsys.readouterr().err
    topics, messages = _read_output(out)
    assert topics['/depth/mm'] == 'sensor_msgs/msg/Image' and topics['/depth/points'] == 'sensor_msgs/msg/PointCloud2'
    assert (len(messages['/depth/mm']), len(messages['/depth/points'])) == (FRAMES, FRAMES - 1)
    for i in (0, FRAMES - 1):
        depth_msg = messages['/depth'][i][2]
        depth = np.frombuffer(depth_msg.data.tobytes(), np.float32).reshape(H, W)
        assert np.isnan(depth).any() and (depth[np.isfinite(depth)] <= 10).all()  # masked as the node does
        mm_msg = messages['/depth/mm'][i][2]
        assert mm_msg.encoding == '16UC1'
        np.testing.assert_array_equal(np.frombuffer(mm_msg.data.tobytes(), np.uint16).reshape(H, W),
                                      to_millimetres(depth))
    cloud = messages['/depth/points'][-1][2]  # the last frame, with the camera_info of the one before
    k = _camera_info(FRAMES - 2).k
    xyz, _ = depth_to_points(depth, *scaled_intrinsics(k, (W, H), (W, H)), 8)
    assert cloud.width == len(xyz) > 0 and cloud.point_step == 12
    np.testing.assert_array_equal(np.frombuffer(cloud.data.tobytes(), np.float32).reshape(-1, 3), xyz)


def test_da3_metric_bag_metres_after_the_first_camera_info_and_its_sky(tmp_path, da3_metric_model, capsys):
    """DA3Metric through `bag`: the first frame comes before any CameraInfo, so it goes to
    /depth/relative (counted); the rest are metres on /depth, +Inf where the model sees sky, with
    points; /depth/sky for every frame. The same routing as the node's (core/output_topics.py)."""
    src, out = tmp_path / 'in', tmp_path / 'out'
    topic, _, _ = _write_input(src, False, StoragePlugin.SQLITE3)
    assert cli.main(['bag', str(src), '--topic', topic, '--out', str(out), '--model', da3_metric_model,
                     '--publish-points', '--publish-sky']) == 0
    assert 'skipped 1 x metres: no_camera_info' in capsys.readouterr().err
    topics, messages = _read_output(out)
    assert {name: len(messages[name]) for name in topics if name.startswith('/depth')} == {
        '/depth': FRAMES - 1, '/depth/relative': 1, '/depth/colorized': FRAMES, '/depth/points': FRAMES - 1,
        '/depth/sky': FRAMES}
    assert messages['/depth/relative'][0][0] == T0 and messages['/depth'][0][0] == T0 + 100_000_000
    metres = np.frombuffer(messages['/depth'][0][2].data, np.float32).reshape(H, W)
    sky = np.frombuffer(messages['/depth/sky'][1][2].data, np.uint8).reshape(H, W) == 255
    assert sky.any() and np.isposinf(metres[sky]).all()                    # the reported mask lies in +Inf
    assert (metres[np.isfinite(metres)] > 0).all()
