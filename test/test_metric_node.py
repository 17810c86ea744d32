"""The node's metric_reference: relative depth to metres with a sparse reference, in-process.

The engine is a stand-in whose output is an exact affine function of the true inverse depth of a
real depth map (TUM RGB-D, test/data): a perfect relative model. Whatever the node gets wrong
(pairing, sampling, the fit, writing metres, routing) shows against that ground truth.
"""
import collections
import contextlib

import cv2
import numpy as np
import pytest
import rclpy
from conftest import data_file
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from test_metric_alignment import relative_output, sparse_reference
from test_node_faults import wait_until

from depth_anything_ros.engines import Engine, open_engine
from depth_anything_ros.core.image_codec import encode_bgr, image_fields
from depth_anything_ros.core.metrics import abs_rel
from depth_anything_ros.ros.messages import header_at, image_message
from depth_anything_ros.ros.node import DepthNode

pytestmark = pytest.mark.graph
H, W = 518, 686   # the fixed test model's input: frames of that size map 1:1 onto its output


class AffineEngine(Engine):
    """Answers every frame with the same map: the model output of a perfect relative model."""
    name = 'affine'

    def __init__(self, real, output):
        self.inputs, self.outputs = real.inputs, real.outputs
        self.output = output

    def run(self, feeds):
        return self.output[None].copy()


@pytest.fixture(scope='module')
def truth():
    raw = cv2.imread(data_file('tum_rgbd/TUM_depth.png'), cv2.IMREAD_UNCHANGED)
    raw = cv2.resize(raw, (W, H), interpolation=cv2.INTER_NEAREST)
    z = raw.astype(np.float64) / 5000.0
    z[raw == 0] = np.nan
    return z


@contextlib.contextmanager
def metric_node(model, output, **params):
    context = rclpy.Context()
    rclpy.init(context=context)
    values = {'model_path': model, 'workers': 1, 'metric_reference': 'depth_image',
              'reference_tolerance': 0.01, 'alignment_smoothing': 0.0, **params}
    try:
        node = DepthNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    except Exception:
        rclpy.try_shutdown(context=context)
        raise
    node.processor.estimator.engine = AffineEngine(open_engine(model), output)
    node.sent = collections.defaultdict(list)
    for publisher in node.outputs:
        publisher.get_subscription_count = lambda: 1
        publisher.publish = lambda msg, topic=publisher.topic_name: node.sent[topic].append(msg)
    try:
        yield node
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def header(stamp_ns):
    return header_at(stamp_ns, 'camera_optical_frame')


def frame_msg(stamp_ns):
    return image_message(header(stamp_ns), encode_bgr(np.full((H, W, 3), 90, np.uint8), 'bgr8'))


def reference_msg(stamp_ns, metres):
    """A 32FC1 depth image (REP 118: 0 = no reading), as a ToF or stereo camera sends it."""
    return image_message(header(stamp_ns), image_fields(np.nan_to_num(metres, nan=0.0).astype(np.float32), '32FC1'))


def depth_of(msg):
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def test_metres_from_a_tenth_of_a_percent_of_pixels_with_ten_percent_outliers(tiny_fixed_model, truth):
    with metric_node(tiny_fixed_model, relative_output(truth), publish_depth_mm=True) as node:
        node._on_reference(reference_msg(1_000_000_000, sparse_reference(truth, 0.001, 0.10)))
        node._on_image(frame_msg(1_004_000_000))              # 4 ms later: paired
        assert wait_until(lambda: node.sent['/depth']), node.alignment.snapshot()
        metres = depth_of(node.sent['/depth'][0])
        valid = np.isfinite(truth)
        err = abs_rel(metres[valid], truth[valid])
        assert err <= 1e-3, err
        assert node.alignment.snapshot()['aligned'] == 1 and not node.sent['/depth/relative']
        mm = np.frombuffer(bytes(node.sent['/depth/mm'][0].data), np.uint16).reshape(H, W)
        assert np.abs(mm[valid] - metres[valid] * 1000).max() <= 0.5 + 1e-3   # REP 118 millimetres
        node._on_image(frame_msg(2_000_000_000))              # no reference: relative, and no mm
        assert wait_until(lambda: node.sent['/depth/relative'])
        assert len(node.sent['/depth/mm']) == 1


