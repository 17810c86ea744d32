"""The robust line from relative depth to metres, and when to refuse it. No ROS here.

A relative model's output d is known up to a scale s and a shift t the model cannot know, in the
space its kind says (depth_type.DepthKind): DA-V2's is affine-invariant inverse depth, 1/Z = s * d + t;
DA3's is depth, Z = s * d + t. Pairs (d_i, Z_i) from a sparse metric source (core/reference_samples.py)
fix them: a robust line through (d_i, 1/Z_i), or (d_i, Z_i), and every pixel gets
Z = 1 / (s * d + t), or Z = s * d + t.

The fit is RANSAC on pairs (two points fix a line), then least squares on the inliers, so a
minority of wrong references (reflections, edges, moving objects) does not bend it. A line that
fits is not enough: two unknowns need readings at different depths. A flat wall, a constant or a
noise-only reference gives a line of scale ~0 through the readings' mean, which would publish the
whole frame at that one depth: "plausible but wrong". Such fits are refused (`Unaligned`), and so
are readings that cover too little of the frame's relative depth range to extrapolate from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .depth_metrics import correlation as pearson_r
from .line_fit import fit_scale_shift

# Depths a sensor can report: readings outside are no readings (NaN, inf, 0, negative,
# denormal floats, under a millimetre, beyond any LiDAR), and published metres outside are NaN.
MIN_METRES, MAX_METRES = 1e-3, 1000.0
MAX_SAMPLES = 4096    # pairs used per fit: more adds cost, not accuracy
TRIALS = 64           # RANSAC lines tried; with 30 % outliers all 64 miss with odds 1e-11
# A fit determines the scale only if, across the agreeing readings (5th to 95th percentile of
# their relative depth), the line changes its target (inverse depth, or depth) by at least MIN_CONTRAST of its median,
# the two correlate by at least MIN_CORRELATION, and those readings span MIN_COVERAGE of the
# frame's own relative depth range (the rest of the frame is extrapolated from them).
MIN_CONTRAST = 0.05
MIN_CORRELATION = 0.8
MIN_COVERAGE = 0.05


class Unaligned(Exception):
    """A frame that stays relative: `reason` is its counter ('no_reference', 'unusable_stamp',
    'no_camera_info', 'low_support', 'fit_refused'); the message says why, with numbers."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def sane_metres(z) -> np.ndarray:
    """Where `z` (metres) is a reading a depth sensor can give: MIN_METRES to MAX_METRES."""
    with np.errstate(invalid='ignore'):
        return (z >= MIN_METRES) & (z <= MAX_METRES)


@dataclass(frozen=True)
class DepthFit:
    """target = scale * model_output + shift, the target inverse depth 1/Z (`inverse`) or depth Z,
    from `support` inlier pairs whose depths the line reproduces with median relative error `residual`."""
    scale: float
    shift: float
    support: int
    residual: float
    inverse: bool = True

    def fitted(self, model_output: np.ndarray) -> np.ndarray:
        """The line at the model output: inverse depth (`inverse`) or depth, in metres' units."""
        return self.scale * model_output + self.shift

    def to_metres(self, model_output: np.ndarray, max_depth: float = 0.0, out=None) -> np.ndarray:
        """Depth in metres; NaN where the line is not positive (beyond infinity, or behind the
        camera), where the input is NaN, where the depth is not sane metres (extrapolated past what
        a sensor reports), or beyond `max_depth` (0: no limit)."""
        with np.errstate(all='ignore'):
            line = self.fitted(np.asarray(model_output, np.float32))
            if self.inverse:
                metres = np.divide(np.float32(1.0), line, out=out, dtype=np.float32)
            elif out is None:
                metres = line.astype(np.float32, copy=False)
            else:
                metres = out
                metres[...] = line
            metres[~(line > 0) | ~sane_metres(metres)] = np.nan
            if max_depth:
                metres[metres > max_depth] = np.nan
        return metres


