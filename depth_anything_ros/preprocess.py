"""Frame -> model input tensor, and the geometry to map depth back.

The official Depth Anything V2 recipe (dynamic-shape models): RGB, /255,
resize keeping the aspect ratio so that the shorter side is at least
`input_size` and both sides are multiples of 14 (bicubic), ImageNet mean/std,
NCHW float32. Fixed-shape models (the S100 .hbm is 518x686) need a policy for
other aspect ratios: `stretch`, `letterbox` or `crop`.

Every mode is "take a source rectangle of the image, resize it into a
destination rectangle of the model canvas"; `Placement` records both so the
postprocessor can invert it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .image_codec import Frame, resize_nv12_into, to_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ('stretch', 'letterbox', 'crop')
NORMALIZATIONS = ('imagenet', 'pixel_zscore', 'none')
PATCH = 14
# Dynamic models: the model input is at most 2:1 (the long side at most twice the short
# one, input_size). The official recipe keeps any aspect ratio, so a 100x1000 frame asked
# for 518x5180 (3 GB of attention) and 3x100000 for 26.8 GB. 16:9 and 2:1 cameras are
# unaffected; wider frames go into an input_size x 2*input_size canvas by resize_mode.
MAX_DYNAMIC_ASPECT = 2


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Placement:
    """Where the image went: `source` (image pixels) was resized onto `target`
    (model-input pixels) inside a canvas of `canvas_hw`."""
    image_hw: tuple
    canvas_hw: tuple
    source: Rect
    target: Rect


def multiple_of(x: float, base: int, min_val: int = 0) -> int:
    """The official `constrain_to_multiple_of`: nearest multiple, never below min_val."""
    y = int(round(x / base) * base)
    if y < min_val:
        y = int(math.ceil(x / base) * base)
    return y


def lower_bound_size(height: int, width: int, input_size: int) -> tuple:
    """Official dynamic-shape size: aspect kept, shorter side >= input_size, x14."""
    scale = max(input_size / height, input_size / width)
    return (multiple_of(scale * height, PATCH, input_size),
            multiple_of(scale * width, PATCH, input_size))


def dynamic_input_limit(input_size: int) -> tuple:
    """(short, long): the largest model input a dynamic model is given."""
    short = multiple_of(input_size, PATCH, input_size)
    return short, multiple_of(MAX_DYNAMIC_ASPECT * input_size, PATCH, short)


def place(image_hw: tuple, canvas_hw: tuple | None, resize_mode: str, input_size: int) -> Placement:
    """Decide source and target rectangles; canvas_hw None means a dynamic model."""
    h, w = image_hw
    full = Rect(0, 0, w, h)
    if canvas_hw is None:
        ch, cw = lower_bound_size(h, w, input_size)
        short, long = dynamic_input_limit(input_size)
        if max(ch, cw) <= long:
            return Placement(image_hw, (ch, cw), full, Rect(0, 0, cw, ch))
        canvas_hw = (short, long) if cw >= ch else (long, short)  # over 2:1: a fixed canvas
    ch, cw = canvas_hw
    if resize_mode == 'stretch':
        return Placement(image_hw, canvas_hw, full, Rect(0, 0, cw, ch))
    if resize_mode == 'letterbox':
        scale = min(cw / w, ch / h)
        # max(1, ...): a 1x2000 image still gets a one-pixel row, not an empty one.
        tw, th = min(cw, max(1, round(w * scale))), min(ch, max(1, round(h * scale)))
        return Placement(image_hw, canvas_hw, full, Rect((cw - tw) // 2, (ch - th) // 2, tw, th))
    if resize_mode == 'crop':
        scale = max(cw / w, ch / h)
        sw, sh = min(w, max(1, round(cw / scale))), min(h, max(1, round(ch / scale)))
        return Placement(image_hw, canvas_hw, Rect((w - sw) // 2, (h - sh) // 2, sw, sh),
                         Rect(0, 0, cw, ch))
    raise ValueError(f"resize_mode '{resize_mode}' is not one of {RESIZE_MODES}")


# Frames resized as they come: where R, G and B sit in their channels (mono: all in 0).
# Every other encoding is converted to RGB first.
_RGB_CHANNELS = {'rgb8': (0, 1, 2), 'rgba8': (0, 1, 2), 'bgr8': (2, 1, 0), 'bgra8': (2, 1, 0),
                 'mono8': (0, 0, 0)}


_NV12_TO_RGB = {'nv12': cv2.COLOR_YUV2RGB_NV12, 'nv21': cv2.COLOR_YUV2RGB_NV21}


class RgbPreprocessor:
    """Frames -> float32 RGB tensor (NCHW or NHWC) for one model input.

    Resizes the 8-bit image first (bicubic, as the official recipe), then
    normalizes each channel plane in place at model resolution, reordering BGR
    to RGB on the way. The official code resizes float images instead;
    the 8-bit resize rounds to 1/255 and clips bicubic overshoot at edges, a
    difference the preprocessing tests bound, for ~6x less CPU time at 1080p.
    """

    def __init__(self, canvas_hw: tuple | None, layout: str = 'NCHW',
                 resize_mode: str = 'letterbox', input_size: int = 518,
                 normalization: str = 'imagenet'):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization '{normalization}' is not one of {NORMALIZATIONS}")
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode '{resize_mode}' is not one of {RESIZE_MODES}")
        self.canvas_hw = canvas_hw
        self.layout = layout
        self.resize_mode = resize_mode
        self.input_size = input_size
        self.normalization = normalization
        # value/255 normalized = value * gain + bias, per channel
        if normalization == 'imagenet':
            self._gain_bias = [(np.float32(1 / (255 * s)), np.float32(-m / s)) for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
        else:
            self._gain_bias = [(np.float32(1 / 255), np.float32(0))] * 3

    def __call__(self, frame: Frame) -> tuple:
        """Return (tensor with batch axis, Placement)."""
        placement = place((frame.height, frame.width), self.canvas_hw,
                          self.resize_mode, self.input_size)
        small, channels = _resized(frame, placement.source, placement.target)
        dst = placement.target
        if small.ndim == 2:
            small = small[:, :, None]
        h, w = placement.canvas_hw
        nchw = self.layout == 'NCHW'
        tensor = np.zeros((1, 3, h, w) if nchw else (1, h, w, 3), np.float32)
        rows, cols = slice(dst.y, dst.y + dst.height), slice(dst.x, dst.x + dst.width)
        if self.normalization == 'pixel_zscore':
            values = _pixel_zscore(small[:, :, list(channels)])
            for c in range(3):
                tensor[(0, c, rows, cols) if nchw else (0, rows, cols, c)] = values[:, :, c]
            return tensor, placement
        planes = cv2.split(small)
        for c, source in enumerate(channels):
            out = tensor[(0, c, rows, cols) if nchw else (0, rows, cols, c)]
            out[...] = planes[source]  # uint8 -> float32 straight into the model input
            gain, bias = self._gain_bias[c]
            out *= gain
            out += bias
        return tensor, placement


def _resized(frame: Frame, src: Rect, dst: Rect) -> tuple:
    """The source rectangle at the target size, and where R, G, B are in its channels."""
    if frame.encoding in _RGB_CHANNELS:
        crop = frame.pixels[src.y:src.y + src.height, src.x:src.x + src.width]
        return cv2.resize(crop, (dst.width, dst.height), interpolation=cv2.INTER_CUBIC), \
            _RGB_CHANNELS[frame.encoding]
    if frame.encoding in _NV12_TO_RGB and not (src.x | src.y | src.width | src.height | dst.width | dst.height) % 2:
        # NV12 camera: resize the planes, convert colour at model size (~5x less CPU at 1080p).
        small = np.empty((dst.height * 3 // 2, dst.width), np.uint8)
        uv = small[dst.height:].reshape(dst.height // 2, dst.width // 2, 2)
        resize_nv12_into(frame, src.x, src.y, src.width, src.height, small[:dst.height], uv)
        return cv2.cvtColor(small, _NV12_TO_RGB[frame.encoding]), (0, 1, 2)
    crop = to_rgb(frame)[src.y:src.y + src.height, src.x:src.x + src.width]
    return cv2.resize(crop, (dst.width, dst.height), interpolation=cv2.INTER_CUBIC), (0, 1, 2)


def _pixel_zscore(rgb: np.ndarray) -> np.ndarray:
    """Each pixel by the mean and std of its own three channels (the D-Robotics
    sample's normalization for depth_any.hbm)."""
    values = rgb.astype(np.float32)
    mean = values.mean(axis=2, keepdims=True)
    std = values.std(axis=2, keepdims=True)
    return (values - mean) / np.maximum(std, np.float32(1e-6))
