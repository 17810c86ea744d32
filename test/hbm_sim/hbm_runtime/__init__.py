"""Test double of D-Robotics' `hbm_runtime` (RDK S100), computed with ONNX Runtime.

Same class, property and enum names and the same nested-dict shapes as the
vendor's HB_HBMRuntime.pyi, so the engine is exercised the way it will be on a
board. The '.hbm' file is a small JSON file (see `write_sim_model`) naming an
ONNX model and a variant:

- float_rgb: like depth_any.hbm: model 'depth_any', float32 NCHW RGB input,
  float32 outputs 1xHxW, one per ONNX output (a DA3 model's depth and sky or depth_conf), by name.
- nv12: uint8 inputs 'y' 1xHxWx1 and 'uv' 1x(H/2)x(W/2)x2 (NHWC), converted to
  RGB and ImageNet-normalized in the "graph", like a model compiled with
  input_type_rt nv12: `nv12_range` 'video' (input_space_and_range bt601_video:
  OpenCV's BT.601 video-range conversion) or 'full' ('regular': the JFIF formulas).
- int16_out: float RGB input, int16 outputs with SCALE quantization
  (a per-tensor scale for each output, fixed when the file is written).

Optional `input_quant` turns the float RGB input into a quantized int16 input
(per-tensor or per-axis), dequantized inside.

Outputs, like the real runtime's may be: written into a buffer that the next
call (of the same thread) overwrites, its rows `output_pad` elements wider than the tensor
(`output_strides` says so; the padding is filled with junk), and handed back
as `output_form` 'view' (the logical shape, strided into that buffer),
'padded' (the whole padded array) or 'raw' (the buffer's bytes). What the real
BPU does beyond this (colour range of its NV12 conversion) is not simulated.
"""
from __future__ import annotations

import enum
import json
import os
import threading

import numpy as np

VARIANTS = ('float_rgb', 'nv12', 'int16_out')
OUTPUT_FORMS = ('view', 'padded', 'raw')
MODEL_NAME = 'depth_any'
_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


class hbDNNDataType(enum.IntEnum):
    S4 = 0
    U4 = 1
    S8 = 2
    U8 = 3
    F16 = 4
    S16 = 5
    U16 = 6
    F32 = 7
    S32 = 8
    U32 = 9
    F64 = 10
    S64 = 11
    U64 = 12
    BOOL8 = 13
    MAX = 14


class hbDNNQuantiType(enum.IntEnum):
    NONE = 0
    SCALE = 1


_NUMPY = {hbDNNDataType.U8: np.uint8, hbDNNDataType.S8: np.int8, hbDNNDataType.S16: np.int16,
          hbDNNDataType.F32: np.float32}


class QuantParams:
    def __init__(self, quant_type=hbDNNQuantiType.NONE, axis=0, scale=(), zero_point=()):
        self.quant_type = quant_type
        self.axis = axis
        self.scale = np.asarray(scale, np.float32)
        self.zero_point = np.asarray(zero_point, np.int32)


class SchedParam:
    def __init__(self):
        self.priority = 0
        self.customId = 0
        self.bpu_cores = [0]
        self.deviceId = 0


class _Tensor:
    def __init__(self, name, shape, dtype, quant=None, row_pad=0):
        self.name, self.shape, self.dtype = name, list(shape), dtype
        self.quant = quant or QuantParams()
        self.row_pad = row_pad   # elements after each row of the last axis

    @property
    def padded_shape(self):
        return self.shape[:-1] + [self.shape[-1] + self.row_pad]

    @property
    def strides(self):
        item = np.dtype(_NUMPY[self.dtype]).itemsize
        padded = self.padded_shape
        return [int(item * np.prod(padded[i + 1:])) for i in range(len(padded))]


def write_sim_model(path, onnx_path, variant='float_rgb', output_scale=None, input_quant=None,
                    output_pad=0, output_form='view', nv12_range='video'):
    """Write the JSON '.hbm' stand-in. int16_out: `output_scale` for every output, or without it
    each output's own: twice its peak on a mid-grey image over 32767, so real images stay unclipped."""
    if variant not in VARIANTS:
        raise ValueError(f'variant {variant!r} is not one of {VARIANTS}')
    if output_form not in OUTPUT_FORMS:
        raise ValueError(f'output_form {output_form!r} is not one of {OUTPUT_FORMS}')
    if variant == 'int16_out':
        import onnxruntime as ort
        session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
        arg = session.get_inputs()[0]
        grey = np.zeros(arg.shape, np.float32)  # mid-grey after ImageNet normalization
        peaks = [float(np.abs(out).max()) for out in session.run(None, {arg.name: grey})]
        output_scale = [output_scale or (2 * peak / 32767 or 1.0 / 32767) for peak in peaks]
    spec = {'onnx': os.path.abspath(str(onnx_path)), 'variant': variant,
            'output_scale': output_scale, 'input_quant': input_quant,
            'output_pad': int(output_pad), 'output_form': output_form, 'nv12_range': nv12_range}
    with open(path, 'w') as f:
        json.dump(spec, f)
    return str(path)


