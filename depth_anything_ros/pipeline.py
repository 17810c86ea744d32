"""One frame through the model: preprocess, infer, map depth back. No ROS here.

The node, the offline tools and the benchmarks all call this, so each stage
exists once and is timed the same way everywhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .engines import Engine, EngineError
from .image_codec import Frame
from .postprocess import model_depth_2d, restore_depth
from .preprocess import RgbPreprocessor

STAGES = ('preprocess', 'inference', 'postprocess')


@dataclass
class DepthResult:
    depth: np.ndarray         # HxW float32 aligned with the input image (NaN: not seen)
    model_depth: np.ndarray   # the model's own output, 2-D
    timings: dict = field(default_factory=dict)  # stage -> seconds


class DepthEstimator:
    """Frames -> relative inverse depth at the frame's size."""

    def __init__(self, engine: Engine, resize_mode: str = 'letterbox', input_size: int = 518,
                 normalization: str = 'imagenet'):
        self.engine = engine
        spec = _image_input(engine)
        self.input_name = spec.name
        self.preprocess = RgbPreprocessor(spec.spatial_hw, spec.layout, resize_mode,
                                          input_size, normalization)

    def estimate(self, frame: Frame) -> DepthResult:
        t0 = time.perf_counter()
        tensor, placement = self.preprocess(frame)
        t1 = time.perf_counter()
        output = self.engine.run({self.input_name: tensor})
        t2 = time.perf_counter()
        model_depth = model_depth_2d(output)
        depth = restore_depth(model_depth, placement)
        t3 = time.perf_counter()
        return DepthResult(depth, model_depth,
                           {'preprocess': t1 - t0, 'inference': t2 - t1, 'postprocess': t3 - t2})


def _image_input(engine: Engine):
    if len(engine.inputs) != 1:
        raise EngineError(f'{engine.describe()}: expected one image input, '
                          f'the model has {len(engine.inputs)}')
    spec = engine.inputs[0]
    channels = spec.shape[1] if spec.layout == 'NCHW' else spec.shape[-1]
    if len(spec.shape) != 4 or channels not in (3, None):
        raise EngineError(f"{engine.describe()}: input '{spec.name}' of shape {list(spec.shape)} "
                          f'is not a batch of 3-channel images (N,3,H,W or N,H,W,3)')
    return spec
