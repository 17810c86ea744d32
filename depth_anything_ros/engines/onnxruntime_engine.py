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
        # A dynamic model's memory follows each frame's shape. ORT's CPU arena grows in powers of
        # two and never gives memory back: one odd frame would raise the node's RSS for good (a
        # 100x1000 frame at the 4:1 input cap: 2.0 GB peak, 1.0 GB without the arena). Measured
        # cost of going without on DA-V2 Small, 518x686, 2 threads: 4-10 % per call, so fixed
        # models keep it. The input shapes are read from the file: the model is loaded once.
        arena = not _has_dynamic_image_input(path)
        self.session = _session(ort, path, wanted, intra_op_threads, arena)
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]
        self._ort = ort
        self._lock = threading.Lock()
        self._in_flight = set()  # RunOptions of calls running now, so cancel() can stop them

    def run(self, feeds: dict) -> dict:
        options = self._ort.RunOptions()
        with self._lock:
            self._in_flight.add(options)
        try:
            return dict(zip(self._output_names, self.session.run(self._output_names, feeds, options)))
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


def _has_dynamic_image_input(path: str) -> bool:
    """Whether an .onnx file has a 4-D input whose height or width is not fixed, from the graph's
    input declarations alone (protobuf fields: ModelProto.graph 7, GraphProto.input 11,
    ValueInfoProto.type 2, TypeProto.tensor_type 1, Tensor.shape 2, TensorShapeProto.dim 1,
    Dimension.dim_value 1); weights and nodes are skipped, never read. A file this cannot read
    counts as dynamic (no arena: the memory-safe choice) and ONNX Runtime then says what is wrong."""
    try:
        with open(path, 'rb') as f:
            shapes = [_input_shape(f, span) for span in _spans(f, _field(f, (0, _size(f)), 7), 11)]
    except (OSError, ValueError):
        return True
    return any(len(shape) == 4 and TensorSpec('', shape, np.dtype(np.float32), guess_layout(shape)).spatial_hw
               is None for shape in shapes)


def _input_shape(f, value_info: tuple) -> tuple:
    """A ValueInfoProto's tensor shape: a dimension without a positive dim_value is None."""
    shape = _field(f, _field(f, _field(f, value_info, 2), 1), 2)
    return tuple(_dim_value(f, dim) for dim in _spans(f, shape, 1))


def _dim_value(f, dim: tuple):
    f.seek(dim[0])
    for number, wire, value in _fields(f, dim):
        if number == 1 and wire == 0 and value > 0:
            return value
    return None


def _field(f, span: tuple, number: int) -> tuple:
    """The (start, end) of the first length-delimited field `number` inside `span`; ValueError if absent."""
    found = _spans(f, span, number)
    if not found:
        raise ValueError(f'no protobuf field {number}')
    return found[0]


def _spans(f, span: tuple, number: int) -> list:
    """The (start, end) of every length-delimited field `number` inside `span`."""
    f.seek(span[0])
    return [value for n, wire, value in _fields(f, span) if n == number and wire == 2]


def _fields(f, span: tuple):
    """(number, wire type, varint value or (start, end)) of the fields from the file's position to
    the end of `span`; the payloads of length-delimited fields are skipped, not read."""
    while f.tell() < span[1]:
        key = _varint(f)
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, _varint(f)
        elif wire == 2:
            length = _varint(f)
            start = f.tell()
            if start + length > span[1]:
                raise ValueError('truncated protobuf field')
            f.seek(start + length)
            yield number, wire, (start, start + length)
        elif wire in (1, 5):
            f.seek(8 if wire == 1 else 4, 1)
        else:
            raise ValueError(f'protobuf wire type {wire}')


def _varint(f) -> int:
    value = shift = 0
    while True:
        byte = f.read(1)
        if not byte or shift > 63:
            raise ValueError('truncated protobuf varint')
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7


def _size(f) -> int:
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    return size
