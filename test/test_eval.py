"""Benchmark metrics, ground-truth loaders, disparity alignment and the `eval` subcommand.

The metric functions are checked on hand-computed cases; alignment on a
prediction that is an exact affine function of the true disparity; the
loaders on the real files in test/data against index.csv's own statistics.
"""
import csv
import json
import math
import os

import cv2
import numpy as np
import pytest
from helpers.data import data_file

from depth_anything_ros import cli
from depth_anything_ros.core.evaluation import (FORMATS, EvaluationError, align_scale_shift, crop_region, evaluate,
                                           fit_scale_shift, load_depth, protocol, read_index, valid_mask)
from depth_anything_ros.core.depth_metrics import DEPTH_METRICS, depth_metrics

pytestmark = pytest.mark.slow

MM_DEPTH = 'redwood_synthetic/depth/00000.png'  # millimetres, like NYU's


def index_rows():
    with open(data_file('index.csv'), newline='') as f:
        return list(csv.DictReader(f))


# -- metrics on hand-computed cases ------------------------------------------

def test_perfect_prediction():
    gt = np.array([0.5, 1.0, 2.0, 7.5])
    m = depth_metrics(gt.copy(), gt)
    assert set(m) == set(DEPTH_METRICS)
    for k in ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10'):
        assert m[k] == pytest.approx(0.0, abs=1e-15), k
    assert m['delta1'] == m['delta2'] == m['delta3'] == 1.0


def test_ten_percent_error():
    gt = np.array([1.0, 2.0, 4.0])
    m = depth_metrics(1.1 * gt, gt)
    assert m['abs_rel'] == pytest.approx(0.1)
    assert m['sq_rel'] == pytest.approx(0.01 * (1 + 2 + 4) / 3)           # (0.1 g)^2 / g = 0.01 g
    assert m['rmse'] == pytest.approx(0.1 * math.sqrt((1 + 4 + 16) / 3))
    assert m['rmse_log'] == pytest.approx(math.log(1.1))
    assert m['log10'] == pytest.approx(math.log10(1.1))
    assert m['delta1'] == 1.0                                              # 1.1 < 1.25


def test_delta_thresholds_and_symmetry():
    gt = np.ones(4)
    # ratios 1, 1.3, 1.6, 2.0 against 1.25, 1.5625, 1.953125; 1/1.3 counts like 1.3
    for pred in ([1.0, 1.3, 1.6, 2.0], [1.0, 1 / 1.3, 1 / 1.6, 0.5]):
        m = depth_metrics(np.array(pred), gt)
        assert (m['delta1'], m['delta2'], m['delta3']) == pytest.approx((0.25, 0.5, 0.75))


def test_invalid_pixels_are_skipped():
    m = depth_metrics(np.array([2.0, 5.0, np.nan, 3.0]), np.array([2.0, 0.0, 1.0, np.nan]))
    assert m['abs_rel'] == 0.0 and m['delta1'] == 1.0      # only the first pixel counts
    assert all(math.isnan(v) for v in depth_metrics([np.nan], [1.0]).values())


# -- masks and alignment --------------------------------------------------------

def test_valid_mask_range_and_eigen_crop():
    gt = np.full((480, 640), 5.0, np.float32)
    gt[0, 0], gt[100, 100], gt[101, 101] = np.nan, 0.0005, 12.0
    assert valid_mask(gt, 1e-3, 10).sum() == 480 * 640 - 3
    cropped = valid_mask(gt, 1e-3, 10, 'nyu_eigen')
    assert cropped.sum() == (471 - 45) * (601 - 41) - 2           # the two out-of-range pixels are inside
    assert cropped[45, 41] and not cropped[44, 41] and not cropped[45, 601]
    with pytest.raises(EvaluationError, match='480x640'):
        valid_mask(np.ones((10, 10)), 1e-3, 10, 'nyu_eigen')


