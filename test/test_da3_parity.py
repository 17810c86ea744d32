"""Depth Anything 3 in the node and `infer` == the official code itself, on the same random weights.

The reference is the official package's own single-image inference (helpers/da3_reference.py:
its InputProcessor, the network's forward with its sky fill, its OutputProcessor and, for metres,
its apply_metric_scaling with the intrinsics its InputProcessor scaled), on tiny random-weight
builds of its own networks (torch_models/da3_build.py): DA3-Small (seed 0), DA3Mono-Large and
DA3Metric-Large (seed 6). The package runs the ONNX export of the same network, fixed at the
official input size of each image (4:3, 16:9, portrait), through the node in-process
(helpers/node_harness.py) and through `infer`.

The official code never resizes its maps to the image: the reference is resized with the
upsampling we state for DA3 (bilinear, align_corners, as DA3's own heads upsample), by PyTorch.
Bounds: depth within 1e-3 of the reference's depth range at every pixel; metres within 1e-3
relative of focal x depth / 300 with the official scaled focal length. Sky: with `sky_depth:
official_fill` every pixel is compared (the fill included); with the default `infinite` the pixels
the official code fills are +Inf and the others compared. Seed 6 gives sky on 39-68 % of the
network's pixels and at most 100000 other pixels at these sizes, so the official fill is the exact
99th percentile, not one of a random sample (da3.py samples 100000 when there are more).
"""
import os

import cv2
import numpy as np
import pytest

torch = pytest.importorskip('torch')

from sensor_msgs.msg import CameraInfo   # noqa: E402

from depth_anything_ros import cli   # noqa: E402
from depth_anything_ros.core.image_codec import encode_bgr   # noqa: E402
from depth_anything_ros.core.paths import SAMPLE_IMAGE   # noqa: E402
from depth_anything_ros.engines import open_engine   # noqa: E402
from depth_anything_ros.ros.messages import header_at, image_message   # noqa: E402

from helpers import models   # noqa: E402
from helpers.da3_reference import FILL_THRESHOLD, official_inference, resize_to_image   # noqa: E402
from helpers.data import data_file   # noqa: E402
from helpers.node_harness import running_node   # noqa: E402
from helpers.threads import wait_until   # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.dev_tools, pytest.mark.graph]

BOUND = 1e-3
SEEDS = {'da3-small': 0, 'da3mono-large': 6, 'da3metric-large': 6}
# image, its official network input (H, W) by the upper_bound_resize rule
IMAGES = {'4:3': ('redwood_synthetic/color/00000.jpg', (378, 504)),
          '16:9': ('sample', (280, 504)),
          'portrait': ('natural_images/unsplash_jonathan-borba-CnthDZXCdoY-unsplash.jpg', (504, 336))}
UPSAMPLING = 'align_corners'


def image_path(aspect: str) -> str:
    rel = IMAGES[aspect][0]
    return SAMPLE_IMAGE if rel == 'sample' else data_file(rel)


def intrinsics(width: int, height: int) -> tuple:
    """A camera of non-square pixels (fx != fy), so the mean of the two scaled focals is tested."""
    return 0.9 * width, 0.95 * width, (width - 1) / 2, (height - 1) / 2


@pytest.fixture(scope='module')
def networks():
    from depth_anything_ros.torch_models.da3_build import build_da3_model
    return {kind: build_da3_model(kind, tiny=True, seed=seed) for kind, seed in SEEDS.items()}


def reference(net, bgr, metric: bool):
    """(the official result, its depth at the image's size, its metres at the image's size or None)."""
    h, w = bgr.shape[:2]
    fx, fy, cx, cy = intrinsics(w, h)
    k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    result = official_inference(net, np.ascontiguousarray(bgr[:, :, ::-1]), intrinsics=k if metric else None)
    depth = resize_to_image(result.depth, (h, w), UPSAMPLING)
    if not metric:
        return result, depth, None
    focal = (result.intrinsics[0, 0] + result.intrinsics[1, 1]) / 2     # fx, fy scaled to the network input
    np.testing.assert_allclose(result.metres, result.depth * focal / 300, rtol=1e-6)
    return result, depth, depth.astype(np.float64) * focal / 300


