"""Metres from a relative model: scale and shift fitted to a sparse metric source. No ROS here.

A relative DA-V2 output d is affine-invariant inverse depth: 1/Z = s * d + t for a scale s and a
shift t the model cannot know. Any sparse metric source gives pairs (d_i, Z_i): a ToF or stereo
depth image registered to the camera, LiDAR points projected with the camera intrinsics, or the
floor seen from a known height and pitch. A robust line fit through (d_i, 1/Z_i) recovers s and t,
and every pixel gets Z = 1 / (s * d + t).

The fit is RANSAC on pairs (two points fix a line), then least squares on the inliers, so a
minority of wrong references (reflections, edges, moving objects) does not bend it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .image_codec import ImageFormatError, strided_rows

MAX_SAMPLES = 4096    # pairs used per fit: more adds cost, not accuracy
TRIALS = 64           # RANSAC lines tried; with 30 % outliers all 64 miss with odds 1e-11


@dataclass(frozen=True)
class InverseDepthFit:
    """1/Z = scale * model_output + shift, from `support` inlier pairs whose depths the line
    reproduces with median relative error `residual`."""
    scale: float
    shift: float
    support: int
    residual: float

    def inverse_depth(self, model_output: np.ndarray) -> np.ndarray:
        return self.scale * model_output + self.shift

    def to_metres(self, model_output: np.ndarray, max_depth: float = 0.0, out=None) -> np.ndarray:
        """Depth in metres; NaN where the fitted inverse depth is not positive (beyond infinity),
        where the input is NaN, or beyond `max_depth` (0: no limit)."""
        inverse = self.inverse_depth(np.asarray(model_output, np.float32))
        with np.errstate(divide='ignore', invalid='ignore'):
            metres = np.divide(np.float32(1.0), inverse, out=out, dtype=np.float32)
        metres[~(inverse > 0)] = np.nan
        if max_depth:
            metres[metres > max_depth] = np.nan
        return metres


def fit_inverse_depth(model_output: np.ndarray, reference_m: np.ndarray, min_support: int = 20,
                      inlier_tolerance: float = 0.05, seed: int = 0) -> InverseDepthFit | None:
    """Robust fit of 1/reference = s * model_output + t over paired samples (1-D, same length;
    non-finite or non-positive references are skipped). None if fewer than `min_support` pairs
    agree with the best line within `inlier_tolerance` (relative depth error)."""
    rng = np.random.default_rng(seed)
    return _fit_pairs(*_usable_pairs(model_output, reference_m, rng), min_support, inlier_tolerance, rng)


def _usable_pairs(model_output, reference_m, rng) -> tuple:
    """(model output, 1 / reference) as float64 over the valid pairs, at most MAX_SAMPLES of them."""
    d = np.asarray(model_output, np.float64).ravel()
    z = np.asarray(reference_m, np.float64).ravel()
    valid = np.isfinite(d) & np.isfinite(z) & (z > 0)
    d, inverse = d[valid], 1.0 / z[valid]
    if d.size > MAX_SAMPLES:
        keep = rng.choice(d.size, MAX_SAMPLES, replace=False)
        d, inverse = d[keep], inverse[keep]
    return d, inverse


def _fit_pairs(d, inverse, min_support, inlier_tolerance, rng) -> InverseDepthFit | None:
    if d.size < max(min_support, 2):
        return None
    inliers = _ransac_inliers(d, inverse, inlier_tolerance, rng)
    for _ in range(2):  # refit on the inliers, then let the refined line re-pick them
        if inliers.sum() < max(min_support, 2):
            return None
        scale, shift = _least_squares(d[inliers], inverse[inliers])
        inliers = _relative_error(scale, shift, d, inverse) < inlier_tolerance
    if inliers.sum() < max(min_support, 2) or scale <= 0:
        return None
    residual = float(np.median(_relative_error(scale, shift, d[inliers], inverse[inliers])))
    return InverseDepthFit(float(scale), float(shift), int(inliers.sum()), residual)


def _relative_error(scale, shift, d, inverse):
    """|Z_fit - Z| / Z_fit written in inverse depth (no division by a fitted value near 0)."""
    return np.abs(scale * d + shift - inverse) / inverse


def _ransac_inliers(d, inverse, tolerance, rng) -> np.ndarray:
    i, j = rng.integers(0, d.size, (2, TRIALS))
    spread = d[i] - d[j]
    usable = np.abs(spread) > 1e-12
    if not usable.any():
        return np.ones(d.size, bool)
    i, j, spread = i[usable], j[usable], spread[usable]
    scale = (inverse[i] - inverse[j]) / spread
    shift = inverse[i] - scale * d[i]
    errors = np.abs(scale[:, None] * d[None] + shift[:, None] - inverse[None]) / inverse[None]
    votes = (errors < tolerance).sum(axis=1) * (scale > 0)  # inverse depth grows with disparity
    return errors[int(np.argmax(votes))] < tolerance


def _least_squares(d, inverse) -> tuple:
    a = np.stack([d, np.ones_like(d)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(a, inverse, rcond=None)
    return scale, shift


class ScaleTracker:
    """Per-frame fits smoothed over time: `smoothing` is the weight of the past (0: each frame on
    its own). A frame whose references disagree with the running line by more than `scene_cut`
    (median relative depth error) restarts it: the camera moved to another scene or the model
    changed its own scale."""

    def __init__(self, min_support: int = 20, smoothing: float = 0.0, scene_cut: float = 0.25,
                 inlier_tolerance: float = 0.05):
        self.min_support = min_support
        self.smoothing = smoothing
        self.scene_cut = scene_cut
        self.inlier_tolerance = inlier_tolerance
        self.current: InverseDepthFit | None = None
        self.resets = 0

    def update(self, model_output: np.ndarray, reference_m: np.ndarray) -> InverseDepthFit | None:
        """The fit for this frame (None: too little support; the running line is kept)."""
        rng = np.random.default_rng(0)
        d, inverse = _usable_pairs(model_output, reference_m, rng)
        fit = _fit_pairs(d, inverse, self.min_support, self.inlier_tolerance, rng)
        if fit is None:
            return None
        past = self.current
        if past is None or self._is_cut(past, d, inverse):
            self.resets += 1
        elif self.smoothing:
            w = self.smoothing
            fit = InverseDepthFit((1 - w) * fit.scale + w * past.scale, (1 - w) * fit.shift + w * past.shift,
                                  fit.support, fit.residual)
        self.current = fit
        return fit

    def _is_cut(self, past: InverseDepthFit, d, inverse) -> bool:
        """The running line misses this frame's (valid, non-empty) pairs by more than scene_cut."""
        return float(np.median(_relative_error(past.scale, past.shift, d, inverse))) > self.scene_cut


