"""Model output -> depth aligned with the input image, and its colorized view."""
from __future__ import annotations

import functools
import math
import threading

import cv2
import numpy as np

from . import kernels
from .placement import Placement

COLORMAPS = {
    'inferno': cv2.COLORMAP_INFERNO, 'turbo': cv2.COLORMAP_TURBO,
    'viridis': cv2.COLORMAP_VIRIDIS, 'magma': cv2.COLORMAP_MAGMA,
    'jet': cv2.COLORMAP_JET, 'gray': None,
}
RANGE_MODES = ('minmax', 'percentile', 'fixed', 'smoothed')


def model_depth_2d(output: np.ndarray) -> np.ndarray:
    """Squeeze a (1,H,W), (1,1,H,W) or (H,W) output to HxW float32."""
    depth = np.squeeze(np.asarray(output))
    if depth.ndim != 2:
        raise ValueError(f'model output of shape {output.shape} is not a single depth map')
    return depth.astype(np.float32, copy=False)


def restore_depth(depth: np.ndarray, placement: Placement, out: np.ndarray | None = None,
                  upsampling: str = 'align_corners') -> np.ndarray:
    """Depth at every input-image pixel (bilinear); NaN where the model never saw the image.
    `out`: an image-sized float32 array to write into (a message buffer)."""
    return to_image(depth, placement, np.nan, out, upsampling)


def to_image(model_image: np.ndarray, placement: Placement, fill, out: np.ndarray | None = None,
             upsampling: str = 'pixel_centres') -> np.ndarray:
    """Map a model-resolution array back onto the input image, `fill` outside the source.

    `align_corners` is the official upsampling (F.interpolate(..., align_corners=True):
    the corner pixels of the model's content land on the corner pixels of the image);
    `pixel_centres` is OpenCV's resize, the exact inverse of the forward resize, up to
    half a model pixel apart from the official one at the borders, in one OpenCV pass.
    """
    src, dst = placement.source, placement.target
    content = model_image[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width]
    h, w = placement.image_hw
    resize = _resize_align_corners if upsampling == 'align_corners' else _resize_pixel_centres
    if (src.width, src.height) == (w, h):
        return resize(content, out if out is not None else np.empty((h, w), model_image.dtype))
    if out is None:
        out = np.empty((h, w), model_image.dtype)
    out[...] = fill
    resize(content, out[src.y:src.y + src.height, src.x:src.x + src.width])
    return out


