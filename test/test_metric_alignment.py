"""Metres from relative depth: the robust scale-and-shift fit, when it is refused, where its pairs
come from, and the aligner that ties them to frames.

The "model output" here is an exact affine function of the true inverse depth of a real depth
map (TUM RGB-D, test/data): what a perfect relative model would give. Whatever the fit does
wrong shows as depth error against that ground truth.
"""
import math
import threading
import time

import cv2
import numpy as np
import pytest
from helpers.data import data_file
from helpers.scenes import SCALE, SHIFT, patch_reference, relative_output, sparse_reference

from depth_anything_ros.core.metric_alignment import ReferenceAligner
from depth_anything_ros.core.metric_fit import (DepthFit, ScaleTracker, Unaligned, fit_depth,
                                                relative_range)
from depth_anything_ros.core.depth_metrics import abs_rel
from depth_anything_ros.core.reference_samples import (RigidTransform, floor_depth, image_samples,
                                                       ray_samples)

K = (525.0, 525.0, 319.5, 239.5)   # the TUM frame's intrinsics (index.csv)


@pytest.fixture(scope='module')
def truth():
    raw = cv2.imread(data_file('tum_rgbd/TUM_depth.png'), cv2.IMREAD_UNCHANGED)
    z = raw.astype(np.float64) / 5000.0
    z[raw == 0] = np.nan
    return z


def sample_registered(output, reference_m):
    """(model output, metres) of a depth image registered to the camera, as the node pairs them."""
    return image_samples(reference_m).pairs(output)


def sample_points(output, xyz, intrinsics):
    return ray_samples(xyz).pairs(output, intrinsics)


def transform_points(xyz, pose):
    return RigidTransform.from_pose(pose).apply(xyz)


def test_metres_from_a_tenth_of_a_percent_with_ten_percent_outliers(truth):
    output = relative_output(truth)
    ref = sparse_reference(truth, 0.001, 0.10)
    fit = fit_depth(*sample_registered(output, ref), min_support=50)
    assert fit is not None and fit.support >= 0.85 * np.isfinite(ref).sum()
    metres = fit.to_metres(output)
    valid = np.isfinite(truth)
    err = abs_rel(metres[valid], truth[valid])
    assert err <= 1e-3, err
    assert fit.scale == pytest.approx(SCALE, rel=1e-3) and fit.shift == pytest.approx(SHIFT, abs=1e-3)


def test_least_squares_alone_would_be_bent_by_the_outliers(truth):
    """The check above can fail: the same pairs through a plain line fit miss by far."""
    output = relative_output(truth)
    d, z = sample_registered(output, sparse_reference(truth, 0.001, 0.10))
    scale, shift = np.polyfit(d, 1.0 / z, 1)
    plain = DepthFit(scale, shift, d.size, 0.0).to_metres(output)
    valid = np.isfinite(truth) & np.isfinite(plain)
    assert abs_rel(plain[valid], truth[valid]) > 0.02   # measured 0.044, against <= 1e-3 robust


def test_too_little_support_gives_no_fit(truth):
    output = relative_output(truth)
    ref = sparse_reference(truth, 20 / truth.size, 0.0)
    with pytest.raises(Unaligned, match='fewer than alignment_min_support') as refused:
        fit_depth(*sample_registered(output, ref), min_support=50)
    assert refused.value.reason == 'low_support'
    noise = np.random.default_rng(1).uniform(0.3, 20.0, 500)   # references that agree with nothing
    with pytest.raises(Unaligned) as refused:
        fit_depth(np.linspace(0, 1, 500), noise, min_support=100)
    assert refused.value.reason in ('low_support', 'fit_refused')


