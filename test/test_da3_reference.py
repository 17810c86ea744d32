"""The official DA3 monocular inference (test/da3_reference.py) on the three kinds of model, at three
aspect ratios, and the facts of issue 22 checked against the official package itself.

Random tiny weights (torch_models/da3_build.py, the official networks narrowed): the numbers mean
nothing as depth; what is checked is what the official code does with them:
- its InputProcessor: longer side to 504 (round), then each side to the nearest multiple of 14,
  INTER_AREA when shrinking, INTER_CUBIC when enlarging, /255 and ImageNet mean/std; restated
  here with OpenCV from those rules and compared (the node's DA3 recipe must do the same);
- the maps it returns: depth (exp, > 0), depth_conf (exp + 1) for the main series; for Mono and
  Metric the sky head's score, the mask it reports (score >= 0.5) and the fill of the depth where
  score >= 0.3 with the 99th percentile of the other pixels' depth;
- depth at non-sky pixels == the monocular graph we export (torch_models/da3_build.monocular) on
  the same input: the exported graph is the official forward up to the data-dependent fill;
- metric: metres == depth * mean(fx', fy') / 300 with fx', fy' the intrinsics scaled to the
  network input (the package's own apply_metric_scaling and InputProcessor).
"""
import cv2
import numpy as np
import pytest

from helpers.data import data_file
from helpers.da3_reference import FILL_THRESHOLD, MASK_THRESHOLD, official_inference, resize_to_image

pytestmark = [pytest.mark.slow, pytest.mark.dev_tools]

KINDS = ('da3-small', 'da3mono-large', 'da3metric-large')
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
# image (test/data or the package's sample), its size WxH, the network input the rules give (HxW)
IMAGES = {
    '4:3': ('redwood_synthetic/color/00000.jpg', (640, 480), (378, 504)),
    '16:9': ('sample', (1280, 720), (280, 504)),          # 504x283.5 -> 284 -> 280: two resizes
    'portrait': ('natural_images/unsplash_jonathan-borba-CnthDZXCdoY-unsplash.jpg', (800, 1200), (504, 336)),
}
REDWOOD_K = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])   # test/data/PROVENANCE.md


@pytest.fixture(scope='module')
def networks():
    from depth_anything_ros.torch_models.da3_build import build_da3_model
    return {kind: build_da3_model(kind, tiny=True, seed=i) for i, kind in enumerate(KINDS)}


@pytest.fixture(scope='module')
def images():
    from depth_anything_ros.core.paths import SAMPLE_IMAGE
    out = {}
    for name, (path, size, _) in IMAGES.items():
        bgr = cv2.imread(SAMPLE_IMAGE if path == 'sample' else data_file(path))
        assert bgr.shape[1::-1] == size, (name, bgr.shape)
        out[name] = np.ascontiguousarray(bgr[:, :, ::-1])
    return out


def _nearest_multiple(x: int, p: int = 14) -> int:
    down = x // p * p
    return down + p if (down + p) - x <= x - down else down


def da3_input(rgb: np.ndarray, longer: int = 504) -> np.ndarray:
    """The rules of issue 22, written with OpenCV: longer side to 504 (AREA down, CUBIC up), then each
    side to the nearest multiple of 14 (CUBIC if a side grows), RGB/255, ImageNet mean/std."""
    h, w = rgb.shape[:2]
    scale = longer / max(h, w)
    if scale != 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    size = (_nearest_multiple(w), _nearest_multiple(h))
    if size != (w, h):
        grows = size[0] > w or size[1] > h
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC if grows else cv2.INTER_AREA)
    return ((rgb / 255.0 - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


@pytest.mark.parametrize('aspect', IMAGES)
@pytest.mark.parametrize('kind', KINDS)
def test_official_inference(networks, images, kind, aspect):
    from depth_anything_ros.torch_models.da3_build import torch_outputs
    rgb = images[aspect]
    metric = kind == 'da3metric-large'
    result = official_inference(networks[kind], rgb, intrinsics=REDWOOD_K if metric else None)
    h, w = IMAGES[aspect][2]
    assert result.processed_hw == (h, w) and result.depth.shape == (h, w)
    # float32 pixels vs float64 here: 1e-6
    np.testing.assert_allclose(result.pixel_values[0], da3_input(rgb), rtol=0, atol=1e-5)
    depth = result.depth
    assert np.isfinite(depth).all() and depth.min() > 0 and depth.std() > 0.05 * depth.mean()

    graph = torch_outputs(networks[kind], result.pixel_values)
    if kind == 'da3-small':
        assert result.sky is None and result.sky_score is None
        assert result.confidence.shape == (h, w) and result.confidence.min() > 1   # exp + 1
        np.testing.assert_array_equal(depth, graph['depth'][0])
        np.testing.assert_array_equal(result.confidence, graph['depth_conf'][0])
    else:
        _check_sky_fill(result, graph)
    if metric:
        fx, fy = REDWOOD_K[0, 0] * w / rgb.shape[1], REDWOOD_K[1, 1] * h / rgb.shape[0]
        np.testing.assert_allclose(result.intrinsics[[0, 1], [0, 1]], [fx, fy], rtol=1e-6)
        np.testing.assert_allclose(result.metres, depth * (fx + fy) / 2 / 300, rtol=1e-6)
    full = resize_to_image(depth, rgb.shape[:2], 'align_corners')
    assert full.shape == rgb.shape[:2]
    assert full[0, 0] == pytest.approx(depth[0, 0]) and full[-1, -1] == pytest.approx(depth[-1, -1])


def _check_sky_fill(result, graph):
    score = result.sky_score
    np.testing.assert_array_equal(score, graph['sky'][0])
    np.testing.assert_array_equal(result.sky, score >= MASK_THRESHOLD)
    sky = score >= FILL_THRESHOLD
    # Random weights give some sky and some ground at every size here: the fill runs (> 10 each).
    assert 10 < sky.sum() < sky.size - 10, sky.mean()
    np.testing.assert_array_equal(result.depth[~sky], graph['depth'][0][~sky])
    fill = np.unique(result.depth[sky])
    assert fill.size == 1
    # The 99th percentile of the non-sky depth (torch.quantile: its rank q * (n - 1) in float32, so
    # 1e-5 of the value away from numpy's), over a random 100000 of them when there are more.
    ground = graph['depth'][0][~sky]
    if ground.size <= 100000:
        ordered = np.sort(ground)
        rank = 0.99 * (ground.size - 1)
        assert ordered[int(rank)] <= fill[0] <= ordered[int(rank) + 1]
        assert fill[0] == pytest.approx(np.quantile(ground, 0.99), rel=1e-4)
    else:
        low, high = np.quantile(ground, [0.985, 0.995])
        assert low < fill[0] < high, (low, fill[0], high)


def test_upper_bound_resize_examples():
    """The issue's examples through the official InputProcessor itself: 1920x1080 -> 504x280,
    640x480 -> 504x378; an image smaller than 504 is enlarged."""
    from helpers.da3_reference import input_processor
    processor = input_processor()
    for (w, h), expected in [((1920, 1080), (280, 504)), ((640, 480), (378, 504)), ((320, 240), (378, 504)),
                             ((300, 500), (504, 308))]:
        rgb = np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)
        tensor, _, _ = processor([rgb], None, None, 504, 'upper_bound_resize')
        assert tuple(tensor.shape[-2:]) == expected, (w, h)
        np.testing.assert_allclose(tensor[0].numpy(), da3_input(rgb), rtol=0, atol=1e-5)
