"""DA3's sky, confidence and canonical metres in FrameProcessor (core/sky.py, core/frame_processor.py),
with an engine stand-in that has a DA3 model's inputs and output names and answers known maps: what
each setting publishes, checked value by value. The official code's own fill is the reference in
test_da3_parity.py (it needs PyTorch); this file runs on the board's Python too."""
import numpy as np
import pytest

from depth_anything_ros.core import sky
from depth_anything_ros.core.image_codec import Frame
from depth_anything_ros.core.params import defaults
from depth_anything_ros.core.placement import place
from depth_anything_ros.core.preprocess import rgb_input
from depth_anything_ros.core.processor_factory import build_processor
from depth_anything_ros.engines import Engine, TensorSpec

NET = (28, 42)                  # the model's input and output (H, W)
FRAME = (56, 84)                # frames at twice that size
SKY_ROWS = 7                    # network rows 0..6 are sky


class MapsEngine(Engine):
    """A DA3 model's tensors (pixel_values -> depth and sky or depth_conf), answering fixed maps."""
    name = 'maps'

    def __init__(self, maps: dict):
        self.path, self.maps = 'maps', maps
        self.inputs = [rgb_input(NET, name='pixel_values')]
        self.outputs = [TensorSpec(name, (1,) + NET, np.dtype(np.float32)) for name in maps]

    def run(self, feeds):
        return {name: value[None].copy() for name, value in self.maps.items()}


def depth_map() -> np.ndarray:
    rows, cols = np.mgrid[0:NET[0], 0:NET[1]].astype(np.float32)
    return 1.0 + rows / 4 + cols / 40          # grows downwards, like a floor


def sky_band() -> np.ndarray:
    score = np.zeros(NET, np.float32)
    score[:SKY_ROWS] = 0.9
    score[SKY_ROWS:SKY_ROWS + 2] = 0.4          # sky for the fill (>= 0.3), not in the reported mask (< 0.5)
    return score


def finish(depth_type: str, camera=None, **params):
    engine = MapsEngine({'depth': depth_map(), 'sky': sky_band()})
    processor = build_processor(defaults(model_path='/m/exported.onnx', depth_type=depth_type, **params), engine)
    frame = Frame('rgb8', np.full(FRAME + (3,), 128, np.uint8), *FRAME)
    return processor, processor.process(frame, camera=camera)


def restored(processor, values):
    placement = place(FRAME, NET, 'stretch', 518)
    return processor.estimator.restore(np.asarray(values, np.float32), placement)


def test_read_sky_is_the_official_rule():
    depth, score = depth_map(), sky_band()
    reading = sky.read_sky(score, depth)
    np.testing.assert_array_equal(reading.replaced, score >= 0.3)
    np.testing.assert_array_equal(reading.mask, score >= 0.5)
    assert reading.fill == pytest.approx(np.quantile(depth[score < 0.3].astype(np.float64), 0.99))
    filled = sky.filled(depth, reading)
    assert (filled[:SKY_ROWS + 2] == np.float32(reading.fill)).all()
    assert (filled[SKY_ROWS + 2:] == depth[SKY_ROWS + 2:]).all()
    for few in (10, score.size - 10):        # 10 sky, or 10 other pixels: the official code fills nothing
        score = np.zeros(NET, np.float32)
        score.flat[:few] = 1.0
        reading = sky.read_sky(score, depth)
        assert reading.replaced is None and sky.filled(depth, reading) is depth and reading.mask.sum() == few


def test_sky_is_infinite_by_default_and_the_official_fill_on_request():
    processor, out = finish('relative_depth', publish_sky=True)
    reading = sky.read_sky(sky_band(), depth_map())
    expected = restored(processor, sky.filled(depth_map(), reading))
    on_image = sky.on_image(reading.replaced, place(FRAME, NET, 'stretch', 518), 'align_corners')
    assert on_image.any() and not on_image.all()
    assert np.isposinf(out.depth[on_image]).all()
    np.testing.assert_array_equal(out.depth[~on_image], expected[~on_image])
    np.testing.assert_array_equal(out.sky == 255, sky.on_image(sky_band() >= 0.5, place(FRAME, NET, 'stretch', 518),
                                                               'align_corners'))
    assert (out.sky == 255).sum() < on_image.sum()          # the reported mask (0.5) is inside the filled one
    assert np.isfinite(out.colorized).all() and not out.metres
    _, filled = finish('relative_depth', sky_depth='official_fill')
    np.testing.assert_array_equal(filled.depth, expected)


def test_canonical_depth_becomes_metres_with_the_network_focal():
    from types import SimpleNamespace
    fx, fy = 100.0, 120.0
    camera = SimpleNamespace(k=[fx, 0, 41.5, 0, fy, 27.5, 0, 0, 1], width=FRAME[1], height=FRAME[0])
    processor, out = finish('metric_canonical', camera, publish_points=True, max_depth=1.0)
    focal = (fx * NET[1] / FRAME[1] + fy * NET[0] / FRAME[0]) / 2      # each axis scaled to the network
    assert out.metres and out.focal == pytest.approx(focal)
    relative = restored(processor, sky.filled(depth_map(), sky.read_sky(sky_band(), depth_map())))
    metres = relative * np.float32(focal / 300)
    inf = np.isposinf(out.depth)
    near = ~inf & (metres <= 1.0)
    np.testing.assert_allclose(out.depth[near], metres[near], rtol=1e-6)
    assert np.isnan(out.depth[~inf & ~near]).all() and (~inf & ~near).any()     # past max_depth: NaN, not sky
    assert inf.any() and out.points is not None and np.isfinite(out.points[0]).all()
    assert len(out.points[0]) == np.count_nonzero(near[::4, ::4])
    _, alone = finish('metric_canonical')                     # no camera_info: relative, said why
    assert not alone.metres and alone.unaligned == 'no_camera_info' and 'focal length' in alone.unaligned_detail
    assert alone.points is None and alone.focal is None


def test_confidence_at_the_image_size():
    conf = 1.0 + depth_map()
    engine = MapsEngine({'depth': depth_map(), 'depth_conf': conf})
    processor = build_processor(defaults(model_path='/m/exported.onnx', publish_confidence=True), engine)
    assert processor.depth_type == 'relative_depth'            # an unlisted model with DA3's outputs
    out = processor.process(Frame('rgb8', np.zeros(FRAME + (3,), np.uint8), *FRAME))
    np.testing.assert_array_equal(out.confidence, restored(processor, conf))
    assert out.sky is None
