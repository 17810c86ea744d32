"""The one least-squares line y = scale * x + shift. No ROS here.

Temporal smoothing (previous map onto the current one), evaluation (a relative model onto the
ground truth's inverse depth) and metric alignment (the inliers onto the references' inverse
depth) all fit it here; each keeps its own robustness around it (subsampling and a scene-cut
test, a valid-pixel mask, RANSAC and refusals).
"""
from __future__ import annotations

import numpy as np


def fit_scale_shift(x, y, flat_scale: float = 0.0) -> tuple:
    """(scale, shift) minimizing ||scale * x + shift - y||^2 over paired 1-D values (float64), by
    the centred closed form: stabler than the normal equations on raw values. Where x does not
    vary the scale is undetermined: `flat_scale`, the shift then through the means. Non-finite
    values give non-finite results (callers mask them out first, or test the result)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x_mean, y_mean = x.mean(), y.mean()
    dx = x - x_mean
    var = float(np.dot(dx, dx))
    scale = float(np.dot(dx, y - y_mean)) / var if var > 0.0 else float(flat_scale)
    return scale, float(y_mean - scale * x_mean)
