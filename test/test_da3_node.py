"""A DA3Metric model in the node (in-process, helpers/node_harness.py), and the ONNX-only facts of DA3
models: what runs on the board's Python stack too (no PyTorch: the models come from the main job).

The graph test runs the tiny DA3Metric ONNX (the official network, random weights) through the real
ONNX Runtime engine; a stand-in engine around it replaces only the `sky` output with a band over the
top third of the network's rows. Why: the random sky head puts sky in blobs over 39-68 % of the
image, wherever its weights say; a band known in advance lets the test say exactly which image rows
must be +Inf and which points must be missing. Everything else (depth, output names, shapes) is the
real model's.
"""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo

from depth_anything_ros.core.image_codec import Frame, encode_bgr
from depth_anything_ros.core.params import ConfigError, defaults
from depth_anything_ros.core.processor_factory import build_processor
from depth_anything_ros.engines import Engine, open_engine
from depth_anything_ros.ros.messages import header_at, image_message

from helpers.frames import sample_bgr
from helpers.node_harness import running_node
from helpers.threads import wait_until

pytestmark = pytest.mark.graph

H, W = 480, 640                 # a 4:3 camera: the model's 378x504 is DA3's own input for it
NET_H, NET_W = 378, 504
SKY_ROWS = NET_H // 3           # network rows 0..125 are sky in the stand-in
# Image rows whose depth is interpolated mostly from those rows (align_corners: network row = image
# row x 377 / 479; sky while that is <= 125.5): rows 0..159.
SKY_IMAGE_ROWS = int((SKY_ROWS - 0.5) * (H - 1) / (NET_H - 1)) + 1
K = (520.0, 540.0, 319.5, 239.5)   # fx != fy: the focal is their mean, each scaled on its own axis


class SkyBandEngine(Engine):
    """The real engine, with its `sky` output replaced by a band over the top SKY_ROWS rows."""
    name = 'sky_band'

    def __init__(self, real):
        self.real, self.path, self.inputs, self.outputs = real, real.path, real.inputs, real.outputs

    def run(self, feeds):
        outputs = self.real.run(feeds)
        band = np.zeros_like(outputs['sky'])
        band[:, :SKY_ROWS] = 1.0
        return {**outputs, 'sky': band}


def frame_msg(stamp_ns):
    return image_message(header_at(stamp_ns, 'camera'), encode_bgr(sample_bgr(W, H), 'bgr8'))


def camera_info():
    fx, fy, cx, cy = K
    return CameraInfo(width=W, height=H, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])


def image_of(msg, dtype=np.float32):
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def test_da3_metric_in_the_node_metres_infinite_sky_points_without_sky(da3_metric_model):
    params = dict(publish_points=True, publish_depth_mm=True, publish_sky=True, points_decimation=4)
    with running_node(da3_metric_model, SkyBandEngine(open_engine(da3_metric_model)), **params) as harness:
        assert harness.lines('metres from DA3Metric canonical depth', 'INFO')
        # No camera_info yet: relative depth on depth/relative, counted; never metres.
        harness.send('image', frame_msg(1_000_000_000))
        assert wait_until(lambda: harness.node.frames.snapshot()['published'] == 1)
        assert not harness.sent['/depth'] and not harness.sent['/depth/points'] and not harness.sent['/depth/mm']
        relative = image_of(harness.sent['/depth/relative'][0])
        diag = harness.diagnostics()
        assert diag.level == DiagnosticStatus.WARN and 'no_camera_info 1' in diag.message
        assert harness.diagnostic_values()['unaligned_no_camera_info'] == '1'

        harness.send('camera_info', camera_info())
        harness.send('image', frame_msg(2_000_000_000))
        assert wait_until(lambda: harness.node.frames.snapshot()['published'] == 2)
        metres = image_of(harness.sent['/depth'][0])
        assert len(harness.sent['/depth/relative']) == 1

        # Sky: +Inf in both, on the band's rows and nowhere else (the boundary row may go either way).
        for depth in (relative, metres):
            assert np.isposinf(depth[:SKY_IMAGE_ROWS]).all()
            assert np.isfinite(depth[SKY_IMAGE_ROWS + 1:]).all() and (depth[SKY_IMAGE_ROWS + 1:] > 0).all()
        ground = np.isfinite(metres)
        np.testing.assert_array_equal(ground, np.isfinite(relative))
        # Metres: the canonical depth x the focal at the network input (each axis scaled) / 300.
        focal = (K[0] * NET_W / W + K[1] * NET_H / H) / 2
        np.testing.assert_allclose(metres[ground], relative[ground] * focal / 300, rtol=1e-6)
        assert float(harness.diagnostic_values()['canonical_focal_px']) == pytest.approx(focal, abs=0.01)
        assert harness.diagnostic_values()['frames_metres'] == '1'

        sky = image_of(harness.sent['/depth/sky'][0], np.uint8)
        assert set(np.unique(sky)) == {0, 255}
        np.testing.assert_array_equal(sky[:SKY_IMAGE_ROWS] == 255, True)
        mm = image_of(harness.sent['/depth/mm'][0], np.uint16)
        assert (mm[:SKY_IMAGE_ROWS] == 0).all() and (mm[ground] > 0).all()     # REP 118: 0 = no reading

        # Points: one per finite pixel of the decimated grid, none from the sky's rows.
        cloud = harness.sent['/depth/points'][0]
        xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(cloud.width, -1)[:, :3]
        assert cloud.width == np.count_nonzero(ground[::4, ::4]) and np.isfinite(xyz).all()
        rows = xyz[:, 1] / xyz[:, 2] * K[1] + K[3]
        assert rows.min() > SKY_IMAGE_ROWS - 1.01
        values = harness.diagnostic_values()
        assert 'metres' in values['depth'] and 'farther' in values['colorized']


