"""Model output -> depth aligned with the input image, and its colorized view."""
from __future__ import annotations

import functools
import math
import threading

import cv2
import numpy as np

from .preprocess import Placement

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


@functools.lru_cache(maxsize=32)
def _linear_taps(n_in: int, n_out: int) -> tuple:
    """align_corners=True: output i samples input i * (n_in - 1) / (n_out - 1); (left index,
    right weight) per output sample, in float32 as PyTorch computes them. Cached by size:
    a camera asks for the same two tables every frame."""
    scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
    x = np.arange(n_out, dtype=np.float32) * scale
    left = np.minimum(x.astype(np.intp), n_in - 1)
    weight = x - left.astype(np.float32)
    left.flags.writeable = weight.flags.writeable = False
    return left, weight


def _resize_align_corners(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Bilinear, align_corners=True, into `out`: separable (along rows at the model's height,
    then down the columns), equal to PyTorch's up to float rounding. (OpenCV's warpAffine
    expresses the same map and is exact on float32 in OpenCV 5, but older versions, as the
    board's 4.5.4, round sample positions to 1/32 pixel, and it costs more than this.)"""
    if image.dtype != np.float32:
        image = image.astype(np.float32)
    if _optimized_blas():
        return _banded_products(image, out)
    return _gathers(image, out)


def _banded_products(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Each pass as a product with its two-taps-per-row weight matrix, cut into the small
    dense blocks along its diagonal: one write of every output sample, in the BLAS's own loops.
    A non-finite sample (the engines' output never has one: checked_depth) makes its whole
    block NaN (0 x inf), not only its two neighbours."""
    rows = np.empty((image.shape[0], out.shape[1]), np.float32)
    with np.errstate(invalid='ignore', over='ignore'):
        for cols, taps, weights in _weight_blocks(image.shape[1], out.shape[1], image.shape[0]):
            np.matmul(image[:, taps], weights.T, out=rows[:, cols])
        for block, taps, weights in _weight_blocks(image.shape[0], out.shape[0], out.shape[1]):
            np.matmul(weights, rows[taps], out=out[block])
    return out


# The most multiply-adds in one block product: small enough that OpenBLAS keeps it on the
# calling thread (it spreads products over 262144 onto threads that spin; CPU time, not speed).
_BLOCK_MACS = 1 << 17


@functools.lru_cache(maxsize=32)
def _weight_blocks(n_in: int, n_out: int, length: int) -> tuple:
    """(output slice, input slice, weights outputs x inputs) along the diagonal of the
    align_corners interpolation matrix, for a pass over lines of `length` samples."""
    left, weight = _linear_taps(n_in, n_out)
    right = np.minimum(left + 1, n_in - 1)
    # s outputs read at most (s - 1) span + 3 inputs: the largest s with s ((s - 1) span + 3) length
    # <= _BLOCK_MACS, i.e. span s^2 + (3 - span) s - _BLOCK_MACS / length <= 0
    span = max((n_in - 1) / max(n_out - 1, 1), 1e-3)  # input samples per output sample
    size = max(1, int((span - 3 + math.sqrt((3 - span) ** 2 + 4 * span * _BLOCK_MACS / length)) / (2 * span)))
    blocks = []
    for start in range(0, n_out, size):
        stop = min(start + size, n_out)
        lo, hi = int(left[start]), int(right[stop - 1]) + 1
        weights = np.zeros((stop - start, hi - lo), np.float32)
        at = np.arange(stop - start)
        np.add.at(weights, (at, left[start:stop] - lo), np.float32(1) - weight[start:stop])
        np.add.at(weights, (at, right[start:stop] - lo), weight[start:stop])
        weights.flags.writeable = False
        blocks.append((slice(start, stop), slice(lo, hi), weights))
    return tuple(blocks)


def _gathers(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The same map with numpy gathers: left sample + weight * (right - left), along rows at
    the model's height, then for blocks of output rows (their temporaries stay in cache)."""
    x0, xf = _linear_taps(image.shape[1], out.shape[1])
    y0, yf = _linear_taps(image.shape[0], out.shape[0])
    rows = np.take(image, x0, axis=1)            # model rows at the image's width
    step = np.take(_steps(image, axis=1), x0, axis=1)
    step *= xf
    rows += step
    down = _steps(rows, axis=0)                  # row i + 1 - row i
    for start in range(0, out.shape[0], _GATHER_ROWS):
        block = slice(start, start + _GATHER_ROWS)
        np.take(rows, y0[block], axis=0, out=out[block], mode='clip')
        lerp = np.take(down, y0[block], axis=0, mode='clip')
        lerp *= yf[block, None]
        out[block] += lerp
    return out


_GATHER_ROWS = 64


def _steps(image: np.ndarray, axis: int) -> np.ndarray:
    """The difference to the next sample along `axis`, 0 after the last (weight 0 there)."""
    return np.diff(image, axis=axis, append=np.take(image, [-1], axis=axis))


@functools.lru_cache(maxsize=None)
def _optimized_blas() -> bool:
    """Whether numpy was built on an optimized BLAS (OpenBLAS, MKL, BLIS, Accelerate): pip's
    wheels bundle OpenBLAS. apt's python3-numpy links the system's libblas.so.3, possibly the
    unoptimized reference one, where the banded products would cost several times the gathers."""
    config = getattr(np.__config__, 'CONFIG', None)  # numpy >= 1.26
    if config is not None:
        name = str(config.get('Build Dependencies', {}).get('blas', {}).get('name', ''))
    else:  # numpy 1.21 (the board's)
        name = ' '.join(getattr(np.__config__, 'blas_opt_info', {}).get('libraries', []))
    return any(blas in name.lower() for blas in ('openblas', 'mkl', 'blis', 'accelerate'))


class Colorizer:
    """Depth -> bgr8 with a colormap over a value range chosen by `range_mode`:

    - 'minmax', 'percentile': per frame (min-max, or `percentiles` of the valid pixels);
    - 'fixed': always `fixed_range` (lo, hi), for depth in known units;
    - 'smoothed': the percentile range through an exponential moving average
      (new = smoothing * old + (1 - smoothing) * this frame's; the first frame
      initializes it), so colours do not flicker when the per-frame range jumps.
      `reset()` forgets it. Thread-safe: the worker threads share one colorizer.

    Works at model resolution and upsamples the 8-bit picture: a percentile of
    a 1080p map alone costs more than the whole colorizing does this way. The
    colormap is applied last, so every colour is on the map. Pixels the model
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
        # ~20k evenly spread pixels give the same range to within a colour level.
        stride = max(1, int((depth.size / 20000) ** 0.5))
        sample = depth[::stride, ::stride]
        # float64: float32 percentiles of values near +-3e38 overflow to inf/NaN.
        valid = sample[np.isfinite(sample)].astype(np.float64)
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
        scale = 255.0 / max(hi - lo, 1e-12)
        # Cap at hi first: on x86 a float that overflows int32 on its way to 8 bits turns
        # into 0, so a far outlier (1e30, +inf) would be drawn as the lowest colour.
        capped = cv2.threshold(model_depth, hi, 0, cv2.THRESH_TRUNC)[1]
        # One saturating pass: below the range -> 0, above -> 255, NaN -> 0.
        gray8 = cv2.addWeighted(capped, scale, capped, 0.0, -lo * scale, dtype=cv2.CV_8U)
        invalid = ~np.isfinite(model_depth)
        black = invalid if invalid.any() else None  # rare: engines' NaN output is rejected upstream
        if placement is not None:
            gray8 = to_image(gray8, placement, 0)
            if black is not None:
                black = to_image(invalid.view(np.uint8), placement, 0).astype(bool)
        bgr = _colormapped(gray8, self.colormap, out)
        if black is not None:
            bgr[black] = 0
        if placement is not None:
            _blacken_outside(bgr, placement)
        return bgr


def _percentiles(values: np.ndarray, percentiles: tuple) -> np.ndarray:
    """np.percentile's default (linear) method from one partial sort: a sixth of its time on
    the colorizer's 20k samples, where its own bookkeeping dominates."""
    at = np.asarray(percentiles, np.float64) / 100 * (values.size - 1)
    below = np.floor(at).astype(np.intp)
    above = np.minimum(below + 1, values.size - 1)
    ordered = np.partition(values, np.unique(np.concatenate([below, above])))
    return ordered[below] + (at - below) * (ordered[above] - ordered[below])


def _colormapped(gray8: np.ndarray, colormap: str, out: np.ndarray | None) -> np.ndarray:
    """gray8 through `colormap` into `out` (HxWx3 bgr8): one 32-bit lookup per pixel (B, G, R, 0)
    and a packing pass, where applyColorMap makes a 3-channel grey image and looks up each byte."""
    if COLORMAPS[colormap] is None:
        return cv2.cvtColor(gray8, cv2.COLOR_GRAY2BGR, dst=out)
    bgr0 = cv2.LUT(gray8, _packed_colormap(colormap))
    return cv2.cvtColor(bgr0.view(np.uint8).reshape(*gray8.shape, 4), cv2.COLOR_BGRA2BGR, dst=out)


@functools.lru_cache(maxsize=None)
def _packed_colormap(colormap: str) -> np.ndarray:
    """OpenCV's colormap as 256 int32 lookup entries holding the bytes B, G, R, 0."""
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], COLORMAPS[colormap])
    packed = np.zeros((256, 4), np.uint8)
    packed[:, :3] = bgr[:, 0]
    return packed.view(np.int32).reshape(256)


def _blacken_outside(image: np.ndarray, placement: Placement) -> None:
    """Black where the model never saw the image (crop mode): four bands, no per-pixel mask."""
    src = placement.source
    image[:src.y] = 0
    image[src.y + src.height:] = 0
    image[:, :src.x] = 0
    image[:, src.x + src.width:] = 0
