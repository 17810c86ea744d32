"""Engine faults and time jumps: logged, counted, and the node keeps serving.

The node runs in-process (helpers.node_harness) with an engine that wraps the real one and misbehaves
on demand; frames enter through the node's image subscription callback.
"""
import array
import contextlib
import threading

import cv2
import numpy as np
import pytest
import rclpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter

from depth_anything_ros.engines import Engine, open_engine
from depth_anything_ros.core.image_codec import ImageFormatError, decode_image, encode_bgr
from depth_anything_ros.ros.messages import header_at, image_message
from depth_anything_ros.ros.node import DepthNode
from depth_anything_ros.core.paths import SAMPLE_IMAGE
from depth_anything_ros.core.temporal import DepthSmoother

from helpers import hostile_images
from helpers.node_harness import running_node
from helpers.threads import wait_until

pytestmark = pytest.mark.graph


class FaultyEngine(Engine):
    """The real engine, but each call may take the next fault from `faults`; records the
    input shapes and how many calls were inside at once."""
    name = 'faulty'

    def __init__(self, real):
        self.real, self.path, self.inputs, self.outputs = real, real.path, real.inputs, real.outputs
        self.faults = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.inside = self.most_inside = self.returned = 0
        self.shapes = []
        self.cancelled = threading.Event()

    def cancel(self):
        self.cancelled.set()

    def run(self, feeds):
        with self.lock:
            fault = self.faults.pop(0) if self.faults else None
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.shapes.append(next(iter(feeds.values())).shape)
        try:
            return self._run(feeds, fault)
        finally:
            with self.lock:
                self.inside -= 1
                self.returned += 1

    def _run(self, feeds, fault):
        if fault == 'raise':
            raise RuntimeError('BPU driver error')
        if fault == 'stall':
            self.release.wait(30)
        if fault == 'cancellable':  # a call that ends only when cancelled, like ONNX Runtime's
            assert self.cancelled.wait(30), 'never cancelled'
            raise RuntimeError('cancelled')
        outputs = self.real.run(feeds)
        name = self.outputs[0].name
        out = np.array(outputs[name])
        if fault == 'nan':
            out.flat[7] = np.nan
        elif fault == 'inf':
            out.flat[7] = np.inf
        elif fault == 'shape':
            out = out[..., :100]
        return {**outputs, name: out}


@contextlib.contextmanager
def faulty_node(model, forward=False, **params):
    """The node in-process running FaultyEngine around the model's engine (inference_timeout 0.3 s
    unless set); stalled calls are released before it shuts down."""
    engine = FaultyEngine(open_engine(model))
    with running_node(model, engine, forward, **{'inference_timeout': 0.3, **params}) as harness:
        try:
            yield harness
        finally:
            engine.release.set()


@pytest.fixture
def harness(tiny_fixed_model):
    with faulty_node(tiny_fixed_model) as harness:
        yield harness


FIELDS = encode_bgr(cv2.resize(cv2.imread(SAMPLE_IMAGE), (320, 240)), 'bgr8')


def image_msg(stamp_ns, fields=FIELDS):
    return image_message(header_at(stamp_ns, 'camera'), fields)


def submit(harness, stamp_ns, fields=FIELDS):
    """A frame as the image subscription hands it over."""
    harness.send('image', image_msg(stamp_ns, fields))


def published(harness) -> list:
    """The stamps published on depth."""
    return harness.stamps('/depth')


@pytest.mark.parametrize('fault, reason', [('raise', 'inference_error'), ('nan', 'bad_output'),
                                           ('inf', 'bad_output'), ('shape', 'bad_output')])
def test_fault_is_counted_and_next_frame_served(harness, fault, reason):
    harness.engine.faults = [fault]
    submit(harness, 10_000_000_000)
    assert wait_until(lambda: harness.node.drops.snapshot()[reason] == 1)
    assert published(harness) == []
    submit(harness, 11_000_000_000)
    assert wait_until(lambda: published(harness) == [11_000_000_000])
    assert harness.node.pool.threads_alive() == 1


