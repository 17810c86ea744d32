"""One frame through the model: preprocess, infer, map depth back. No ROS here.

frame_processor.FrameProcessor builds every output on this; each stage exists
once and is timed the same way everywhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..engines import Engine, EngineError
from .image_codec import Frame, to_rgb
from .nv12_input import Nv12Preprocessor, nv12_input_kind
from .postprocess import model_depth_2d, restore_depth
from .preprocess import Placement, Recipe, RgbPreprocessor


class BadOutputError(EngineError):
    """The engine answered, but not with a finite depth map of the input's size."""


def checked_depth(output, canvas_hw: tuple) -> np.ndarray:
    """The model output as HxW float32, or BadOutputError saying what is wrong with it."""
    try:
        depth = model_depth_2d(output)
    except ValueError as exc:
        raise BadOutputError(str(exc)) from exc
    if depth.shape != tuple(canvas_hw):
        raise BadOutputError(f'model output {depth.shape[0]}x{depth.shape[1]} does not match '
                             f'its input {canvas_hw[0]}x{canvas_hw[1]}')
    if not np.isfinite(depth).all():
        raise BadOutputError(f'model output has {np.count_nonzero(~np.isfinite(depth))} NaN/Inf values')
    return depth


@dataclass
class DepthResult:
    depth: np.ndarray         # HxW float32 aligned with the input image (NaN: not seen)
    model_depth: np.ndarray   # the model's own output, 2-D
    placement: Placement      # where the image went in the model input
    timings: dict = field(default_factory=dict)  # stage -> seconds


class DepthEstimator:
    """Frames -> the model's depth (relative inverse depth, or metres for a metric model),
    mapped back to the frame's size.

    The defaults are the official recipe (`Recipe()`); a model's own comes from
    models/models.yaml through `model_zoo.resolve_recipe` and `from_recipe`.
    """

    def __init__(self, engine: Engine, resize_mode: str = 'stretch', input_size: int = 518,
                 normalization: str = 'imagenet', interpolation: str = 'cubic',
                 channel_order: str = 'rgb', upsampling: str = 'align_corners', recipe_name: str = 'custom',
                 nv12_range: str = 'video'):
        self.engine = engine
        self.clock = time.perf_counter  # what the stage timings measure (bench: also CPU time)
        self.recipe = Recipe(recipe_name, resize_mode, interpolation, normalization, channel_order, upsampling)
        self.preprocess = make_preprocessor(engine, resize_mode, input_size, normalization,
                                            interpolation, channel_order, nv12_range)

    @classmethod
    def from_recipe(cls, engine: Engine, recipe: Recipe, input_size: int = 518,
                    nv12_range: str = 'video') -> 'DepthEstimator':
        return cls(engine, input_size=input_size, recipe_name=recipe.name, nv12_range=nv12_range,
                   **recipe.settings)

    def restore(self, model_depth: np.ndarray, placement: Placement, out: np.ndarray | None = None):
        """Model-resolution depth -> depth at the frame's size, upsampled as the recipe says."""
        return restore_depth(model_depth, placement, out, self.recipe.upsampling)

    def model_depth(self, frame: Frame) -> tuple:
        """(model-resolution depth, Placement, {stage: seconds}) for `frame`."""
        clock = self.clock
        t0 = clock()
        feeds, placement = self.preprocess(frame)
        t1 = clock()
        output = self.engine.run(feeds)
        t2 = clock()
        depth = checked_depth(output, placement.canvas_hw)
        return depth, placement, {'preprocess': t1 - t0, 'inference': t2 - t1}

    def estimate(self, frame: Frame) -> DepthResult:
        """Depth for `frame` at its size (tests and the parity check; tools use FrameProcessor)."""
        model_depth, placement, timings = self.model_depth(frame)
        t = self.clock()
        depth = self.restore(model_depth, placement)
        timings['postprocess'] = self.clock() - t
        return DepthResult(depth, model_depth, placement, timings)


class RgbFeeds:
    """RgbPreprocessor with the (feeds, Placement) signature of every preprocessor here; NV12
    frames in full range are decoded to RGB first (the preprocessor reads NV12 as video range)."""

    def __init__(self, input_name: str, rgb: RgbPreprocessor, nv12_range: str = 'video'):
        self.input_name = input_name
        self.rgb = rgb
        self.nv12_range = nv12_range

    def __call__(self, frame: Frame) -> tuple:
        if self.nv12_range != 'video' and frame.encoding in ('nv12', 'nv21'):
            frame = Frame('rgb8', to_rgb(frame, self.nv12_range), frame.height, frame.width)
        tensor, placement = self.rgb(frame)
        return {self.input_name: tensor}, placement


def make_preprocessor(engine: Engine, resize_mode: str = 'stretch', input_size: int = 518,
                      normalization: str = 'imagenet', interpolation: str = 'cubic',
                      channel_order: str = 'rgb', nv12_range: str = 'video'):
    """frame -> ({input name: array}, Placement), chosen from the engine's inputs.

    uint8 inputs with 1 and 2 channels (or one packed 1-channel input) are NV12
    (a BPU model compiled for NV12 that normalizes in-graph; `normalization`,
    `interpolation` and `channel_order` are then unused); anything else is one
    RGB image input. `nv12_range`: the range of NV12 frames (and of NV12 models).
    """
    if nv12_input_kind(engine.inputs):
        return Nv12Preprocessor(engine.inputs, resize_mode, input_size, nv12_range)
    spec = _image_input(engine)
    return RgbFeeds(spec.name, RgbPreprocessor(spec.spatial_hw, spec.layout, resize_mode, input_size,
                                               normalization, interpolation, channel_order), nv12_range)


def _image_input(engine: Engine):
    if len(engine.inputs) != 1:
        raise EngineError(f'{engine.describe()}: expected one image input, '
                          f'the model has {len(engine.inputs)}')
    spec = engine.inputs[0]
    rank_ok = len(spec.shape) == 4
    channels = (spec.shape[1] if spec.layout == 'NCHW' else spec.shape[-1]) if rank_ok else None
    if not rank_ok or channels not in (3, None):
        raise EngineError(f"{engine.describe()}: input '{spec.name}' of shape {list(spec.shape)} "
                          f'is not a batch of 3-channel images (N,3,H,W or N,H,W,3)')
    return spec
