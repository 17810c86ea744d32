"""RDK S100 BPU engine: a compiled `.hbm` model through D-Robotics' `hbm_runtime`.

Everything about the tensors (names, shapes, dtypes, quantization, strides)
is read from the runtime. Integer tensors with SCALE quantization are
(de)quantized here so callers always feed and receive float32, whatever the
compiler chose. Outputs are copied: the runtime's arrays may be views of
memory it reuses on the next call, and the BPU may pad rows (`output_strides`).
"""
from __future__ import annotations

import numpy as np

from . import Engine, EngineError, MissingRuntime, TensorSpec, guess_layout

INSTALL_HINT = ("on the RDK S100 install it: `sudo apt-get install hobot-dnn` (its libraries), then "
                "`pip install hbm-runtime==0.1.0.post1` (aarch64, Python 3.10); or use an ONNX model "
                "with engine 'onnxruntime' instead")

# hbDNNDataType member name -> numpy dtype (S4/U4 have no numpy equivalent).
_DTYPES = {'U8': np.uint8, 'S8': np.int8, 'F16': np.float16, 'S16': np.int16, 'U16': np.uint16,
           'F32': np.float32, 'S32': np.int32, 'U32': np.uint32, 'F64': np.float64,
           'S64': np.int64, 'U64': np.uint64, 'BOOL8': np.bool_}


class HbmEngine(Engine):
    name = 'hbm'

    def __init__(self, path: str, bpu_priority: int | None = None, bpu_cores=None):
        self.path = path
        try:
            import hbm_runtime
        except (ImportError, RuntimeError, OSError) as exc:
            # The real package raises RuntimeError at import when libdnn/libhbucp are missing,
            # with a several-line message: its first line is the one that says what.
            first = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(':')
            raise MissingRuntime(f"cannot load '{path}': hbm_runtime is unavailable ({first}); "
                                 f'{INSTALL_HINT}') from exc
        try:
            self.runtime = hbm_runtime.HB_HBMRuntime(path)
            names = list(self.runtime.model_names)
        except Exception as exc:  # the binding's exception types are not documented
            raise EngineError(f"hbm_runtime cannot load '{path}': {exc}") from exc
        if not names:
            raise EngineError(f"'{path}' contains no model")
        self.model_name = names[0]
        dtype_enum = hbm_runtime.hbDNNDataType
        scale_type = hbm_runtime.hbDNNQuantiType.SCALE
        rt, m = self.runtime, self.model_name
        self.inputs = [_spec(n, rt.input_shapes[m][n], rt.input_dtypes[m][n], rt.input_quants[m][n],
                             dtype_enum, scale_type) for n in rt.input_names[m]]
        self.outputs = [_spec(n, rt.output_shapes[m][n], rt.output_dtypes[m][n],
                              rt.output_quants[m][n], dtype_enum, scale_type)
                        for n in rt.output_names[m]]
        if not self.outputs:
            raise EngineError(f"model '{m}' in '{path}' has no outputs")
        self._input_by_name = {s.name: s for s in self.inputs}
        self._output_strides = {o.name: _strides(rt.output_strides[m][o.name], o) for o in self.outputs}
        if bpu_priority is not None or bpu_cores is not None:
            self._schedule(bpu_priority, bpu_cores)

    def _schedule(self, priority, cores) -> None:
        kwargs = {}
        if priority is not None:
            if isinstance(priority, bool) or not isinstance(priority, (int, np.integer)) \
                    or not 0 <= priority <= 255:
                raise EngineError(f'bpu_priority {priority!r} must be an integer in 0..255 '
                                  '(higher runs first)')
            kwargs['priority'] = {self.model_name: int(priority)}
        if cores is not None:
            cores = [cores] if isinstance(cores, (int, np.integer)) else list(cores)
            if not cores or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0
                                for c in cores):
                raise EngineError(f'bpu_cores {cores!r} must be a non-empty list of core indices')
            kwargs['bpu_cores'] = {self.model_name: [int(c) for c in cores]}
        try:
            self.runtime.set_scheduling_params(**kwargs)
        except Exception as exc:
            raise EngineError(f'hbm_runtime rejected scheduling parameters {kwargs}: {exc}') from exc

    def run(self, feeds: dict) -> dict:
        # Only locals per call: several worker threads may be in here at once.
        tensors = {}
        for name, value in feeds.items():
            spec = self._input_by_name.get(name)
            if spec is None:
                raise EngineError(f"model '{self.model_name}' has no input '{name}' "
                                  f'(inputs: {list(self._input_by_name)})')
            tensors[name] = _to_input(np.asarray(value), spec)
        out = self.runtime.run(tensors)[self.model_name]
        return {o.name: _from_output(owned_output(out[o.name], o, self._output_strides[o.name]), o)
                for o in self.outputs}