def reaped(harness, calls: int = 1) -> bool:
    harness.diagnostics()  # the diagnostics timer reaps stalled workers
    return harness.node.drops.snapshot()['inference_timeout'] == calls


def test_stalled_call_is_abandoned_and_its_replacement_waits_for_the_engine(harness):
    """Issue 11: replacements of stalled workers started calls beside the stuck ones."""
    engine = harness.engine
    submit(harness, 19_000_000_000)  # one finished call arms the stall clock
    assert wait_until(lambda: published(harness) == [19_000_000_000])
    engine.faults = ['stall']
    submit(harness, 20_000_000_000)
    assert wait_until(lambda: reaped(harness))
    assert harness.node.pool.threads_alive() == 2  # the stuck one and its replacement
    submit(harness, 21_000_000_000)
    assert not wait_until(lambda: engine.returned > 1 or len(engine.shapes) > 2, timeout=0.5)
    engine.release.set()  # the stuck call returns late: its result must not go out
    assert wait_until(lambda: published(harness) == [19_000_000_000, 21_000_000_000])
    assert wait_until(lambda: harness.node.pool.threads_alive() == 1)
    assert engine.most_inside == 1


def test_workers_4_with_timeouts_never_exceed_4_calls(tiny_fixed_model):
    with faulty_node(tiny_fixed_model, workers=4) as harness:
        engine = harness.engine
        submit(harness, 1_000_000_000)
        assert wait_until(lambda: published(harness) == [1_000_000_000])
        engine.faults = ['stall'] * 8
        for i in range(4):
            submit(harness, (2 + i) * 1_000_000_000)
            assert wait_until(lambda: engine.inside == i + 1)
        assert wait_until(lambda: reaped(harness, 4)) and harness.node.pool.threads_alive() == 8
        for i in range(4):
            submit(harness, (10 + i) * 1_000_000_000)
        assert not wait_until(lambda: engine.inside > 4, timeout=0.5)
        engine.release.set()
        assert wait_until(lambda: published(harness)[-1:] == [13_000_000_000])
        assert engine.most_inside == 4


def test_shutdown_cancels_a_call_in_flight_instead_of_waiting(harness):
    """Ctrl-C during a long inference: shutdown cancels the engine call, so the worker ends
    and shutdown reports a clean stop (without cancel it would give up on the stuck worker)."""
    engine = harness.engine
    engine.faults = ['cancellable']
    submit(harness, 30_000_000_000)
    assert wait_until(lambda: engine.inside == 1)
    assert harness.node.shutdown() is True
    assert engine.cancelled.is_set() and harness.node.pool.threads_alive() == 0
    assert published(harness) == [] and harness.node.drops.snapshot()['inference_error'] == 0  # not a fault


def test_a_slow_first_call_is_not_abandoned(harness):
    """Issue 9: a loaded PC took 16 s a frame against a 5 s timeout, and every call was
    abandoned: the timeout is armed only once a call has finished."""
    engine = harness.engine
    engine.faults = ['stall']
    submit(harness, 30_000_000_000)
    assert wait_until(lambda: engine.inside == 1)
    assert not wait_until(lambda: reaped(harness), timeout=1.0)  # 3x inference_timeout
    engine.release.set()
    assert wait_until(lambda: published(harness) == [30_000_000_000])
    assert harness.node.drops.snapshot()['inference_timeout'] == 0


def test_a_result_waits_for_its_older_sibling_instead_of_being_dropped(tiny_fixed_model):
    """Issue 11: with 2 workers a sibling finishing first threw older results away."""
    with faulty_node(tiny_fixed_model, workers=2, inference_timeout=60.0) as harness:
        engine = harness.engine
        engine.faults = ['stall']
        submit(harness, 40_000_000_000)                 # the older frame: held in the engine
        assert wait_until(lambda: engine.inside == 1)
        submit(harness, 41_000_000_000)                 # its sibling finishes first
        assert wait_until(lambda: engine.returned == 1)
        assert not wait_until(lambda: published(harness), timeout=0.3)  # and waits
        engine.release.set()
        assert wait_until(lambda: published(harness) == [40_000_000_000, 41_000_000_000])
        assert harness.node.drops.snapshot()['out_of_order'] == 0


