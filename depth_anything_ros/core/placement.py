"""Where a frame goes in the model input, and back: the geometry of every resize mode. No ROS here.

Every mode is "take a source rectangle of the image, resize it into a destination rectangle of
the model canvas"; `Placement` records both so the postprocessor can invert it exactly. Dynamic
models get the official size (shorter side `input_size`, multiples of 14, aspect kept).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .recipe import RESIZE_MODES

PATCH = 14   # DA-V2's and DA3's patch: a model's input sides are multiples of it
# Dynamic models: the model input is at most 4:1 (the long side at most 4x the short one,
# input_size). The official recipe keeps any aspect ratio, so a 100x1000 frame asked for
# 518x5180 (3 GB of attention) and 3x100000 for 26.8 GB. Every camera up to 4:1 keeps the
# official recipe (KITTI's 3.3:1 included); wider frames go into an input_size x 4*input_size
# canvas by resize_mode.
MAX_DYNAMIC_ASPECT = 4


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


def upper_bound_size(height: int, width: int, longer: int) -> tuple:
    """Depth Anything 3's input size for an image (utils/io/input_processor.py, upper_bound_resize):
    the longer side scaled to `longer` (504 officially; sides rounded as Python's round() does),
    then each side to the nearest multiple of 14, ties up. 1080x1920 -> 280x504, 480x640 -> 378x504."""
    scale = longer / max(height, width)
    if scale != 1:
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
    return nearest_multiple(height, PATCH), nearest_multiple(width, PATCH)


def nearest_multiple(x: int, base: int) -> int:
    """DA3's rounding to a multiple (ties up, never below `base`)."""
    down = x // base * base
    return max(base, down + base if (down + base) - x <= x - down else down)


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
        canvas_hw = (short, long) if cw >= ch else (long, short)  # over 4:1: a fixed canvas
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