# -- where the pairs come from -------------------------------------------------------------

def sample_registered(depth_hw: np.ndarray, reference_m: np.ndarray) -> tuple:
    """(model output, reference metres) at every valid pixel of a depth image registered to the
    camera, of any resolution: each reference pixel centre reads the nearest output pixel."""
    h, w = depth_hw.shape
    rh, rw = reference_m.shape
    rows, cols = np.nonzero(np.isfinite(reference_m) & (reference_m > 0))
    y = np.clip(np.rint((rows + 0.5) * h / rh - 0.5).astype(np.intp), 0, h - 1)
    x = np.clip(np.rint((cols + 0.5) * w / rw - 0.5).astype(np.intp), 0, w - 1)
    return depth_hw[y, x], reference_m[rows, cols]


def sample_points(depth_hw: np.ndarray, xyz: np.ndarray, intrinsics: tuple) -> tuple:
    """(model output, depth) at the pixels where 3-D points in the camera's optical frame
    (x right, y down, z forward; metres) project; points behind the camera or outside the
    image are skipped. `intrinsics`: fx, fy, cx, cy for the size of `depth_hw`."""
    fx, fy, cx, cy = intrinsics
    h, w = depth_hw.shape
    xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
    xyz = xyz[np.isfinite(xyz).all(axis=1) & (xyz[:, 2] > 1e-6)]
    u = np.rint(fx * xyz[:, 0] / xyz[:, 2] + cx).astype(np.intp)
    v = np.rint(fy * xyz[:, 1] / xyz[:, 2] + cy).astype(np.intp)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    return depth_hw[v[inside], u[inside]], xyz[inside, 2]