def fit_depth(model_output: np.ndarray, reference_m: np.ndarray, min_support: int = 20,
              inlier_tolerance: float = 0.05, seed: int = 0, frame_range: tuple | None = None,
              inverse: bool = True) -> DepthFit:
    """Robust fit of 1/reference (`inverse`) or reference = s * model_output + t over paired
    samples (1-D, same length; readings that are not sane metres are skipped). Unaligned('low_support')
    if fewer than `min_support` pairs agree with the best line within `inlier_tolerance` (relative
    depth error), Unaligned('fit_refused') if they cannot fix the scale (see the module docstring);
    `frame_range`: the frame's relative depth at its 5th and 95th percentiles, for the coverage check."""
    rng = np.random.default_rng(seed)
    with np.errstate(all='ignore'):   # extreme model outputs overflow to inf: never inliers, never a warning
        d, target = _usable_pairs(model_output, reference_m, rng, inverse)
        return _fit_pairs(d, target, min_support, inlier_tolerance, rng, frame_range, inverse)


def relative_range(model_output: np.ndarray, samples: int = 16384) -> tuple | None:
    """The 5th and 95th percentiles of a frame's finite relative depth, from about `samples`
    pixels on a grid (cheap at any size); None if none is finite."""
    h, w = model_output.shape
    step = max(1, int((h * w / samples) ** 0.5))
    values = model_output[::step, ::step]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lo, hi = np.percentile(values, (5, 95))
    return float(lo), float(hi)


def _usable_pairs(model_output, reference_m, rng, inverse: bool = True) -> tuple:
    """(model output, 1 / reference or reference) as float64 over the valid pairs, at most
    MAX_SAMPLES of them."""
    d = np.asarray(model_output, np.float64).ravel()
    z = np.asarray(reference_m, np.float64).ravel()
    valid = np.isfinite(d) & sane_metres(z)
    d, target = d[valid], (1.0 / z[valid] if inverse else z[valid])
    if d.size > MAX_SAMPLES:
        keep = rng.choice(d.size, MAX_SAMPLES, replace=False)
        d, target = d[keep], target[keep]
    return d, target


def _fit_pairs(d, target, min_support, inlier_tolerance, rng, frame_range=None, inverse=True) -> DepthFit:
    if d.size < max(min_support, 2):
        raise Unaligned('low_support', f'{d.size} reference readings fall on the frame, fewer than '
                                       f'alignment_min_support ({min_support})')
    inliers = _ransac_inliers(d, target, inlier_tolerance, rng)
    for _ in range(2):  # refit on the inliers, then let the refined line re-pick them
        _require_support(inliers, min_support)
        scale, shift = _least_squares(d[inliers], target[inliers])
        inliers = _relative_error(scale, shift, d, target) < inlier_tolerance
    _require_support(inliers, min_support)
    _check_determined(scale, d[inliers], target[inliers], frame_range, inverse)
    residual = float(np.median(_relative_error(scale, shift, d[inliers], target[inliers])))
    return DepthFit(float(scale), float(shift), int(inliers.sum()), residual, inverse)


def _require_support(inliers: np.ndarray, min_support: int) -> None:
    agreeing = int(inliers.sum())
    if agreeing < max(min_support, 2):
        raise Unaligned('low_support', f'{agreeing} of {inliers.size} reference readings agree on one line, '
                                       f'fewer than alignment_min_support ({min_support})')