def test_a_reference_at_another_resolution(truth):
    """A 160x120 ToF image registered to the 640x480 camera: nearest output pixel per reference pixel."""
    output = relative_output(truth)
    low = cv2.resize(np.nan_to_num(truth, nan=0.0), (160, 120), interpolation=cv2.INTER_NEAREST)
    low[low == 0] = np.nan
    fit = fit_depth(*sample_registered(output, low), min_support=50)
    metres = fit.to_metres(output)
    valid = np.isfinite(truth)
    # nearest-pixel pairing on a 4x coarser grid picks a neighbour at depth edges
    assert abs_rel(metres[valid], truth[valid]) < 0.01


def test_points_in_another_frame_through_a_static_transform(truth):
    """LiDAR-like points: back-projected ground truth, expressed in a frame 10 cm left and turned
    90 degrees about z; the transform back to the camera's optical frame recovers them."""
    output = relative_output(truth)
    fx, fy, cx, cy = K
    v, u = np.nonzero(np.isfinite(truth))
    keep = np.random.default_rng(2).choice(v.size, 800, replace=False)
    v, u = v[keep], u[keep]
    z = truth[v, u]
    camera_xyz = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)
    half = math.sqrt(0.5)
    to_camera = [0.1, 0.0, 0.0, 0.0, 0.0, half, half]    # lidar -> camera: +90 deg about z, then 10 cm
    r_transposed = transform_points(np.eye(3), [0, 0, 0, *to_camera[3:]])   # row i: R e_i
    lidar_xyz = (camera_xyz - to_camera[:3]) @ r_transposed.T               # the inverse: R^T (p - t)
    np.testing.assert_allclose(transform_points(lidar_xyz, to_camera), camera_xyz, atol=1e-9)
    fit = fit_depth(*sample_points(output, transform_points(lidar_xyz, to_camera), K), min_support=50)
    metres = fit.to_metres(output)
    valid = np.isfinite(truth)
    assert abs_rel(metres[valid], truth[valid]) < 1e-3


def test_points_behind_or_outside_or_not_sane_are_skipped():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    points = [[0, 0, 1.0], [0, 0, -1.0], [100, 0, 1.0], [np.nan, 0, 1], [0, 0, 1e-44], [0, 0, 5000.0]]
    d, z = sample_points(depth, points, (1.0, 1.0, 1.0, 1.0))
    assert d.tolist() == [depth[1, 1]] and z.tolist() == [1.0]


def test_floor_depth_matches_the_geometry():
    """A camera 0.5 m up, pitched down 10 degrees: the image row through the optical centre meets
    the floor at 0.5 / sin(10 deg) along the axis; rows at or above the horizon never do."""
    pitch = math.radians(10)
    depth = floor_depth((480, 640), K, 0.5, pitch, floor_rows=1.0)
    assert depth[240, 320] == pytest.approx(0.5 / (0.5 / 525 * math.cos(pitch) + math.sin(pitch)), rel=1e-5)
    horizon = K[3] - 525 * math.tan(pitch)            # row where the ray is level
    assert np.isnan(depth[int(horizon) - 1]).all() and np.isfinite(depth[int(horizon) + 1]).all()
    band = floor_depth((480, 640), K, 0.5, pitch, floor_rows=0.25)
    assert np.isnan(band[:360]).all() and np.isfinite(band[360:]).all()


def test_ground_plane_gives_metres_for_a_floor_scene():
    """The whole frame is floor seen by the camera above: the bottom band alone fixes the scale."""
    pitch = math.radians(25)
    z = floor_depth((480, 640), K, 0.6, pitch, floor_rows=1.0).astype(np.float64)
    output = relative_output(z)
    reference = floor_depth((480, 640), K, 0.6, pitch, floor_rows=0.25)
    fit = fit_depth(*sample_registered(output, reference), min_support=50)
    metres = fit.to_metres(output)
    valid = np.isfinite(z)
    assert abs_rel(metres[valid], z[valid]) < 1e-4