def transform_points(xyz: np.ndarray, transform) -> np.ndarray:
    """Points moved by a static transform [x, y, z, qx, qy, qz, qw] (from the points' frame to
    the camera's optical frame, as `tf2_echo camera_optical_frame lidar_frame` prints it)."""
    t = np.asarray(transform[:3], np.float64)
    qx, qy, qz, qw = np.asarray(transform[3:], np.float64) / np.linalg.norm(transform[3:])
    rotation = np.array([
        [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
        [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
        [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)]])
    return np.asarray(xyz, np.float64).reshape(-1, 3) @ rotation.T + t


def floor_depth(image_hw: tuple, intrinsics: tuple, camera_height: float, camera_pitch: float,
                floor_rows: float = 0.25) -> np.ndarray:
    """Depth (along the optical axis) of a flat floor `camera_height` metres below a camera pitched
    down by `camera_pitch` radians (no roll), in the bottom `floor_rows` of the image; NaN
    elsewhere and where the ray never meets the floor (at or above the horizon).

    The assumption is the whole method: it is wrong wherever something stands on the floor in
    that band, on slopes and stairs, and when the robot pitches or rolls while driving."""
    fx, fy, cx, cy = intrinsics
    h, w = image_hw
    depth = np.full((h, w), np.nan, np.float32)
    first = int(round(h * (1.0 - floor_rows)))
    b = (np.arange(first, h, dtype=np.float64) - cy) / fy   # ray: (a, b, 1) in the camera frame
    down = b * np.cos(camera_pitch) + np.sin(camera_pitch)    # its downward component in the world
    rows = np.where(down > 1e-6, camera_height / np.where(down > 1e-6, down, 1.0), np.nan)
    depth[first:] = rows[:, None].astype(np.float32)
    return depth


# -- reference messages, as fields (the node hands them over; no ROS types here) --------------

DEPTH_ENCODINGS = {'16UC1': ('u2', 0.001), 'mono16': ('u2', 0.001), '32FC1': ('f4', 1.0)}
POINT_FIELD_TYPES = {7: 'f4', 8: 'f8'}   # sensor_msgs/PointField FLOAT32, FLOAT64


def decode_depth_image(height: int, width: int, encoding: str, is_bigendian: int, step: int, data) -> np.ndarray:
    """A metric depth Image (REP 118: 16UC1 millimetres with 0 = no reading, 32FC1 metres with
    NaN or 0 = no reading) as float32 metres with NaN where there is no reading."""
    if encoding not in DEPTH_ENCODINGS:
        raise ImageFormatError(f"reference depth encoding '{encoding}' is not one of {sorted(DEPTH_ENCODINGS)}")
    if height <= 0 or width <= 0:
        raise ImageFormatError(f'reference depth size {width}x{height} is empty')
    kind, to_metres = DEPTH_ENCODINGS[encoding]
    dtype = np.dtype(('>' if is_bigendian else '<') + kind)
    rows = strided_rows(np.frombuffer(data, np.uint8), height, width * dtype.itemsize, step, encoding, dtype)
    metres = rows.astype(np.float32) * np.float32(to_metres)
    metres[~(metres > 0) | ~np.isfinite(metres)] = np.nan
    return metres


def pointcloud_xyz(fields, point_step: int, data, is_bigendian: int = 0) -> np.ndarray:
    """x, y, z of a PointCloud2 as an (N, 3) float64 array; `fields`: (name, offset, datatype)."""
    by_name = {name: (offset, datatype) for name, offset, datatype in fields}
    missing = [axis for axis in 'xyz' if axis not in by_name or by_name[axis][1] not in POINT_FIELD_TYPES]
    if missing or point_step <= 0:
        raise ImageFormatError(f'point cloud has no float x, y, z fields (missing or not float: {missing}) '
                               f'or a point_step of {point_step}')
    buf = np.frombuffer(data, np.uint8)
    count = buf.size // point_step
    columns = []
    for axis in 'xyz':
        offset, datatype = by_name[axis]
        dtype = np.dtype(('>' if is_bigendian else '<') + POINT_FIELD_TYPES[datatype])
        if offset + dtype.itemsize > point_step:
            raise ImageFormatError(f"point cloud field '{axis}' at offset {offset} does not fit a point of "
                                   f'{point_step} bytes')
        columns.append(np.ndarray((count,), dtype, buffer=buf, offset=offset, strides=(point_step,)))
    return np.stack(columns, axis=1).astype(np.float64)


class StampedReferences:
    """The last few references by stamp, for pairing each camera frame with the reference taken
    closest to it, within `tolerance_s` (sensors rarely share a clock tick)."""

    def __init__(self, tolerance_s: float, keep: int = 8):
        self._tolerance_ns = int(tolerance_s * 1e9)
        self._keep = keep
        self._items = []              # (stamp_ns, reference), oldest first
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, reference) -> None:
        with self._lock:
            self._items.append((stamp_ns, reference))
            self._items.sort(key=lambda item: item[0])
            del self._items[:-self._keep]

    def closest(self, stamp_ns: int):
        """The reference nearest in time to `stamp_ns`, or None if none is within the tolerance."""
        with self._lock:
            if not self._items:
                return None
            stamp, reference = min(self._items, key=lambda item: abs(item[0] - stamp_ns))
        return reference if abs(stamp - stamp_ns) <= self._tolerance_ns else None