def test_relative_da3_depth_is_never_called_metres(da3_small_model):
    """DA3-Small: relative depth that grows with distance, said so at start-up and on /diagnostics;
    metric outputs need a reference; its confidence is published on request."""
    with pytest.raises(ConfigError, match='relative depth .larger = farther'):
        build_processor(defaults(model_path=da3_small_model, publish_points=True))
    with running_node(da3_small_model, open_engine(da3_small_model), publish_confidence=True) as harness:
        started = harness.lines('publishing on depth', 'INFO')[0]
        assert 'relative depth (larger = farther' in started and 'not metres' in started
        assert 'farther = the colormap' in started
        harness.send('image', frame_msg(1_000_000_000))
        assert wait_until(lambda: harness.node.frames.snapshot()['published'] == 1)
        depth = image_of(harness.sent['/depth'][0])
        confidence = image_of(harness.sent['/depth/confidence'][0])
        assert np.isfinite(depth).all() and (depth > 0).all() and (confidence >= 1).all()
        assert 'not metres' in harness.diagnostic_values()['depth']


@pytest.mark.parametrize('param, fixture', [('publish_sky', 'da3_small_model'),
                                            ('publish_confidence', 'da3_metric_model')])
def test_an_output_the_model_lacks_fails_start_up(request, param, fixture):
    model = request.getfixturevalue(fixture)
    with pytest.raises(ConfigError, match=f'parameter {param}: this model has no'):
        build_processor(defaults(model_path=model, **{param: True}))


def test_engines_return_every_output_by_name(da3_small_model, da3_metric_model, tmp_path, monkeypatch):
    """ONNX Runtime and the hbm_runtime stand-in give depth and the model's second map, by name."""
    import sys

    from depth_anything_ros.engines.hbm_engine import HbmEngine
    from helpers.hbm import sim
    monkeypatch.setitem(sys.modules, 'hbm_runtime', sim)
    for model, second in ((da3_small_model, 'depth_conf'), (da3_metric_model, 'sky')):
        ort = open_engine(model)
        feeds, _ = build_processor(defaults(model_path=model), ort).estimator.preprocess(
            Frame('bgr8', sample_bgr(W, H), H, W))
        expected = ort.run(feeds)
        assert list(expected) == ['depth', second]
        hbm = HbmEngine(sim.write_sim_model(tmp_path / 'da3.hbm', model, 'float_rgb', output_pad=2, output_form='raw'))
        got = hbm.run(feeds)
        assert list(got) == ['depth', second]
        for name in got:     # each read from its own padded buffer
            np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-5 * np.abs(expected[name]).max())
