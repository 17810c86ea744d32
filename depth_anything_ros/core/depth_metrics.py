"""Depth-map metrics: the agreement of two maps of the same image (e.g. float model vs BPU model:
`compare`, `board-check`), and the accuracy of a prediction against ground truth (`eval`).

All metrics use only pixels finite in both maps (NaN marks pixels a model
never saw) and return NaN when nothing is left to compare. The agreement ones
compare raw values: two relative-depth models agree only up to scale and shift,
so they are meant for the same network run two ways, not for unrelated models.
"""
from __future__ import annotations

import numpy as np


def _valid_pair(a, b) -> tuple:
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f'depth maps differ in size: {a.size} vs {b.size} values')
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def cosine_similarity(a, b) -> float:
    """a.b / (|a| |b|) of the flattened maps; NaN if either is all zero."""
    a, b = _valid_pair(a, b)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / norm) if norm > 0 else float('nan')


def relative_l1(a, b) -> float:
    """mean|a - b| / mean|b|, with `b` the reference."""
    a, b = _valid_pair(a, b)
    denom = np.abs(b).mean() if b.size else 0.0
    return float(np.abs(a - b).mean() / denom) if denom > 0 else float('nan')


def abs_rel(a, b) -> float:
    """mean(|a - b| / b) over reference pixels b > 0 (the usual AbsRel, `b` as ground truth)."""
    a, b = _valid_pair(a, b)
    pos = b > 0
    return float(np.mean(np.abs(a[pos] - b[pos]) / b[pos])) if pos.any() else float('nan')


def correlation(a, b) -> float:
    """Pearson's r of the flattened maps: 1 when they agree up to scale and shift (all a
    relative depth model promises); NaN if either is constant."""
    a, b = _valid_pair(a, b)
    a, b = a - a.mean() if a.size else a, b - b.mean() if b.size else b
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / norm) if norm > 0 else float('nan')


def compare_depth(a, b) -> dict:
    return {'cosine': cosine_similarity(a, b), 'rel_l1': relative_l1(a, b), 'abs_rel': abs_rel(a, b),
            'correlation': correlation(a, b)}


# -- monocular depth benchmark metrics (Eigen et al. 2014), prediction vs ground truth in metres --

DEPTH_METRICS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'delta1', 'delta2', 'delta3')


def depth_metrics(pred, gt) -> dict:
    """The standard set over pixels where both are finite and > 0 (logs need both positive).

    Inputs are depths, not disparities; callers clip predictions to the
    benchmark's depth range first, so in practice no predicted pixel is dropped.
    Every value is NaN when no pixel is left.
    """
    pred, gt = _valid_pair(pred, gt)
    keep = (pred > 0) & (gt > 0)
    pred, gt = pred[keep], gt[keep]
    if not gt.size:
        return {k: float('nan') for k in DEPTH_METRICS}
    err = pred - gt
    log_err = np.log(pred) - np.log(gt)
    ratio = np.maximum(pred / gt, gt / pred)
    return {
        'abs_rel': abs_rel(pred, gt),
        'sq_rel': float(np.mean(err ** 2 / gt)),
        'rmse': float(np.sqrt(np.mean(err ** 2))),
        'rmse_log': float(np.sqrt(np.mean(log_err ** 2))),
        'log10': float(np.mean(np.abs(log_err)) / np.log(10)),
        'delta1': float(np.mean(ratio < 1.25)),
        'delta2': float(np.mean(ratio < 1.25 ** 2)),
        'delta3': float(np.mean(ratio < 1.25 ** 3)),
    }