def test_to_metres_masks_beyond_infinity_max_depth_and_what_no_sensor_reports():
    fit = DepthFit(1.0, -0.5, 10, 0.0)
    out = fit.to_metres(np.array([0.25, 0.5, 0.75, 1.0, np.nan, 0.5001, 1e4], np.float32), max_depth=3.0)
    assert np.isnan(out[:2]).all() and np.isnan(out[4])      # 1/Z <= 0 (beyond infinity), NaN input
    assert np.isnan(out[2]) and out[3] == pytest.approx(2.0)  # 4 m is past max_depth; 2 m is not
    assert np.isnan(out[5]) and np.isnan(out[6])              # ~10 km and 0.1 mm: not metres a sensor gives
    assert fit.to_metres(np.array([0.75], np.float32))[0] == pytest.approx(4.0)


def test_tracker_smooths_and_restarts_on_a_scene_cut(truth):
    output = relative_output(truth)
    d, z = sample_registered(output, sparse_reference(truth, 0.01, 0.0))
    tracker = ScaleTracker(min_support=20, smoothing=0.5, scene_cut=0.25)
    first = tracker.update(d, z)
    assert tracker.resets == 1 and first.scale == pytest.approx(SCALE, rel=1e-6)
    drift = tracker.update(d, z * 1.02)             # 2 % further away: smoothed half-way
    assert tracker.resets == 1
    assert drift.scale == pytest.approx(0.5 * SCALE + 0.5 * SCALE / 1.02, rel=1e-6)
    cut = tracker.update(d, z * 3.0)                # another scene: start over, no blending
    assert tracker.resets == 2 and cut.scale == pytest.approx(SCALE / 3.0, rel=1e-6)
    with pytest.raises(Unaligned):
        tracker.update(d[:5], z[:5])
    assert tracker.current is cut



# ---------------------------------------------------------------- refused fits (issue 18.5)

@pytest.mark.parametrize('reference', [
    lambda truth: patch_reference(truth, 2.0),                   # a flat wall in a narrow view
    lambda truth: patch_reference(truth, 2.0, noise_m=0.002),    # ... with +-2 mm of noise
    lambda truth: np.full(truth.shape, 2.0),                     # 2.0 m everywhere
    lambda truth: np.random.default_rng(4).uniform(1.9, 2.1, truth.shape),   # noise around 2 m, +-5 %
])
def test_a_reference_that_cannot_fix_the_scale_is_refused(truth, reference):
    """Each of these gave scale ~1e-16..1e-5 and the whole frame at exactly 2.0 m, counted as aligned."""
    output = relative_output(truth)
    with pytest.raises(Unaligned, match='cannot fix the scale') as refused:
        fit_depth(*sample_registered(output, reference(truth)), min_support=50, frame_range=relative_range(output))
    assert refused.value.reason == 'fit_refused'


def test_depth_models_fit_in_depth_with_the_same_refusals(truth):
    """DA3's relative output is depth up to scale and shift (Z = s * d + t): the same robust fit in
    depth gives metres from 0.1 % of the pixels with 10 % outliers; the inverse-depth line cannot.
    A reference that cannot fix the scale is refused all the same."""
    valid = np.isfinite(truth)
    output = np.where(valid, (truth - 0.3) / 2.5, np.nanmedian((truth - 0.3) / 2.5)).astype(np.float32)
    pairs = sample_registered(output, sparse_reference(truth, 0.001, 0.10))
    fit = fit_depth(*pairs, min_support=50, inverse=False)
    assert not fit.inverse and fit.scale == pytest.approx(2.5, rel=1e-3) and fit.shift == pytest.approx(0.3, abs=1e-3)
    assert abs_rel(fit.to_metres(output)[valid], truth[valid]) <= 1e-3
    with pytest.raises(Unaligned):             # as inverse depth, the same readings make no line that holds
        fit_depth(*pairs, min_support=50, inverse=True, frame_range=relative_range(output))
    with pytest.raises(Unaligned, match='fitted depth changes by') as refused:
        fit_depth(*sample_registered(output, patch_reference(truth, 2.0)), min_support=50, inverse=False)
    assert refused.value.reason == 'fit_refused'
    out = np.empty(3, np.float32)
    metres = DepthFit(2.0, -1.0, 10, 0.0, inverse=False).to_metres(np.array([0.25, 1.0, 2e3], np.float32), out=out)
    assert metres is out and np.isnan(out[0]) and out[1] == 1.0 and np.isnan(out[2])   # behind, 1 m, past 1 km


