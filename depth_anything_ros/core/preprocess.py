"""Frame -> RGB model input tensor (the NV12 one: nv12_input.py).

The official Depth Anything V2 recipe (dynamic-shape models): RGB, /255,
resize the FLOAT image keeping the aspect ratio so that the shorter side is at
least `input_size` and both sides are multiples of 14 (bicubic), ImageNet
mean/std, NCHW float32. Fixed-shape models (the S100 .hbm is 518x686) need a
policy for other aspect ratios: `stretch`, `letterbox` or `crop`. A `Recipe`
(recipe.py) names every choice; placement.py says where the frame goes.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..engines import TensorSpec
from . import kernels
from .image_codec import Frame, to_rgb
from .nv12_input import resize_nv12_into
from .placement import Rect, place
from .recipe import IMAGENET_MEAN, IMAGENET_STD, OFFICIAL_INPUT_SIZE, Recipe

PIXEL_ZSCORE_EPS = 1e-5

# Frames resized as they come: where R, G and B sit in their channels (mono: all in 0).
# Every other encoding is converted to RGB first.
_RGB_CHANNELS = {'rgb8': (0, 1, 2), 'rgba8': (0, 1, 2), 'bgr8': (2, 1, 0), 'bgra8': (2, 1, 0),
                 'mono8': (0, 0, 0)}


_NV12_TO_RGB = {'nv12': cv2.COLOR_YUV2RGB_NV12, 'nv21': cv2.COLOR_YUV2RGB_NV21}


def rgb_input(canvas_hw: tuple | None, layout: str = 'NCHW', name: str = 'image') -> TensorSpec:
    """A float32 RGB image input of `canvas_hw` (None: dynamic) in `layout`."""
    h, w = canvas_hw or (None, None)
    return TensorSpec(name, (1, 3, h, w) if layout == 'NCHW' else (1, h, w, 3), np.dtype(np.float32), layout)


class RgbPreprocessor:
    """Frames -> ({input name: float32 tensor, NCHW or NHWC}, Placement) for one RGB model input.

    Resizes as the recipe's `interpolation` says: `cubic` resizes like the official DA-V2 code, in
    float arithmetic, not on the rounded 8-bit image (rounding after the resize would move depth by
    up to 2 % of its range), in one compiled pass from the frame into the model input
    (kernels.cubic_planes). `cubic_uint8` and `nearest` resize the 8-bit image with OpenCV;
    `area_cubic` too, in DA3's two steps (`_area_cubic`), as the official DA3 code does.
    Either way each channel plane goes into the model input once, normalized on the way, in the
    model's `channel_order`. NV12 frames in full range (`nv12_range`) are decoded to RGB first
    (the compiled pass reads NV12 as video range).
    """

    def __init__(self, spec: TensorSpec, recipe: Recipe = Recipe(), input_size: int = OFFICIAL_INPUT_SIZE,
                 nv12_range: str = 'video'):
        self.name = spec.name
        self.canvas_hw = spec.spatial_hw
        self.layout = spec.layout
        self.recipe = recipe
        self.input_size = input_size
        self.nv12_range = nv12_range
        # value/255 normalized = value * gain + bias, per RGB channel; pixel_zscore normalizes after
        if recipe.normalization == 'imagenet':
            gain_bias = [(1 / (255 * s), -m / s) for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
        elif recipe.normalization == 'none':
            gain_bias = [(1 / 255, 0.0)] * 3
        else:
            gain_bias = [(1.0, 0.0)] * 3
        # Model channel c holds RGB channel order[c], times gains[c] plus biases[c].
        self._order = (0, 1, 2) if recipe.channel_order == 'rgb' else (2, 1, 0)
        self._gains, self._biases = zip(*(gain_bias[rgb] for rgb in self._order))

    def __call__(self, frame: Frame) -> tuple:
        tensor, placement = self.tensor(frame)
        return {self.name: tensor}, placement

    def tensor(self, frame: Frame) -> tuple:
        """(tensor with batch axis, Placement)."""
        if self.nv12_range != 'video' and frame.encoding in ('nv12', 'nv21'):
            frame = Frame('rgb8', to_rgb(frame, self.nv12_range), frame.height, frame.width)
        recipe = self.recipe
        placement = place((frame.height, frame.width), self.canvas_hw, recipe.resize_mode, self.input_size)
        dst = placement.target
        h, w = placement.canvas_hw
        nchw = self.layout == 'NCHW'
        padded = (dst.width, dst.height) != (w, h)  # letterbox: the padding is normalized 0
        tensor = (np.zeros if padded else np.empty)((1, 3, h, w) if nchw else (1, h, w, 3), np.float32)
        rows, cols = slice(dst.y, dst.y + dst.height), slice(dst.x, dst.x + dst.width)
        planes = tensor[0, :, rows, cols] if nchw else tensor[0, rows, cols].transpose(2, 0, 1)
        order, gains, biases = self._order, self._gains, self._biases
        if recipe.interpolation == 'cubic':
            _cubic_into(frame, placement.source, planes, order, gains, biases)
        else:
            small, channels = _resized(frame, placement.source, dst, recipe.interpolation)
            split = cv2.split(small) if small.ndim == 3 else [small]
            for c, rgb in enumerate(order):
                _scaled_into(planes[c], split[channels[rgb]], gains[c], biases[c])
        if recipe.normalization == 'pixel_zscore':
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
    """The source rectangle at the target size as 8 bits (`cubic_uint8`, `nearest`, `area_cubic`), and
    where R, G, B are in its channels."""
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
    if interpolation == 'area_cubic':
        return _area_cubic(crop, dst.width, dst.height), channels
    return cv2.resize(crop, (dst.width, dst.height), interpolation=_CV2_INTERPOLATION[interpolation]), channels


def _area_cubic(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Depth Anything 3's upper_bound_resize of the 8-bit image (depth_anything_3 0.1.1,
    utils/io/input_processor.py): the longer side to the target's longer side first, aspect kept
    (sides rounded as Python's round(); INTER_CUBIC when enlarging, INTER_AREA otherwise), then to
    the target size (INTER_CUBIC if a side grows, else INTER_AREA); each step skipped when it changes
    nothing. With a target of the official size for the image (placement.upper_bound_size: its
    longer side is 504) these are the official two resizes, on uint8 as the official code runs them."""
    h, w = image.shape[:2]
    scale = max(width, height) / max(w, h)
    if scale != 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        h, w = image.shape[:2]
    if (w, h) != (width, height):
        grows = width > w or height > h
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC if grows else cv2.INTER_AREA)
    return image


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
