"""The per-pixel passes around inference, compiled (`_kernels.c`): each reads its frame once and writes
its output once, on one thread, without the GIL.

- `cubic_planes`, `cubic_planes_nv12`: the official resize, cv2.resize(float image, INTER_CUBIC)
  (OpenCV's grid, its weights with A = -0.75 in float, border replication), of an 8-bit image
  straight into float32 planes, each scaled and offset on the way (the normalization); NV12 frames
  are converted to RGB row by row with OpenCV's own integer arithmetic (cvtColor
  COLOR_YUV2RGB_NV12, BT.601 video range), as if converted whole first.
- `align_corners`: the official upsampling, F.interpolate(mode='bilinear', align_corners=True),
  PyTorch's grid in float32.
- `colormap_linear`: values mapped to colour levels, resized bilinearly on OpenCV's INTER_LINEAR grid
  (pixel centres), rounded and looked up in a colormap, into bgr8.

On x86-64 each is compiled three times: for the baseline (SSE2), for AVX2 with FMA, and for that with
AVX-512 F, BW, VL and VBMI (where the colormap looks 64 pixels up at once). `instruction_set()` says
which one runs (the last of INSTRUCTION_SETS the CPU has), `instruction_set(name)` switches and returns
the previous one (the tests run each the CPU has, `bench --instruction-set` measures them). Elsewhere
(aarch64: NEON) there is one, 'baseline'.

Built with the package (`pip install .`, `colcon build`, or `python3 setup.py build_ext --inplace` in
a source tree); it needs a C compiler and Python's headers (`build-essential`, `python3-dev`).
"""
from __future__ import annotations

import numpy as np

from ._kernels import align_corners as _align_corners
from ._kernels import colormap_linear as _colormap_linear
from ._kernels import cubic_planes as _cubic_planes
from ._kernels import cubic_planes_nv12 as _cubic_planes_nv12
from ._kernels import instruction_set

__all__ = ['INSTRUCTION_SETS', 'align_corners', 'colormap_linear', 'cubic_planes', 'cubic_planes_nv12',
           'instruction_set']

INSTRUCTION_SETS = ('baseline', 'avx2', 'avx512')  # each one's CPU runs the ones before it


def cubic_planes(image: np.ndarray, planes: np.ndarray, channels, gains, biases) -> None:
    """planes[c] = gains[c] * resized(image[..., channels[c]]) + biases[c], for c in 0, 1, 2.

    `image`: HxW or HxWxC uint8 (rows may be strided); `planes`: a 3 x h x w float32 view (any
    strides: NCHW planes, or an NHWC tensor transposed), h x w the size to resize to."""
    _cubic_planes(image if image.ndim == 3 else image[..., None], planes, tuple(channels), tuple(gains),
                  tuple(biases))


def cubic_planes_nv12(nv12: np.ndarray, rect: tuple, nv21: bool, planes: np.ndarray, channels, gains,
                      biases) -> None:
    """cubic_planes of the rectangle rect = (x, y, width, height) of an NV12 (or NV21) frame, the
    (H*3/2)xW array, as RGB (`channels` name R 0, G 1, B 2)."""
    _cubic_planes_nv12(nv12, tuple(rect), nv21, planes, tuple(channels), tuple(gains), tuple(biases))


def align_corners(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`image` (2-D float32) bilinearly upsampled onto all of `out` (2-D float32, contiguous rows),
    corner pixels on corner pixels."""
    _align_corners(image, out)
    return out


def colormap_linear(values: np.ndarray, out: np.ndarray, lut: bytes, lo: float = 0.0, scale: float = 1.0) -> int:
    """The levels clamp((values - lo) * scale, 0, 255) (NaN: 0) of `values` (2-D float32) resized onto
    all of `out` (HxWx3 uint8, contiguous pixels), rounded to nearest and coloured by `lut`,
    256 x (B, G, R) bytes. Returns how many NaN or infinite values the picture read (it reads every row
    it samples, all of them when it upsamples), so that callers need no pass of their own to know."""
    return _colormap_linear(values, out, lut, float(lo), float(scale))
