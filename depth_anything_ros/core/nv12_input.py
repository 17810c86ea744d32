"""Frames -> NV12 model inputs (BPU models compiled with input_type_rt nv12).

Such a model converts YUV to RGB and normalizes inside its graph, so the host
only resizes: an NV12 camera frame goes plane by plane (Y, and the
interleaved UV plane as a 2-channel half-size image) straight into the model
canvas without an RGB round trip. Other frames are resized in RGB and then
converted to NV12 at the model size.

Two input forms are recognised: separate planes (Y uint8 1xHxWx1 and UV uint8
1x(H/2)x(W/2)x2) or one packed tensor (uint8 1x(H*3/2)xWx1). `resize_nv12_into`, the
plane-by-plane resample, also serves the RGB path's 8-bit resize of NV12 frames.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..engines import EngineError
from .image_codec import NV12_RANGES, Frame, rgb_to_nv12, to_rgb
from .placement import Placement, Rect, place
from .recipe import IMAGENET_MEAN, OFFICIAL_INPUT_SIZE, Recipe

# Bilinear for both planes: bicubic on uint8 chroma rings into colour fringes
# at edges and saturates; the resize is a plain plane resample either way.
INTERPOLATION = cv2.INTER_LINEAR


def _channels(spec) -> int | None:
    if len(spec.shape) != 4:
        return None
    return spec.shape[1] if spec.layout == 'NCHW' else spec.shape[3]


def _hw(spec) -> tuple:
    return (spec.shape[2], spec.shape[3]) if spec.layout == 'NCHW' else (spec.shape[1], spec.shape[2])


def nv12_input_kind(inputs) -> str | None:
    """'planes', 'packed', or None when the inputs are not NV12."""
    if not inputs or any(np.dtype(s.dtype) != np.uint8 for s in inputs):
        return None
    channels = sorted(_channels(s) or 0 for s in inputs)
    if len(inputs) == 2 and channels == [1, 2]:
        return 'planes'
    if len(inputs) == 1 and channels == [1]:
        return 'packed'
    return None


def _mean_color_yuv(nv12_range: str = 'video') -> tuple:
    """The ImageNet mean colour as NV12 levels in `nv12_range` (BT.601 video range: OpenCV's
    convention; full range: JFIF's), from the unrounded mean: rounding RGB first lands a level
    off in U."""
    r, g, b = (c * 255 for c in IMAGENET_MEAN)
    if nv12_range == 'full':
        y = 0.299 * r + 0.587 * g + 0.114 * b
        u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
        v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
        return round(y), (round(u), round(v))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), (round(u), round(v))


def _even_out(lo: int, size: int, limit: int) -> tuple:
    """Widen [lo, lo+size) to even ends (within [0, limit], limit even): chroma covers 2x2 pixels."""
    start = lo - lo % 2
    end = min(limit, lo + size + (lo + size) % 2)
    return start, end - start


class Nv12Preprocessor:
    """Frames -> ({input name: uint8 array}, Placement) for an NV12 model.

    Of the recipe only `resize_mode` applies: the model converts colour and normalizes inside
    its graph with the mean/scale it was compiled with. `nv12_range`: the range of the NV12 frames that
    come in and that the model was compiled for (hb_compile's input_space_and_range);
    NV12 frames pass through as they are, other frames are converted in that range.
    """

    def __init__(self, inputs, recipe: Recipe = Recipe(), input_size: int = OFFICIAL_INPUT_SIZE,
                 nv12_range: str = 'video'):
        self.kind = nv12_input_kind(inputs)
        if self.kind is None:
            raise EngineError(f'inputs {[(s.name, list(s.shape)) for s in inputs]} are not NV12 '
                              '(Y 1xHxWx1 + UV 1xH/2xW/2x2 uint8, or packed 1x(H*3/2)xWx1 uint8)')
        if self.kind == 'planes':
            self.y_spec = next(s for s in inputs if _channels(s) == 1)
            self.uv_spec = next(s for s in inputs if _channels(s) == 2)
            h, w = _hw(self.y_spec)
            if None in (h, w) or _hw(self.uv_spec) != (h // 2, w // 2):
                raise EngineError(f"NV12 inputs '{self.y_spec.name}' {list(self.y_spec.shape)} and "
                                  f"'{self.uv_spec.name}' {list(self.uv_spec.shape)} do not form "
                                  'a fixed-size HxW + H/2xW/2 pair')
        else:
            self.y_spec = self.uv_spec = inputs[0]
            rows, w = _hw(self.y_spec)
            if None in (rows, w) or rows % 3:
                raise EngineError(f"packed NV12 input '{self.y_spec.name}' {list(self.y_spec.shape)} "
                                  'needs a fixed (H*3/2) x W size')
            h = rows * 2 // 3
        if h % 2 or w % 2:
            raise EngineError(f'NV12 model input {w}x{h} must have even width and height')
        self.canvas_hw = (h, w)
        if nv12_range not in NV12_RANGES:
            raise ValueError(f"nv12_range '{nv12_range}' is not one of {NV12_RANGES}")
        self.recipe = recipe
        self.input_size = input_size
        self.nv12_range = nv12_range
        # Letterbox pad: the ImageNet mean colour, not black. The RGB path pads
        # with 0 after ImageNet normalization, i.e. with the mean colour; an NV12
        # model normalizes in-graph, so this gives it the same ~0 input there.
        self.pad_y, self.pad_uv = _mean_color_yuv(nv12_range)

    def placement(self, frame: Frame) -> Placement:
        p = place((frame.height, frame.width), self.canvas_hw, self.recipe.resize_mode, self.input_size)
        t = p.target
        tx, tw = _even_out(t.x, t.width, self.canvas_hw[1])
        ty, th = _even_out(t.y, t.height, self.canvas_hw[0])
        s = p.source
        if frame.encoding in ('nv12', 'nv21'):
            # Chroma of an NV12 frame can only be cut at even pixel positions.
            sx, sw = _even_out(s.x, s.width, frame.width)
            sy, sh = _even_out(s.y, s.height, frame.height)
            s = Rect(sx, sy, sw, sh)
        return Placement(p.image_hw, p.canvas_hw, s, Rect(tx, ty, tw, th))

    def __call__(self, frame: Frame) -> tuple:
        p = self.placement(frame)
        h, w = self.canvas_hw
        y = np.full((h, w), self.pad_y, np.uint8)
        uv = np.empty((h // 2, w // 2, 2), np.uint8)
        uv[:] = self.pad_uv
        src, dst = p.source, p.target
        y_dst = y[dst.y:dst.y + dst.height, dst.x:dst.x + dst.width]
        uv_dst = uv[dst.y // 2:(dst.y + dst.height) // 2, dst.x // 2:(dst.x + dst.width) // 2]
        if frame.encoding in ('nv12', 'nv21'):
            resize_nv12_into(frame, src.x, src.y, src.width, src.height, y_dst, uv_dst)
            if frame.encoding == 'nv21':
                uv_dst[:] = uv_dst[..., ::-1].copy()
        else:
            rgb = to_rgb(frame)[src.y:src.y + src.height, src.x:src.x + src.width]
            rgb = cv2.resize(np.ascontiguousarray(rgb), (dst.width, dst.height),
                             interpolation=INTERPOLATION)
            nv12 = rgb_to_nv12(rgb, self.nv12_range)
            y_dst[:] = nv12[:dst.height]
            uv_dst[:] = nv12[dst.height:].reshape(dst.height // 2, dst.width // 2, 2)
        return self._feeds(y, uv), p

    def _feeds(self, y: np.ndarray, uv: np.ndarray) -> dict:
        if self.kind == 'packed':
            packed = np.concatenate([y, uv.reshape(uv.shape[0], -1)], axis=0)
            return {self.y_spec.name: _as_input(packed[..., None], self.y_spec)}
        return {self.y_spec.name: _as_input(y[..., None], self.y_spec),
                self.uv_spec.name: _as_input(uv, self.uv_spec)}


def _as_input(hwc: np.ndarray, spec) -> np.ndarray:
    """HxWxC plane -> the input's 1xHxWxC (NHWC) or 1xCxHxW (NCHW) array."""
    chw_or_hwc = hwc.transpose(2, 0, 1) if spec.layout == 'NCHW' else hwc
    return np.ascontiguousarray(chw_or_hwc)[None]


def resize_nv12_into(frame: Frame, x: int, y: int, w: int, h: int, y_out: np.ndarray, uv_out: np.ndarray):
    """Resample the rectangle (x, y, w, h) of an nv12/nv21 frame plane by plane into the
    views `y_out` (HxW) and `uv_out` (H/2 x W/2 x 2): no colour conversion at full size.
    x, y, w, h must be even (chroma covers 2x2 pixels); chroma order is kept."""
    fh, fw = frame.height, frame.width
    y_plane = frame.pixels[:fh]
    uv_plane = frame.pixels[fh:fh * 3 // 2].reshape(fh // 2, fw // 2, 2)
    # Luma bicubic like the RGB path; chroma bilinear: bicubic rings into colour fringes there.
    _resize_into(y_plane[y:y + h, x:x + w], y_out, cv2.INTER_CUBIC)
    _resize_into(uv_plane[y // 2:(y + h) // 2, x // 2:(x + w) // 2], uv_out, cv2.INTER_LINEAR)


def _resize_into(src: np.ndarray, dst: np.ndarray, interpolation: int) -> None:
    """Resample `src` into the view `dst` (a copy when the sizes match)."""
    if src.shape[:2] == dst.shape[:2]:
        dst[:] = src
        return
    dst[:] = cv2.resize(src, (dst.shape[1], dst.shape[0]), interpolation=interpolation).reshape(dst.shape)
