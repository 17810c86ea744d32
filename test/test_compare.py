"""Depth agreement metrics and the `compare` and `calibration-data` subcommands."""
import math
import os
import re
import shutil

import cv2
import numpy as np
import pytest

from depth_anything_ros import cli
from depth_anything_ros.core.image_codec import Frame
from depth_anything_ros.core.depth_metrics import abs_rel, compare_depth, cosine_similarity, relative_l1
from depth_anything_ros.core.preprocess import RgbPreprocessor, rgb_input
from depth_anything_ros.core.recipe import Recipe

pytestmark = pytest.mark.slow

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'depth_anything_ros', 'samples', 'robot_camera.jpg')


# -- metrics on hand-computed cases ------------------------------------------

def test_cosine_by_hand():
    assert cosine_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine_similarity([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)  # scale-invariant
    # (1*1 + 1*0) / (sqrt(2) * 1)
    assert cosine_similarity([[1, 1]], [[1, 0]]) == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(cosine_similarity([0, 0], [1, 1]))


def test_relative_l1_by_hand():
    # mean|a-b| = (1 + 0 + 2) / 3 = 1; mean|b| = (2 + 4 + 6) / 3 = 4
    assert relative_l1([3, 4, 4], [2, 4, 6]) == pytest.approx(0.25)
    assert relative_l1([1, 2], [-1, -2]) == pytest.approx((2 + 4) / 2 / 1.5)  # |b| in the denominator
    assert math.isnan(relative_l1([1], [0]))


def test_abs_rel_by_hand():
    # over b > 0 only: |3-2|/2 = 0.5 and |4-4|/4 = 0 -> 0.25; the b = 0 pixel is skipped
    assert abs_rel([3, 4, 9], [2, 4, 0]) == pytest.approx(0.25)
    assert math.isnan(abs_rel([1, 2], [0, -1]))


def test_nan_pixels_are_ignored_in_either_map():
    a = np.array([3.0, np.nan, 4.0, 7.0])
    b = np.array([2.0, 5.0, 4.0, np.nan])
    m = compare_depth(a, b)  # only pixels 0 and 2 count
    assert m['rel_l1'] == pytest.approx(1 / 6) and m['abs_rel'] == pytest.approx(0.25)
    assert m['cosine'] == pytest.approx((6 + 16) / (5 * math.sqrt(20)))
    with pytest.raises(ValueError):
        compare_depth(np.zeros(3), np.zeros(4))


def test_correlation_ignores_scale_and_shift_not_shape():
    from depth_anything_ros.core.depth_metrics import correlation
    rng = np.random.default_rng(0)
    a = rng.random(1000)
    assert correlation(3 * a + 7, a) == pytest.approx(1.0)
    assert correlation(-a, a) == pytest.approx(-1.0)
    assert abs(correlation(rng.random(1000), a)) < 0.1
    assert math.isnan(correlation(np.ones(5), np.arange(5.0)))
    assert compare_depth(a, a)['correlation'] == pytest.approx(1.0)


# -- the subcommands -----------------------------------------------------------

@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Two small lossless images (so imread returns exactly what was written)."""
    folder = tmp_path_factory.mktemp('images')
    bgr = cv2.imread(SAMPLE)
    cv2.imwrite(str(folder / 'a.png'), cv2.resize(bgr, (320, 180)))
    cv2.imwrite(str(folder / 'b.png'), cv2.resize(bgr[:, 200:1000], (240, 180)))
    (folder / 'notes.txt').write_text('not an image')
    return folder


@pytest.fixture(scope='module')
def other_seed_model(tiny_seed1_model):
    return tiny_seed1_model


def mean_metrics(stdout: str) -> dict:
    line = next(text for text in stdout.splitlines() if text.startswith('mean over'))
    return {k: float(v) for k, v in re.findall(r'(cosine|rel_l1|abs_rel) (\S+)', line)}


def test_compare_identical_models(capsys, tmp_path, tiny_fixed_model, images):
    copy = tmp_path / 'copy.onnx'
    shutil.copy(tiny_fixed_model, copy)
    assert cli.main(['compare', '--a', tiny_fixed_model, '--b', str(copy), str(images)]) == 0
    out = capsys.readouterr().out
    assert out.count('cosine') == 3  # two images from the directory (not notes.txt) + mean
    m = mean_metrics(out)
    assert m['cosine'] == pytest.approx(1.0, abs=1e-6) and m['rel_l1'] == 0 and m['abs_rel'] == 0


def test_compare_different_weights(capsys, tiny_fixed_model, other_seed_model, images):
    argv = ['compare', '--a', tiny_fixed_model, '--b', other_seed_model, '--resize-mode', 'stretch',
            str(images / 'a.png')]
    assert cli.main(argv) == 0
    m = mean_metrics(capsys.readouterr().out)
    assert m['cosine'] < 0.9 and m['rel_l1'] > 0.1  # measured: 0.17 and 13.3


def test_compare_missing_image_fails(capsys, tiny_fixed_model, tmp_path):
    argv = ['compare', '--a', tiny_fixed_model, '--b', tiny_fixed_model, str(tmp_path / 'nope.jpg')]
    assert cli.main(argv) != 0
    assert 'nope.jpg' in capsys.readouterr().err


def test_compare_unreadable_image_fails(capsys, tiny_fixed_model, tmp_path):
    (tmp_path / 'broken.jpg').write_bytes(b'not a jpeg')
    argv = ['compare', '--a', tiny_fixed_model, '--b', tiny_fixed_model, str(tmp_path / 'broken.jpg')]
    assert cli.main(argv) == 2
    assert 'cannot read' in capsys.readouterr().err


def test_calibration_samples_equal_the_node_preprocessing(capsys, tmp_path, images):
    out = tmp_path / 'calib'
    argv = ['calibration-data', '--model-size', '518x686', '--out', str(out), '--resize-mode', 'letterbox',
            '--normalization', 'pixel_zscore', str(images)]
    assert cli.main(argv) == 0
    files = sorted(os.listdir(out))
    assert files == ['00000_a.npy', '00001_b.npy']
    pre = RgbPreprocessor(rgb_input((518, 686)), Recipe(resize_mode='letterbox', normalization='pixel_zscore'))
    for name, image in zip(files, ('a.png', 'b.png')):
        bgr = cv2.imread(str(images / image))
        expected, _ = pre.tensor(Frame('bgr8', bgr, *bgr.shape[:2]))
        sample = np.load(out / name)
        assert sample.dtype == np.float32 and sample.shape == (1, 3, 518, 686)
        np.testing.assert_array_equal(sample, expected)
    assert '2 samples' in capsys.readouterr().out


@pytest.mark.parametrize('size', ['518', '0x686', 'axb'])
def test_calibration_rejects_bad_model_size(capsys, tmp_path, images, size):
    argv = ['calibration-data', '--model-size', size, '--out', str(tmp_path / 'c'), str(images)]
    assert cli.main(argv) == 2
    assert '--model-size' in capsys.readouterr().err