def test_frames_without_a_reference_go_out_relative_and_are_counted(tiny_fixed_model, truth):
    output = relative_output(truth)
    with metric_node(tiny_fixed_model, output) as node:
        node._on_image(frame_msg(2_000_000_000))               # no reference at all
        assert wait_until(lambda: node.sent['/depth/relative'])
        np.testing.assert_allclose(depth_of(node.sent['/depth/relative'][0]), output, rtol=1e-6)
        assert node.sent['/depth'] == [] and node.alignment.snapshot()['no_reference'] == 1
        bad = reference_msg(3_000_000_000, truth)
        bad.encoding = 'rgb8'
        node._on_reference(bad)                          # counted, never raises
        assert node.alignment.snapshot()['bad_reference'] == 1
        diag = node._alignment_values()
        assert diag['unaligned_no_reference'] == '1' and diag['references_rejected'] == '1'


@pytest.mark.parametrize('params, expected', [
    ({'metric_reference': 'ground_plane'}, 'camera_height'),
    ({'metric_reference': 'points', 'reference_transform': [0.0, 1.0]}, 'reference_transform'),
    ({'metric_reference': 'none', 'publish_points': True}, 'metric_reference'),
])
def test_bad_alignment_settings_fail_start_up_naming_the_parameter(tiny_fixed_model, truth, params, expected):
    from depth_anything_ros.core.params import ConfigError
    with pytest.raises(ConfigError, match=expected):
        with metric_node(tiny_fixed_model, relative_output(truth), **params):
            pass


def test_in_a_graph_frames_with_a_reference_come_out_in_metres_the_others_relative(tiny_fixed_model):
    """Camera at 10 Hz, reference at 5 Hz (by stamp): every other frame pairs with a reference and
    goes out on `depth` in metres, the rest on `depth/relative`, counted. Real processes over DDS,
    the tiny random-weight model: the reference is made from the model's own relative output for
    this frame, so the fitted metres are known exactly."""
    from rclpy.qos import qos_profile_sensor_data
    from test_node_graph import node_and_probe, sample_bgr
    bgr = sample_bgr()
    extra = (('depth/relative', Image),)
    with node_and_probe(tiny_fixed_model, 15, '-p', 'metric_reference:=depth_image', '-p', 'reference_tolerance:=0.02',
                        '-p', 'alignment_smoothing:=0.0', name='probe_metric_ref', extra=extra) as (graph, probe):
        assert probe.wait_connected() and probe.warm_up(bgr, topics=('depth/relative',), timeout=60), \
            graph.text('node')
        with probe.cond:
            relative = depth_of(probe.received['depth/relative'][-1]).astype(np.float64)
        inverse = 0.2 + (relative - relative.min()) / (relative.max() - relative.min())   # 1/Z, positive
        expected = 1.0 / inverse                                                          # 1 m to 5 m
        reference = np.full_like(expected, np.nan)
        reference[::8, ::8] = expected[::8, ::8]                                          # 1.6 % of the pixels
        pub_reference = probe.node.create_publisher(Image, 'reference/depth', qos_profile_sensor_data)
        assert probe.wait_for(lambda: pub_reference.get_subscription_count() > 0, timeout=20)
        base = 10 * 1_000_000_000
        for k in range(8):                                   # 100 ms apart; references on even k
            stamp = base + k * 100_000_000
            if k % 2 == 0:
                sent = int(probe.latest_diagnostics().get('references_received', 0))
                pub_reference.publish(reference_msg(stamp, reference))
                assert probe.wait_for(lambda: int(probe.latest_diagnostics().get('references_received', 0)) > sent,
                                      timeout=30), probe.latest_diagnostics()
            probe.publish(bgr, 'bgr8', stamp)
            assert probe.wait_for(lambda: stamp in probe.stamps('depth') + probe.stamps('depth/relative'),
                                  timeout=60), graph.text('node')
        metric = [s for s in probe.stamps('depth') if s >= base]
        relative_stamps = [s for s in probe.stamps('depth/relative') if s >= base]
        assert metric == [base + k * 100_000_000 for k in (0, 2, 4, 6)]
        assert relative_stamps == [base + k * 100_000_000 for k in (1, 3, 5, 7)]
        with probe.cond:
            metres = depth_of(probe.received['depth'][-1])
        assert abs_rel(metres.ravel(), expected.ravel()) < 1e-4
        assert probe.wait_for(lambda: int(probe.latest_diagnostics().get('frames_aligned', 0)) == 4, timeout=10)
        diag = probe.latest_diagnostics()
        assert int(diag['unaligned_no_reference']) >= 4      # the 4 odd frames, plus the warm-up's
        assert float(diag['alignment_residual']) < 1e-3 and int(diag['alignment_support']) > 1000
