"""Temporal smoothing of relative depth across frames. No ROS here.

Relative (affine-invariant) depth comes with its own scale and shift in every
frame, so a plain running average of consecutive maps would blend values in
different units. `DepthSmoother` first fits the previous smoothed map to the
current frame (least-squares scale and shift, on a subsample), then blends:

    out = alpha * (a * previous + b) + (1 - alpha) * current

The output is in the current frame's units. It starts over (returns the
current frame unchanged) on the first frame, when the shape changes and on a
scene cut: when even the fitted previous map is far from the current one, or
when the fit needs a non-positive scale (depth order reversed: not the same
scene). "Far": the mean absolute difference between the fitted previous map
and the current one exceeds `scene_cut` x the current map's own mean absolute
deviation (the error of fitting it with a constant), i.e. the past explains
less than about half of the frame at the default 0.5.

Why not divide by the 2-98 % range instead: a least-squares fit never does
worse than a constant, so that ratio stays below ~0.35 even for unrelated
images (measured 0.17-0.34 over 56 pairs of natural images) and a threshold of
0.5 never fires. The ratio used here measured 0.61-1.0 for unrelated pairs and
at most 0.28 for consecutive frames of a fast-moving video (DAVIS
rollercoaster, 70 frames).
"""
from __future__ import annotations

import threading

import numpy as np

from .line_fit import fit_scale_shift

# Pixels used to fit scale/shift and to detect cuts: ~10k evenly spread ones
# determine two parameters and a mean to well under a percent.
_SAMPLE = 10000


class DepthSmoother:
    """Exponential moving average of model-resolution depth maps, affine-aligned per frame.

    Call it once per frame in the order the frames are finished (FrameProcessor.finish: arrival
    order; a stamp that goes back resets it there); it is thread-safe (one lock), but frames
    given out of order would be blended out of order.
    """

    def __init__(self, alpha: float = 0.5, scene_cut: float = 0.5):
        alpha, scene_cut = float(alpha), float(scene_cut)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f'alpha {alpha} must be in [0, 1) (the weight of the past)')
        if not scene_cut > 0.0:
            raise ValueError(f'scene_cut {scene_cut} must be > 0')
        self.alpha = alpha
        self.scene_cut = scene_cut
        self._lock = threading.Lock()
        self._previous = None
        self.resets = 0          # frames returned unchanged because history was dropped

    def reset(self):
        """Forget the history: the next frame is returned unchanged."""
        with self._lock:
            self._previous = None

    def __call__(self, model_depth: np.ndarray, placement=None) -> np.ndarray:
        """The smoothed map (HxW float32, the current frame's scale and shift).

        With a `Placement`, the fit and the cut test use only its target rectangle (the
        pixels that show the image: letterbox padding is not depth); all is blended.
        """
        current = np.asarray(model_depth, dtype=np.float32)
        if current.ndim != 2:
            raise ValueError(f'depth of shape {current.shape} is not a 2-D map')
        if self.alpha == 0.0:
            return current
        with self._lock:
            previous = self._previous
            if previous is None or previous.shape != current.shape:
                return self._restart(current)
            fit = _fit(previous, current, self.scene_cut,
                       None if placement is None else placement.target)
            if fit is None:
                return self._restart(current)
            a, b = fit
            # alpha * (a * prev + b) + (1 - alpha) * cur, in float32; overflow is fixed below
            with np.errstate(all='ignore'):
                out = current * np.float32(1.0 - self.alpha)
                out += previous * np.float32(self.alpha * a)
                out += np.float32(self.alpha * b)
            # A pixel the past knows nothing about (non-finite there) takes the current value.
            bad = ~np.isfinite(out)
            if bad.any():
                out[bad] = current[bad]
            self._previous = out.copy()    # the caller owns what it gets
            return out

    def _restart(self, current: np.ndarray) -> np.ndarray:
        self.resets += 1
        self._previous = current.copy()    # the caller may reuse its buffer
        return current


def _fit(previous: np.ndarray, current: np.ndarray, scene_cut: float, rect=None):
    """(a, b) with a * previous + b ~ current (inside `rect`), or None on a scene cut."""
    if rect is not None:
        rows, cols = slice(rect.y, rect.y + rect.height), slice(rect.x, rect.x + rect.width)
        previous, current = previous[rows, cols], current[rows, cols]
    stride = max(1, int((current.size / _SAMPLE) ** 0.5))
    p = previous[::stride, ::stride].astype(np.float64).ravel()
    c = current[::stride, ::stride].astype(np.float64).ravel()
    valid = np.isfinite(p) & np.isfinite(c)
    if valid.sum() < 2:
        return None
    p, c = p[valid], c[valid]
    with np.errstate(all='ignore'):     # extreme fuzzed values: a NaN verdict counts as a cut
        return _fit_sample(p, c, scene_cut)


def _fit_sample(p: np.ndarray, c: np.ndarray, scene_cut: float):
    a, b = fit_scale_shift(p, c, flat_scale=1.0)   # a flat past: only the shift can be fitted
    if not a > 0.0:               # reversed (or no) depth order: another scene
        return None
    error = float(np.mean(np.abs(a * p + b - c)))
    spread = float(np.mean(np.abs(c - c.mean())))  # the error of the best constant
    if not error <= scene_cut * spread:            # NaN-safe: NaN counts as a cut
        return None
    return a, b
