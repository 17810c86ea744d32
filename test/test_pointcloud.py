"""Metric depth -> points (pinhole, scaled intrinsics, decimation), PointCloud2 bytes, REP 118."""
import math

import numpy as np
import pytest

from depth_anything_ros.core.pointcloud import (
    FLOAT32, depth_to_points, invalid_to_nan, pointcloud2_fields, scaled_intrinsics, to_millimetres)

H, W = 48, 64
FX, FY, CX, CY = 50.0, 52.0, 31.3, 22.8        # off-centre on purpose
K = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]


def pinhole(u, v, z, fx=FX, fy=FY, cx=CX, cy=CY):
    return np.array([(u - cx) * z / fx, (v - cy) * z / fy, z])


def coded_depth(h=H, w=W):
    """Depth that names its pixel: 1 + u / 100 + v / 10000 metres."""
    v, u = np.mgrid[0:h, 0:w]
    return (1.0 + u / 100 + v / 10000).astype(np.float32)


def coded_bgr(h=H, w=W):
    v, u = np.mgrid[0:h, 0:w]
    return np.dstack([u % 256, v % 256, (u + v) % 256]).astype(np.uint8)


# ---------------------------------------------------------------- points

def test_plane_at_two_metres():
    depth = np.full((H, W), 2.0, np.float32)
    xyz, rgb = depth_to_points(depth, FX, FY, CX, CY)
    assert rgb is None
    assert xyz.shape == (H * W, 3) and xyz.dtype == np.float32
    assert np.all(xyz[:, 2] == 2.0)
    for u, v in [(0, 0), (17, 5), (W - 1, H - 1), (31, 22)]:
        np.testing.assert_allclose(xyz[v * W + u], pinhole(u, v, 2.0), rtol=1e-6, atol=1e-6)
    # optical frame: x grows to the right, y downwards
    assert xyz[W - 1, 0] > 0 > xyz[0, 0]
    assert xyz[(H - 1) * W, 1] > 0 > xyz[0, 1]


def test_points_keep_their_pixel_and_colour():
    depth, bgr = coded_depth(), coded_bgr()
    xyz, rgb = depth_to_points(depth, FX, FY, CX, CY, bgr=bgr)
    assert rgb.shape == (H * W, 3) and rgb.dtype == np.uint8
    for u, v in [(3, 40), (63, 0), (10, 10)]:
        i = v * W + u
        np.testing.assert_allclose(xyz[i], pinhole(u, v, depth[v, u]), rtol=1e-6)
        np.testing.assert_array_equal(rgb[i], bgr[v, u, ::-1])       # RGB order


@pytest.mark.parametrize('d', [1, 2, 3, 5, 7, 64, 100])
def test_decimation(d):
    depth, bgr = coded_depth(), coded_bgr()
    xyz, rgb = depth_to_points(depth, FX, FY, CX, CY, decimation=d, bgr=bgr)
    assert len(xyz) == math.ceil(H / d) * math.ceil(W / d) == len(rgb)
    v, u = np.mgrid[0:H:d, 0:W:d]
    u, v = u.ravel(), v.ravel()
    z = depth[v, u]
    expected = np.stack([(u - CX) * z / FX, (v - CY) * z / FY, z], axis=1)
    np.testing.assert_allclose(xyz, expected, rtol=1e-6, atol=1e-6)   # original pixel coordinates
    np.testing.assert_array_equal(rgb, bgr[v, u, ::-1])


def test_invalid_depth_dropped():
    depth, bgr = coded_depth(), coded_bgr()
    bad = {(0, 0): np.nan, (5, 7): 0.0, (9, 1): -1.5, (20, 30): np.inf, (47, 63): -np.inf}
    for (v, u), value in bad.items():
        depth[v, u] = value
    xyz, rgb = depth_to_points(depth, FX, FY, CX, CY, bgr=bgr)
    assert len(xyz) == H * W - len(bad) == len(rgb)
    assert np.all(np.isfinite(xyz)) and np.all(xyz[:, 2] > 0)
    keep = np.ones((H, W), bool)
    for v, u in bad:
        keep[v, u] = False
    np.testing.assert_array_equal(xyz[:, 2], depth[keep])
    np.testing.assert_array_equal(rgb, bgr[keep][:, ::-1])
    empty, colours = depth_to_points(np.full((4, 4), np.nan, np.float32), FX, FY, CX, CY,
                                     bgr=np.zeros((4, 4, 3), np.uint8))
    assert empty.shape == (0, 3) and colours.shape == (0, 3)


