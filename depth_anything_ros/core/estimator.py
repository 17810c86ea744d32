"""One frame through the model: preprocess, infer, map depth back. No ROS here.

frame_processor.FrameProcessor builds every output on this; each stage exists
once and is timed the same way everywhere.
"""
from __future__ import annotations

import time

import numpy as np

from ..engines import Engine, EngineError
from .image_codec import Frame
from .nv12_input import Nv12Preprocessor, nv12_input_kind
from .placement import Placement
from .postprocess import model_depth_2d, restore_depth
from .preprocess import RgbPreprocessor
from .recipe import OFFICIAL_INPUT_SIZE, Recipe


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


class DepthEstimator:
    """Frames -> the model's depth (relative inverse depth, or metres for a metric model) at model
    resolution, and back at the frame's size, as `recipe` says (default: the official one; a
    model's own comes from models/models.yaml, see processor_factory.build_processor).
    `nv12_range`: the range of NV12 frames (and of NV12 models)."""

    def __init__(self, engine: Engine, recipe: Recipe = Recipe(), input_size: int = OFFICIAL_INPUT_SIZE,
                 nv12_range: str = 'video'):
        self.engine = engine
        self.recipe = recipe
        self.clock = time.perf_counter  # what the stage timings measure (bench: also CPU time)
        self.preprocess = make_preprocessor(engine, recipe, input_size, nv12_range)

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


def make_preprocessor(engine: Engine, recipe: Recipe = Recipe(), input_size: int = OFFICIAL_INPUT_SIZE,
                      nv12_range: str = 'video'):
    """frame -> ({input name: array}, Placement), chosen from the engine's inputs.

    uint8 inputs with 1 and 2 channels (or one packed 1-channel input) are NV12
    (a BPU model compiled for NV12 that normalizes in-graph: of the recipe only
    resize_mode applies); anything else is one RGB image input.
    """
    if nv12_input_kind(engine.inputs):
        return Nv12Preprocessor(engine.inputs, recipe, input_size, nv12_range)
    return RgbPreprocessor(_image_input(engine), recipe, input_size, nv12_range)


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