def test_a_reference_covering_a_sliver_of_the_frame_is_refused_but_fits_alone():
    """Readings over 4 % of the frame's relative range (5th-95th percentiles) with plenty of depth
    contrast: the line fits them, but the rest of the frame would be extrapolated from them."""
    d = np.linspace(0.0, 10.0, 100_000)
    z = 1.0 / (SCALE * d + SHIFT)
    band = (d > 0.2) & (d < 0.6)
    fit = fit_depth(d[band], z[band], min_support=50)
    assert fit.scale == pytest.approx(SCALE, rel=1e-6)
    with pytest.raises(Unaligned, match='covers 4') as refused:
        fit_depth(d[band], z[band], min_support=50, frame_range=relative_range(d.reshape(100, 1000)))
    assert refused.value.reason == 'fit_refused'


def test_readings_that_are_not_metres_a_sensor_gives_never_fit():
    """Issue 18.5: positive denormals (1e-44) gave 0 m everywhere, counted as aligned."""
    d = np.linspace(0.0, 1.0, 1000)
    for z in (np.full(1000, 1e-44), np.full(1000, 1e-4), np.full(1000, 5e3), np.full(1000, np.inf)):
        with pytest.raises(Unaligned) as refused:
            fit_depth(d, z, min_support=20)
        assert refused.value.reason == 'low_support' and str(refused.value).startswith('0 reference readings')


def test_relative_range_reads_a_grid_of_any_frame():
    frame = np.tile(np.linspace(0.0, 1.0, 2000, dtype=np.float32), (1500, 1))
    frame[:, :100] = np.nan
    lo, hi = relative_range(frame)
    assert lo == pytest.approx(0.05 + 0.9 * 0.05, abs=0.01) and hi == pytest.approx(0.95 + 0.05 * 0.05, abs=0.01)
    assert relative_range(np.full((4, 4), np.nan, np.float32)) is None


# ---------------------------------------------------------------- the aligner

def frame_reference(truth, stamp, aligner):
    """A sparse registered reference for `stamp`, as the node hands it over (32FC1 fields)."""
    values = np.nan_to_num(sparse_reference(truth, 0.001, 0.10), nan=0.0).astype(np.float32)
    return aligner.add_depth_image(stamp, values.shape[0], values.shape[1], '32FC1', 0, values.shape[1] * 4,
                                   values.tobytes())


def test_aligner_writes_metres_for_frames_with_a_reference_and_says_why_not(truth):
    aligner = ReferenceAligner('depth_image', tolerance_s=0.01, min_support=50)
    frame_reference(truth, 1_000_000_000, aligner)
    depth = relative_output(truth)
    fit = aligner.align(1_005_000_000, depth, None)                    # 5 ms apart: paired
    assert fit.support > 200
    valid = np.isfinite(truth)
    assert abs_rel(depth[valid], truth[valid]) <= 1e-3                 # metres, in place
    unpaired = relative_output(truth)
    with pytest.raises(Unaligned) as refused:
        aligner.align(1_100_000_000, unpaired, None)
    assert refused.value.reason == 'no_reference'
    np.testing.assert_array_equal(unpaired, relative_output(truth))    # left relative
    few = np.nan_to_num(sparse_reference(truth, 20 / truth.size, 0.0), nan=0.0).astype(np.float32)
    aligner.add_depth_image(2_000_000_000, *few.shape, '32FC1', 0, few.shape[1] * 4, few.tobytes())
    with pytest.raises(Unaligned) as refused:
        aligner.align(2_000_000_000, relative_output(truth), None)
    assert refused.value.reason == 'low_support'