@pytest.mark.parametrize('stamps, fault', [
    ([0, 0, 0], 'zero'),                                       # a driver that never sets stamps
    ([5, 5, 5], 'repeated'),                                   # a constant stamp
    ([100, 1, 101, 2, 102, 3], 'backward'),                    # two interleaved clocks
    ([100_000_000_000, 101_000_000_000, 5_000_000_000, 4_900_000_000], 'backward'),  # a looping bag
])
def test_unusable_stamps_still_publish_every_frame_and_are_reported(harness, stamps, fault):
    """Issue 11 B2: stamp 0 or a constant stamp dropped 14 of 15 frames silently."""
    for i, stamp in enumerate(stamps):
        submit(harness, stamp)
        assert wait_until(lambda: len(published(harness)) == i + 1), harness.node.drops.snapshot()
    assert published(harness) == stamps
    assert harness.node.drops.snapshot()['out_of_order'] == 0
    counted = harness.node.stamp_faults.snapshot()[fault]
    assert counted == (len(stamps) if fault == 'zero' else len(stamps) - 1 if fault == 'repeated'
                       else sum(b < a for a, b in zip(stamps, stamps[1:])))
    assert len(harness.lines('arrival order')) == 1  # once, then rate-limited
    diag = harness.diagnostics()
    assert diag.level == DiagnosticStatus.WARN and f'input stamps {fault}' in diag.message
    assert {kv.key: kv.value for kv in diag.values}[f'stamps_{fault}'] == str(counted)


@pytest.mark.parametrize('order', [('color_min', 'color_max'), ('color_max', 'color_min')])
def test_colour_range_set_applies_as_a_whole_in_either_order(harness, order):
    """Issue 11: SetParameters [color_min=5, color_max=10] failed the first and applied the
    second (rclpy hands the set over one parameter at a time)."""
    values = {'color_min': 5.0, 'color_max': 10.0}
    results = harness.node.set_parameters([Parameter(name, value=values[name]) for name in order])
    assert [r.successful for r in results] == [True, True]
    assert harness.node.processor.colorizer.fixed_range == (5.0, 10.0)
    assert (harness.node.config['color_min'], harness.node.config['color_max']) == (5.0, 10.0)


def test_colour_range_that_is_not_finite_is_refused_naming_the_parameters(harness):
    refused = harness.node.set_parameters([Parameter('color_max', value=float('nan'))])[0]
    assert not refused.successful and 'color_min' in refused.reason and 'color_max' in refused.reason
    assert 'fixed_range' not in refused.reason and harness.node.processor.colorizer.fixed_range == (0.0, 1.0)


def test_view_parameters_change_at_runtime_and_fixed_ones_refuse(harness):
    node, processor = harness.node, harness.node.processor
    result = node.set_parameters([Parameter('colormap', value='turbo'), Parameter('color_range', value='smoothed')])
    assert all(r.successful for r in result)
    assert (processor.colorizer.colormap, processor.colorizer.range_mode) == ('turbo', 'smoothed')
    result = node.set_parameters([Parameter('temporal_smoothing', value=0.5)])
    assert result[0].successful and processor.smoother is not None and processor.smoother.alpha == 0.5
    refused = node.set_parameters([Parameter('colormap', value='rainbow')])[0]
    assert not refused.successful and 'rainbow' in refused.reason and processor.colorizer.colormap == 'turbo'
    fixed = node.set_parameters([Parameter('workers', value=4)])[0]
    assert not fixed.successful and 'read-only' in fixed.reason  # declared read_only: rclpy refuses


def test_temporal_smoothing_runs_in_the_node(harness):
    harness.node.set_parameters([Parameter('temporal_smoothing', value=0.8)])
    for i in range(3):
        submit(harness, (200 + i) * 1_000_000_000)
        assert wait_until(lambda: (200 + i) * 1_000_000_000 in published(harness))
    assert harness.node.processor.smoother.resets == 1  # only the first frame started the history