# -- one object per node: references in, metres out -----------------------------------------

REFERENCE_SOURCES = ('none', 'depth_image', 'points', 'ground_plane')


class ReferenceAligner:
    """Turns each frame's relative depth into metres with the reference paired to it.

    `source`: 'depth_image' (a metric depth Image registered to the camera), 'points' (a point
    cloud, moved into the camera's optical frame by `transform`), or 'ground_plane' (the floor
    below a camera at `camera_height` m, pitched down by `camera_pitch` rad, in the bottom
    `floor_rows` of the image). align() says why a frame stays relative when it does.
    """

    def __init__(self, source: str, tolerance_s: float = 0.05, transform=(0, 0, 0, 0, 0, 0, 1),
                 camera_height: float = 0.0, camera_pitch: float = 0.0, floor_rows: float = 0.25,
                 min_support: int = 20, smoothing: float = 0.0, scene_cut: float = 0.25, max_depth: float = 0.0):
        if source not in REFERENCE_SOURCES[1:]:
            raise ValueError(f"reference source '{source}' is not one of {list(REFERENCE_SOURCES[1:])}")
        if source == 'ground_plane' and camera_height <= 0:
            raise ValueError('ground_plane needs camera_height > 0 (metres from the floor to the camera)')
        self.source = source
        self.references = StampedReferences(tolerance_s)
        self.transform = list(transform)
        self.floor = (camera_height, camera_pitch, floor_rows)
        self.tracker = ScaleTracker(min_support, smoothing, scene_cut)
        self.max_depth = max_depth
        self._floor_cache = (None, None)

    def add_depth_image(self, stamp_ns: int, metres: np.ndarray) -> None:
        self.references.add(stamp_ns, metres)

    def add_points(self, stamp_ns: int, xyz: np.ndarray) -> None:
        self.references.add(stamp_ns, transform_points(xyz, self.transform))

    def align(self, stamp_ns: int, depth: np.ndarray, intrinsics: tuple | None) -> tuple:
        """(fit, None) after writing metres into `depth` (relative output at frame size, NaN
        where unseen), or (None, reason) with `depth` untouched: 'no_reference', 'no_camera_info'
        or 'low_support'. `intrinsics`: fx, fy, cx, cy for depth's size, if known."""
        pairs, reason = self._pairs(stamp_ns, depth, intrinsics)
        if pairs is None:
            return None, reason
        fit = self.tracker.update(*pairs)
        if fit is None:
            return None, 'low_support'
        fit.to_metres(depth, self.max_depth, out=depth)
        return fit, None

    def _pairs(self, stamp_ns, depth, intrinsics):
        if self.source == 'ground_plane':
            if intrinsics is None:
                return None, 'no_camera_info'
            return sample_registered(depth, self._floor(depth.shape, intrinsics)), None
        reference = self.references.closest(stamp_ns)
        if reference is None:
            return None, 'no_reference'
        if self.source == 'depth_image':
            return sample_registered(depth, reference), None
        if intrinsics is None:
            return None, 'no_camera_info'
        return sample_points(depth, reference, intrinsics), None

    def _floor(self, shape, intrinsics):
        key, floor = self._floor_cache
        if key != (shape, tuple(intrinsics)):
            floor = floor_depth(shape, intrinsics, *self.floor)
            self._floor_cache = ((shape, tuple(intrinsics)), floor)
        return floor
