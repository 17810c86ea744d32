"""metric_reference messages to samples: what decodes, what is refused, and that the memory a
message costs is bounded whatever its size (issue 18, points 1 and 2).

Memory is measured with tracemalloc, which numpy reports every array allocation to: the peak of
new allocations while one message decodes, a deterministic count of bytes, not a timing. Before
this bound, a 15M-point cloud cost 360 MB per copy and the store kept eight of them.
"""
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depth_anything_ros.core.image_codec import ImageFormatError
from depth_anything_ros.core.reference_decoding import POINTS_READ, decode_depth_image, decode_point_cloud
from depth_anything_ros.core.reference_samples import SAMPLE_BUDGET, RigidTransform

XYZ = [('x', 0, 7), ('y', 4, 7), ('z', 8, 7)]
WORK_BOUND = 64 * 2**20     # bytes any one reference may allocate while it decodes


def peak_allocation(decode):
    """(result, peak bytes allocated while `decode()` ran)."""
    tracemalloc.start()
    try:
        result = decode()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_depth_images_decode_to_metres_with_no_reading_left_out():
    mm = np.array([[0, 1500, 65535], [250, 0, 1]], np.uint16)
    padded = np.zeros((2, 7), np.uint8)                       # 6 bytes of pixels + 1 pad byte a row
    padded[:, :6] = mm.view(np.uint8).reshape(2, 6)
    samples = decode_depth_image(2, 3, '16UC1', 0, 7, padded.tobytes())
    assert samples.registered and samples.size == 4
    readings = sorted(zip(samples.v.tolist(), samples.u.tolist(), samples.z.tolist()))
    expected = [((0.5) / 2, 1.5 / 3, 1.5), (0.25, 2.5 / 3, 65.535), (0.75, 0.5 / 3, 0.25), (0.75, 2.5 / 3, 0.001)]
    np.testing.assert_allclose(readings, expected, rtol=1e-6)
    big = decode_depth_image(2, 3, '16UC1', 1, 6, mm.astype('>u2').tobytes())
    assert sorted(big.z.tolist()) == sorted(samples.z.tolist())
    floats = np.array([[np.nan, 2.0, 0.0, np.inf, -1.0, 1e-44, 5e-4, 2e3]], np.float32)
    only = decode_depth_image(1, 8, '32FC1', 0, 32, floats.tobytes())
    assert only.z.tolist() == [2.0] and only.u.tolist() == [pytest.approx(1.5 / 8)]


@pytest.mark.parametrize('args, match', [
    ((1, 4, 'rgb8', 0, 12, bytes(12)), 'not one of'),
    ((2, 3, '16UC1', 0, 6, bytes(7)), 'needs at least'),
    ((0, 3, '32FC1', 0, 12, b''), 'empty'),
    ((2, 3, '16UC1', 0, 6, bytes(12)), 'no reading'),                                   # all zeros: no reading
    ((40, 40, '32FC1', 0, 160, np.full((40, 40), 1e-44, np.float32).tobytes()), 'no reading'),   # denormals
    ((2, 3, '16UC1', 0, 6, [0] * 12), 'cannot decode'),                             # not a buffer: still refused
])
def test_unusable_depth_images_are_refused(args, match):
    with pytest.raises(ImageFormatError, match=match):
        decode_depth_image(*args)


def test_a_depth_image_over_the_pixel_limit_is_refused():
    with pytest.raises(ImageFormatError, match='max_input_pixels'):
        decode_depth_image(5000, 5000, '16UC1', 0, 10000, b'', max_pixels=4096 * 4096)


def cloud(points: np.ndarray) -> bytes:
    return np.ascontiguousarray(points, '<f4').tobytes()


