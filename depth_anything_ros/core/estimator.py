"""One frame through the model: preprocess, infer, map depth back. No ROS here.

frame_processor.FrameProcessor builds every output on this; each stage exists
once and is timed the same way everywhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..engines import Engine, EngineError
from .depth_type import CONFIDENCE_OUTPUT, EXTRA_OUTPUTS, SKY_OUTPUT
from .image_codec import Frame
from .nv12_input import Nv12Preprocessor, nv12_input_kind
from .placement import Placement, upper_bound_size
from .postprocess import model_depth_2d, restore_depth
from .preprocess import RgbPreprocessor
from .recipe import OFFICIAL_INPUT_SIZE, Recipe


class BadOutputError(EngineError):
    """The engine answered, but not with a finite depth map of the input's size."""


@dataclass
class ModelDepth:
    """One frame's model outputs at model resolution (2-D float32) and where the frame went in its input."""
    depth: np.ndarray
    placement: Placement
    timings: dict = field(default_factory=dict)   # stage -> seconds
    sky_score: np.ndarray | None = None           # DA3 Mono/Metric: the sky head's score (ReLU)
    confidence: np.ndarray | None = None          # DA3 main series: depth_conf (>= 1)
    sky: object = None                            # sky.Sky, once FrameProcessor.infer read the score


def checked_depth(output, canvas_hw: tuple, name: str = 'model output') -> np.ndarray:
    """A model output map as HxW float32, or BadOutputError saying what is wrong with it."""
    try:
        depth = model_depth_2d(output)
    except ValueError as exc:
        raise BadOutputError(f'{name}: {exc}') from exc
    if depth.shape != tuple(canvas_hw):
        raise BadOutputError(f'{name} {depth.shape[0]}x{depth.shape[1]} does not match '
                             f'its input {canvas_hw[0]}x{canvas_hw[1]}')
    if not np.isfinite(depth).all():
        raise BadOutputError(f'{name} has {np.count_nonzero(~np.isfinite(depth))} NaN/Inf values')
    return depth


class DepthEstimator:
    """Frames -> the model's outputs at model resolution (depth: the first output that is not DA3's
    `sky` or `depth_conf`, which are read by name where the model has them), and back at the frame's
    size, as `recipe` says
    (default: the official DA-V2 one; a model's own comes from models/models.yaml, see
    processor_factory.build_processor). `nv12_range`: the range of NV12 frames (and of NV12 models)."""

    def __init__(self, engine: Engine, recipe: Recipe = Recipe(), input_size: int = OFFICIAL_INPUT_SIZE,
                 nv12_range: str = 'video'):
        self.engine = engine
        self.recipe = recipe
        self.clock = time.perf_counter  # what the stage timings measure (bench: also CPU time)
        self.preprocess = make_preprocessor(engine, recipe, input_size, nv12_range)
        self.output_names = [o.name for o in engine.outputs]

    def restore(self, model_depth: np.ndarray, placement: Placement, out: np.ndarray | None = None):
        """Model-resolution depth -> depth at the frame's size, upsampled as the recipe says."""
        return restore_depth(model_depth, placement, out, self.recipe.upsampling)

    def has_output(self, name: str) -> bool:
        return name in self.output_names

    def model_depth(self, frame: Frame) -> ModelDepth:
        """The model's outputs for `frame`, checked (BadOutputError), with the stage timings."""
        clock = self.clock
        t0 = clock()
        feeds, placement = self.preprocess(frame)
        t1 = clock()
        outputs = self.engine.run(feeds)
        t2 = clock()
        canvas = placement.canvas_hw
        depth = next((value for name, value in outputs.items() if name not in EXTRA_OUTPUTS), None)
        if depth is None:
            raise BadOutputError(f'the model gave no depth output, only {list(outputs)}')
        depth = checked_depth(depth, canvas)
        extra = {name: checked_depth(outputs[name], canvas, f"output '{name}'")
                 for name in (SKY_OUTPUT, CONFIDENCE_OUTPUT) if name in outputs}
        return ModelDepth(depth, placement, {'preprocess': t1 - t0, 'inference': t2 - t1},
                          extra.get(SKY_OUTPUT), extra.get(CONFIDENCE_OUTPUT))

    def input_note(self, height: int, width: int) -> str | None:
        """For DA3's resize (`area_cubic`) on a fixed model: a line saying how frames of this size go
        in when the model's input is not the official size for them (None when it is)."""
        canvas = self.preprocess.canvas_hw
        if self.recipe.interpolation != 'area_cubic' or canvas is None:
            return None
        official = upper_bound_size(height, width, max(canvas))
        if official == tuple(canvas):
            return None
        return (f'{width}x{height} frames go into this model\'s {canvas[0]}x{canvas[1]} input by resize_mode '
                f"'{self.recipe.resize_mode}'; Depth Anything 3's own input for them is {official[0]}x{official[1]} "
                f'(longer side {max(canvas)}): export a model of that size (--model-size '
                f'{official[0]}x{official[1]}) to feed it exactly as the official code does')


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