def sky_on_image(result, image_hw) -> tuple:
    """Where the official code fills, at the image's size by our stated rule: (its filled mask
    upsampled as depth is, as PyTorch upsamples it: sky from one half up; the pixels that depend
    on a network pixel whose sky score is within 1e-4 of the threshold, where ONNX Runtime and
    PyTorch (measured 2.6e-5 apart) may read sky differently). (None, None) for a model without sky."""
    if result.sky_score is None:
        return None, None
    filled = (result.sky_score >= FILL_THRESHOLD).astype(np.float32)
    close = (np.abs(result.sky_score - FILL_THRESHOLD) < 1e-4).astype(np.float32)
    return resize_to_image(filled, image_hw, UPSAMPLING), resize_to_image(close, image_hw, UPSAMPLING) > 0


def node_outputs(model, bgr, metric: bool, **params) -> dict:
    """The node's published depth (and confidence) for one frame, by topic."""
    h, w = bgr.shape[:2]
    header = header_at(1_000_000_000, 'camera')
    with running_node(model, open_engine(model), **params) as harness:
        if metric:
            fx, fy, cx, cy = intrinsics(w, h)
            harness.send('camera_info', CameraInfo(width=w, height=h, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]))
        harness.send('image', image_message(header, encode_bgr(bgr, 'bgr8')))
        assert wait_until(lambda: harness.node.frames.snapshot()['published']), harness.logged
        return {topic: np.frombuffer(bytes(msgs[0].data), np.float32).reshape(h, w)
                for topic, msgs in harness.sent.items() if msgs and getattr(msgs[0], 'encoding', '') == '32FC1'}


def infer_depth(model, path, tmp_path, metric: bool, *options) -> np.ndarray:
    out = tmp_path / 'infer'
    h, w = cv2.imread(path).shape[:2]
    camera = ['--intrinsics', *map(str, intrinsics(w, h))] if metric else []
    assert cli.main(['infer', '--model', model, '--out', str(out), *camera, *options, path]) == 0
    return np.load(out / (os.path.splitext(os.path.basename(path))[0] + '_depth.npy'))


def assert_parity(got, expected, sky, close, metric, what):
    """Within BOUND of the depth range (relative in metres) where not sky; +Inf on the sky given
    (`sky`: the upsampled mask, None: compare every pixel; within 1e-5 of one half float rounding
    may decide either way). Pixels `close` to the sky threshold are left out, and counted."""
    compared = np.ones(got.shape, bool) if close is None else ~close
    if sky is not None:
        assert np.all(np.isposinf(got[(sky >= 0.5 + 1e-5) & compared])), what
        compared &= sky < 0.5 - 1e-5
        assert compared.mean() > 0.1 and (sky >= 0.5).mean() > 0.1, what
    assert np.isfinite(got[compared]).all(), what
    error = np.abs(got[compared] - expected[compared])
    worst = (error / np.abs(expected[compared])).max() if metric else error.max() / np.ptp(expected)
    left_out = 0 if close is None else int(close.sum())
    print(f'{what}: worst {worst:.2e} ({"relative" if metric else "of the depth range"}), '
          f'{left_out} pixels by the sky threshold left out')
    assert worst <= BOUND, what