def test_point_cloud_fields_to_rays():
    points = np.zeros(4, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4'), ('pad', 'V4')])
    points['x'], points['y'], points['z'] = [1, 2, 3, 0], [4, 5, 6, 0], [2, 5, 10, -1]    # the last is behind
    fields = XYZ + [('intensity', 12, 7)]
    samples = decode_point_cloud(fields, 1, 4, 20, 80, points.tobytes())
    assert not samples.registered
    np.testing.assert_allclose(sorted(zip(samples.u, samples.v, samples.z)),
                               [(0.3, 0.6, 10), (0.4, 1.0, 5), (0.5, 2.0, 2)], rtol=1e-6)
    turned = decode_point_cloud(fields, 1, 4, 20, 80, points.tobytes(),
                                transform=RigidTransform.from_pose([0, 0, 1.0, 0, 0, 0, 1]))
    assert sorted(turned.z.tolist()) == [3.0, 6.0, 11.0]      # 1 m further; the one behind now at 0: none


def test_an_organized_cloud_honours_row_step():
    """2 rows of 3 points, each row padded to 40 bytes: the padding is never read as a point."""
    rows = np.full((2, 40), 0xFF, np.uint8)                  # padding bytes read as floats would be NaN
    xyz = np.arange(1, 19, dtype='<f4').reshape(2, 3, 3)
    rows[:, :36] = xyz.view(np.uint8).reshape(2, 36)
    samples = decode_point_cloud(XYZ, 2, 3, 12, 40, rows.tobytes())
    assert sorted(samples.z.tolist()) == sorted(xyz[..., 2].ravel().tolist())


@pytest.mark.parametrize('kwargs, match', [
    (dict(width=0, data=b''), 'no points'),                                   # issue 18.1: a LiDAR with no returns
    (dict(width=5, data=b''), 'need'),
    (dict(fields=XYZ[:2]), 'no float x, y, z'),
    (dict(fields=[('x', 0, 7), ('y', 4, 7), ('z', 18, 7)]), 'does not fit'),
    (dict(fields=[('x', 0, 7), ('y', 4, 7), ('z', 8, 2)]), 'not float'),
    (dict(point_step=0), 'point_step'),
    (dict(height=2, width=2, row_step=10), 'row_step'),
    (dict(data=cloud(np.tile([0.0, 0.0, -1.0, 0.0], 5))), 'in front'),       # all behind the camera
    (dict(data=[1, 2, 3]), 'cannot decode'),
])
def test_unusable_clouds_are_refused(kwargs, match):
    args = dict(fields=XYZ, height=1, width=5, point_step=16, row_step=80, data=cloud(np.tile([0, 0, 2.0, 0], 5)))
    args.update(kwargs)
    with pytest.raises(ImageFormatError, match=match):
        decode_point_cloud(args['fields'], args['height'], args['width'], args['point_step'], args['row_step'],
                           args['data'])


@pytest.mark.parametrize('count, stacked', [(15_000_000, True), (5_000_000, False)])
def test_a_cloud_of_millions_of_points_decodes_in_bounded_memory(count, stacked):
    """Issue 18.2: 15M points with x, y, z all at offset 0 and point_step 4 (a 57 MB message), and
    5M points of x, y, z, intensity (76 MB)."""
    rng = np.random.default_rng(0)
    if stacked:
        data, fields, step = rng.uniform(0.5, 50.0, count).astype('<f4').tobytes(), [('x', 0, 7), ('y', 0, 7),
                                                                                     ('z', 0, 7)], 4
    else:
        points = rng.uniform(-20.0, 20.0, (count, 4)).astype('<f4')
        points[:, 2] = np.abs(points[:, 2]) + 0.5
        data, fields, step = points.tobytes(), XYZ + [('intensity', 12, 7)], 16
        del points
    samples, peak = peak_allocation(lambda: decode_point_cloud(fields, 1, count, step, step * count, data))
    assert samples.size == SAMPLE_BUDGET and samples.z.nbytes == 4 * SAMPLE_BUDGET
    if stacked:
        np.testing.assert_allclose(samples.u, 1.0)            # x = z: every ray at 45 degrees
    assert peak < WORK_BOUND, f'{peak / 2**20:.0f} MiB allocated to decode one cloud'
    print(f'{count / 1e6:.0f}M-point cloud: peak allocation {peak / 2**20:.1f} MiB, {samples.size} samples kept')


def test_the_points_read_are_spread_over_the_whole_cloud():
    """Reading POINTS_READ of a larger cloud: evenly from start to end, not its first points."""
    count = 4 * POINTS_READ
    z = np.linspace(1.0, 100.0, count)
    data = cloud(np.stack([np.zeros(count), np.zeros(count), z], axis=1))
    samples = decode_point_cloud(XYZ, 1, count, 12, 12 * count, data)
    assert samples.z.min() < 1.1 and samples.z.max() > 99.9
    counts, _ = np.histogram(samples.z, bins=10, range=(1, 100))
    assert counts.min() > 0.8 * counts.mean()


def test_a_4000x4000_depth_image_decodes_in_bounded_memory():
    """Issue 18.2: a 31 MB 16UC1 reference, every pixel a reading."""
    image = np.random.default_rng(0).integers(300, 20000, (4000, 4000), dtype=np.uint16)
    data = image.tobytes()
    samples, peak = peak_allocation(lambda: decode_depth_image(4000, 4000, '16UC1', 0, 8000, data))
    assert samples.size == SAMPLE_BUDGET
    assert peak < WORK_BOUND, f'{peak / 2**20:.0f} MiB allocated to decode one image'
    # kept evenly over the image: each quarter holds about a quarter of the samples
    quarters = np.histogram2d(samples.v, samples.u, bins=2, range=[[0, 1], [0, 1]])[0]
    assert quarters.min() > 0.2 * SAMPLE_BUDGET
    print(f'4000x4000 16UC1: peak allocation {peak / 2**20:.1f} MiB, {samples.size} samples kept')


def test_a_sparse_depth_image_keeps_every_reading():
    """A LiDAR projected into a large image: 0.05 % of the pixels, all kept (no grid subsampling)."""
    image = np.zeros((3000, 4000), np.float32)
    rng = np.random.default_rng(1)
    picked = rng.choice(image.size, 6000, replace=False)
    image.flat[picked] = rng.uniform(0.5, 30.0, picked.size)
    samples = decode_depth_image(3000, 4000, '32FC1', 0, 16000, image.tobytes())
    assert samples.size == 6000
    np.testing.assert_allclose(np.sort(samples.z), np.sort(image.flat[picked]), rtol=1e-6)


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(fields=st.lists(st.tuples(st.sampled_from(['x', 'y', 'z', 'rgb', '']), st.integers(0, 40),
                                 st.integers(0, 9)), max_size=5),
       height=st.integers(0, 4), width=st.integers(0, 40), point_step=st.integers(-1, 40),
       row_step=st.integers(-1, 400), length=st.integers(0, 800), bigendian=st.integers(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_any_cloud_decodes_to_sane_samples_or_is_refused(fields, height, width, point_step, row_step, length,
                                                         bigendian, seed):
    data = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    try:
        samples = decode_point_cloud(fields, height, width, point_step, row_step, data, bigendian)
    except ImageFormatError:
        return
    assert 0 < samples.size <= SAMPLE_BUDGET and not samples.registered
    assert ((samples.z >= 1e-3) & (samples.z <= 1000)).all()
    assert np.isfinite(samples.u).all() and np.isfinite(samples.v).all()


@FUZZ
@given(encoding=st.sampled_from(['16UC1', 'mono16', '32FC1', 'rgb8']), height=st.integers(-1, 8),
       width=st.integers(-1, 8), step=st.integers(-1, 40), length=st.integers(0, 300),
       bigendian=st.integers(0, 1), seed=st.integers(0, 2**32 - 1))
def test_any_depth_image_decodes_to_sane_samples_or_is_refused(encoding, height, width, step, length, bigendian,
                                                               seed):
    data = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    try:
        samples = decode_depth_image(height, width, encoding, bigendian, step, data)
    except ImageFormatError:
        return
    assert 0 < samples.size <= SAMPLE_BUDGET and samples.registered
    assert ((samples.z >= 1e-3) & (samples.z <= 1000)).all()
    assert ((samples.u > 0) & (samples.u < 1) & (samples.v > 0) & (samples.v < 1)).all()
