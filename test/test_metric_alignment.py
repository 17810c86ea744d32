"""Metres from relative depth: the robust scale-and-shift fit and where its pairs come from.

The "model output" here is an exact affine function of the true inverse depth of a real depth
map (TUM RGB-D, test/data): what a perfect relative model would give. Whatever the fit does
wrong shows as depth error against that ground truth.
"""
import math

import cv2
import numpy as np
import pytest
from conftest import data_file

from depth_anything_ros.core.metric_alignment import (InverseDepthFit, ScaleTracker, fit_inverse_depth, floor_depth,
                                                 sample_points, sample_registered, transform_points)
from depth_anything_ros.core.metrics import abs_rel

SCALE, SHIFT = 0.37, 0.05          # 1/Z = SCALE * output + SHIFT
K = (525.0, 525.0, 319.5, 239.5)   # the TUM frame's intrinsics (index.csv)


@pytest.fixture(scope='module')
def truth():
    raw = cv2.imread(data_file('tum_rgbd/TUM_depth.png'), cv2.IMREAD_UNCHANGED)
    z = raw.astype(np.float64) / 5000.0
    z[raw == 0] = np.nan
    return z


def relative_output(z):
    """A perfect relative model: affine in inverse depth, no unit; filled where the sensor had a hole."""
    out = (1.0 / z - SHIFT) / SCALE
    return np.where(np.isfinite(out), out, np.nanmedian(out)).astype(np.float32)


def sparse_reference(z, fraction, outliers, seed=0):
    """A reference with `fraction` of the pixels valid, `outliers` of those wrong (0.3-20 m)."""
    rng = np.random.default_rng(seed)
    valid = np.flatnonzero(np.isfinite(z))
    picked = rng.choice(valid, max(1, int(fraction * z.size)), replace=False)
    ref = np.full(z.shape, np.nan)
    ref.flat[picked] = z.flat[picked]
    bad = rng.choice(picked, int(outliers * picked.size), replace=False)
    ref.flat[bad] = rng.uniform(0.3, 20.0, bad.size)
    return ref


def test_metres_from_a_tenth_of_a_percent_with_ten_percent_outliers(truth):
    output = relative_output(truth)
    ref = sparse_reference(truth, 0.001, 0.10)
    fit = fit_inverse_depth(*sample_registered(output, ref), min_support=50)
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
    plain = InverseDepthFit(scale, shift, d.size, 0.0).to_metres(output)
    valid = np.isfinite(truth) & np.isfinite(plain)
    assert abs_rel(plain[valid], truth[valid]) > 0.02   # measured 0.044, against <= 1e-3 robust


def test_too_little_support_gives_no_fit(truth):
    output = relative_output(truth)
    ref = sparse_reference(truth, 20 / truth.size, 0.0)
    assert fit_inverse_depth(*sample_registered(output, ref), min_support=50) is None
    noise = np.random.default_rng(1).uniform(0.3, 20.0, 500)   # references that agree with nothing
    assert fit_inverse_depth(np.linspace(0, 1, 500), noise, min_support=100) is None


def test_a_reference_at_another_resolution(truth):
    """A 160x120 ToF image registered to the 640x480 camera: nearest output pixel per reference pixel."""
    output = relative_output(truth)
    low = cv2.resize(np.nan_to_num(truth, nan=0.0), (160, 120), interpolation=cv2.INTER_NEAREST)
    low[low == 0] = np.nan
    fit = fit_inverse_depth(*sample_registered(output, low), min_support=50)
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
    fit = fit_inverse_depth(*sample_points(output, transform_points(lidar_xyz, to_camera), K), min_support=50)
    metres = fit.to_metres(output)
    valid = np.isfinite(truth)
    assert abs_rel(metres[valid], truth[valid]) < 1e-3


def test_points_behind_or_outside_are_skipped():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    d, z = sample_points(depth, [[0, 0, 1.0], [0, 0, -1.0], [100, 0, 1.0], [np.nan, 0, 1]], (1.0, 1.0, 1.0, 1.0))
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
    fit = fit_inverse_depth(*sample_registered(output, reference), min_support=50)
    metres = fit.to_metres(output)
    valid = np.isfinite(z)
    assert abs_rel(metres[valid], z[valid]) < 1e-4


def test_to_metres_masks_beyond_infinity_and_max_depth():
    fit = InverseDepthFit(1.0, -0.5, 10, 0.0)
    out = fit.to_metres(np.array([0.25, 0.5, 0.75, 1.0, np.nan], np.float32), max_depth=3.0)
    assert np.isnan(out[:2]).all() and np.isnan(out[4])      # 1/Z <= 0 (beyond infinity), NaN input
    assert np.isnan(out[2]) and out[3] == pytest.approx(2.0)  # 4 m is past max_depth; 2 m is not
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
    assert tracker.update(d[:5], z[:5]) is None and tracker.current is cut