def _spec(name, shape, dtype_value, quant, dtype_enum, scale_type) -> TensorSpec:
    shape = tuple(int(d) if int(d) > 0 else None for d in shape)
    dtype = _numpy_dtype(dtype_value, dtype_enum, name)
    q = {}
    if quant is not None and quant.quant_type == scale_type:
        scale = np.asarray(quant.scale, np.float32).reshape(-1)
        zero = np.asarray(quant.zero_point, np.int32).reshape(-1)
        q = {'scale': scale, 'zero_point': zero if zero.size else np.zeros(1, np.int32),
             'axis': int(quant.axis)}
    return TensorSpec(name, shape, dtype, guess_layout(shape), q)


def _strides(strides, spec: TensorSpec):
    """The output's byte strides from the runtime, or None where it gives none usable
    (dynamic: -1). Only needed when the runtime hands back a padded buffer."""
    strides = [int(v) for v in strides or ()]
    if len(strides) != len(spec.shape) or any(v <= 0 for v in strides) or None in spec.shape:
        return None
    return tuple(strides)


def owned_output(value, spec: TensorSpec, strides) -> np.ndarray:
    """A C-contiguous copy of the output with its logical shape `spec.shape`.

    Takes what the runtime may hand back: an array of the logical shape (any strides,
    maybe a view of memory it reuses), one padded to wider rows (the logical corner is
    the tensor), or the raw buffer, read with the runtime's `output_strides` (bytes).
    """
    value = np.asarray(value)
    shape = spec.shape
    if value.shape == shape:
        return np.array(value, order='C', copy=True)
    if value.size == np.prod(shape) and value.ndim != len(shape):   # e.g. 1x518x686 for 1x1x518x686
        return np.array(value, order='C', copy=True).reshape(shape)
    if value.ndim == len(shape) and all(v >= s for v, s in zip(value.shape, shape)):
        return np.array(value[tuple(slice(0, s) for s in shape)], order='C', copy=True)
    if strides is not None and value.flags.c_contiguous:
        raw = value.reshape(-1).view(np.uint8)
        needed = sum((n - 1) * st for n, st in zip(shape, strides)) + spec.dtype.itemsize
        if raw.size >= needed:
            view = np.ndarray(shape, spec.dtype, buffer=raw, strides=strides)
            return np.array(view, order='C', copy=True)
    raise EngineError(f"output '{spec.name}' came back as {value.dtype} {list(value.shape)}, which is "
                      f'not the model\'s {spec.dtype} {list(shape)} with strides {strides}')


def _numpy_dtype(value, dtype_enum, tensor_name) -> np.dtype:
    for enum_name, dtype in _DTYPES.items():
        if hasattr(dtype_enum, enum_name) and value == getattr(dtype_enum, enum_name):
            return np.dtype(dtype)
    raise EngineError(f"tensor '{tensor_name}' has BPU data type {value}, which this engine "
                      f'cannot feed or read (supported: {sorted(_DTYPES)})')


def _to_input(value: np.ndarray, spec: TensorSpec) -> np.ndarray:
    integer = np.issubdtype(spec.dtype, np.integer)
    if spec.quant and integer and np.issubdtype(value.dtype, np.floating):
        value = quantize(value, spec.quant['scale'], spec.quant['zero_point'],
                         spec.quant['axis'], spec.dtype)
    return np.ascontiguousarray(value, dtype=spec.dtype)


def _from_output(value: np.ndarray, spec: TensorSpec) -> np.ndarray:
    # Dequantize only what came back as integers: a runtime that already
    # returns float for a quantized tensor must not be scaled twice.
    if spec.quant and np.issubdtype(value.dtype, np.integer):
        return dequantize(value, spec.quant['scale'], spec.quant['zero_point'], spec.quant['axis'])
    return value.astype(np.float32, copy=False)


def _along_axis(values, ndim: int, axis: int) -> np.ndarray:
    """Per-tensor (size 1) as a scalar array; per-channel reshaped to broadcast on `axis`."""
    values = np.asarray(values).reshape(-1)
    if values.size == 1:
        return values.reshape(())
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def quantize(x: np.ndarray, scale, zero_point, axis: int, dtype) -> np.ndarray:
    """q = clip(round(x / scale) + zero_point) in `dtype`; scale/zero_point per tensor or per `axis`."""
    x = np.asarray(x, np.float32)
    s = _along_axis(np.asarray(scale, np.float32), x.ndim, axis)
    z = _along_axis(np.asarray(zero_point, np.float32), x.ndim, axis)
    info = np.iinfo(dtype)
    q = np.rint(x / s) + z
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale, zero_point, axis: int) -> np.ndarray:
    """(q - zero_point) * scale as float32; scale/zero_point per tensor or per `axis`."""
    q = np.asarray(q)
    s = _along_axis(np.asarray(scale, np.float32), q.ndim, axis)
    z = _along_axis(np.asarray(zero_point, np.float32), q.ndim, axis)
    return ((q.astype(np.float32) - z) * s).astype(np.float32, copy=False)