def test_kitti_crops_on_a_kitti_frame():
    """375x1242: Garg rows 153:371, Eigen rows 124:342, both cols 44:1197."""
    assert crop_region((375, 1242), 'kitti_garg') == (slice(153, 371), slice(44, 1197))
    assert crop_region((375, 1242), 'kitti_eigen') == (slice(124, 342), slice(44, 1197))
    gt = np.full((375, 1242), 50.0, np.float32)
    assert valid_mask(gt, 1e-3, 80, 'kitti_garg').sum() == (371 - 153) * (1197 - 44)
    with pytest.raises(EvaluationError, match='crop'):
        crop_region((375, 1242), 'garg')


@pytest.mark.parametrize('dataset,decode,expected', [
    ('kitti', 'kitti256', (80.0, 'kitti_garg')), ('KITTI_eigen_test', 'mm', (80.0, 'kitti_garg')),
    ('my_drive', 'kitti256', (80.0, 'kitti_garg')),            # KITTI's encoding says it
    ('nyu_depth_v2', 'mm', (10.0, 'nyu_eigen')), ('nyu', 'mm', (10.0, 'nyu_eigen')),
    ('tum_rgbd', 'tum5000', (10.0, 'none')), ('sun', 'sun_bitshift_mm', (10.0, 'none'))])
def test_protocol_follows_the_dataset(dataset, decode, expected):
    assert protocol(dataset, decode) == expected


def test_fit_scale_shift_recovers_an_affine_map():
    x = np.linspace(0.1, 3, 50)
    assert fit_scale_shift(x, 2.5 * x - 0.7) == pytest.approx((2.5, -0.7))


def test_alignment_undoes_an_affine_disparity():
    gt = load_depth(data_file(MM_DEPTH), 'mm')
    pred = 3.7 / gt.astype(np.float64) + 0.2            # a relative model's output, exact up to s, t
    before = depth_metrics(1.0 / pred, gt)               # taking 1/output as depth, no alignment
    assert before['abs_rel'] > 0.5
    after = evaluate(pred, gt, 'relative')
    assert after['abs_rel'] < 1e-6 and after['rmse'] < 1e-5 and after['delta1'] == 1.0
    assert after['scale'] == pytest.approx(1 / 3.7) and after['shift'] == pytest.approx(-0.2 / 3.7)
    assert after['valid_px'] == int(np.isfinite(gt).sum())


def test_da3_relative_depth_is_aligned_in_depth():
    """DA3's relative output grows with distance: aligned in depth it is exact, taken for inverse
    depth (DA-V2's protocol) it is not; sky (+Inf) does not count."""
    gt = load_depth(data_file(MM_DEPTH), 'mm')
    pred = 0.4 * gt.astype(np.float64) + 0.9
    pred[:20] = np.inf
    exact = evaluate(pred, gt, 'relative_depth', sparse_fraction=0.01)
    assert exact['abs_rel'] < 1e-6 and exact['scale'] == pytest.approx(2.5) and exact['shift'] == pytest.approx(-2.25)
    assert exact['sparse']['abs_rel'] < 1e-6 and exact['sparse']['refused'] == ''
    assert exact['valid_px'] == int(np.isfinite(gt[20:]).sum())
    assert evaluate(pred, gt, 'relative')['abs_rel'] > 0.05


@pytest.mark.parametrize('fraction', [0.01, 0.001])
def test_alignment_from_a_sparse_subsample(fraction):
    """A relative model that is exact up to scale and shift needs only a few ground-truth pixels:
    the sparse fit gives the same metres as the full one; a model that is wrong is no better."""
    gt = load_depth(data_file(MM_DEPTH), 'mm')
    exact = 3.7 / gt.astype(np.float64) + 0.2
    result = evaluate(exact, gt, 'relative', sparse_fraction=fraction)
    valid = result['valid_px']
    sparse = result['sparse']
    assert sparse['samples'] == round(fraction * valid) and sparse['support'] == sparse['samples']
    assert sparse['refused'] == ''
    assert sparse['abs_rel'] < 1e-6 and sparse['scale'] == pytest.approx(1 / 3.7)
    noisy = exact * np.random.default_rng(0).uniform(0.8, 1.25, gt.shape)
    worse = evaluate(noisy, gt, 'relative', sparse_fraction=fraction)
    assert worse['sparse']['abs_rel'] >= 0.5 * worse['abs_rel'] > 0.01