class OrderRecorder(DepthSmoother):
    """Temporal smoothing that records the frame size of each map it is given, in order."""

    def __init__(self):
        super().__init__(0.8, 0.5)
        self.sizes = []

    def __call__(self, model_depth, placement=None):
        self.sizes.append(placement.source.width)
        return super().__call__(model_depth, placement)


def test_temporal_smoothing_sees_frames_in_arrival_order_when_inference_finishes_out_of_it(tiny_fixed_model):
    """Two workers; the older frame's inference is held until the newer one's has returned.
    Smoothing blends frames in the order they came (it used to run as each inference ended)."""
    small = encode_bgr(cv2.resize(cv2.imread(SAMPLE_IMAGE), (160, 120)), 'bgr8')
    with faulty_node(tiny_fixed_model, workers=2, inference_timeout=20.0) as harness:
        recorder = OrderRecorder()
        harness.node.processor.set_view(harness.node.processor.colorizer, recorder)
        engine = harness.engine
        engine.faults = ['stall']
        submit(harness, 400_000_000_000)                       # 320 wide: held in the engine
        assert wait_until(lambda: engine.inside == 1)
        submit(harness, 401_000_000_000, small)                # 160 wide: passes it
        assert wait_until(lambda: engine.returned == 1)
        engine.release.set()
        assert wait_until(lambda: len(published(harness)) == 2), harness.logged
        assert recorder.sizes == [320, 160]
        assert published(harness) == [400_000_000_000, 401_000_000_000]


def test_temporal_smoothing_restarts_when_stamps_go_back(harness):
    recorder = OrderRecorder()
    harness.node.processor.set_view(harness.node.processor.colorizer, recorder)
    for stamp in (500, 501, 499):
        submit(harness, stamp * 1_000_000_000)
        assert wait_until(lambda: stamp * 1_000_000_000 in published(harness))
    assert recorder.resets == 2  # the first frame, and the one whose stamp went back


def test_hbmem_message_fields_become_a_frame(harness):
    """TROS zero-copy messages (hbm_img_msgs/HbmMsg1080P) carry a fixed 6 MB buffer, a
    NUL-padded encoding and data_size; only the type itself needs TROS (so the node cannot subscribe
    to it here: its subscription callback is called directly)."""
    from builtin_interfaces.msg import Time
    from types import SimpleNamespace
    from depth_anything_ros.core.image_codec import bgr_to_nv12
    bgr = cv2.resize(cv2.imread(SAMPLE_IMAGE), (320, 240))
    nv12 = bgr_to_nv12(bgr).tobytes()
    msg = SimpleNamespace(time_stamp=Time(sec=300, nanosec=5), encoding=b'nv12' + b'\0' * 8,
                          height=240, width=320, step=320, data=nv12 + b'\0' * (6220800 - len(nv12)),
                          data_size=len(nv12))
    harness.node._on_hbmem(msg)
    assert wait_until(lambda: published(harness) == [300_000_000_005])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.integers(-1, 40), width=st.integers(-1, 40), step=st.integers(-1, 200),
       encoding=st.sampled_from(['rgb8', 'bgr8', 'nv12', 'mono16', 'yuyv', 'bayer_rggb8', 'jpeg', '32FC1', 'x']),
       size=st.integers(0, 6000), bigendian=st.integers(0, 1))
def test_image_callback_never_raises_and_counts_rejections(harness, height, width, step, encoding, size, bigendian):
    from sensor_msgs.msg import Image
    msg = Image(encoding=encoding, is_bigendian=bigendian)
    msg.height, msg.width, msg.step = max(height, 0), max(width, 0), max(step, 0)
    msg.data = array.array('B', bytes(size))
    before = harness.node.drops.snapshot()['bad_input']
    harness.send('image', msg)  # must not raise, whatever the fields
    rejected = harness.node.drops.snapshot()['bad_input'] - before
    try:
        decode_image(msg.height, msg.width, encoding, bigendian, msg.step, msg.data)
        assert rejected == 0
    except ImageFormatError:
        assert rejected == 1


