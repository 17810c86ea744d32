"""OpenVINO engine: Intel CPUs (x86), `.xml` IR or `.onnx` read by openvino.Core."""
from __future__ import annotations

import queue
import threading

import numpy as np

from . import Engine, EngineError, MissingRuntime, TensorSpec, guess_layout


class OpenVinoEngine(Engine):
    name = 'openvino'

    def __init__(self, path: str, intra_op_threads: int = 0):
        self.path = path
        try:
            import openvino as ov
        except ImportError as exc:
            raise MissingRuntime('openvino is not installed: pip install openvino '
                                 '(or use engine: onnxruntime with a .onnx model)') from exc
        core = ov.Core()
        # f32: on CPUs with AMX/AVX512-BF16 OpenVINO otherwise runs bf16, whose depth
        # differs from the float model by a few % of its range.
        config = {'INFERENCE_PRECISION_HINT': 'f32'}
        if intra_op_threads:
            config['INFERENCE_NUM_THREADS'] = int(intra_op_threads)
        try:
            self.compiled = core.compile_model(core.read_model(path), 'CPU', config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long C++ traces
            raise EngineError(f"OpenVINO cannot load '{path}': {str(exc).splitlines()[0]}") from exc
        self.inputs = [_spec(p, _input_name(p)) for p in self.compiled.inputs]
        self.outputs = [_spec(p, _output_name(p)) for p in self.compiled.outputs]
        self._output_ports = list(zip([o.name for o in self.outputs], self.compiled.outputs))
        # One infer request serves one call at a time: keep idle ones for reuse, make more on demand.
        self._idle = queue.SimpleQueue()
        self._create_lock = threading.Lock()

    def run(self, feeds: dict) -> dict:
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            with self._create_lock:
                request = self.compiled.create_infer_request()
        try:
            # share_outputs=False (the default) copies the result out of the request's buffers.
            result = request.infer(feeds)
            return {name: result[port] for name, port in self._output_ports}
        finally:
            self._idle.put(request)

    def close(self) -> None:
        self._idle = queue.SimpleQueue()
        self.compiled = None


def _input_name(port) -> str:
    # ONNX inputs gain internal tensor names in OpenVINO; the Parameter's own name is the model's.
    names = port.get_names()
    friendly = port.get_node().get_friendly_name()
    return friendly if friendly in names or not names else sorted(names)[0]


def _output_name(port) -> str:
    names = port.get_names()
    friendly = port.get_node().get_friendly_name().split('/sink_port')[0]
    return friendly if friendly in names or not names else sorted(names)[0]


def _spec(port, name: str) -> TensorSpec:
    shape = tuple(None if d.is_dynamic else d.get_length() for d in port.get_partial_shape())
    try:
        dtype = np.dtype(port.get_element_type().to_dtype())
    except (TypeError, RuntimeError):
        dtype = np.dtype(np.float32)
    return TensorSpec(name, shape, dtype, guess_layout(shape))
