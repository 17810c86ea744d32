"""Inference engines behind one small interface.

An engine loads one model file, describes its inputs and outputs (read from
the model, never assumed), and maps input arrays to the depth output. `run`
must be safe to call from several worker threads at once.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

import numpy as np

ENGINES = {
    'onnxruntime': ('.onnxruntime_engine', 'OnnxRuntimeEngine', ('.onnx',)),
    'hbm': ('.hbm_engine', 'HbmEngine', ('.hbm', '.bin')),
    'openvino': ('.openvino_engine', 'OpenVinoEngine', ('.xml',)),
}
ENGINE_CHOICES = ('auto',) + tuple(ENGINES)


class EngineError(RuntimeError):
    """A model that cannot be loaded or run; the message says what to fix."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple          # ints; None where the dimension is dynamic
    dtype: np.dtype
    layout: str = 'NCHW'  # NCHW or NHWC, from the shape
    quant: dict = field(default_factory=dict)  # scale/zero_point/axis when quantized

    @property
    def spatial_hw(self) -> tuple | None:
        """(H, W) for a fixed-size image input, None when either is dynamic."""
        h, w = (self.shape[2], self.shape[3]) if self.layout == 'NCHW' else (self.shape[1], self.shape[2])
        return None if h is None or w is None else (h, w)


def guess_layout(shape: tuple) -> str:
    """NHWC when the last axis looks like channels and the second does not."""
    if len(shape) == 4 and shape[3] in (1, 2, 3, 4) and shape[1] not in (1, 2, 3, 4):
        return 'NHWC'
    return 'NCHW'


class Engine:
    """Base class: subclasses set `inputs`/`outputs` and implement `run`."""
    name = 'engine'
    inputs: list
    outputs: list

    def run(self, feeds: dict) -> np.ndarray:
        """Inputs by name -> the first output (the depth map) as an ndarray."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Ask calls in flight to return early (shutdown); engines that cannot, ignore it."""

    def close(self) -> None:
        pass

    def describe(self) -> str:
        ins = ', '.join(f'{t.name}{list(t.shape)} {np.dtype(t.dtype).name}' for t in self.inputs)
        outs = ', '.join(f'{t.name}{list(t.shape)}' for t in self.outputs)
        return f"{self.name} '{getattr(self, 'path', '?')}': in {ins} -> out {outs}"


def engine_for_path(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    for kind, (_, _, exts) in ENGINES.items():
        if ext in exts:
            return kind
    raise EngineError(f"cannot tell the engine from '{path}': use a .onnx or .hbm file, "
                      f"or set engine to one of {list(ENGINES)}")


def open_engine(path: str, engine: str = 'auto', **options) -> Engine:
    """Load `path` with the named engine ('auto': by file extension)."""
    if not os.path.isfile(path):
        raise EngineError(f"model file '{path}' does not exist: set model_path to a .onnx or "
                          f".hbm file (`depth-anything-ros make-test-model` builds a test model)")
    kind = engine_for_path(path) if engine == 'auto' else engine
    if kind not in ENGINES:
        raise EngineError(f"engine '{engine}' is not one of {list(ENGINE_CHOICES)}")
    module_name, class_name, _ = ENGINES[kind]
    module = importlib.import_module(module_name, __name__)
    engine = getattr(module, class_name)(path, **options)
    engine.path = path
    return engine