# ---------------------------------------------------------------- issue 11: outputs, memory bounds, shutdown

def camera_info_msg(k, width=320, height=240):
    from sensor_msgs.msg import CameraInfo
    return CameraInfo(width=width, height=height, k=[float(v) for v in k])


GOOD_K = [300, 0, 160, 0, 300, 120, 0, 0, 1]


@pytest.mark.parametrize('bad', [dict(k=[0] * 9), dict(k=[float('nan')] + GOOD_K[1:]),
                                 dict(k=[-300] + GOOD_K[1:]), dict(k=GOOD_K, width=0, height=0),
                                 dict(k=[1e-9, 0, 160, 0, 1e-9, 120, 0, 0, 1]),        # issue 18.7
                                 dict(k=GOOD_K, width=2**31 - 1, height=2**31 - 1)])
def test_a_bad_camera_info_never_stops_the_other_outputs(tiny_metric_model, bad):
    """Issue 11 B1: K all zeros (an uncalibrated camera) stopped depth, colorized, mm and
    camera_info alike, logged as an inference error."""
    with faulty_node(tiny_metric_model, publish_points=True, publish_depth_mm=True) as harness:
        harness.send('camera_info', camera_info_msg(**bad))
        submit(harness, 50_000_000_000)
        # a frame's messages go out one after another: depth, colorized, mm, points, camera_info
        assert wait_until(lambda: harness.stamps('/depth/mm') == [50_000_000_000])
        assert published(harness) == harness.stamps('/depth/colorized') == [50_000_000_000]
        assert harness.stamps('/depth/points') == []
        assert harness.node.skips.snapshot() == {'points_no_camera_info': 1, 'points_failed': 0,
                                                 'camera_info_rejected': 1}
        assert harness.node.drops.snapshot()['inference_error'] == 0
        assert any(line.startswith('camera_info ignored') for line in harness.lines(severity='WARN'))
        harness.send('camera_info', camera_info_msg(GOOD_K))
        submit(harness, 51_000_000_000)
        assert wait_until(lambda: harness.stamps('/depth/points') == [51_000_000_000])
        harness.send('camera_info', camera_info_msg(**bad))          # the last good one is kept
        submit(harness, 52_000_000_000)
        assert wait_until(lambda: harness.stamps('/depth/camera_info') == [51_000_000_000, 52_000_000_000])
        assert harness.stamps('/depth/points') == [51_000_000_000, 52_000_000_000]   # and none for frame 50
        assert harness.node.skips.snapshot()['camera_info_rejected'] == 2


@pytest.fixture
def compressed(tiny_fixed_model):
    """The node taking CompressedImage on image/compressed (input_transport compressed)."""
    with faulty_node(tiny_fixed_model, input_transport='compressed') as harness:
        yield harness


@pytest.mark.parametrize('kind', ['jpeg', 'png'])
def test_a_compressed_header_over_the_pixel_limit_is_refused_before_decoding(compressed, kind, monkeypatch):
    """Issue 11 B3: a 6 KB jpeg claiming 20000x20000 cost 7 GB and a 4 s executor stall."""
    from sensor_msgs.msg import CompressedImage
    from depth_anything_ros.core import image_codec
    decoded = []
    real = image_codec.cv2.imdecode
    monkeypatch.setattr(image_codec.cv2, 'imdecode',
                        lambda *a: decoded.append(threading.current_thread().name) or real(*a))
    payload = hostile_images.jpeg_claiming(20000, 20000) if kind == 'jpeg' else hostile_images.png_1bit(20000, 20000)
    compressed.send('image/compressed', CompressedImage(format=kind, data=array.array('B', payload)))
    assert compressed.node.drops.snapshot()['bad_input'] == 1 and decoded == []
    assert any('20000x20000' in line and 'max_input_pixels' in line for line in compressed.lines(severity='WARN'))
    good = CompressedImage(format='jpeg', data=array.array('B', cv2.imencode('.jpg', cv2.imread(SAMPLE_IMAGE))[1]))
    good.header.stamp.sec = 60
    compressed.send('image/compressed', good)
    assert wait_until(lambda: published(compressed) == [60_000_000_000])
    assert decoded == ['depth-worker-0']  # decoded on a worker, not in the executor callback