def _check_determined(scale, d, target, frame_range, inverse=True) -> None:
    """Unaligned('fit_refused') unless the agreeing readings fix the scale (module docstring)."""
    lo, hi = np.percentile(d, (5, 95))
    contrast = scale * (hi - lo) / np.median(target)
    space = 'inverse depth' if inverse else 'depth'
    if not contrast >= MIN_CONTRAST:   # NaN, zero and negative scales included
        raise Unaligned('fit_refused', f'the reference cannot fix the scale: across its {d.size} agreeing readings '
                                       f'the fitted {space} changes by {contrast:.2%} with the relative '
                                       f'depth (under {MIN_CONTRAST:.0%}: a flat, constant or noise-only reference)')
    correlation = pearson_r(d, target)   # NaN (refused) if either is constant
    if not correlation >= MIN_CORRELATION:
        raise Unaligned('fit_refused', f'the reference cannot fix the scale: its {d.size} agreeing readings correlate '
                                       f'with the relative depth by {correlation:.2f} (under {MIN_CORRELATION})')
    if frame_range is not None and frame_range[1] > frame_range[0]:
        coverage = (hi - lo) / (frame_range[1] - frame_range[0])
        if coverage < MIN_COVERAGE:
            raise Unaligned('fit_refused', f'the reference covers {coverage:.1%} of the frame\'s relative depth range '
                                           f'(under {MIN_COVERAGE:.0%}): the rest would be extrapolated from it')


def _relative_error(scale, shift, d, target):
    """The line's relative depth error, divided by the reference's own value (never by a fitted
    value near 0): |Z_fit - Z| / Z_fit written in inverse depth, |Z_fit - Z| / Z in depth."""
    return np.abs(scale * d + shift - target) / target


def _ransac_inliers(d, target, tolerance, rng) -> np.ndarray:
    i, j = rng.integers(0, d.size, (2, TRIALS))
    spread = d[i] - d[j]
    usable = np.abs(spread) > 1e-12
    if not usable.any():
        return np.ones(d.size, bool)
    i, j, spread = i[usable], j[usable], spread[usable]
    scale = (target[i] - target[j]) / spread
    shift = target[i] - scale * d[i]
    errors = np.abs(scale[:, None] * d[None] + shift[:, None] - target[None]) / target[None]
    votes = (errors < tolerance).sum(axis=1) * (scale > 0)  # the target grows with the model output
    return errors[int(np.argmax(votes))] < tolerance


def _least_squares(d, target) -> tuple:
    scale, shift = fit_scale_shift(d, target)
    if not (np.isfinite(scale) and np.isfinite(shift)):   # values at the edge of float64: no line, no crash
        raise Unaligned('fit_refused', f'no line through the reference readings (scale {scale}, shift {shift})')
    return scale, shift


class ScaleTracker:
    """Per-frame fits smoothed over time: `smoothing` is the weight of the past (0: each frame on
    its own). A frame whose references disagree with the running line by more than `scene_cut`
    (median relative depth error) restarts it: the camera moved to another scene or the model
    changed its own scale. `inverse`: fit inverse depth (DA-V2) or depth (DA3)."""

    def __init__(self, min_support: int = 20, smoothing: float = 0.0, scene_cut: float = 0.25,
                 inlier_tolerance: float = 0.05, inverse: bool = True):
        self.min_support = min_support
        self.smoothing = smoothing
        self.scene_cut = scene_cut
        self.inlier_tolerance = inlier_tolerance
        self.inverse = inverse
        self.current: DepthFit | None = None
        self.resets = 0

    def update(self, model_output: np.ndarray, reference_m: np.ndarray,
               frame_range: tuple | None = None) -> DepthFit:
        """The fit for this frame; Unaligned (the running line is kept) as fit_depth."""
        rng = np.random.default_rng(0)
        with np.errstate(all='ignore'):
            d, target = _usable_pairs(model_output, reference_m, rng, self.inverse)
            fit = _fit_pairs(d, target, self.min_support, self.inlier_tolerance, rng, frame_range, self.inverse)
            past = self.current
            if past is None or self._is_cut(past, d, target):
                self.resets += 1
            elif self.smoothing:
                w = self.smoothing
                fit = DepthFit((1 - w) * fit.scale + w * past.scale, (1 - w) * fit.shift + w * past.shift,
                               fit.support, fit.residual, self.inverse)
        self.current = fit
        return fit

    def _is_cut(self, past: DepthFit, d, target) -> bool:
        """The running line misses this frame's (valid, non-empty) pairs by more than scene_cut."""
        return float(np.median(_relative_error(past.scale, past.shift, d, target))) > self.scene_cut
