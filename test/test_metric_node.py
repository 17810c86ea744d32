"""The node's metric_reference: relative depth to metres with a sparse reference, in-process.

The engine is a stand-in whose output is an exact affine function of the true inverse depth of a
real depth map (TUM RGB-D, test/data): a perfect relative model. Whatever the node gets wrong
(pairing, sampling, the fit, writing metres, routing) shows against that ground truth.
"""
import array
import contextlib
import shutil
import threading

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from depth_anything_ros.core.camera_messages import stamp_ns
from depth_anything_ros.core.image_codec import encode_bgr, image_fields
from depth_anything_ros.core.depth_metrics import abs_rel
from depth_anything_ros.core.reference_samples import floor_depth
from depth_anything_ros.engines import Engine, open_engine
from depth_anything_ros.ros.messages import header_at, image_message

from helpers.data import data_file
from helpers.frames import sample_bgr
from helpers.graph import node_and_probe
from helpers.node_harness import running_node
from helpers.scenes import patch_reference, relative_output, sparse_reference
from helpers.threads import wait_until

pytestmark = pytest.mark.graph
H, W = 518, 686   # the fixed test model's input: frames of that size map 1:1 onto its output


class AffineEngine(Engine):
    """Answers every frame with the same map: the model output of a perfect relative model.
    Calls wait for `gate` (open unless a test closes it: frames held in flight); `entered`
    counts the calls that started."""
    name = 'affine'

    def __init__(self, real, output):
        self.path, self.inputs, self.outputs = real.path, real.inputs, real.outputs
        self.output = output
        self.gate = threading.Event()
        self.gate.set()
        self.entered = 0

    def run(self, feeds):
        self.entered += 1
        assert self.gate.wait(60), 'the test never opened the gate'
        return {self.outputs[0].name: self.output[None].copy()}


@pytest.fixture(scope='module')
def truth():
    raw = cv2.imread(data_file('tum_rgbd/TUM_depth.png'), cv2.IMREAD_UNCHANGED)
    raw = cv2.resize(raw, (W, H), interpolation=cv2.INTER_NEAREST)
    z = raw.astype(np.float64) / 5000.0
    z[raw == 0] = np.nan
    return z


@contextlib.contextmanager
def metric_node(model, output, **params):
    """The node in-process (helpers.node_harness) running AffineEngine: metric_reference depth_image,
    pairs within 10 ms, no smoothing of the fit, unless set."""
    engine = AffineEngine(open_engine(model), output)
    values = {'metric_reference': 'depth_image', 'reference_tolerance': 0.01, 'alignment_smoothing': 0.0, **params}
    with running_node(model, engine, **values) as harness:
        try:
            yield harness
        finally:
            engine.gate.set()


def reference_topic(harness) -> str:
    return {'depth_image': 'reference/depth', 'points': 'reference/points'}[harness.node.config['metric_reference']]


def send_reference(harness, msg):
    harness.send(reference_topic(harness), msg)


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
    with metric_node(tiny_fixed_model, relative_output(truth), publish_depth_mm=True) as harness:
        send_reference(harness, reference_msg(1_000_000_000, sparse_reference(truth, 0.001, 0.10)))
        harness.send('image', frame_msg(1_004_000_000))              # 4 ms later: paired
        assert wait_until(lambda: harness.sent['/depth/mm']), harness.node.alignment.snapshot()   # after depth
        metres = depth_of(harness.sent['/depth'][0])
        valid = np.isfinite(truth)
        err = abs_rel(metres[valid], truth[valid])
        assert err <= 1e-3, err
        assert harness.node.alignment.snapshot()['aligned'] == 1 and not harness.sent['/depth/relative']
        mm = np.frombuffer(bytes(harness.sent['/depth/mm'][0].data), np.uint16).reshape(H, W)
        assert np.abs(mm[valid] - metres[valid] * 1000).max() <= 0.5 + 1e-3   # REP 118 millimetres
        harness.send('image', frame_msg(2_000_000_000))              # no reference: relative, and no mm
        assert wait_until(lambda: harness.sent['/depth/relative'])
        assert len(harness.sent['/depth/mm']) == 1


