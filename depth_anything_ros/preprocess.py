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

from .image_codec import Frame, to_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ('stretch', 'letterbox', 'crop')
NORMALIZATIONS = ('imagenet', 'pixel_zscore', 'none')
PATCH = 14


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


def place(image_hw: tuple, canvas_hw: tuple | None, resize_mode: str, input_size: int) -> Placement:
    """Decide source and target rectangles; canvas_hw None means a dynamic model."""
    h, w = image_hw
    full = Rect(0, 0, w, h)
    if canvas_hw is None:
        ch, cw = lower_bound_size(h, w, input_size)
        return Placement(image_hw, (ch, cw), full, Rect(0, 0, cw, ch))
    ch, cw = canvas_hw
    if resize_mode == 'stretch':
        return Placement(image_hw, canvas_hw, full, Rect(0, 0, cw, ch))
    if resize_mode == 'letterbox':
        scale = min(cw / w, ch / h)
        tw, th = min(cw, round(w * scale)), min(ch, round(h * scale))
        return Placement(image_hw, canvas_hw, full, Rect((cw - tw) // 2, (ch - th) // 2, tw, th))
    if resize_mode == 'crop':
        scale = max(cw / w, ch / h)
        sw, sh = min(w, round(cw / scale)), min(h, round(ch / scale))
        return Placement(image_hw, canvas_hw, Rect((w - sw) // 2, (h - sh) // 2, sw, sh),
                         Rect(0, 0, cw, ch))
    raise ValueError(f"resize_mode '{resize_mode}' is not one of {RESIZE_MODES}")


class RgbPreprocessor:
    """Frames -> float32 RGB tensor (NCHW or NHWC) for one model input."""

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
        # Folded so that normalizing is one multiply-add on uint8-scaled values.
        self._scale = (1.0 / (255.0 * np.array(IMAGENET_STD, np.float32))).astype(np.float32)
        self._offset = (-np.array(IMAGENET_MEAN, np.float32) / np.array(IMAGENET_STD, np.float32))

    def __call__(self, frame: Frame) -> tuple:
        """Return (tensor with batch axis, Placement)."""
        placement = place((frame.height, frame.width), self.canvas_hw,
                          self.resize_mode, self.input_size)
        rgb = to_rgb(frame)
        src, dst = placement.source, placement.target
        crop = rgb[src.y:src.y + src.height, src.x:src.x + src.width]
        resized = cv2.resize(crop.astype(np.float32), (dst.width, dst.height),
                             interpolation=cv2.INTER_CUBIC)
        canvas = np.zeros(placement.canvas_hw + (3,), np.float32)
        canvas[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width] = self._normalize(resized)
        tensor = canvas.transpose(2, 0, 1) if self.layout == 'NCHW' else canvas
        return np.ascontiguousarray(tensor)[None], placement

    def _normalize(self, rgb255: np.ndarray) -> np.ndarray:
        """`rgb255` is float32 in [0, 255] (bicubic may overshoot, as in the official code)."""
        if self.normalization == 'imagenet':
            return rgb255 * self._scale + self._offset
        if self.normalization == 'none':
            return rgb255 * np.float32(1 / 255)
        # pixel_zscore: each pixel by the mean and std of its own three channels
        # (the D-Robotics sample's normalization for depth_any.hbm).
        mean = rgb255.mean(axis=2, keepdims=True)
        std = rgb255.std(axis=2, keepdims=True)
        return (rgb255 - mean) / np.maximum(std, np.float32(1e-6))