def test_aligned_depth_is_clipped_to_the_range():
    gt = np.array([1.0, 2.0, 4.0, 8.0, 8.0])
    pred = 1.0 / gt
    pred[4] = -0.5  # an outlier the fitted line maps to a negative disparity (beyond infinity)
    depth, s, t = align_scale_shift(pred, gt, np.ones(5, bool), min_depth=1e-3, max_depth=10.0, inverse=True)
    assert s * pred[4] + t < 0
    assert depth[4] == pytest.approx(10.0) and np.all((depth >= 1e-3) & (depth <= 10.0))
    assert np.isfinite(list(evaluate(pred[None], gt[None], 'relative').values())).all()


def test_metric_predictions_are_not_aligned():
    gt = load_depth(data_file(MM_DEPTH), 'mm')
    m = evaluate(1.1 * gt, gt, 'metric')
    assert m['abs_rel'] == pytest.approx(0.1, rel=1e-5) and 'scale' not in m


# -- ground-truth loaders on the files in test/data ----------------------------------

@pytest.mark.parametrize('row', index_rows(), ids=lambda r: os.path.basename(r['depth']))
def test_loaders_match_the_index_statistics(row):
    depth = load_depth(data_file(row['depth']), row['decode'])
    assert depth.dtype == np.float32 and depth.shape == (480, 640)
    valid = np.isfinite(depth)
    assert valid.mean() == pytest.approx(float(row['valid_frac']), abs=6e-4)   # index rounds to 3 places
    assert np.median(depth[valid]) == pytest.approx(float(row['median_m']), rel=0.01)


def test_format_names_decode_like_the_index():
    assert {FORMATS[f] for f in ('nyu', 'tum', 'sun')} == {'mm', 'tum5000', 'sun_bitshift_mm'}


def test_sun_loader_undoes_the_bit_rotation(tmp_path):
    """SUN RGB-D stores millimetres rotated left by 3 bits; written here the way SUN writes them."""
    mm = cv2.imread(data_file(MM_DEPTH), cv2.IMREAD_UNCHANGED).astype(np.uint32)
    sun = str(tmp_path / 'sun_depth.png')
    cv2.imwrite(sun, ((mm << 3 | mm >> 13) & 0xFFFF).astype(np.uint16))
    np.testing.assert_array_equal(load_depth(sun, FORMATS['sun']), load_depth(data_file(MM_DEPTH), 'mm'))
    # Without the bit rotation SUN depth reads 8x too far (and wraps): the decoder matters.
    assert np.nanmedian(load_depth(sun, 'mm')) > 5 * np.nanmedian(load_depth(sun, FORMATS['sun']))


def test_kitti_loader(tmp_path):
    path = str(tmp_path / 'kitti.png')
    cv2.imwrite(path, np.array([[0, 256 * 12, 3200]], np.uint16))
    depth = load_depth(path, FORMATS['kitti'])
    assert math.isnan(depth[0, 0]) and depth[0, 1] == 12.0 and depth[0, 2] == pytest.approx(12.5)


