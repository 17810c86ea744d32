"""Sparse metric readings, kept small, and the (relative depth, metres) pairs they give a frame. No ROS.

Any sparse metric source gives pairs (d_i, Z_i): a ToF or stereo depth image registered to the
camera, LiDAR points projected with the camera intrinsics, or the floor seen from a known height
and pitch. A source is reduced on arrival to at most SAMPLE_BUDGET readings (`ReferenceSamples`,
about 200 kB), whatever its size: the fit uses 4096 pairs, and a store of references never holds
whole images or clouds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metric_fit import sane_metres

SAMPLE_BUDGET = 16384       # readings kept per reference: the fit's 4096 pairs, with room for a view to miss
CHUNK_PIXELS = 1 << 19      # a depth image is scanned in row blocks of about this many pixels


@dataclass(frozen=True)
class ReferenceSamples:
    """Metric readings, float32: depth `z` (metres, along the optical axis) at positions (u, v),
    which are, for `registered` readings (a depth image registered to the camera), the pixel centre
    as a fraction of that image's width and height; otherwise (points in the camera's optical
    frame) the ray slopes x/z and y/z, placed in a frame by its intrinsics."""
    u: np.ndarray
    v: np.ndarray
    z: np.ndarray
    registered: bool

    @property
    def size(self) -> int:
        return int(self.z.size)

    def pairs(self, depth_hw: np.ndarray, intrinsics: tuple | None = None) -> tuple:
        """(model output, metres) where the readings fall on `depth_hw` (the relative output at the
        frame's size): registered ones on the nearest pixel, rays through `intrinsics` (fx, fy, cx,
        cy for that size); rays outside the image are skipped."""
        h, w = depth_hw.shape
        if self.registered:
            cols = np.clip(np.rint(self.u.astype(np.float64) * w - 0.5), 0, w - 1)
            rows = np.clip(np.rint(self.v.astype(np.float64) * h - 0.5), 0, h - 1)
            z = self.z
        else:
            fx, fy, cx, cy = intrinsics
            cols = np.rint(fx * self.u.astype(np.float64) + cx)
            rows = np.rint(fy * self.v.astype(np.float64) + cy)
            inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
            cols, rows, z = cols[inside], rows[inside], self.z[inside]
        return depth_hw[rows.astype(np.intp), cols.astype(np.intp)], z


def _thinned(rng, budget: int, *columns) -> tuple:
    """The columns (equal length) cut to `budget` rows picked at random, as float32."""
    if columns[0].size > budget:
        keep = np.sort(rng.choice(columns[0].size, budget, replace=False))
        columns = tuple(c[keep] for c in columns)
    return tuple(np.asarray(c, np.float32) for c in columns)


def image_samples(image: np.ndarray, to_metres: float = 1.0, budget: int = SAMPLE_BUDGET,
                  seed: int = 0) -> ReferenceSamples:
    """The sane readings of a depth image registered to the camera (`image` * `to_metres` metres;
    any 2-D array, strided views included), at most `budget` of them spread evenly at random.
    Scanned in row blocks, so the work memory is bounded whatever the image's size."""
    h, w = image.shape
    if h == 0 or w == 0:
        return ReferenceSamples(*(np.zeros(0, np.float32),) * 3, registered=True)
    rows_per_block = max(1, CHUNK_PIXELS // max(w, 1))
    blocks = [(top, min(h, top + rows_per_block)) for top in range(0, h, rows_per_block)]

    def valid(top, bottom):
        metres = image[top:bottom].astype(np.float32) * np.float32(to_metres)
        return metres, sane_metres(metres)
    first = valid(*blocks[0])   # kept: most depth images are one block, converted once

    def block(i):
        return valid(*blocks[i]) if i else first
    total = sum(int(np.count_nonzero(block(i)[1])) for i in range(len(blocks)))
    keep = min(1.0, 2.0 * budget / total) if total else 0.0   # twice the budget, cut exactly below
    rng = np.random.default_rng(seed)
    picked = []
    for i, (top, bottom) in enumerate(blocks):
        metres, ok = block(i)
        rows, cols = np.nonzero(ok)
        if keep < 1.0:
            chosen = rng.random(rows.size) < keep
            rows, cols = rows[chosen], cols[chosen]
        picked.append(((rows + top + 0.5) / h, (cols + 0.5) / w, metres[rows, cols]))
    v, u, z = (np.concatenate(column) for column in zip(*picked))
    u, v, z = _thinned(rng, budget, u, v, z)
    return ReferenceSamples(u, v, z, registered=True)


def ray_samples(xyz: np.ndarray, budget: int = SAMPLE_BUDGET, seed: int = 0) -> ReferenceSamples:
    """Points in the camera's optical frame (N x 3, metres; x right, y down, z forward) as rays,
    those whose depth z is sane (in front of the camera), at most `budget` of them at random."""
    xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
    with np.errstate(all='ignore'):
        ahead = sane_metres(xyz[:, 2]) & np.isfinite(xyz[:, :2]).all(axis=1)
        x, y, z = xyz[ahead, 0], xyz[ahead, 1], xyz[ahead, 2]
        u, v, z = _thinned(np.random.default_rng(seed), budget, x / z, y / z, z)
    finite = np.isfinite(u) & np.isfinite(v)     # float32 overflow of an extreme slope
    return ReferenceSamples(u[finite], v[finite], z[finite], registered=False)


@dataclass(frozen=True)
class RigidTransform:
    """A static transform from a sensor's frame to the camera's optical frame."""
    rotation: np.ndarray      # 3x3
    translation: np.ndarray   # 3

    @classmethod
    def from_pose(cls, pose) -> 'RigidTransform':
        """From [x, y, z, qx, qy, qz, qw] (what `tf2_echo camera_optical_frame lidar_frame` prints);
        ValueError unless the numbers are finite and the quaternion has a direction to normalise."""
        pose = np.asarray(pose, np.float64).ravel()
        if pose.size != 7 or not np.isfinite(pose).all():
            raise ValueError(f'{pose.tolist()} is not 7 finite numbers x y z qx qy qz qw')
        norm = np.linalg.norm(pose[3:])
        if norm < 1e-6:
            raise ValueError(f'quaternion {pose[3:].tolist()} has no rotation to normalise (length {norm:.3g}); '
                             'no rotation is [0, 0, 0, 1]')
        qx, qy, qz, qw = pose[3:] / norm
        rotation = np.array([
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)]])
        return cls(rotation, pose[:3])

    def apply(self, xyz: np.ndarray) -> np.ndarray:
        with np.errstate(all='ignore'):   # a cloud's extreme values overflow to inf: dropped as not sane
            return np.asarray(xyz, np.float64).reshape(-1, 3) @ self.rotation.T + self.translation


IDENTITY = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


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
