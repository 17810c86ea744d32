"""Monocular depth evaluation against ground truth: loaders, masks, alignment. No ROS here.

Ground-truth loaders return float32 metres with NaN where the sensor had no
reading (0 in every format here). A relative model's output has an unknown scale
and shift, so it is aligned to the ground truth by least squares before the
metrics, in the space of its kind: DA-V2's inverse depth in disparity space (the
MiDaS / Depth Anything protocol), DA3's depth in depth space (`relative_depth`);
a metric model's output is used as is. Metric functions live in depth_metrics.py.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from . import line_fit
from .depth_metrics import depth_metrics
from .depth_type import DEPTH_KINDS

# decode name -> uint16 PNG value -> metres
DECODERS = {
    'mm': lambda v: v.astype(np.float32) / 1000.0,                # NYU, Redwood
    'kitti256': lambda v: v.astype(np.float32) / 256.0,           # KITTI depth benchmark
    'tum5000': lambda v: v.astype(np.float32) / 5000.0,           # TUM RGB-D
    # SUN RGB-D stores mm rotated left by 3 bits.
    'sun_bitshift_mm': lambda v: (((v >> 3) | (v << 13)) & 0xFFFF).astype(np.float32) / 1000.0,
}
# --format name -> decode name
FORMATS = {'nyu': 'mm', 'kitti': 'kitti256', 'tum': 'tum5000', 'sun': 'sun_bitshift_mm', 'mm': 'mm'}
# How a prediction is compared: aligned in disparity (relative inverse depth), aligned in depth
# (relative depth), or as it is (metres).
DEPTH_TYPES = ('relative', 'relative_depth', 'metric')
EIGEN_CROP = (slice(45, 471), slice(41, 601))  # rows, cols of a 480x640 NYU frame
# KITTI crops as fractions of the frame (top, bottom, left, right), the usual constants.
KITTI_CROPS = {'kitti_garg': (0.40810811, 0.99189189, 0.03594771, 0.96405229),
               'kitti_eigen': (0.3324324, 0.91351351, 0.03594771, 0.96405229)}
CROPS = ('none', 'nyu_eigen') + tuple(KITTI_CROPS)
# The protocols published zero-shot results use: (max depth in metres, crop) per dataset.
PROTOCOLS = {'kitti': (80.0, 'kitti_garg'), 'nyu': (10.0, 'nyu_eigen')}
OTHER_PROTOCOL = (10.0, 'none')
INDEX_COLUMNS = ('dataset', 'rgb', 'depth', 'decode')


class EvaluationError(ValueError):
    """Unusable ground truth or settings; the message names the file or option."""


@dataclass(frozen=True)
class Sample:
    dataset: str
    rgb: str      # path as usable from the current directory
    depth: str
    decode: str


def load_depth(path: str, decode: str) -> np.ndarray:
    """A uint16 depth PNG -> HxW float32 metres, NaN where the value is 0 (no reading)."""
    import cv2
    if decode not in DECODERS:
        raise EvaluationError(f"unknown depth decoding '{decode}' (one of {sorted(DECODERS)})")
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise EvaluationError(f"cannot read depth image '{path}'")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        # An 8-bit or colour PNG is a visualisation, not depth: metres from it would be nonsense.
        raise EvaluationError(f"depth image '{path}' is {raw.ndim}-D {raw.dtype}, "
                              f'expected a single-channel uint16 PNG')
    metres = DECODERS[decode](raw)
    metres[raw == 0] = np.nan
    return metres


def read_index(path: str) -> list:
    """Samples of an index CSV (columns dataset,rgb,depth,decode,...; paths relative to its folder)."""
    try:
        with open(path, newline='') as f:
            rows = list(csv.DictReader(f))
            columns = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvaluationError(f"cannot read index '{path}': {exc}") from exc
    if not rows:
        raise EvaluationError(f"index '{path}' has no rows")
    missing = [c for c in INDEX_COLUMNS if c not in columns]
    if missing:
        raise EvaluationError(f"index '{path}' lacks columns {missing} (needs {list(INDEX_COLUMNS)})")
    root = os.path.dirname(os.path.abspath(path))
    samples = []
    for line, row in enumerate(rows, start=2):
        if row['decode'] not in DECODERS:
            raise EvaluationError(f"index '{path}' line {line}: decode '{row['decode']}' "
                                  f'is not one of {sorted(DECODERS)}')
        samples.append(Sample(row['dataset'], os.path.join(root, row['rgb']),
                              os.path.join(root, row['depth']), row['decode']))
    return samples


def protocol(dataset: str, decode: str) -> tuple:
    """(max depth m, crop) of a dataset: KITTI 80 m with the Garg crop, NYU 10 m with the
    Eigen crop (by the dataset's name, or KITTI's depth encoding), others 10 m uncropped."""
    name = dataset.lower()
    for key, value in PROTOCOLS.items():
        if key in name:
            return value
    return PROTOCOLS['kitti'] if decode == 'kitti256' else OTHER_PROTOCOL


def crop_region(shape: tuple, crop: str) -> tuple:
    """(rows, cols) slices of `crop` on a frame of `shape`."""
    h, w = shape[:2]
    if crop == 'none':
        return slice(0, h), slice(0, w)
    if crop == 'nyu_eigen':
        if (h, w) != (480, 640):
            raise EvaluationError(f'the NYU Eigen crop is defined for 480x640 frames, this ground truth '
                                  f'is {w}x{h} (--crop none, or another crop)')
        return EIGEN_CROP
    if crop in KITTI_CROPS:
        top, bottom, left, right = KITTI_CROPS[crop]
        return slice(int(top * h), int(bottom * h)), slice(int(left * w), int(right * w))
    raise EvaluationError(f"crop '{crop}' is not one of {CROPS}")


def valid_mask(gt: np.ndarray, min_depth: float, max_depth: float, crop: str = 'none'):
    """Pixels that count: a reading inside (min_depth, max_depth), inside `crop`."""
    with np.errstate(invalid='ignore'):
        mask = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    inside = np.zeros_like(mask)
    inside[crop_region(gt.shape, crop)] = True
    return mask & inside


def fit_scale_shift(pred: np.ndarray, target: np.ndarray) -> tuple:
    """(s, t) minimizing ||s * pred + t - target||^2 over the valid pixels (1-D arrays); EvaluationError
    for fewer than two, s = 0 where the prediction is flat."""
    if np.size(pred) < 2:
        raise EvaluationError(f'{np.size(pred)} valid pixels: too few to fit scale and shift')
    return line_fit.fit_scale_shift(pred, target)


def align_scale_shift(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, min_depth: float, max_depth: float,
                      inverse: bool) -> tuple:
    """Relative output -> metres: s, t fitted over `mask` to 1/gt (`inverse`: inverse depth, the
    MiDaS protocol) or to gt (depth), the line inverted where it is inverse depth, clipped to the
    range. Returns (depth float64 HxW, s, t)."""
    target = gt[mask].astype(np.float64)
    s, t = fit_scale_shift(pred[mask], 1.0 / target if inverse else target)
    return _clipped_metres(s * pred.astype(np.float64) + t, min_depth, max_depth, inverse), s, t


def _clipped_metres(line: np.ndarray, min_depth: float, max_depth: float, inverse: bool) -> np.ndarray:
    """A fitted line's metres within [min_depth, max_depth]. Inverse depth is clipped before it is
    inverted: a shift can push far pixels to <= 0, i.e. beyond max_depth."""
    with np.errstate(invalid='ignore'):
        if inverse:
            return 1.0 / np.clip(line, 1.0 / max_depth, 1.0 / min_depth)
        return np.clip(line, min_depth, max_depth)


def align_from_sparse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, fraction: float,
                      min_depth: float, max_depth: float, seed: int = 0, inverse: bool = True) -> tuple:
    """What a robot with a sparse depth sensor gets: scale and shift fitted (robustly, as the node's
    reference alignment does, refusals included, in inverse depth or depth as `inverse` says) to a
    random `fraction` of the valid ground truth, applied to every pixel. Returns (depth float64 HxW
    or None if the fit was refused, fit, samples used, why it was refused or '')."""
    from .metric_fit import Unaligned, fit_depth, relative_range
    pixels = np.flatnonzero(mask)
    count = min(pixels.size, max(2, int(round(fraction * pixels.size))))
    picked = np.random.default_rng(seed).choice(pixels, count, replace=False)
    try:
        fit = fit_depth(pred.flat[picked], gt.flat[picked], min_support=2, frame_range=relative_range(pred),
                        inverse=inverse)
    except Unaligned as exc:
        return None, None, count, f'{exc.reason}: {exc}'
    return _clipped_metres(fit.fitted(pred.astype(np.float64)), min_depth, max_depth, inverse), fit, count, ''


def evaluate(pred: np.ndarray, gt: np.ndarray, depth_type: str = 'relative',
             min_depth: float = 1e-3, max_depth: float = 10.0, crop: str = 'none',
             sparse_fraction: float | None = None) -> dict:
    """Metrics of one prediction (HxW, NaN where unseen) against ground truth in metres.

    `pred` is relative inverse depth (`relative`), relative depth (`relative_depth`: DA3) or
    metres (`metric`); it is resized to the ground truth's size if they differ. Non-finite
    pixels (DA3's sky, +Inf) do not count. Adds `valid_px` and, for relative models, the fitted
    `scale` and `shift`; with `sparse_fraction` also `sparse`: the metrics of alignment to that
    fraction of the ground truth.
    """
    import cv2
    if depth_type not in DEPTH_TYPES:
        raise EvaluationError(f"depth type '{depth_type}' is not one of {DEPTH_TYPES}")
    if not 0 < min_depth < max_depth:
        raise EvaluationError(f'need 0 < min depth < max depth, got {min_depth} and {max_depth}')
    pred = np.asarray(pred)
    if pred.shape != gt.shape:
        pred = cv2.resize(pred.astype(np.float32), (gt.shape[1], gt.shape[0]),
                          interpolation=cv2.INTER_LINEAR)
    mask = valid_mask(gt, min_depth, max_depth, crop) & np.isfinite(pred)
    extra = {'valid_px': int(mask.sum())}
    if depth_type != 'metric':
        if extra['valid_px'] < 2:  # nothing to fit: NaN metrics, like depth_metrics on no pixels
            return {**depth_metrics([], []), **extra, 'scale': float('nan'), 'shift': float('nan')}
        inverse = DEPTH_KINDS[depth_type].inverse
        depth, s, t = align_scale_shift(pred, gt, mask, min_depth, max_depth, inverse)
        extra.update(scale=s, shift=t)
        if sparse_fraction:
            sparse, fit, count, refused = align_from_sparse(pred, gt, mask, sparse_fraction, min_depth, max_depth,
                                                            inverse=inverse)
            metrics = depth_metrics(sparse[mask], gt[mask]) if sparse is not None else depth_metrics([], [])
            extra['sparse'] = {**metrics, 'samples': count, 'support': fit.support if fit else 0,
                               'scale': fit.scale if fit else float('nan'),
                               'shift': fit.shift if fit else float('nan'), 'refused': refused}
    else:
        depth = np.clip(pred.astype(np.float64), min_depth, max_depth)
    return {**depth_metrics(depth[mask], gt[mask]), **extra}