@pytest.mark.parametrize('aspect', IMAGES)
@pytest.mark.parametrize('kind', SEEDS)
def test_node_and_infer_give_the_official_depth(networks, model_dir, tmp_path, kind, aspect):
    path = image_path(aspect)
    bgr = cv2.imread(path)
    size = IMAGES[aspect][1]
    model = models.da3_model(model_dir, kind, size, SEEDS[kind])
    metric = kind == 'da3metric-large'
    result, depth, metres = reference(networks[kind], bgr, metric)
    assert result.processed_hw == size
    expected = metres if metric else depth
    sky, close = sky_on_image(result, bgr.shape[:2])
    assert close is None or close.mean() < 1e-3
    modes = ('infinite', 'official_fill') if sky is not None else ('infinite',)
    for mode in modes:
        published = node_outputs(model, bgr, metric, sky_depth=mode, publish_confidence=kind == 'da3-small')
        assert set(published) == {'/depth'} | ({'/depth/confidence'} if kind == 'da3-small' else set())
        masked = sky if mode == 'infinite' else None
        assert_parity(published['/depth'], expected, masked, close, metric, f'node {kind} {aspect} {mode}')
        assert_parity(infer_depth(model, path, tmp_path, metric, '--sky-depth', mode), expected, masked, close,
                      metric, f'infer {kind} {aspect} {mode}')
        if kind == 'da3-small':
            confidence = resize_to_image(result.confidence, bgr.shape[:2], UPSAMPLING)
            assert_parity(published['/depth/confidence'], confidence, None, None, False, f'confidence {aspect}')


def test_the_preprocessing_is_the_official_input():
    """The da3 recipe's input tensor == the official InputProcessor's, for cameras of every shape,
    enlarged and shrunk, odd sizes included: the two uint8 resizes are the same OpenCV calls, what
    differs is float32 rounding of the normalization."""
    from depth_anything_ros.core.image_codec import Frame
    from depth_anything_ros.core.model_catalog import load_catalog
    from depth_anything_ros.core.placement import upper_bound_size
    from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
    from helpers.da3_reference import input_processor
    recipe = load_catalog().recipes['da3']
    rng = np.random.default_rng(0)
    photo = cv2.imread(SAMPLE_IMAGE)
    for w, h in [(1920, 1080), (640, 480), (480, 640), (1242, 375), (320, 240), (300, 500), (504, 378), (333, 777)]:
        bgr = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
        bgr[::7] = rng.integers(0, 256, bgr[::7].shape)       # hard edges: resize kernels show
        official, _, _ = input_processor()([np.ascontiguousarray(bgr[:, :, ::-1])], None, None, 504,
                                           'upper_bound_resize')
        size = upper_bound_size(h, w, 504)
        assert tuple(official.shape[-2:]) == size, (w, h)
        ours, _ = RgbPreprocessor(rgb_input(size), recipe).tensor(Frame('bgr8', bgr, h, w))
        assert np.abs(ours[0] - official[0].numpy()).max() < 1e-5, (w, h)


def test_the_fill_is_the_official_fill():
    """sky.read_sky and sky.filled against the official forward's own step
    (DepthAnything3Net._process_mono_sky_estimation) on maps of up to 100000 non-sky pixels (where
    its percentile is exact), and where too few pixels are sky or not sky (no fill)."""
    from addict import Dict

    from depth_anything_ros.core import sky
    from depth_anything_ros.torch_models.da3_build import build_da3_model
    net = build_da3_model('da3mono-large', tiny=True)
    rng = np.random.default_rng(1)
    for h, w, sky_fraction in [(120, 160, 0.3), (280, 504, 0.5), (10, 10, 0.05), (10, 10, 0.95), (64, 64, 0.0)]:
        depth = rng.lognormal(0, 0.5, (h, w)).astype(np.float32)
        score = np.where(rng.random((h, w)) < sky_fraction, rng.uniform(0.3, 2, (h, w)),
                         rng.uniform(0, 0.2999, (h, w))).astype(np.float32)
        official = net._process_mono_sky_estimation(Dict(depth=torch.from_numpy(depth)[None, None],
                                                         sky=torch.from_numpy(score)[None, None]))
        reading = sky.read_sky(score, depth)
        np.testing.assert_allclose(sky.filled(depth, reading), official.depth[0, 0].numpy(), rtol=1e-5)
        assert (reading.replaced is None) == np.array_equal(official.depth[0, 0].numpy(), depth)
        np.testing.assert_array_equal(reading.mask, score >= 0.5)