def test_depth_to_points_bad_arguments():
    with pytest.raises(ValueError):
        depth_to_points(np.ones((2, H, W), np.float32), FX, FY, CX, CY)
    with pytest.raises(ValueError):
        depth_to_points(np.ones((H, W), np.float32), FX, FY, CX, CY, decimation=0)
    with pytest.raises(ValueError):
        depth_to_points(np.ones((H, W), np.float32), FX, FY, CX, CY, bgr=np.zeros((H, W + 1, 3), np.uint8))
    with pytest.raises(ValueError):
        depth_to_points(np.ones((H, W), np.float32), FX, FY, CX, CY, bgr=np.zeros((H, W), np.uint8))


# ---------------------------------------------------------------- intrinsics

def test_scaled_intrinsics_same_size_is_k():
    assert scaled_intrinsics(K, (W, H), (W, H)) == pytest.approx((FX, FY, CX, CY))
    assert scaled_intrinsics(np.array(K).reshape(3, 3), (W, H), (W, H)) == pytest.approx((FX, FY, CX, CY))


def test_half_resolution_gives_the_same_points():
    """Depth at half the camera_info size: a depth pixel covers full-size pixels 2u' and 2u'+1,
    its centre is full-size coordinate 2u' + 0.5, and its ray is exactly that one's."""
    info_w, info_h = 640, 480
    k = [520.0, 0, 321.7, 0, 515.0, 243.2, 0, 0, 1]
    fx, fy, cx, cy = scaled_intrinsics(k, (info_w, info_h), (info_w // 2, info_h // 2))
    assert (fx, fy) == pytest.approx((260.0, 257.5))
    assert (cx, cy) == pytest.approx(((321.7 + 0.5) / 2 - 0.5, (243.2 + 0.5) / 2 - 0.5))
    z = 3.0
    half, _ = depth_to_points(np.full((info_h // 2, info_w // 2), z, np.float32), fx, fy, cx, cy)
    full, _ = depth_to_points(np.full((info_h, info_w), z, np.float32), k[0], k[4], k[2], k[5])
    for u, v in [(0, 0), (100, 37), (319, 239), (160, 120)]:
        p = half[v * (info_w // 2) + u]
        exact = pinhole(2 * u + 0.5, 2 * v + 0.5, z, k[0], k[4], k[2], k[5])
        np.testing.assert_allclose(p, exact, rtol=0, atol=1e-5)
        # and within half a full-size pixel of the point at full-size pixel (2u', 2v')
        near = full[(2 * v) * info_w + 2 * u]
        assert abs(p[0] - near[0]) <= 0.5 * z / k[0] + 1e-6
        assert abs(p[1] - near[1]) <= 0.5 * z / k[4] + 1e-6
    # scaling cx by the ratio alone would be off by a quarter of a half-size pixel
    naive = pinhole(0, 0, z, fx, fy, k[2] / 2, k[5] / 2)
    assert abs(naive[0] - half[0][0]) > 0.2 * z / fx


def test_scaled_intrinsics_any_ratio():
    """Model-sized depth (518x686) from a 1280x720 camera: pixel centres line up."""
    info_wh, depth_wh = (1280, 720), (686, 518)
    k = [910.0, 0, 640.3, 0, 905.0, 361.1, 0, 0, 1]
    fx, fy, cx, cy = scaled_intrinsics(k, info_wh, depth_wh)
    sx, sy = depth_wh[0] / info_wh[0], depth_wh[1] / info_wh[1]
    for u, v in [(0, 0), (685, 517), (200, 300)]:
        u_full, v_full = (u + 0.5) / sx - 0.5, (v + 0.5) / sy - 0.5      # cv2.resize's mapping
        assert (u - cx) / fx == pytest.approx((u_full - k[2]) / k[0], abs=1e-9)
        assert (v - cy) / fy == pytest.approx((v_full - k[5]) / k[4], abs=1e-9)


@pytest.mark.parametrize('args, match', [
    ((K, (0, 0), (W, H)), 'positive'), ((K, (W, H), (0, H)), 'positive'), ((K[:8], (W, H), (W, H)), '9'),
    (([0.0, 0, 1, 0, 1, 1, 0, 0, 1], (W, H), (W, H)), 'focal'),
    (([1e-9, 0, 1, 0, 1e-9, 1, 0, 0, 1], (W, H), (W, H)), 'not those of'),       # issue 18.7: 1e-11 m "metres"
    (([1e7, 0, 1, 0, 1e7, 1, 0, 0, 1], (W, H), (W, H)), 'not those of'),
    ((K, (2**31 - 1, 2**31 - 1), (W, H)), 'pixels a side'),                       # issue 18.7: 3e-7 m
    ((K, (W, H), (W // 20, H // 20)), 'does not describe'),                       # 20x smaller
    ((K, (W, H), (W, H // 3)), 'does not describe'),                              # rows squeezed 3x
])
def test_scaled_intrinsics_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        scaled_intrinsics(*args)


# ---------------------------------------------------------------- PointCloud2

def _structured_dtype(fields, point_step):
    """What a reader builds from the message's fields (FLOAT32 rgb read as its uint32 bits)."""
    assert all(datatype == FLOAT32 and count == 1 for _, _, datatype, count in fields)
    return np.dtype({'names': [f[0] for f in fields],
                     'formats': ['<u4' if f[0] == 'rgb' else '<f4' for f in fields],
                     'offsets': [f[1] for f in fields], 'itemsize': point_step})


def test_pointcloud2_layout_round_trip():
    xyz, rgb = depth_to_points(coded_depth(), FX, FY, CX, CY, decimation=3, bgr=coded_bgr())
    msg = pointcloud2_fields(xyz, rgb)
    n = len(xyz)
    assert msg['height'] == 1 and msg['width'] == n
    assert msg['fields'] == [('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    assert msg['point_step'] == 16 and msg['row_step'] == 16 * n
    assert msg['is_bigendian'] is False and msg['is_dense'] is True
    assert msg['data'].typecode == 'B' and len(msg['data']) == msg['row_step']
    back = np.frombuffer(msg['data'], _structured_dtype(msg['fields'], msg['point_step']))
    np.testing.assert_array_equal(np.stack([back['x'], back['y'], back['z']], 1), xyz)
    packed = back['rgb']
    np.testing.assert_array_equal(np.stack([packed >> 16, (packed >> 8) & 255, packed & 255], 1), rgb)
    assert np.all(packed >> 24 == 0)
    # byte by byte, little-endian 0x00RRGGBB: B, G, R, 0 at offsets 12..15
    raw = np.frombuffer(msg['data'], np.uint8).reshape(n, 16)
    np.testing.assert_array_equal(raw[:, 12:16], np.column_stack([rgb[:, ::-1], np.zeros(n, np.uint8)]))


def test_pointcloud2_xyz_only_and_empty():
    xyz = np.array([[1.0, -2.0, 3.5], [0.25, 0.5, 9.0]], np.float64)   # float64 in: stored as float32
    msg = pointcloud2_fields(xyz)
    assert msg['fields'] == [('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1)]
    assert msg['point_step'] == 12 and msg['row_step'] == 24 and len(msg['data']) == 24
    np.testing.assert_array_equal(np.frombuffer(msg['data'], '<f4').reshape(2, 3), xyz.astype(np.float32))
    empty = pointcloud2_fields(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
    assert empty['width'] == 0 and empty['row_step'] == 0 and len(empty['data']) == 0


def test_pointcloud2_bad_arguments():
    with pytest.raises(ValueError):
        pointcloud2_fields(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError):
        pointcloud2_fields(np.zeros((4, 3), np.float32), np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError):
        pointcloud2_fields(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32))


def test_pointcloud2_read_back_with_the_pointcloud2_package():
    """An independent reader (PyPI `pointcloud2`, ROS's read_points without ROS) agrees."""
    pc2 = pytest.importorskip('pointcloud2')
    xyz, rgb = depth_to_points(coded_depth(), FX, FY, CX, CY, decimation=2, bgr=coded_bgr())
    msg = pointcloud2_fields(xyz, rgb)
    cloud = pc2.PointCloud2(header=None, height=msg['height'], width=msg['width'],
                            fields=[pc2.PointField(*f) for f in msg['fields']],
                            is_bigendian=msg['is_bigendian'], point_step=msg['point_step'],
                            row_step=msg['row_step'], data=bytes(msg['data']), is_dense=msg['is_dense'])
    points = pc2.read_points(cloud)
    assert points.dtype['rgb'] == np.float32            # it is a FLOAT32 field, as RViz reads it
    np.testing.assert_array_equal(np.stack([points['x'], points['y'], points['z']], 1), xyz)
    packed = np.ascontiguousarray(points['rgb']).view(np.uint32)
    np.testing.assert_array_equal(np.stack([packed >> 16, (packed >> 8) & 255, packed & 255], 1), rgb)


def test_pointcloud2_fits_a_real_message_with_field_checks():
    """The fields assign to sensor_msgs/PointCloud2 and PointField with Humble-style
    per-field checks on (ROS_PYTHON_CHECK_FIELDS, set for every test), and read back through the message."""
    msgs = pytest.importorskip('sensor_msgs.msg')
    pc2 = pytest.importorskip('pointcloud2')
    assert msgs.PointCloud2()._check_fields and msgs.PointField()._check_fields
    xyz, rgb = depth_to_points(coded_depth(), FX, FY, CX, CY, decimation=4, bgr=coded_bgr())
    fields = pointcloud2_fields(xyz, rgb)
    fields['fields'] = [msgs.PointField(name=n, offset=o, datatype=t, count=c)
                        for n, o, t, c in fields['fields']]
    assert msgs.PointField.FLOAT32 == FLOAT32
    cloud = msgs.PointCloud2(**fields)
    points = pc2.read_points(cloud)
    np.testing.assert_array_equal(np.stack([points['x'], points['y'], points['z']], 1), xyz)
    packed = np.ascontiguousarray(points['rgb']).view(np.uint32)
    np.testing.assert_array_equal(packed & 255, rgb[:, 2])


# ---------------------------------------------------------------- REP 118 depth images

def test_to_millimetres():
    metres = np.array([1.0, 1.0004, 1.0006, 2.5, 0.0014, 0.0004, 65.535, 65.5354, 65.536, 100.0,
                       0.0, -1.0, np.nan, np.inf, -np.inf])
    mm = to_millimetres(metres)
    assert mm.dtype == np.uint16 and mm.shape == metres.shape
    np.testing.assert_array_equal(
        mm, [1000, 1000, 1001, 2500, 1, 0, 65535, 65535, 0, 0, 0, 0, 0, 0, 0])
    # float32 input: 65.535 is 65.53500366 there, and still fits
    assert to_millimetres(np.float32([65.535]))[0] == 65535
    depth = np.full((3, 4), 1.2345, np.float32)
    assert to_millimetres(depth).shape == (3, 4) and np.all(to_millimetres(depth) == 1235)


def test_invalid_to_nan():
    depth = np.array([1.0, 0.0, -1.0, np.nan, np.inf, -np.inf, 20.0, 20.001, 19.99], np.float32)
    original = depth.copy()
    out = invalid_to_nan(depth, 20.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.0, np.nan, np.nan, np.nan, np.nan, np.nan, 20.0, np.nan,
                                        np.float32(19.99)])
    np.testing.assert_array_equal(depth, original)           # the input is left alone
    assert invalid_to_nan(np.ones((2, 3)), 10.0).dtype == np.float32
