"""Metric depth -> 3-D points and sensor_msgs/PointCloud2 fields; REP 118 depth images. No rclpy.

Only metric depth (metres, e.g. the DA-V2 metric models) makes a point cloud:
relative inverse depth has an unknown scale and shift.

Points are in the camera's optical frame (REP 103: x right, y down, z forward),
from the pinhole model: x = (u - cx) * z / fx, y = (v - cy) * z / fy, z = depth,
with (u, v) the pixel's column and row.
"""
from __future__ import annotations

import array

import numpy as np

FLOAT32 = 7   # sensor_msgs/PointField datatype


# What a camera_info must look like to belong to a camera and to the frames it describes.
MAX_SIDE = 65535                 # pixels a side: no camera has more (CameraInfo sizes are uint32)
FOCAL_RANGE = (1 / 40, 1000)     # focal length over the longer side: fields of view 174 to 0.06 degrees
MAX_SCALE = 16                   # frames at most 16x larger or smaller than the calibration
MAX_STRETCH = 2                  # ... and one axis scaled at most twice as much as the other


def scaled_intrinsics(k, info_wh: tuple, depth_wh: tuple) -> tuple:
    """(fx, fy, cx, cy) of the 3x3 camera matrix `k` (CameraInfo.k: 9 numbers, row-major, or
    3x3) for a depth image of `depth_wh` = (width, height) when CameraInfo says `info_wh`.
    ValueError for a camera_info that cannot belong to a camera (no size, a size over MAX_SIDE,
    focal lengths outside FOCAL_RANGE of the longer side) or to these frames (a scale beyond
    MAX_SCALE, or one axis stretched beyond MAX_STRETCH times the other).

    Scales about pixel centres, as cv2.resize maps pixels: cx' = (cx + 0.5) * sx - 0.5.
    """
    k = np.asarray(k, dtype=np.float64).reshape(-1)
    if k.size != 9:
        raise ValueError(f'camera matrix has {k.size} numbers, expected 9')
    info_w, info_h = (int(v) for v in info_wh)
    depth_w, depth_h = (int(v) for v in depth_wh)
    if min(info_w, info_h, depth_w, depth_h) <= 0:
        raise ValueError(f'image sizes must be positive: camera_info {info_w}x{info_h}, '
                         f'depth {depth_w}x{depth_h} (a CameraInfo without width/height?)')
    if max(info_w, info_h) > MAX_SIDE:
        raise ValueError(f'camera_info size {info_w}x{info_h} is over {MAX_SIDE} pixels a side')
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if not (np.isfinite([fx, fy, cx, cy]).all() and fx > 0 and fy > 0):
        raise ValueError(f'camera matrix has no usable focal lengths: fx={fx} fy={fy}')
    low, high = (bound * max(info_w, info_h) for bound in FOCAL_RANGE)
    if not (low <= fx <= high and low <= fy <= high):
        raise ValueError(f'focal lengths fx={fx:.6g} fy={fy:.6g} are not those of a {info_w}x{info_h} camera '
                         f'({low:.6g} to {high:.6g} pixels: fields of view of 174 to 0.06 degrees)')
    sx, sy = depth_w / info_w, depth_h / info_h
    if not (1 / MAX_SCALE <= sx <= MAX_SCALE and 1 / MAX_SCALE <= sy <= MAX_SCALE
            and 1 / MAX_STRETCH <= sx / sy <= MAX_STRETCH):
        raise ValueError(f'camera_info of {info_w}x{info_h} does not describe {depth_w}x{depth_h} frames '
                         f'(scale {sx:.3g} x {sy:.3g})')
    return (float(fx * sx), float(fy * sy),
            float((cx + 0.5) * sx - 0.5), float((cy + 0.5) * sy - 0.5))


