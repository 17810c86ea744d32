"""Inference engines behind one small interface.

An engine loads one model file, describes its inputs and outputs (read from
the model, never assumed), and maps input arrays to every output, by name (a
Depth Anything 3 model gives depth beside its sky or confidence map). `run`
must be safe to call from several worker threads at once.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class EngineKind:
    """Where an engine lives, the model files `auto` gives it, the constructor options it takes."""
    module: str
    class_name: str
    extensions: tuple
    options: tuple


ENGINES = {
    'onnxruntime': EngineKind('.onnxruntime_engine', 'OnnxRuntimeEngine', ('.onnx',),
                              ('providers', 'intra_op_threads')),
    'hbm': EngineKind('.hbm_engine', 'HbmEngine', ('.hbm', '.bin'), ('bpu_priority', 'bpu_cores')),
    'openvino': EngineKind('.openvino_engine', 'OpenVinoEngine', ('.xml',), ('intra_op_threads',)),
}
ENGINE_CHOICES = ('auto',) + tuple(ENGINES)
ENGINE_OPTIONS = tuple(sorted({name for kind in ENGINES.values() for name in kind.options}))


class EngineError(RuntimeError):
    """A model that cannot be loaded or run; the message says what to fix."""


class MissingRuntime(EngineError):
    """The engine's runtime (onnxruntime, openvino, hbm_runtime) is not installed here; the
    message (one line) says what to install."""


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
    """Base class: subclasses set `path`, `inputs`/`outputs` and implement `run`."""
    name = 'engine'
    path: str
    inputs: list
    outputs: list

    def run(self, feeds: dict) -> dict:
        """Inputs by name -> every output by name ({name: ndarray}, in `outputs` order; the first
        is the depth map)."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Ask calls in flight to return early (shutdown); engines that cannot, ignore it."""

    def close(self) -> None:
        pass

    def describe(self) -> str:
        ins = ', '.join(f'{t.name}{list(t.shape)} {np.dtype(t.dtype).name}' for t in self.inputs)
        outs = ', '.join(f'{t.name}{list(t.shape)}' for t in self.outputs)
        return f"{self.name} '{self.path}': in {ins} -> out {outs}"


def model_file_text() -> str:
    """The model files `auto` knows, for help texts and errors: '.onnx (onnxruntime), .hbm/.bin (hbm), ...'."""
    return ', '.join(f"{'/'.join(kind.extensions)} ({name})" for name, kind in ENGINES.items())


def engine_for_path(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    for name, kind in ENGINES.items():
        if ext in kind.extensions:
            return name
    raise EngineError(f"cannot tell the engine from '{path}': use a model file {model_file_text()}, "
                      f"or set engine to one of {list(ENGINES)}")


def open_engine(path: str, engine: str = 'auto', **options) -> Engine:
    """Load `path` with the named engine ('auto': by file extension). `options` may hold every
    engine's options (the node passes all of its own): each engine gets only those it takes, and a
    name no engine takes (a typo) is an error rather than silently ignored."""
    unknown = sorted(set(options) - set(ENGINE_OPTIONS))
    if unknown:
        raise EngineError(f'unknown engine option(s) {unknown}: the options are {list(ENGINE_OPTIONS)}')
    if not os.path.isfile(path):
        raise EngineError(f"model file '{path}' does not exist: set model_path to a model file, {model_file_text()}; "
                          f"`depth-anything-ros make-test-model` builds a test model")
    name = engine_for_path(path) if engine == 'auto' else engine
    if name not in ENGINES:
        raise EngineError(f"engine '{engine}' is not one of {list(ENGINE_CHOICES)}")
    kind = ENGINES[name]
    cls = getattr(importlib.import_module(kind.module, __name__), kind.class_name)
    return cls(path, **{k: v for k, v in options.items() if k in kind.options})