def _resize_pixel_centres(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out.flags.c_contiguous:
        return cv2.resize(image, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_LINEAR)
    out[...] = cv2.resize(image, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_LINEAR)
    return out


def _resize_align_corners(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Bilinear, align_corners=True, into `out`: PyTorch's grid and formula in one compiled pass
    (kernels.align_corners). (OpenCV's warpAffine expresses the same map and is exact on float32 in
    OpenCV 5, but older versions, as the board's 4.5.4, round sample positions to 1/32 pixel.)"""
    return kernels.align_corners(image.astype(np.float32, copy=False), out)


class Colorizer:
    """Depth -> bgr8 with a colormap over a value range chosen by `range_mode`:

    - 'minmax', 'percentile': per frame (min-max, or `percentiles` of the valid pixels);
    - 'fixed': always `fixed_range` (lo, hi), for depth in known units;
    - 'smoothed': the percentile range through an exponential moving average
      (new = smoothing * old + (1 - smoothing) * this frame's; the first frame
      initializes it), so colours do not flicker when the per-frame range jumps.
      `reset()` forgets it. One colorizer draws a processor's frames one at a time
      (FrameProcessor.finish); its lock keeps that state whole all the same.

    Takes the range at model resolution (a percentile of a 1080p map alone costs
    more than the whole colorizing does this way) and draws the image in one
    compiled pass (kernels.colormap_linear): colour levels at model resolution,
    resized bilinearly (OpenCV's pixel centres: it is for the eye), rounded, then
    the colormap, so every colour is on the map. Pixels the model
    never saw (crop mode) and NaN are black; values outside the range clip to
    the colormap's ends.
    """

    def __init__(self, colormap: str = 'inferno', range_mode: str = 'percentile',
                 percentiles: tuple = (2.0, 98.0), fixed_range: tuple = (0.0, 1.0),
                 smoothing: float = 0.9):
        if colormap not in COLORMAPS:
            raise ValueError(f"colormap '{colormap}' is not one of {sorted(COLORMAPS)}")
        if range_mode not in RANGE_MODES:
            raise ValueError(f"range mode '{range_mode}' is not one of {RANGE_MODES}")
        plo, phi = (float(v) for v in percentiles)
        if not 0.0 <= plo < phi <= 100.0:
            raise ValueError(f'percentiles {tuple(percentiles)} must satisfy 0 <= low < high <= 100')
        lo, hi = (float(v) for v in fixed_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f'fixed_range {tuple(fixed_range)} must be finite with min < max')
        smoothing = float(smoothing)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f'smoothing {smoothing} must be in [0, 1)')
        self.colormap = colormap
        self.range_mode = range_mode
        self.percentiles = (plo, phi)
        self.fixed_range = (lo, hi)
        self.smoothing = smoothing
        self._lock = threading.Lock()
        self._smoothed = None      # (lo, hi) EMA state of the 'smoothed' mode

    def frame_range(self, depth: np.ndarray) -> tuple:
        """This frame's own (lo, hi): min-max for 'minmax', percentiles otherwise. No state."""
        found = self._sample_range(depth)
        return (0.0, 1.0) if found is None else found

    def _sample_range(self, depth: np.ndarray):
        # At most ~20k evenly spread pixels give the same range to within a colour level.
        stride = max(1, math.ceil((depth.size / 20000) ** 0.5))
        sample = depth[::stride, ::stride]
        valid = sample[np.isfinite(sample)]  # a copy: _percentiles may sort it
        if valid.size == 0:
            return None
        if self.range_mode == 'minmax':
            return float(valid.min()), float(valid.max())
        lo, hi = _percentiles(valid, self.percentiles)
        return float(lo), float(hi)

    def value_range(self, depth: np.ndarray) -> tuple:
        """The (lo, hi) that maps to the colormap's ends; advances the EMA in 'smoothed' mode."""
        if self.range_mode == 'fixed':
            return self.fixed_range
        if self.range_mode != 'smoothed':
            return self.frame_range(depth)
        found = self._sample_range(depth)
        k = self.smoothing
        with self._lock:
            if found is None:
                # Nothing to learn from this frame: keep the state, draw with it.
                return self._smoothed if self._smoothed is not None else (0.0, 1.0)
            lo, hi = found
            if self._smoothed is not None:
                old_lo, old_hi = self._smoothed
                lo, hi = k * old_lo + (1.0 - k) * lo, k * old_hi + (1.0 - k) * hi
            self._smoothed = (lo, hi)
        return lo, hi

    def reset(self):
        """Forget the smoothed range (the next frame initializes it again)."""
        with self._lock:
            self._smoothed = None

    def __call__(self, model_depth: np.ndarray, placement: Placement | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
        """Colorize `model_depth`, mapped onto the input image when `placement` is given."""
        # The range from the pixels that show the image: letterbox padding is not depth.
        dst = None if placement is None else placement.target
        lo, hi = self.value_range(model_depth if dst is None else
                                  model_depth[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width])
        scale = 255.0 / max(hi - lo, 1e-12)  # levels: below the range 0, above it (+inf too) 255, NaN 0
        values, lut = model_depth.astype(np.float32, copy=False), _colormap_lut(self.colormap)
        h, w = values.shape if placement is None else placement.image_hw
        bgr = out if out is not None else np.empty((h, w, 3), np.uint8)
        if placement is None:
            nonfinite = kernels.colormap_linear(values, bgr, lut, lo, scale)
        else:
            src = placement.source
            nonfinite = kernels.colormap_linear(values[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width],
                                                bgr[src.y:src.y + src.height, src.x:src.x + src.width], lut, lo,
                                                scale)
            _blacken_outside(bgr, placement)
        if nonfinite:  # rare: engines' NaN output is rejected upstream
            black = ~np.isfinite(model_depth)
            bgr[black if placement is None else to_image(black.view(np.uint8), placement, 0).astype(bool)] = 0
        return bgr


def _percentiles(values: np.ndarray, percentiles: tuple) -> np.ndarray:
    """np.percentile's default (linear) method from one partial sort of `values`, in place: a sixth
    of its time on the colorizer's 20k samples, where its own bookkeeping dominates. The sort in the
    values' own type, the interpolation in float64 (in float32, values near +-3e38 would overflow to inf)."""
    at = np.asarray(percentiles, np.float64) / 100 * (values.size - 1)
    below = np.floor(at).astype(np.intp)
    above = np.minimum(below + 1, values.size - 1)
    values.partition(sorted({*below.tolist(), *above.tolist()}))
    low, high = values[below].astype(np.float64), values[above].astype(np.float64)
    return low + (at - below) * (high - low)


@functools.lru_cache(maxsize=None)
def _colormap_lut(colormap: str) -> bytes:
    """The colormap as 256 x (B, G, R) bytes: OpenCV's (applyColorMap), or the grey ramp."""
    levels = np.arange(256, dtype=np.uint8)[:, None]
    cmap = COLORMAPS[colormap]
    bgr = cv2.cvtColor(levels, cv2.COLOR_GRAY2BGR) if cmap is None else cv2.applyColorMap(levels, cmap)
    return bgr.tobytes()


def _blacken_outside(image: np.ndarray, placement: Placement) -> None:
    """Black where the model never saw the image (crop mode): four bands, no per-pixel mask."""
    src = placement.source
    image[:src.y] = 0
    image[src.y + src.height:] = 0
    image[:, :src.x] = 0
    image[:, src.x + src.width:] = 0