def test_loader_rejects_non_depth_images(tmp_path):
    colour = str(tmp_path / 'vis.png')
    cv2.imwrite(colour, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(EvaluationError, match='uint16'):
        load_depth(colour, 'mm')
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(EvaluationError, match='cannot read'):
        load_depth(str(tmp_path / 'broken.png'), 'mm')


def test_read_index_resolves_paths_next_to_the_csv():
    samples = read_index(data_file('index.csv'))
    assert len(samples) == len(index_rows())
    assert all(os.path.isfile(s.rgb) and os.path.isfile(s.depth) for s in samples)


# -- the subcommand --------------------------------------------------------------

def test_eval_index_writes_every_metric_for_every_row(capsys, tmp_path, tiny_fixed_model):
    out = tmp_path / 'eval.json'
    assert cli.main(['eval', '--model', tiny_fixed_model, '--index', data_file('index.csv'),
                     '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    # Random weights: the values mean nothing, so only structure and finiteness are checked.
    rows = index_rows()
    assert [r['name'] for r in report['images']] == [r['rgb'] for r in rows]
    for r in report['images'] + [report['mean']]:
        for k in DEPTH_METRICS:
            assert isinstance(r[k], float) and math.isfinite(r[k]), (r.get('name'), k)
    assert all(r['valid_px'] > 100000 for r in report['images'])
    assert report['mean']['images'] == len(rows)
    assert set(report['mean_by_dataset']) == {r['dataset'] for r in rows}
    text = capsys.readouterr().out
    assert all(r['rgb'] in text for r in rows) and 'mean' in text and 'abs_rel' in text


def test_eval_reports_sparse_alignment_beside_the_full_one(capsys, tmp_path, tiny_fixed_model):
    out = tmp_path / 'eval.json'
    assert cli.main(['eval', '--model', tiny_fixed_model, '--index', data_file('index.csv'),
                     '--align-from-sparse', '0.01', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['settings']['align_from_sparse'] == 0.01
    # Random weights: the depth is unrelated to the truth, so the robust fit may refuse (as the
    # node's alignment would): then it says why and has no metrics, never made-up ones.
    for r in report['images']:
        sparse = r['sparse']
        assert sparse['samples'] == round(0.01 * r['valid_px'])
        if sparse['refused']:
            assert sparse['refused'].startswith(('fit_refused: ', 'low_support: '))
            assert all(sparse[k] is None for k in DEPTH_METRICS)     # NaN in the JSON
        else:
            assert all(math.isfinite(sparse[k]) for k in DEPTH_METRICS)
    refused = sum(1 for r in report['images'] if r['sparse']['refused'])
    assert report['mean']['sparse']['images'] == len(report['images']) - refused
    text = capsys.readouterr().out
    assert 'aligned to 0.01 of the ground truth' in text
    assert (f'fit refused for {refused} of' in text) == bool(refused)
    assert cli.main(['eval', '--model', tiny_fixed_model, '--index', data_file('index.csv'),
                     '--align-from-sparse', '2']) == 2


def test_eval_nyu_takes_the_eigen_crop_by_default(capsys, tmp_path, tiny_fixed_model):
    out = tmp_path / 'nyu.json'
    rgb = data_file('redwood_synthetic/color/00000.jpg')
    argv = ['eval', '--model', tiny_fixed_model, '--format', 'nyu', '--rgb', rgb,
            '--depth', data_file(MM_DEPTH), '--json', str(out)]
    assert cli.main(argv) == 0
    image = json.loads(out.read_text())['images'][0]
    assert (image['crop'], image['max_depth']) == ('nyu_eigen', 10.0)
    assert 'nyu: depth (0.001, 10) m, crop nyu_eigen' in capsys.readouterr().out
    assert cli.main(argv + ['--crop', 'none']) == 0
    full = json.loads(out.read_text())['images'][0]['valid_px']
    assert 0 < image['valid_px'] < full


def _kitti_pair(folder):
    """A 1242x375 frame (the sample photo) and uint16 /256 ground truth: 2..78 m from top to
    bottom, no reading in the first 50 rows."""
    from depth_anything_ros.core.paths import SAMPLE_IMAGE
    rgb, depth = str(folder / 'kitti.png'), str(folder / 'kitti_depth.png')
    cv2.imwrite(rgb, cv2.resize(cv2.imread(SAMPLE_IMAGE), (1242, 375)))
    metres = np.repeat(np.linspace(78, 2, 375)[:, None], 1242, axis=1)
    metres[:50] = 0
    cv2.imwrite(depth, np.round(metres * 256).astype(np.uint16))
    return rgb, depth, metres


def test_eval_kitti_caps_at_80_m_in_the_garg_crop(capsys, tmp_path, tiny_fixed_model):
    """Without options a KITTI frame counts every reading below 80 m in the Garg crop; the
    NYU cap of 10 m would drop most of them."""
    rgb, depth, metres = _kitti_pair(tmp_path)
    out = tmp_path / 'kitti.json'
    argv = ['eval', '--model', tiny_fixed_model, '--format', 'kitti', '--rgb', rgb, '--depth', depth,
            '--json', str(out)]
    assert cli.main(argv) == 0
    image = json.loads(out.read_text())['images'][0]
    rows, cols = slice(153, 371), slice(44, 1197)
    assert image['valid_px'] == np.count_nonzero(metres[rows, cols] > 0)
    assert (image['crop'], image['max_depth']) == ('kitti_garg', 80.0)
    assert cli.main(argv + ['--max-depth', '10', '--crop', 'kitti_eigen']) == 0
    capped = json.loads(out.read_text())['images'][0]['valid_px']
    in_eigen = metres[124:342, 44:1197]
    assert capped == np.count_nonzero((in_eigen > 0) & (in_eigen < 10)) < image['valid_px'] / 2


@pytest.mark.parametrize('case', ['missing_index', 'missing_rgb', 'no_format', 'count_mismatch',
                                  'missing_model', 'bad_depth', 'bad_range', 'json_folder'])
def test_eval_bad_arguments_exit_2(capsys, tmp_path, tiny_fixed_model, case):
    rgb = data_file('redwood_synthetic/color/00000.jpg')
    depth = data_file(MM_DEPTH)
    base = ['eval', '--model', tiny_fixed_model]
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    bad_index = tmp_path / 'index.csv'
    bad_index.write_text('dataset,rgb,depth,decode\nnyu,nope.jpg,nope.png,mm\n')
    argv, expect = {
        'missing_index': (base + ['--index', str(tmp_path / 'none.csv')], 'none.csv'),
        'missing_rgb': (base + ['--index', str(bad_index)], 'nope.jpg'),
        'no_format': (base + ['--rgb', rgb, '--depth', depth], '--format'),
        'count_mismatch': (base + ['--format', 'nyu', '--rgb', rgb, rgb, '--depth', depth], 'same number'),
        'missing_model': (['eval', '--model', str(tmp_path / 'm.onnx'), '--format', 'nyu',
                           '--rgb', rgb, '--depth', depth], 'm.onnx'),
        'bad_depth': (base + ['--format', 'nyu', '--rgb', rgb, '--depth', str(broken)], 'broken.png'),
        'bad_range': (base + ['--format', 'nyu', '--rgb', rgb, '--depth', depth, '--min-depth', '20'],
                      '--min-depth'),
        'json_folder': (base + ['--format', 'nyu', '--rgb', rgb, '--depth', depth,
                                '--json', str(tmp_path / 'no' / 'out.json')], 'does not exist'),
    }[case]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('depth-anything-ros eval: ') and expect in err


def test_eval_of_da3metric_in_metres_with_intrinsics_else_aligned_in_depth(tmp_path, da3_metric_model):
    """DA3Metric: with the images' camera matrix its canonical depth is metres and used as is; without
    it, aligned as relative depth. Sky (+Inf) pixels do not count. Random weights: structure only."""
    rgb, depth = data_file('redwood_synthetic/color/00000.jpg'), data_file(MM_DEPTH)
    out = tmp_path / 'e.json'
    base = ['eval', '--model', da3_metric_model, '--format', 'mm', '--rgb', rgb, '--depth', depth, '--json', str(out)]
    assert cli.main(base + ['--intrinsics', '525', '525', '319.5', '239.5']) == 0
    metric = json.loads(out.read_text())
    assert metric['settings']['depth_type'] == 'metric_canonical' and metric['settings']['alignment'] == 'none'
    assert 'scale' not in metric['images'][0]
    assert cli.main(base) == 0
    aligned = json.loads(out.read_text())
    assert aligned['settings']['alignment'] == 'least-squares scale and shift in depth, per image'
    assert math.isfinite(aligned['images'][0]['scale'])
    assert 0 < aligned['images'][0]['valid_px'] == metric['images'][0]['valid_px']   # sky left out alike
    assert aligned['images'][0]['valid_px'] < int(np.isfinite(load_depth(depth, 'mm')).sum())