def test_depth_images_decode_to_metres_with_nan_for_no_reading():
    from depth_anything_ros.core.metric_alignment import decode_depth_image
    mm = np.array([[0, 1500, 65535], [250, 0, 1]], np.uint16)
    padded = np.zeros((2, 7), np.uint8)                       # 6 bytes of pixels + 1 pad byte a row
    padded[:, :6] = mm.view(np.uint8).reshape(2, 6)
    metres = decode_depth_image(2, 3, '16UC1', 0, 7, padded.tobytes())
    np.testing.assert_allclose(metres, [[np.nan, 1.5, 65.535], [0.25, np.nan, 0.001]], rtol=1e-6)
    big = decode_depth_image(2, 3, '16UC1', 1, 6, mm.astype('>u2').tobytes())
    np.testing.assert_array_equal(np.isnan(big), np.isnan(metres))
    floats = np.array([[np.nan, 2.0, 0.0, np.inf]], np.float32)
    np.testing.assert_array_equal(np.isnan(decode_depth_image(1, 4, '32FC1', 0, 16, floats.tobytes())),
                                  [[True, False, True, True]])
    from depth_anything_ros.core.image_codec import ImageFormatError
    for args in ((1, 4, 'rgb8', 0, 12, bytes(12)), (2, 3, '16UC1', 0, 6, bytes(7)), (0, 3, '32FC1', 0, 12, b'')):
        with pytest.raises(ImageFormatError):
            decode_depth_image(*args)


def test_point_cloud_fields_to_xyz():
    from depth_anything_ros.core.image_codec import ImageFormatError
    from depth_anything_ros.core.metric_alignment import pointcloud_xyz
    points = np.zeros(3, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4'), ('pad', 'V4')])
    points['x'], points['y'], points['z'] = [1, 2, 3], [4, 5, 6], [7, 8, 9]
    fields = [('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('intensity', 12, 7)]
    xyz = pointcloud_xyz(fields, 20, points.tobytes())
    np.testing.assert_array_equal(xyz, [[1, 4, 7], [2, 5, 8], [3, 6, 9]])
    with pytest.raises(ImageFormatError, match='no float x, y, z'):
        pointcloud_xyz(fields[:2], 20, points.tobytes())
    with pytest.raises(ImageFormatError, match='does not fit'):
        pointcloud_xyz([('x', 0, 7), ('y', 4, 7), ('z', 18, 7)], 20, points.tobytes())


def test_references_pair_by_the_closest_stamp_within_the_tolerance():
    from depth_anything_ros.core.metric_alignment import StampedReferences
    refs = StampedReferences(tolerance_s=0.02, keep=3)
    for stamp in (100, 200, 300, 400):                       # milliseconds
        refs.add(stamp * 1_000_000, stamp)
    assert refs.closest(310 * 1_000_000) == 300 and refs.closest(395 * 1_000_000) == 400
    assert refs.closest(250 * 1_000_000) is None              # 50 ms from both neighbours
    assert refs.closest(100 * 1_000_000) is None              # dropped: only the last 3 are kept


def test_aligner_writes_metres_for_frames_with_a_reference_and_says_why_not(truth):
    from depth_anything_ros.core.metric_alignment import ReferenceAligner
    aligner = ReferenceAligner('depth_image', tolerance_s=0.01, min_support=50)
    aligner.add_depth_image(1_000_000_000, sparse_reference(truth, 0.001, 0.10))
    depth = relative_output(truth)
    fit, reason = aligner.align(1_005_000_000, depth, None)           # 5 ms apart: paired
    assert reason is None and fit.support > 200
    valid = np.isfinite(truth)
    assert abs_rel(depth[valid], truth[valid]) <= 1e-3                 # metres, in place
    unpaired = relative_output(truth)
    assert aligner.align(1_100_000_000, unpaired, None) == (None, 'no_reference')
    np.testing.assert_array_equal(unpaired, relative_output(truth))    # left relative
    aligner.add_depth_image(2_000_000_000, sparse_reference(truth, 20 / truth.size, 0.0))
    assert aligner.align(2_000_000_000, relative_output(truth), None) == (None, 'low_support')


def test_aligner_with_points_and_with_the_floor_needs_intrinsics(truth):
    from depth_anything_ros.core.metric_alignment import ReferenceAligner
    points = ReferenceAligner('points', min_support=20)
    points.add_points(0, [[0.0, 0.0, 2.0]] * 30)
    assert points.align(0, relative_output(truth), None) == (None, 'no_camera_info')
    floor = ReferenceAligner('ground_plane', camera_height=0.5, camera_pitch=0.3)
    assert floor.align(0, relative_output(truth), None) == (None, 'no_camera_info')
    with pytest.raises(ValueError, match='camera_height'):
        ReferenceAligner('ground_plane')
    with pytest.raises(ValueError, match='not one of'):
        ReferenceAligner('sonar')
