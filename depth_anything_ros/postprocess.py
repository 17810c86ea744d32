"""Model output -> depth aligned with the input image, and its colorized view."""
from __future__ import annotations

import cv2
import numpy as np

from .preprocess import Placement

COLORMAPS = {
    'inferno': cv2.COLORMAP_INFERNO, 'turbo': cv2.COLORMAP_TURBO,
    'viridis': cv2.COLORMAP_VIRIDIS, 'magma': cv2.COLORMAP_MAGMA,
    'jet': cv2.COLORMAP_JET, 'gray': None,
}
RANGE_MODES = ('minmax', 'percentile')


def model_depth_2d(output: np.ndarray) -> np.ndarray:
    """Squeeze a (1,H,W), (1,1,H,W) or (H,W) output to HxW float32."""
    depth = np.squeeze(np.asarray(output))
    if depth.ndim != 2:
        raise ValueError(f'model output of shape {output.shape} is not a single depth map')
    return depth.astype(np.float32, copy=False)


def restore_depth(depth: np.ndarray, placement: Placement) -> np.ndarray:
    """Depth at every input-image pixel; NaN where the model never saw the image.

    Inverts `Placement` with bilinear sampling whose first and last samples fall
    on the source rectangle's corner pixels, like the official
    ``interpolate(..., align_corners=True)``.
    """
    src, dst = placement.source, placement.target
    content = depth[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width]
    sx = (dst.width - 1) / max(src.width - 1, 1)
    sy = (dst.height - 1) / max(src.height - 1, 1)
    # Maps output pixel (x, y) to content pixel (sx*(x - src.x), sy*(y - src.y)).
    matrix = np.array([[sx, 0, -sx * src.x], [0, sy, -sy * src.y]], np.float64)
    h, w = placement.image_hw
    out = cv2.warpAffine(content, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    if (src.width, src.height) != (w, h):
        outside = np.ones((h, w), bool)
        outside[src.y:src.y + src.height, src.x:src.x + src.width] = False
        out[outside] = np.nan
    return out


class Colorizer:
    """Depth -> bgr8 with a colormap over a per-frame min-max or percentile range.

    The range is taken on the small model-resolution depth (a percentile of a
    1080p map alone costs tens of ms); the mapping then runs on the full image.
    NaN (no estimate) is drawn black.
    """

    def __init__(self, colormap: str = 'inferno', range_mode: str = 'percentile',
                 percentiles: tuple = (2.0, 98.0)):
        if colormap not in COLORMAPS:
            raise ValueError(f"colormap '{colormap}' is not one of {sorted(COLORMAPS)}")
        if range_mode not in RANGE_MODES:
            raise ValueError(f"range mode '{range_mode}' is not one of {RANGE_MODES}")
        self.colormap = colormap
        self.range_mode = range_mode
        self.percentiles = percentiles

    def value_range(self, depth: np.ndarray) -> tuple:
        valid = depth[np.isfinite(depth)]
        if valid.size == 0:
            return 0.0, 1.0
        if self.range_mode == 'minmax':
            return float(valid.min()), float(valid.max())
        lo, hi = np.percentile(valid, self.percentiles)
        return float(lo), float(hi)

    def __call__(self, depth: np.ndarray, range_from: np.ndarray | None = None) -> np.ndarray:
        """Colorize `depth`; the range comes from `range_from` (default: depth)."""
        lo, hi = self.value_range(depth if range_from is None else range_from)
        gray = np.subtract(depth, np.float32(lo), dtype=np.float32)
        gray *= np.float32(255.0 / max(hi - lo, 1e-12))
        with np.errstate(invalid='ignore'):
            np.clip(gray, 0, 255, out=gray)
            gray8 = gray.astype(np.uint8)
        cmap = COLORMAPS[self.colormap]
        bgr = cv2.cvtColor(gray8, cv2.COLOR_GRAY2BGR) if cmap is None else cv2.applyColorMap(gray8, cmap)
        bgr[np.isnan(depth)] = 0
        return bgr