def depth_to_points(depth_m: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                    decimation: int = 1, bgr: np.ndarray | None = None) -> tuple:
    """(xyz float32 Nx3, rgb uint8 Nx3 or None) for every `decimation`-th pixel in both
    axes (rows and columns 0, d, 2d, ...) whose depth is finite and > 0.

    `bgr`: an HxWx3 uint8 image the size of `depth_m`, for the points' colours (as RGB).
    Points come in row-major pixel order.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ValueError(f'depth of shape {depth.shape} is not a 2-D image')
    decimation = int(decimation)
    if decimation < 1:
        raise ValueError(f'decimation {decimation} must be >= 1')
    if bgr is not None and (bgr.shape[:2] != depth.shape or bgr.ndim != 3 or bgr.shape[2] != 3
                            or bgr.dtype != np.uint8):
        raise ValueError(f'colour image {bgr.shape} {bgr.dtype} does not match depth '
                         f'{depth.shape}: expected HxWx3 uint8')
    z = depth[::decimation, ::decimation].astype(np.float32, copy=False)
    h, w = depth.shape
    # (u - cx) / fx for the kept columns, (v - cy) / fy for the kept rows: original pixel coordinates.
    ray_x = (np.arange(0, w, decimation, dtype=np.float32) - np.float32(cx)) / np.float32(fx)
    ray_y = (np.arange(0, h, decimation, dtype=np.float32) - np.float32(cy)) / np.float32(fy)
    with np.errstate(invalid='ignore'):
        keep = np.isfinite(z) & (z > 0)
    xyz = np.empty((int(np.count_nonzero(keep)), 3), np.float32)
    with np.errstate(invalid='ignore', over='ignore'):
        xyz[:, 0] = (z * ray_x[None, :])[keep]
        xyz[:, 1] = (z * ray_y[:, None])[keep]
    xyz[:, 2] = z[keep]
    rgb = None
    if bgr is not None:
        rgb = bgr[::decimation, ::decimation][keep][:, ::-1].copy()
    return xyz, rgb


def pointcloud2_fields(xyz: np.ndarray, rgb: np.ndarray | None = None) -> dict:
    """sensor_msgs/PointCloud2 fields except header, for an unorganized cloud (height 1).

    `fields` is a list of (name, offset, datatype, count) tuples:
    `[PointField(name=n, offset=o, datatype=t, count=c) for n, o, t, c in fields]`.
    Colour is the usual `rgb` FLOAT32 field whose 4 bytes are the uint32 0x00RRGGBB
    (little-endian), as RViz and PCL read it. `data` is an array.array('B') (cheap to
    assign on Humble).
    """
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f'points of shape {xyz.shape} are not Nx3')
    names, formats, offsets = ['x', 'y', 'z'], ['<f4'] * 3, [0, 4, 8]
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != xyz.shape or rgb.dtype != np.uint8:
            raise ValueError(f'colours {rgb.shape} {rgb.dtype} do not match points {xyz.shape}: '
                             f'expected Nx3 uint8')
        names.append('rgb')
        formats.append('<u4')     # the bits of the FLOAT32 field
        offsets.append(12)
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                      'itemsize': 4 * len(names)})
    points = np.empty(xyz.shape[0], dtype)
    points['x'], points['y'], points['z'] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if rgb is not None:
        c = rgb.astype(np.uint32)
        points['rgb'] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    data = array.array('B')
    data.frombytes(points.view(np.uint8).data)
    return {
        'height': 1, 'width': int(xyz.shape[0]),
        'fields': [(name, offset, FLOAT32, 1) for name, offset in zip(names, offsets)],
        'is_bigendian': False, 'point_step': dtype.itemsize,
        'row_step': dtype.itemsize * int(xyz.shape[0]), 'data': data, 'is_dense': True,
    }


def to_millimetres(depth_m: np.ndarray) -> np.ndarray:
    """Metres -> REP 118 16UC1 millimetres (uint16), rounded to the nearest millimetre
    (halves up); 0 (REP 118: no measurement) where the depth is NaN/inf, <= 0, beyond
    65.535 m (judged after rounding, so float32 65.535 stays 65535), or under 0.5 mm."""
    depth = np.asarray(depth_m, dtype=np.float64)
    mm = np.floor(depth * 1000.0 + 0.5)
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(mm) & (depth > 0) & (mm <= 65535)
    return np.where(valid, mm, 0).astype(np.uint16)


def invalid_to_nan(depth_m: np.ndarray, max_depth: float) -> np.ndarray:
    """A float32 copy of metric depth with NaN where it is not a measurement: <= 0,
    non-finite, or beyond `max_depth` (e.g. a metric model's sigmoid x max_depth
    saturating at its ceiling)."""
    depth = np.array(depth_m, dtype=np.float32)
    with np.errstate(invalid='ignore'):
        invalid = ~np.isfinite(depth) | (depth <= 0) | (depth > max_depth)
    depth[invalid] = np.nan
    return depth