class HB_HBMRuntime:
    def __init__(self, model_file):
        import onnxruntime as ort
        files = [model_file] if isinstance(model_file, (str, os.PathLike)) else list(model_file)
        if len(files) != 1:
            raise RuntimeError('the simulator loads exactly one model file')
        try:
            with open(files[0]) as f:
                spec = json.load(f)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f'hbDNNInitializeFromFiles failed for {files[0]}: {exc}') from None
        self._variant = spec['variant']
        self._session = ort.InferenceSession(spec['onnx'], providers=['CPUExecutionProvider'])
        onnx_in = self._session.get_inputs()[0]
        self._onnx_in = onnx_in.name
        _, _, h, w = onnx_in.shape
        if self._variant == 'nv12':
            self._inputs = [_Tensor('y', (1, h, w, 1), hbDNNDataType.U8),
                            _Tensor('uv', (1, h // 2, w // 2, 2), hbDNNDataType.U8)]
        elif spec.get('input_quant'):
            q = spec['input_quant']
            self._inputs = [_Tensor(onnx_in.name, (1, 3, h, w), hbDNNDataType.S16,
                                    QuantParams(hbDNNQuantiType.SCALE, q.get('axis', 0),
                                                q['scale'], q.get('zero_point', [0])))]
        else:
            self._inputs = [_Tensor(onnx_in.name, (1, 3, h, w), hbDNNDataType.F32)]
        pad = spec.get('output_pad', 0)
        names = [o.name for o in self._session.get_outputs()]
        if self._variant == 'int16_out':
            self._outputs = [_Tensor(name, (1, h, w), hbDNNDataType.S16,
                                     QuantParams(hbDNNQuantiType.SCALE, 0, [scale], [0]), pad)
                             for name, scale in zip(names, spec['output_scale'])]
        else:
            self._outputs = [_Tensor(name, (1, h, w), hbDNNDataType.F32, row_pad=pad) for name in names]
        self._output_form = spec.get('output_form', 'view')
        self._nv12_range = spec.get('nv12_range', 'video')
        # Output buffers reused call after call, one per calling thread (the runtime
        # allocates per call and may hand the same memory out again).
        self._buffers = threading.local()
        self._sched = SchedParam()
        self._lock = threading.Lock()
        # Test hooks: what the engine asked for.
        self.sched_calls = []
        self.run_count = 0
        self.fed_dtypes = {}

    @staticmethod
    def version():
        return 'sim-0.1'

    # -- metadata (fresh dicts each time, like the binding) -----------------
    def _per_model(self, value):
        return {MODEL_NAME: value}

    @property
    def model_names(self):
        return [MODEL_NAME]

    @property
    def model_count(self):
        return 1

    @property
    def input_counts(self):
        return self._per_model(len(self._inputs))

    @property
    def input_names(self):
        return self._per_model([t.name for t in self._inputs])

    @property
    def input_descs(self):
        return self._per_model({t.name: '' for t in self._inputs})

    @property
    def input_shapes(self):
        return self._per_model({t.name: list(t.shape) for t in self._inputs})

    @property
    def input_dtypes(self):
        return self._per_model({t.name: t.dtype for t in self._inputs})

    @property
    def input_quants(self):
        return self._per_model({t.name: t.quant for t in self._inputs})

    @property
    def input_strides(self):
        return self._per_model({t.name: t.strides for t in self._inputs})

    @property
    def output_counts(self):
        return self._per_model(len(self._outputs))

    @property
    def output_names(self):
        return self._per_model([t.name for t in self._outputs])

    @property
    def output_descs(self):
        return self._per_model({t.name: '' for t in self._outputs})

    @property
    def output_shapes(self):
        return self._per_model({t.name: list(t.shape) for t in self._outputs})

    @property
    def output_dtypes(self):
        return self._per_model({t.name: t.dtype for t in self._outputs})

    @property
    def output_quants(self):
        return self._per_model({t.name: t.quant for t in self._outputs})

    @property
    def output_strides(self):
        return self._per_model({t.name: t.strides for t in self._outputs})

    @property
    def model_descs(self):
        return self._per_model(f'simulated {self._variant}')

    @property
    def hbm_descs(self):
        return self._per_model('')

    @property
    def sched_params(self):
        return self._per_model(self._sched)

    def set_scheduling_params(self, priority=None, bpu_cores=None, custom_id=None, device_id=None):
        with self._lock:
            self.sched_calls.append({k: v for k, v in (('priority', priority), ('bpu_cores', bpu_cores),
                                                       ('custom_id', custom_id), ('device_id', device_id))
                                     if v is not None})
            for name, table in (('priority', priority), ('bpu_cores', bpu_cores)):
                for model, value in (table or {}).items():
                    if model != MODEL_NAME:
                        raise RuntimeError(f'unknown model {model!r}')
                    if name == 'priority' and not 0 <= value <= 255:
                        raise RuntimeError(f'priority {value} out of range 0..255')
                    setattr(self._sched, name, value)

    # -- inference ----------------------------------------------------------
    def run(self, *args, **kwargs):
        feeds = args[0] if args else kwargs
        if isinstance(feeds, np.ndarray):
            if len(self._inputs) != 1:
                raise RuntimeError('a bare array needs a single-input model')
            feeds = {self._inputs[0].name: feeds}
        if MODEL_NAME in feeds and isinstance(feeds[MODEL_NAME], dict):
            feeds = feeds[MODEL_NAME]
        arrays = {}
        for t in self._inputs:
            if t.name not in feeds:
                raise RuntimeError(f'missing input {t.name!r}')
            a = feeds[t.name]
            if a.dtype != _NUMPY[t.dtype] or list(a.shape) != t.shape:
                raise RuntimeError(f'input {t.name!r}: got {a.dtype} {list(a.shape)}, model wants '
                                   f'{np.dtype(_NUMPY[t.dtype])} {t.shape}')
            arrays[t.name] = a
        with self._lock:
            self.run_count += 1
            self.fed_dtypes = {k: v.dtype for k, v in arrays.items()}
        rgb = self._to_float_input(arrays)
        outs = self._session.run([o.name for o in self._outputs], {self._onnx_in: rgb})
        return {MODEL_NAME: {o.name: self._handed(o, out) for o, out in zip(self._outputs, outs)}}

    def _handed(self, o, out):
        """One output as the runtime hands it back: in this thread's reused (padded) buffer."""
        if o.dtype == hbDNNDataType.S16:
            out = np.clip(np.rint(out / o.quant.scale[0]), -32768, 32767).astype(np.int16)
        buffers = getattr(self._buffers, 'out', None)
        if buffers is None:
            buffers = self._buffers.out = {}
        buffer, width = buffers.get(o.name), o.shape[-1]
        if buffer is None:
            buffer = buffers[o.name] = np.empty(o.padded_shape, _NUMPY[o.dtype])
        buffer[..., width:] = np.iinfo(buffer.dtype).max if buffer.dtype.kind == 'i' else np.nan
        buffer[..., :width] = out
        return {'view': buffer[..., :width], 'padded': buffer,
                'raw': buffer.reshape(-1).view(np.uint8)}[self._output_form]

    def _to_float_input(self, arrays):
        if self._variant == 'nv12':
            import cv2
            y = arrays['y'][0, :, :, 0]
            uv = arrays['uv'][0]
            h, w = y.shape
            if self._nv12_range == 'full':
                u, v = (uv[..., i].repeat(2, 0).repeat(2, 1).astype(np.float32) - 128 for i in (0, 1))
                luma = y.astype(np.float32)
                rgb = np.stack([luma + 1.402 * v, luma - 0.344136 * u - 0.714136 * v, luma + 1.772 * u], -1)
                rgb = np.clip(np.rint(rgb), 0, 255)
            else:
                nv12 = np.concatenate([y, uv.reshape(h // 2, w)], axis=0)
                rgb = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12).astype(np.float32)
            return np.ascontiguousarray(((rgb - _MEAN) / _STD).transpose(2, 0, 1))[None]
        t = self._inputs[0]
        x = arrays[t.name]
        if t.quant.quant_type == hbDNNQuantiType.SCALE:
            def along_axis(v):
                shape = [1] * x.ndim
                shape[t.quant.axis] = -1
                return v.reshape(shape) if v.size > 1 else v.reshape(())
            x = (x.astype(np.float32) - along_axis(t.quant.zero_point)) * along_axis(t.quant.scale)
        return x.astype(np.float32, copy=False)
