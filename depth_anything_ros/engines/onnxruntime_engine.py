"""ONNX Runtime engine: any PC or Jetson, CPU by default, CUDA/TensorRT on request."""
from __future__ import annotations

import threading

import numpy as np

from . import Engine, EngineError, MissingRuntime, TensorSpec, guess_layout

PROVIDER_NAMES = {'cpu': 'CPUExecutionProvider', 'cuda': 'CUDAExecutionProvider',
                  'tensorrt': 'TensorrtExecutionProvider'}
_ORT_DTYPES = {'tensor(float)': np.float32, 'tensor(float16)': np.float16,
               'tensor(uint8)': np.uint8, 'tensor(int8)': np.int8}


class OnnxRuntimeEngine(Engine):
    name = 'onnxruntime'

    def __init__(self, path: str, providers=('cpu',), intra_op_threads: int = 0):
        self.path = path
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingRuntime("onnxruntime is not installed: pip install onnxruntime (onnxruntime-gpu for "
                                 "CUDA/TensorRT; on a PC without ROS pip install '.[pc]' brings it)") from exc
        wanted = [_provider_name(p) for p in providers]
        available = ort.get_available_providers()
        missing = [p for p in wanted if p not in available]
        if missing:
            raise EngineError(f'ONNX Runtime providers {missing} are not available here '
                              f'(available: {available}); install onnxruntime-gpu or use providers: [cpu]')
        self.session = _session(ort, path, wanted, intra_op_threads, arena=True)
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        if any(len(spec.shape) == 4 and spec.spatial_hw is None for spec in self.inputs):
            # A dynamic model's memory follows each frame's shape. ORT's CPU arena grows in
            # powers of two and never gives memory back: one odd frame would raise the node's
            # RSS for good (a 100x1000 frame at the 4:1 input cap: 2.0 GB peak, 1.0 GB without
            # the arena). Measured cost on DA-V2 Small, 518x686, 2 threads: 4-10 % per call.
            self.session = _session(ort, path, wanted, intra_op_threads, arena=False)
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self._output_name = self.outputs[0].name
        self._ort = ort
        self._lock = threading.Lock()
        self._in_flight = set()  # RunOptions of calls running now, so cancel() can stop them

    def run(self, feeds: dict) -> np.ndarray:
        options = self._ort.RunOptions()
        with self._lock:
            self._in_flight.add(options)
        try:
            return self.session.run([self._output_name], feeds, options)[0]
        finally:
            with self._lock:
                self._in_flight.discard(options)

    def cancel(self) -> None:
        # A 518x686 inference takes seconds on a small CPU: Ctrl-C should not wait for it.
        with self._lock:
            for options in self._in_flight:
                options.terminate = True


def _session(ort, path: str, providers: list, intra_op_threads: int, arena: bool):
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.enable_cpu_mem_arena = arena
    try:
        return ort.InferenceSession(path, options, providers=providers)
    except Exception as exc:  # ORT raises several unrelated types for a bad file
        raise EngineError(f"ONNX Runtime cannot load '{path}': {exc}") from exc


def _provider_name(name: str) -> str:
    return PROVIDER_NAMES.get(name.lower(), name)


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
    return TensorSpec(arg.name, shape, np.dtype(_ORT_DTYPES.get(arg.type, np.float32)),
                      guess_layout(shape))