def test_da3_relative_depth_is_aligned_in_depth(tiny_fixed_model, truth):
    """A model of DA3's kind (relative_depth: the catalogue's kind for DA3 files): its output is
    depth up to scale and shift, Z = s * d + t, and the reference fit is made in depth. Here an exact
    such output, 0.1 % of the pixels as reference with 10 % of them wrong."""
    valid = np.isfinite(truth)
    output = np.where(valid, (truth - 0.3) / 2.5, 1.0).astype(np.float32)
    with metric_node(tiny_fixed_model, output, depth_type='relative_depth') as harness:
        assert 'relative depth (larger = farther' in harness.node.processor.meaning()
        send_reference(harness, reference_msg(1_000_000_000, sparse_reference(truth, 0.001, 0.10)))
        harness.send('image', frame_msg(1_004_000_000))
        assert wait_until(lambda: harness.sent['/depth']), harness.node.alignment.snapshot()
        metres = depth_of(harness.sent['/depth'][0])
        assert abs_rel(metres[valid], truth[valid]) <= 1e-3
        values = harness.diagnostic_values()
        assert float(values['alignment_scale']) == pytest.approx(2.5, rel=1e-3)
        assert float(values['alignment_shift']) == pytest.approx(0.3, abs=1e-3)


def test_frames_without_a_reference_go_out_relative_and_are_counted(tiny_fixed_model, truth):
    output = relative_output(truth)
    with metric_node(tiny_fixed_model, output) as harness:
        harness.send('image', frame_msg(2_000_000_000))               # no reference at all
        assert wait_until(lambda: harness.sent['/depth/relative'])
        np.testing.assert_allclose(depth_of(harness.sent['/depth/relative'][0]), output, rtol=1e-6)
        assert harness.sent['/depth'] == [] and harness.node.alignment.snapshot()['no_reference'] == 1
        bad = reference_msg(3_000_000_000, truth)
        bad.encoding = 'rgb8'
        send_reference(harness, bad)                          # counted, never raises
        assert harness.node.alignment.snapshot()['bad_reference'] == 1
        diag = harness.diagnostic_values()
        assert diag['unaligned_no_reference'] == '1' and diag['references_rejected'] == '1'


