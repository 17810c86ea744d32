"""Frame -> model input tensor, and the geometry to map depth back.

The official Depth Anything V2 recipe (dynamic-shape models): RGB, /255,
resize the FLOAT image keeping the aspect ratio so that the shorter side is at
least `input_size` and both sides are multiples of 14 (bicubic), ImageNet
mean/std, NCHW float32. Fixed-shape models (the S100 .hbm is 518x686) need a
policy for other aspect ratios: `stretch`, `letterbox` or `crop`. A `Recipe`
names every choice; models/models.yaml gives each known model its own.

Every mode is "take a source rectangle of the image, resize it into a
destination rectangle of the model canvas"; `Placement` records both so the
postprocessor can invert it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import cv2
import numpy as np

from . import kernels
from .image_codec import Frame, resize_nv12_into, to_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ('stretch', 'letterbox', 'crop')
NORMALIZATIONS = ('imagenet', 'pixel_zscore', 'none')
# cubic: the float image (official); cubic_uint8: the 8-bit image, faster, rounds to a grey
# level and clips the cubic overshoot (see docs/recipes.md); nearest: the D-Robotics sample.
INTERPOLATIONS = ('cubic', 'cubic_uint8', 'nearest')
CHANNEL_ORDERS = ('rgb', 'bgr')
# align_corners: the official bilinear upsampling of the output; pixel_centres: OpenCV's.
UPSAMPLINGS = ('align_corners', 'pixel_centres')
PATCH = 14
PIXEL_ZSCORE_EPS = 1e-5
# Dynamic models: the model input is at most 4:1 (the long side at most 4x the short one,
# input_size). The official recipe keeps any aspect ratio, so a 100x1000 frame asked for
# 518x5180 (3 GB of attention) and 3x100000 for 26.8 GB. Every camera up to 4:1 keeps the
# official recipe (KITTI's 3.3:1 included); wider frames go into an input_size x 4*input_size
# canvas by resize_mode.
MAX_DYNAMIC_ASPECT = 4


@dataclass(frozen=True)
class Recipe:
    """How a model wants its input and how its output goes back onto the image."""
    name: str = 'official'
    resize_mode: str = 'stretch'       # fixed-shape models only; dynamic ones keep the aspect
    interpolation: str = 'cubic'
    normalization: str = 'imagenet'
    channel_order: str = 'rgb'
    upsampling: str = 'align_corners'

    def __post_init__(self):
        for name, choices in (('resize_mode', RESIZE_MODES), ('interpolation', INTERPOLATIONS),
                              ('normalization', NORMALIZATIONS), ('channel_order', CHANNEL_ORDERS),
                              ('upsampling', UPSAMPLINGS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} '{getattr(self, name)}' is not one of {choices}")

    @property
    def settings(self) -> dict:
        """Every field but the name (the keyword arguments of DepthEstimator)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != 'name'}

    def describe(self) -> str:
        return f"recipe '{self.name}': " + ', '.join(f'{k} {v}' for k, v in self.settings.items())


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


# Frames resized as they come: where R, G and B sit in their channels (mono: all in 0).
# Every other encoding is converted to RGB first.
_RGB_CHANNELS = {'rgb8': (0, 1, 2), 'rgba8': (0, 1, 2), 'bgr8': (2, 1, 0), 'bgra8': (2, 1, 0),
                 'mono8': (0, 0, 0)}


_NV12_TO_RGB = {'nv12': cv2.COLOR_YUV2RGB_NV12, 'nv21': cv2.COLOR_YUV2RGB_NV21}


