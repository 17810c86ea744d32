"""Engine faults and time jumps: logged, counted, and the node keeps serving.

The node runs in-process with its engine wrapped by one that misbehaves on
demand; frames enter where the image callback hands them to the workers.
"""
import array
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from depth_anything_ros.engines import Engine
from depth_anything_ros.image_codec import ImageFormatError, decode_image, encode_bgr
from depth_anything_ros.node import DepthNode, Job
from depth_anything_ros.paths import SAMPLE_IMAGE

pytestmark = pytest.mark.graph


class FaultyEngine(Engine):
    """The real engine, but each call may take the next fault from `faults`."""
    name = 'faulty'

    def __init__(self, real):
        self.real, self.inputs, self.outputs = real, real.inputs, real.outputs
        self.faults = []
        self.release = threading.Event()
        self.stalled = threading.Event()    # a call is inside a 'stall' or 'cancellable' fault
        self.cancelled = threading.Event()

    def cancel(self):
        self.cancelled.set()

    def run(self, feeds):
        fault = self.faults.pop(0) if self.faults else None
        if fault == 'raise':
            raise RuntimeError('BPU driver error')
        if fault == 'stall':
            self.stalled.set()
            self.release.wait(30)
        if fault == 'cancellable':  # a call that ends only when cancelled, like ONNX Runtime's
            self.stalled.set()
            assert self.cancelled.wait(30), 'never cancelled'
            raise RuntimeError('cancelled')
        out = np.array(self.real.run(feeds))
        if fault == 'nan':
            out.flat[7] = np.nan
        elif fault == 'inf':
            out.flat[7] = np.inf
        elif fault == 'shape':
            out = out[..., :100]
        return out


@pytest.fixture
def node(tiny_fixed_model):
    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [Parameter('model_path', value=tiny_fixed_model), Parameter('workers', value=1),
                 Parameter('inference_timeout', value=0.3)]
    node = DepthNode(context=context, parameter_overrides=overrides)
    node.estimator.engine = FaultyEngine(node.estimator.engine)
    node.published = []
    node.pub_depth.get_subscription_count = lambda: 1  # outputs are built only for listeners
    node.pub_depth.publish = lambda msg: node.published.append(
        msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
    yield node
    node.estimator.engine.release.set()
    node.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)


FIELDS = encode_bgr(cv2.resize(cv2.imread(SAMPLE_IMAGE), (320, 240)), 'bgr8')


def submit(node, stamp_ns):
    header = Header(frame_id='camera')
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    frame = decode_image(*(FIELDS[k] for k in ('height', 'width', 'encoding', 'is_bigendian', 'step', 'data')))
    node.pool.submit(Job(header, frame, time.monotonic()))


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize('fault, reason', [('raise', 'inference_error'), ('nan', 'bad_output'),
                                           ('inf', 'bad_output'), ('shape', 'bad_output')])
def test_fault_is_counted_and_next_frame_served(node, fault, reason):
    node.estimator.engine.faults = [fault]
    submit(node, 10_000_000_000)
    assert wait_until(lambda: node.drops.snapshot()[reason] == 1)
    assert node.published == []
    submit(node, 11_000_000_000)
    assert wait_until(lambda: node.published == [11_000_000_000])
    assert node.pool.threads_alive() == 1


def test_stalled_call_is_abandoned_and_a_new_worker_serves(node):
    engine = node.estimator.engine
    engine.faults = ['stall']
    submit(node, 20_000_000_000)
    assert engine.stalled.wait(20)

    def reaped():  # the diagnostics timer reaps workers stalled past inference_timeout (0.3 s)
        node._publish_diagnostics()
        return node.drops.snapshot()['inference_timeout'] == 1
    assert wait_until(reaped)
    assert node.pool.threads_alive() == 2  # the stuck one and its replacement
    submit(node, 21_000_000_000)
    assert wait_until(lambda: node.published == [21_000_000_000])
    engine.release.set()  # the stuck call returns late: its result must not go out
    assert wait_until(lambda: node.pool.threads_alive() == 1)
    assert node.published == [21_000_000_000]