@pytest.mark.parametrize('params, expected', [
    ({'metric_reference': 'ground_plane'}, 'camera_height'),
    ({'metric_reference': 'points', 'reference_transform': [0.0, 1.0]}, 'reference_transform'),
    ({'metric_reference': 'points', 'reference_transform': [0.0] * 7}, 'reference_transform.*normalise'),  # 18.7
    ({'metric_reference': 'points', 'reference_transform': [float('nan')] + [0.0] * 5 + [1.0]},
     'reference_transform.*finite'),
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
        assert 'Warning' not in graph.text('node')          # no numpy RuntimeWarning in the node's log


# ---------------------------------------------------------------- issue 18: hostile references, in the node
# Each test sends what the attack sent, through the node's own callbacks. A frame's own reference
# is the truth times a factor of its own (another exact affine scene): the metres it comes out
# with say which reference it paired with. No numpy warning may reach the log (autouse fixture).

SECOND = 1_000_000_000
K = (500.0, 500.0, (W - 1) / 2, (H - 1) / 2)


@pytest.fixture(autouse=True)
def no_numpy_warnings(recwarn):
    yield
    numeric = [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert not numeric, numeric


def scaled(truth, factor):
    return sparse_reference(truth, 0.001, 0.10) * factor


def published(harness, topic):
    return {stamp_ns(msg.header): msg for msg in harness.sent[topic]}


def factor_of(msg, truth):
    """Which scene a published frame's metres belong to: metres / truth, one number if exact."""
    ratio = depth_of(msg) / truth
    ratio = ratio[np.isfinite(ratio)]
    assert ratio.size and np.ptp(ratio) < 1e-3 * ratio.mean(), 'not one exact scene'
    return round(float(ratio.mean()), 3)


def send_and_wait(harness, stamp, reference=None):
    """Optionally a reference, then the frame; wait until that frame is out (either topic)."""
    before = len(harness.sent['/depth']) + len(harness.sent['/depth/relative'])
    if reference is not None:
        send_reference(harness, reference_msg(stamp, reference))
    harness.send('image', frame_msg(stamp))
    assert wait_until(lambda: len(harness.sent['/depth']) + len(harness.sent['/depth/relative']) > before), \
        harness.node.alignment.snapshot()


def warned(harness, text):
    return harness.lines(text, severity='WARN')


def cloud_msg(stamp_ns, xyz, width=None, data=None):
    """A PointCloud2 of float32 x, y, z at offsets 0, 4, 8 and a 16-byte point (a LiDAR's layout)."""
    points = np.zeros((len(xyz), 4), '<f4')
    points[:, :3] = xyz
    msg = PointCloud2(header=header(stamp_ns), height=1, width=len(xyz) if width is None else width,
                      fields=[PointField(name=n, offset=o, datatype=7, count=1) for n, o in (('x', 0), ('y', 4),
                                                                                              ('z', 8))],
                      is_bigendian=False, point_step=16, row_step=16 * len(xyz), is_dense=True)
    msg.data = array.array('B', points.tobytes() if data is None else data)
    return msg


def camera_info(k=K, width=W, height=H):
    fx, fy, cx, cy = k
    return CameraInfo(width=width, height=height, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])


def back_projected(truth, count=2000, seed=5):
    """`count` points of the truth seen by a camera of intrinsics K: a LiDAR registered to it."""
    v, u = np.nonzero(np.isfinite(truth))
    keep = np.random.default_rng(seed).choice(v.size, count, replace=False)
    v, u, z = v[keep], u[keep], truth[v[keep], u[keep]]
    fx, fy, cx, cy = K
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)


def test_an_empty_cloud_is_rejected_and_counted_and_the_next_one_aligns(tiny_fixed_model, truth):
    """Issue 18.1: one cloud with no points (a LiDAR with no returns) ended the node."""
    with metric_node(tiny_fixed_model, relative_output(truth), metric_reference='points') as harness:
        harness.send('camera_info', camera_info())
        send_reference(harness, cloud_msg(5 * SECOND, np.zeros((0, 3)), width=0))
        send_reference(harness, cloud_msg(6 * SECOND, np.zeros((0, 3)), width=100))      # says 100, carries none
        assert harness.node.alignment.snapshot()['bad_reference'] == 2
        assert warned(harness, 'reference ignored: point cloud')
        send_reference(harness, cloud_msg(7 * SECOND, back_projected(truth)))
        harness.send('image', frame_msg(7 * SECOND))
        assert wait_until(lambda: harness.sent['/depth']), harness.node.alignment.snapshot()
        assert factor_of(harness.sent['/depth'][0], truth) == 1.0
        assert harness.diagnostic_values()['references_rejected'] == '2'


def test_frames_in_flight_pair_with_their_own_reference_whatever_the_reference_rate(tiny_fixed_model, truth):
    """Issue 18.3: references at 10 Hz, inference far longer than the store's reach: 0 of 15 frames
    aligned although each frame's own reference was sent before it. Here three frames are held in
    flight (two workers and the waiting slot) while 100 more references arrive."""
    with metric_node(tiny_fixed_model, relative_output(truth), workers=2) as harness:
        engine = harness.engine
        engine.gate.clear()
        frames = {10 * SECOND: 1.5, 11 * SECOND: 2.0, 12 * SECOND: 2.5}
        for taken, (stamp, factor) in enumerate(frames.items()):
            for tick in range(9, 0, -1):                              # 10 Hz before it, another scene
                send_reference(harness, reference_msg(stamp - tick * SECOND // 10, scaled(truth, 3.0)))
            send_reference(harness, reference_msg(stamp, scaled(truth, factor)))
            harness.send('image', frame_msg(stamp))
            if taken < 2:
                assert wait_until(lambda: engine.entered == taken + 1)   # on a worker: the slot is free again
        for tick in range(1, 101):
            send_reference(harness, reference_msg(12 * SECOND + tick * SECOND // 10, scaled(truth, 3.0)))
        engine.gate.set()
        assert wait_until(lambda: len(harness.sent['/depth']) == 3), harness.node.alignment.snapshot()
        assert {s: factor_of(m, truth) for s, m in published(harness, '/depth').items()} == frames
        assert harness.node.alignment.snapshot()['references'] == 3 * 10 + 100


def test_stamps_far_ahead_restart_the_store_and_later_pairs_align(tiny_fixed_model, truth):
    """Issue 18.3: 8 references stamped 1e6 s ahead, then normal pairs: every later frame was relative."""
    with metric_node(tiny_fixed_model, relative_output(truth)) as harness:
        for i in range(8):
            send_reference(harness, reference_msg((1_000_000 + i) * SECOND, scaled(truth, 3.0)))
        for i in range(5):
            send_and_wait(harness, (20 + i) * SECOND, scaled(truth, 1.0 + i / 10))
        assert [round(factor_of(m, truth), 1) for m in harness.sent['/depth']] == [1.0, 1.1, 1.2, 1.3, 1.4]
        values = harness.diagnostic_values()
        assert values['reference_restarts'] == '1' and values['frames_aligned'] == '5'
        assert warned(harness, 'reference store restarted')


def test_a_looping_bag_aligns_its_second_loop(tiny_fixed_model, truth):
    """Issue 18.3: the same 20 stamps again: 12 of 20 went out relative on the second loop."""
    with metric_node(tiny_fixed_model, relative_output(truth)) as harness:
        stamps = [30 * SECOND + i * SECOND // 10 for i in range(20)]
        for loop in range(2):
            for i, stamp in enumerate(stamps):
                send_and_wait(harness, stamp, scaled(truth, 1.0 + i / 20))
        assert len(harness.sent['/depth']) == 40 and not harness.sent['/depth/relative']
        second = [factor_of(m, truth) for m in harness.sent['/depth'][20:]]
        assert second == [round(1.0 + i / 20, 3) for i in range(20)]
        assert harness.diagnostic_values()['reference_restarts'] == '1'


def test_a_reference_arriving_after_its_frame_is_used_while_the_frame_is_in_flight(tiny_fixed_model, truth):
    """Issue 18.3: a reference 50-500 ms after its frame (same stamp) was never used."""
    with metric_node(tiny_fixed_model, relative_output(truth)) as harness:
        engine = harness.engine
        engine.gate.clear()
        harness.send('image', frame_msg(40 * SECOND))
        assert wait_until(lambda: engine.entered == 1)
        send_reference(harness, reference_msg(40 * SECOND, scaled(truth, 1.25)))     # late, same stamp
        engine.gate.set()
        assert wait_until(lambda: harness.sent['/depth']), harness.node.alignment.snapshot()
        assert factor_of(harness.sent['/depth'][0], truth) == 1.25


@pytest.mark.parametrize('stamps', [
    [0] * 8 + [1 * SECOND, 2 * SECOND, 3 * SECOND, 4 * SECOND],     # the attack's zero stamps, then real ones
    [5 * SECOND] * 6,                                                # a constant stamp
])
def test_unusable_stamps_never_pair_with_a_stale_reference(tiny_fixed_model, truth, stamps):
    """Issue 18.4: frame k was aligned to the reference seven before its own, counted as aligned.
    Each frame is sent with a reference of its own scene: any frame out in metres must carry its
    own reference's factor."""
    with metric_node(tiny_fixed_model, relative_output(truth), reference_tolerance=0.05) as harness:
        for k, stamp in enumerate(stamps):
            send_and_wait(harness, stamp, scaled(truth, 1.0 + k / 10))
        metres = [factor_of(m, truth) for m in harness.sent['/depth']]
        usable = [k for k, s in enumerate(stamps) if s and s not in stamps[:k]]      # first of each stamp
        assert metres == [round(1.0 + k / 10, 3) for k in usable]
        counts = harness.node.alignment.snapshot()
        assert counts['unusable_stamp'] == len(stamps) - len(usable) == len(harness.sent['/depth/relative'])
        assert counts['bad_reference'] == len(stamps) - len(usable)                 # zero or repeated
        assert warned(harness, 'reference ignored: its stamp is')


@pytest.mark.parametrize('reference', [
    lambda truth: patch_reference(truth, 2.0),                    # a flat wall in a narrow ToF view
    lambda truth: np.full(truth.shape, 2.0),                      # 2.0 m everywhere
    lambda truth: patch_reference(truth, 2.0, noise_m=0.002),     # +-2 mm of noise
])
def test_a_reference_that_cannot_fix_the_scale_leaves_the_frame_relative_and_warns(tiny_fixed_model, truth,
                                                                                   reference):
    """Issue 18.5: the whole frame went out as exactly 2.0 m, counted as aligned, diagnostics ok."""
    output = relative_output(truth)
    with metric_node(tiny_fixed_model, output) as harness:
        send_and_wait(harness, 50 * SECOND, reference(truth))
        assert harness.sent['/depth'] == []
        np.testing.assert_allclose(depth_of(harness.sent['/depth/relative'][0]), output, rtol=1e-6)
        counts = harness.node.alignment.snapshot()
        assert counts['fit_refused'] == 1 and counts['aligned'] == 0
        assert warned(harness, 'fit_refused: the reference cannot fix the scale')
        diag = harness.diagnostics()
        assert diag.level == DiagnosticStatus.WARN and 'fit_refused 1' in diag.message
        values = {kv.key: kv.value for kv in diag.values}
        assert values['unaligned_fit_refused'] == '1' and 'cannot fix the scale' in values['alignment_last_refusal']


def test_a_reference_of_denormals_is_rejected_and_the_frame_goes_out_relative(tiny_fixed_model, truth):
    """Issue 18.5: a reference of positive denormal floats (1e-44) gave 0 m everywhere, counted aligned."""
    with metric_node(tiny_fixed_model, relative_output(truth)) as harness:
        send_and_wait(harness, 60 * SECOND, np.full(truth.shape, 1e-44))
        assert harness.sent['/depth'] == [] and len(harness.sent['/depth/relative']) == 1
        counts = harness.node.alignment.snapshot()
        assert counts['bad_reference'] == 1 and counts['no_reference'] == 1 and counts['aligned'] == 0
        assert warned(harness, 'no reading between 1 mm and 1000 m')
        diag = harness.diagnostics()
        assert diag.level == DiagnosticStatus.WARN and 'no_reference 1' in diag.message
        assert '1 references rejected' in diag.message


@pytest.mark.parametrize('bad', [dict(k=(1e-9, 1e-9, K[2], K[3])), dict(width=2**31 - 1, height=2**31 - 1),
                                 dict(width=W // 4, height=H)])
def test_the_floor_needs_a_camera_info_that_belongs_to_the_frames(tiny_fixed_model, bad):
    """Issue 18.7: fx = fy = 1e-9 gave 'aligned' metres of 1e-11 m; a 2^31-1 size 3e-7 m. A camera
    0.6 m above a floor it sees whole: a good camera_info then gives the floor's metres exactly."""
    pitch = np.radians(25)
    scene = floor_depth((H, W), K, 0.6, pitch, floor_rows=1.0).astype(np.float64)
    with metric_node(tiny_fixed_model, relative_output(scene), metric_reference='ground_plane', camera_height=0.6,
                     camera_pitch=float(pitch)) as harness:
        harness.send('image', frame_msg(70 * SECOND))                       # a frame first: its size is known
        assert wait_until(lambda: harness.sent['/depth/relative'])
        harness.send('camera_info', camera_info(**bad))
        harness.send('image', frame_msg(71 * SECOND))
        assert wait_until(lambda: len(harness.sent['/depth/relative']) == 2)
        assert harness.node.skips.snapshot()['camera_info_rejected'] == 1 and harness.sent['/depth'] == []
        assert harness.node.alignment.snapshot()['no_camera_info'] == 2
        assert warned(harness, 'camera_info ignored')
        harness.send('camera_info', camera_info())
        harness.send('image', frame_msg(72 * SECOND))
        assert wait_until(lambda: harness.sent['/depth']), harness.node.alignment.snapshot()
        metres = depth_of(harness.sent['/depth'][0])
        valid = np.isfinite(scene)
        assert abs_rel(metres[valid], scene[valid]) < 1e-3


@pytest.mark.parametrize('name', ['depth_anything_v2_vits_nonmetric.onnx', 'asymmetric_pad_dav2.onnx'])
def test_a_relative_model_whose_name_contains_metric_stays_relative(tiny_fixed_model, truth, tmp_path, name):
    """Issue 18.6: the node published the relative values (0..2.32) on `depth` as metres."""
    model = str(tmp_path / name)
    shutil.copy(tiny_fixed_model, model)
    with metric_node(model, relative_output(truth), metric_reference='none') as harness:
        assert harness.node.processor.depth_type == 'relative' and not harness.node.processor.metric
        assert 'relative inverse depth' in harness.node.processor.meaning()


def test_the_finish_step_waits_briefly_for_a_reference_still_to_come(tiny_fixed_model, truth):
    """The frame reaches its finish step before its reference (a fast engine, a LiDAR publishing
    after its scan): with references arriving and none yet past the frame's stamp, alignment
    waits for it, up to reference_wait after the frame arrived."""
    with metric_node(tiny_fixed_model, relative_output(truth), reference_wait=1.0) as harness:
        send_reference(harness, reference_msg(44 * SECOND, scaled(truth, 3.0)))      # the stream is live
        store = harness.node.processor.aligner.references
        asked = threading.Event()
        pair = store.pair
        store.pair = lambda stamp, deadline=None: (asked.set(), pair(stamp, deadline))[1]
        harness.send('image', frame_msg(45 * SECOND))
        assert asked.wait(20)                                # finishing, and nothing within 10 ms of 45 s
        send_reference(harness, reference_msg(45 * SECOND, scaled(truth, 1.5)))
        assert wait_until(lambda: harness.sent['/depth'] or harness.sent['/depth/relative'])
        assert harness.sent['/depth'] and factor_of(harness.sent['/depth'][0], truth) == 1.5


def test_a_camera_info_that_does_not_describe_the_frames_is_rejected_when_they_come(tiny_fixed_model):
    """A camera_info of a plausible camera, received before any frame, for frames a quarter as wide:
    refused at the first frame, counted like one refused on arrival."""
    with metric_node(tiny_fixed_model, np.ones((H, W), np.float32), metric_reference='ground_plane',
                     camera_height=0.6, camera_pitch=0.4) as harness:
        harness.send('camera_info', camera_info(width=W // 4, height=H))
        assert harness.node.skips.snapshot()['camera_info_rejected'] == 0          # no frame yet to compare with
        harness.send('image', frame_msg(80 * SECOND))
        assert wait_until(lambda: harness.sent['/depth/relative'])
        harness.send('image', frame_msg(81 * SECOND))
        assert wait_until(lambda: len(harness.sent['/depth/relative']) == 2)   # frame 80's messages are all out
        assert harness.node.skips.snapshot()['camera_info_rejected'] == 1
        assert harness.sent['/depth/camera_info'] == []                      # none kept to go beside them
        assert harness.node.alignment.snapshot()['no_camera_info'] == 2 and warned(harness, 'does not describe')