class RgbPreprocessor:
    """Frames -> float32 tensor (NCHW or NHWC) for one model input.

    Resizes as `interpolation` says: `cubic` resizes like the official code, in float
    arithmetic, not on the rounded 8-bit image (rounding after the resize would move depth by
    up to 2 % of its range), in one compiled pass from the frame into the model input
    (kernels.cubic_planes). `cubic_uint8` and `nearest` resize the 8-bit image with OpenCV.
    Either way each channel plane goes into the model input once, normalized on the way, in the
    model's `channel_order`.
    """

    def __init__(self, canvas_hw: tuple | None, layout: str = 'NCHW',
                 resize_mode: str = 'stretch', input_size: int = 518,
                 normalization: str = 'imagenet', interpolation: str = 'cubic',
                 channel_order: str = 'rgb'):
        Recipe(resize_mode=resize_mode, normalization=normalization, interpolation=interpolation,
               channel_order=channel_order)  # checks every choice
        self.canvas_hw = canvas_hw
        self.layout = layout
        self.resize_mode = resize_mode
        self.input_size = input_size
        self.normalization = normalization
        self.interpolation = interpolation
        self.channel_order = channel_order
        # value/255 normalized = value * gain + bias, per RGB channel; pixel_zscore normalizes after
        if normalization == 'imagenet':
            self._gain_bias = [(1 / (255 * s), -m / s) for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
        elif normalization == 'none':
            self._gain_bias = [(1 / 255, 0.0)] * 3
        else:
            self._gain_bias = [(1.0, 0.0)] * 3

    def __call__(self, frame: Frame) -> tuple:
        """Return (tensor with batch axis, Placement)."""
        placement = place((frame.height, frame.width), self.canvas_hw,
                          self.resize_mode, self.input_size)
        dst = placement.target
        h, w = placement.canvas_hw
        nchw = self.layout == 'NCHW'
        padded = (dst.width, dst.height) != (w, h)  # letterbox: the padding is normalized 0
        tensor = (np.zeros if padded else np.empty)((1, 3, h, w) if nchw else (1, h, w, 3), np.float32)
        rows, cols = slice(dst.y, dst.y + dst.height), slice(dst.x, dst.x + dst.width)
        planes = tensor[0, :, rows, cols] if nchw else tensor[0, rows, cols].transpose(2, 0, 1)
        # Model channel c holds RGB channel order[c].
        order = (0, 1, 2) if self.channel_order == 'rgb' else (2, 1, 0)
        gains, biases = zip(*(self._gain_bias[rgb] for rgb in order))
        if self.interpolation == 'cubic':
            _cubic_into(frame, placement.source, planes, order, gains, biases)
        else:
            small, channels = _resized(frame, placement.source, dst, self.interpolation)
            split = cv2.split(small) if small.ndim == 3 else [small]
            for c, rgb in enumerate(order):
                _scaled_into(planes[c], split[channels[rgb]], gains[c], biases[c])
        if self.normalization == 'pixel_zscore':
            planes[...] = _pixel_zscore(list(planes))
        return tensor, placement


def _cubic_into(frame: Frame, src: Rect, planes: np.ndarray, order: tuple, gains: tuple, biases: tuple) -> None:
    """The official cubic resize of the frame's `src` rectangle into `planes` (model channel c: RGB
    channel order[c], times gains[c] plus biases[c]); NV12 frames converted row by row."""
    rect = (src.x, src.y, src.width, src.height)
    if frame.encoding in _NV12_TO_RGB:
        kernels.cubic_planes_nv12(frame.pixels, rect, frame.encoding == 'nv21', planes, order, gains, biases)
        return
    if frame.encoding in _RGB_CHANNELS:
        image, channels = frame.pixels, _RGB_CHANNELS[frame.encoding]
    else:
        image, channels = to_rgb(frame), (0, 1, 2)
    crop = image[src.y:src.y + src.height, src.x:src.x + src.width]
    kernels.cubic_planes(crop, planes, [channels[rgb] for rgb in order], gains, biases)


_CV2_INTERPOLATION = {'cubic_uint8': cv2.INTER_CUBIC, 'nearest': cv2.INTER_NEAREST}


def _resized(frame: Frame, src: Rect, dst: Rect, interpolation: str) -> tuple:
    """The source rectangle at the target size as 8 bits (`cubic_uint8`, `nearest`), and where R, G, B
    are in its channels."""
    flag = _CV2_INTERPOLATION[interpolation]
    if frame.encoding in _RGB_CHANNELS:
        image, channels = frame.pixels, _RGB_CHANNELS[frame.encoding]
    elif (interpolation == 'cubic_uint8' and frame.encoding in _NV12_TO_RGB
          and not (src.x | src.y | src.width | src.height | dst.width | dst.height) % 2):
        # NV12 camera: resize the planes, convert colour at model size (~5x less CPU at 1080p).
        small = np.empty((dst.height * 3 // 2, dst.width), np.uint8)
        uv = small[dst.height:].reshape(dst.height // 2, dst.width // 2, 2)
        resize_nv12_into(frame, src.x, src.y, src.width, src.height, small[:dst.height], uv)
        return cv2.cvtColor(small, _NV12_TO_RGB[frame.encoding]), (0, 1, 2)
    else:
        image, channels = to_rgb(frame), (0, 1, 2)
    crop = image[src.y:src.y + src.height, src.x:src.x + src.width]
    return cv2.resize(crop, (dst.width, dst.height), interpolation=flag), channels


def _scaled_into(out: np.ndarray, plane: np.ndarray, gain: float, bias: float) -> None:
    """out = plane * gain + bias in float32: one OpenCV pass (convert, scale, offset), written
    straight into the model input where its rows are contiguous (NCHW)."""
    in_place = out.strides[-1] == out.itemsize
    done = cv2.addWeighted(plane, gain, plane, 0.0, bias, dst=out if in_place else None, dtype=cv2.CV_32F)
    if done.__array_interface__['data'][0] != out.__array_interface__['data'][0]:
        out[...] = done


def _pixel_zscore(planes: list) -> list:
    """R, G, B planes, each pixel normalized by the mean and variance of its own three
    values, (x - mean) / sqrt(var + 1e-5): the D-Robotics sample's normalization for
    depth_any.hbm. Plane by plane: numpy is slow along a 3-long last axis."""
    r, g, b = (p.astype(np.float32) for p in planes)
    mean = (r + g + b) / np.float32(3)
    r -= mean
    g -= mean
    b -= mean
    scale = (r * r + g * g + b * b) / np.float32(3)
    scale += np.float32(PIXEL_ZSCORE_EPS)
    np.sqrt(scale, out=scale)
    return [r / scale, g / scale, b / scale]