def test_a_compressed_frame_that_fails_to_decode_on_a_worker_is_bad_input(compressed):
    from sensor_msgs.msg import CompressedImage
    data = bytearray(cv2.imencode('.png', np.zeros((20, 20), np.uint8))[1].tobytes())
    data[40:] = bytes(len(data) - 40)  # a valid header, broken pixel data
    compressed.send('image/compressed', CompressedImage(format='png', data=array.array('B', bytes(data))))
    assert wait_until(lambda: compressed.node.drops.snapshot()['bad_input'] == 1)
    assert compressed.node.drops.snapshot()['inference_error'] == 0


def test_a_compressed_depth_image_is_refused_as_bad_input(compressed):
    """image_transport's compressedDepth on the camera topic: refused by its format, as `bag` refuses it."""
    from sensor_msgs.msg import CompressedImage
    png = cv2.imencode('.png', np.zeros((20, 20), np.uint16))[1].tobytes()
    compressed.send('image/compressed', CompressedImage(format='16UC1; compressedDepth png',
                                                        data=array.array('B', png)))
    assert compressed.node.drops.snapshot()['bad_input'] == 1
    assert compressed.lines('compressed depth image, not a camera image', severity='WARN')


@pytest.mark.parametrize('height, width', [(100, 1000), (64, 2000), (3, 100000), (100000, 3)])
def test_wide_frames_into_a_dynamic_model_are_capped(tiny_dynamic_model, height, width):
    """Issue 11 B4: 100x1000 became a 518x5180 input (RSS +3.2 GB), 3x100000 asked for 26.8 GB."""
    with faulty_node(tiny_dynamic_model) as harness:
        engine = harness.engine
        fields = encode_bgr(np.full((height, width, 3), 90, np.uint8), 'rgb8')
        submit(harness, 70_000_000_000, fields)
        assert wait_until(lambda: published(harness) == [70_000_000_000]), harness.node.drops.snapshot()
        assert sorted(engine.shapes[0][2:]) == [518, 2072]


def test_an_input_size_no_machine_holds_is_refused_at_start_up(tiny_dynamic_model):
    from depth_anything_ros.core.params import ConfigError
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(ConfigError, match=r'parameter input_size: 4096 needs about .* use input_size <= \d+'):
            DepthNode(context=context, parameter_overrides=[Parameter('model_path', value=tiny_dynamic_model),
                                                            Parameter('input_size', value=4096)])
    finally:
        rclpy.try_shutdown(context=context)


def test_shutdown_during_an_inference_logs_no_spurious_error(tiny_fixed_model):
    """Issue 11: one shutdown in five logged `frame dropped (inference_error): RCLError:
    publisher's context is invalid` (Ctrl-C invalidates the context before shutdown())."""
    with faulty_node(tiny_fixed_model, forward=True) as harness:     # the real publishers too
        engine = harness.engine
        engine.faults = ['stall']
        submit(harness, 80_000_000_000)
        assert wait_until(lambda: engine.inside == 1)
        rclpy.try_shutdown(context=harness.node.context)          # what the SIGINT handler does
        engine.release.set()
        assert wait_until(lambda: engine.returned == 1)
        assert harness.node.pool.stop(5.0)
        assert sum(harness.node.drops.snapshot().values()) == 0
        assert harness.lines(severity='WARN') == harness.lines(severity='ERROR') == []


def test_warnings_and_notes_log_through_rclpy_side_by_side(tiny_fixed_model):
    """rclpy raises 'Logger severity cannot be changed between calls' when one call site logs
    at two severities; that exception, in a subscription callback, ended the node."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = DepthNode(context=context, parameter_overrides=[Parameter('model_path', value=tiny_fixed_model)])
        for i in range(2):
            node.warn(f'w{i}', 'a warning')
            node.note(f'n{i}', 'a note')
        node.shutdown()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