@pytest.mark.parametrize('stamps', [(0,), (3_000_000_000, 3_000_000_000)])
def test_frames_with_unusable_stamps_are_never_paired(truth, stamps):
    """Issue 18.4: a zero stamp, or the previous frame's again, cannot say which reference is its own."""
    aligner = ReferenceAligner('depth_image', tolerance_s=0.05, min_support=50)
    frame_reference(truth, 3_000_000_000, aligner)
    for stamp in stamps[:-1]:
        aligner.align(stamp, relative_output(truth), None)
    with pytest.raises(Unaligned) as refused:
        aligner.align(stamps[-1], relative_output(truth), None)
    assert refused.value.reason == 'unusable_stamp'


def test_aligner_with_points_and_with_the_floor_needs_intrinsics(truth):
    points = ReferenceAligner('points', min_support=20)
    xyz = np.tile(np.array([[0.0, 0.0, 2.0]], np.float32), (30, 1))
    points.add_points(1, [('x', 0, 7), ('y', 4, 7), ('z', 8, 7)], 1, 30, 12, 360, xyz.tobytes(), 0)
    with pytest.raises(Unaligned, match='camera_info') as refused:
        points.align(1, relative_output(truth), None)
    assert refused.value.reason == 'no_camera_info'
    floor = ReferenceAligner('ground_plane', camera_height=0.5, camera_pitch=0.3)
    with pytest.raises(Unaligned, match='camera_info'):
        floor.align(1, relative_output(truth), None)
    with pytest.raises(ValueError, match='camera_height'):
        ReferenceAligner('ground_plane')
    with pytest.raises(ValueError, match='not one of'):
        ReferenceAligner('sonar')


@pytest.mark.parametrize('pose, match', [
    ([0, 0, 0, 0, 0, 0, 0], 'no rotation to normalise'),
    ([float('nan'), 0, 0, 0, 0, 0, 1], 'finite'),
    ([0, 0, 0, 0, 0, 0, float('inf')], 'finite'),
    ([0, 1], '7'),
])
def test_a_transform_that_cannot_be_a_rotation_is_refused(pose, match):
    with pytest.raises(ValueError, match=match):
        RigidTransform.from_pose(pose)


def test_registered_samples_pair_with_the_pixel_under_their_centre_at_any_resolution():
    """Readings of a 2x3 image on a 6x9 output: reference pixel (r, c) covers output pixels 3r..3r+2,
    3c..3c+2, and its centre is over the middle one."""
    samples = image_samples(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]], np.float32))
    output = np.arange(54, dtype=np.float32).reshape(6, 9)
    d, z = samples.pairs(output)
    assert sorted(zip(z.tolist(), d.tolist())) == [(1.0, output[1, 1]), (2.0, output[1, 7]), (3.0, output[4, 4])]


def test_alignment_never_lets_a_numpy_warning_out(truth, recwarn):
    """Extreme model outputs and references at the edges of float32: no RuntimeWarning."""
    output = relative_output(truth)
    output[::7, ::5] = 3e38
    output[::11, ::3] = -3e38
    for reference in (sparse_reference(truth, 0.01, 0.2), patch_reference(truth, 2.0)):
        try:
            fit = fit_depth(*sample_registered(output, reference), min_support=20,
                                    frame_range=relative_range(output))
            fit.to_metres(output, max_depth=10.0)
        except Unaligned:
            pass
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in recwarn]


def test_a_late_reference_reaches_a_frame_waiting_in_align(truth):
    aligner = ReferenceAligner('depth_image', tolerance_s=0.01, min_support=50)
    frame_reference(truth, 1_000_000_000, aligner)                    # the stream is live
    depth = relative_output(truth)
    result = []
    waiting = threading.Thread(target=lambda: result.append(aligner.align(2_000_000_000, depth, None,
                                                                          time.monotonic() + 60)))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive()
    frame_reference(truth, 2_000_000_000, aligner)
    waiting.join(10)
    assert result and result[0].support > 200