def test_shutdown_cancels_a_call_in_flight_instead_of_waiting(node):
    """Ctrl-C during a long inference: shutdown cancels the engine call, so the worker ends
    and shutdown reports a clean stop (without cancel it would give up on the stuck worker)."""
    engine = node.estimator.engine
    engine.faults = ['cancellable']
    submit(node, 30_000_000_000)
    assert engine.stalled.wait(20)
    assert node.shutdown() is True
    assert engine.cancelled.is_set() and node.pool.threads_alive() == 0
    assert node.published == [] and node.drops.snapshot()['inference_error'] == 0  # not a fault


def test_stamps_jumping_back_restart_ordering(node):
    for stamp in (100_000_000_000, 101_000_000_000):
        submit(node, stamp)
        assert wait_until(lambda: stamp in node.published)
    submit(node, 5_000_000_000)  # a looping bag starts again
    assert wait_until(lambda: 5_000_000_000 in node.published)
    submit(node, 4_900_000_000)  # slightly older than the last result: a late frame
    assert wait_until(lambda: node.drops.snapshot()['out_of_order'] == 1)
    assert node.published == [100_000_000_000, 101_000_000_000, 5_000_000_000]
    assert node._order.resets == 1


def test_view_parameters_change_at_runtime_and_fixed_ones_refuse(node):
    result = node.set_parameters([Parameter('colormap', value='turbo'), Parameter('color_range', value='smoothed')])
    assert all(r.successful for r in result)
    assert (node.colorizer.colormap, node.colorizer.range_mode) == ('turbo', 'smoothed')
    result = node.set_parameters([Parameter('temporal_smoothing', value=0.5)])
    assert result[0].successful and node.smoother is not None and node.smoother.alpha == 0.5
    refused = node.set_parameters([Parameter('colormap', value='rainbow')])[0]
    assert not refused.successful and 'rainbow' in refused.reason and node.colorizer.colormap == 'turbo'
    fixed = node.set_parameters([Parameter('workers', value=4)])[0]
    assert not fixed.successful and 'read-only' in fixed.reason  # declared read_only: rclpy refuses


def test_temporal_smoothing_runs_in_the_node(node):
    node.set_parameters([Parameter('temporal_smoothing', value=0.8)])
    for i in range(3):
        submit(node, (200 + i) * 1_000_000_000)
        assert wait_until(lambda: (200 + i) * 1_000_000_000 in node.published)
    assert node.smoother.resets == 1  # only the first frame started the history


def test_hbmem_message_fields_become_a_frame(node):
    """TROS zero-copy messages (hbm_img_msgs/HbmMsg1080P) carry a fixed 6 MB buffer, a
    NUL-padded encoding and data_size; only the type itself needs TROS."""
    from builtin_interfaces.msg import Time
    from types import SimpleNamespace
    from depth_anything_ros.image_codec import bgr_to_nv12
    bgr = cv2.resize(cv2.imread(SAMPLE_IMAGE), (320, 240))
    nv12 = bgr_to_nv12(bgr).tobytes()
    msg = SimpleNamespace(time_stamp=Time(sec=300, nanosec=5), encoding=b'nv12' + b'\0' * 8,
                          height=240, width=320, step=320, data=nv12 + b'\0' * (6220800 - len(nv12)),
                          data_size=len(nv12))
    node._on_hbmem(msg)
    assert wait_until(lambda: node.published == [300_000_000_005])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.integers(-1, 40), width=st.integers(-1, 40), step=st.integers(-1, 200),
       encoding=st.sampled_from(['rgb8', 'bgr8', 'nv12', 'mono16', 'yuyv', 'bayer_rggb8', 'jpeg', '32FC1', 'x']),
       size=st.integers(0, 6000), bigendian=st.integers(0, 1))
def test_image_callback_never_raises_and_counts_rejections(node, height, width, step, encoding, size, bigendian):
    from sensor_msgs.msg import Image
    msg = Image(encoding=encoding, is_bigendian=bigendian)
    msg.height, msg.width, msg.step = max(height, 0), max(width, 0), max(step, 0)
    msg.data = array.array('B', bytes(size))
    before = node.drops.snapshot()['bad_input']
    node._on_image(msg)  # must not raise, whatever the fields
    rejected = node.drops.snapshot()['bad_input'] - before
    try:
        decode_image(msg.height, msg.width, encoding, bigendian, msg.step, msg.data)
        assert rejected == 0
    except ImageFormatError:
        assert rejected == 1
