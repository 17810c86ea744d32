"""HbmEngine and the NV12 path, against the hbm_runtime simulator in test/hbm_sim.

The simulator follows the vendor's HB_HBMRuntime.pyi and computes with ONNX
Runtime, so these tests check our use of the documented API and our numerics,
not the BPU itself (that needs a board: `depth-anything-ros compare`).
"""
import sys
import threading

import cv2
import numpy as np
import pytest

from depth_anything_ros.engines import EngineError, TensorSpec, engine_for_path, open_engine
from depth_anything_ros.engines.hbm_engine import HbmEngine, dequantize, quantize
from depth_anything_ros.engines.onnxruntime_engine import OnnxRuntimeEngine
from depth_anything_ros.core.image_codec import Frame
from depth_anything_ros.core.depth_metrics import compare_depth
from depth_anything_ros.core.nv12_input import Nv12Preprocessor, nv12_input_kind
from depth_anything_ros.core.estimator import make_preprocessor
from depth_anything_ros.core.params import defaults
from depth_anything_ros.core.preprocess import RgbPreprocessor
from depth_anything_ros.core.processor_factory import build_processor
from depth_anything_ros.core.recipe import Recipe

from helpers.frames import bgr_frame, nv12_frame, nv12_specs
from helpers.hbm import sim

pytestmark = pytest.mark.slow

SMALL_HW = (140, 182)  # multiples of 14 and even: cheap model for the many-run tests


@pytest.fixture
def hbm(monkeypatch):
    monkeypatch.setitem(sys.modules, 'hbm_runtime', sim)
    return sim


@pytest.fixture(scope='module')
def small_model(tiny_small_model):
    return tiny_small_model


def sim_engine(tmp_path, onnx_path, variant, **kwargs):
    model_kwargs = {k: kwargs.pop(k) for k in ('output_scale', 'input_quant', 'output_pad', 'output_form',
                                               'nv12_range') if k in kwargs}
    path = sim.write_sim_model(tmp_path / f'{variant}.hbm', onnx_path, variant, **model_kwargs)
    return HbmEngine(path, **kwargs)


# -- engine metadata ----------------------------------------------------------

def test_specs_come_from_the_runtime(hbm, tmp_path, tiny_fixed_model):
    rgb = sim_engine(tmp_path, tiny_fixed_model, 'float_rgb')
    assert rgb.model_name == 'depth_any'
    (i,), (o,) = rgb.inputs, rgb.outputs
    assert (i.name, i.shape, i.dtype, i.layout, i.quant) == \
        ('pixel_values', (1, 3, 518, 686), np.float32, 'NCHW', {})
    assert (o.name, o.shape, o.dtype, o.quant) == ('predicted_depth', (1, 518, 686), np.float32, {})

    nv = sim_engine(tmp_path, tiny_fixed_model, 'nv12')
    assert [(s.name, s.shape, s.dtype, s.layout) for s in nv.inputs] == \
        [('y', (1, 518, 686, 1), np.uint8, 'NHWC'), ('uv', (1, 259, 343, 2), np.uint8, 'NHWC')]

    q = sim_engine(tmp_path, tiny_fixed_model, 'int16_out', output_scale=0.001)
    out = q.outputs[0]
    assert out.dtype == np.int16 and out.quant['axis'] == 0
    np.testing.assert_allclose(out.quant['scale'], [0.001])
    np.testing.assert_array_equal(out.quant['zero_point'], [0])


def test_open_engine_picks_hbm_by_extension(hbm, tmp_path, small_model):
    path = sim.write_sim_model(tmp_path / 'x.hbm', small_model, 'float_rgb')
    assert isinstance(open_engine(path, 'auto'), HbmEngine)
    assert engine_for_path('model.bin') == 'hbm'


def test_unreadable_model_is_an_engine_error(hbm, tmp_path):
    bad = tmp_path / 'broken.hbm'
    bad.write_text('not a model')
    with pytest.raises(EngineError, match='broken.hbm'):
        HbmEngine(str(bad))


def test_missing_package_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'hbm_runtime', None)  # import raises ImportError
    with pytest.raises(EngineError) as err:
        HbmEngine(str(tmp_path / 'm.hbm'))
    assert 'apt-get install hobot-dnn' in str(err.value) and "'onnxruntime'" in str(err.value)


def test_missing_system_libraries_name_the_fix(monkeypatch, tmp_path):
    # The real package raises RuntimeError at import when libdnn.so is absent.
    (tmp_path / 'hbm_runtime.py').write_text("raise RuntimeError('libdnn.so: cannot open shared object')\n")
    monkeypatch.delitem(sys.modules, 'hbm_runtime', raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EngineError) as err:
        HbmEngine(str(tmp_path / 'm.hbm'))
    assert 'hobot-dnn' in str(err.value) and 'libdnn.so' in str(err.value)


# -- scheduling ---------------------------------------------------------------

def test_scheduling_params_reach_the_runtime(hbm, tmp_path, small_model):
    engine = sim_engine(tmp_path, small_model, 'float_rgb', bpu_priority=200, bpu_cores=[0, 1])
    assert engine.runtime.sched_calls == [{'priority': {'depth_any': 200},
                                           'bpu_cores': {'depth_any': [0, 1]}}]
    assert engine.runtime.sched_params['depth_any'].priority == 200
    only_cores = sim_engine(tmp_path, small_model, 'float_rgb', bpu_cores=1)
    assert only_cores.runtime.sched_calls == [{'bpu_cores': {'depth_any': [1]}}]


def test_no_scheduling_call_without_params(hbm, tmp_path, small_model):
    assert sim_engine(tmp_path, small_model, 'float_rgb').runtime.sched_calls == []


@pytest.mark.parametrize('kwargs', [{'bpu_priority': 256}, {'bpu_priority': -1}, {'bpu_priority': 1.5},
                                    {'bpu_cores': []}, {'bpu_cores': [-1]}])
def test_bad_scheduling_params_are_rejected(hbm, tmp_path, small_model, kwargs):
    with pytest.raises(EngineError, match='bpu_'):
        sim_engine(tmp_path, small_model, 'float_rgb', **kwargs)


# -- quantization helpers -----------------------------------------------------

def test_quantize_per_tensor_by_hand():
    x = np.array([-1.0, 0.26, 0.74, 100.0, -100.0], np.float32)
    # x/0.5 = -2, 0.52, 1.48, 200, -200; +zp 3; int8 clips at 127 / -128
    np.testing.assert_array_equal(quantize(x, [0.5], [3], 0, np.int8), [1, 4, 4, 127, -128])
    np.testing.assert_allclose(dequantize(np.array([1, 4, 127], np.int8), [0.5], [3], 0),
                               [-1.0, 0.5, 62.0])


def test_quantize_per_axis_by_hand():
    x = np.array([[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]], np.float32)  # 1x3x2, channels on axis 1
    q = quantize(x, [1.0, 0.5, 0.25], [0, 1, -1], 1, np.int16)
    np.testing.assert_array_equal(q, [[[1, 2], [3, 5], [3, 7]]])
    np.testing.assert_allclose(dequantize(q, [1.0, 0.5, 0.25], [0, 1, -1], 1), x)
    # Per-axis scale with a per-tensor zero point, on the last axis.
    q_last = quantize(x, [1.0, 0.5], [2], 2, np.int16)
    np.testing.assert_array_equal(q_last, [[[3, 6]] * 3])


def test_round_trip_error_is_at_most_half_a_step():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (1, 3, 8, 8)).astype(np.float32)
    scale = np.array([3 / 127, 2 / 127, 1 / 127], np.float32)  # channels 1 and 2 saturate
    back = dequantize(quantize(x, scale, [0, 0, 0], 1, np.int8), scale, [0, 0, 0], 1)
    for c in range(3):
        inside = np.abs(x[0, c]) <= 127 * scale[c]
        assert np.abs(back[0, c] - x[0, c])[inside].max() <= scale[c] / 2 + 1e-6
        # Outside the range: clipped to the int8 ends, not wrapped around.
        expected = np.where(x[0, c] > 0, 127, -128)[~inside] * scale[c]
        np.testing.assert_allclose(back[0, c][~inside], expected, rtol=1e-6)
    assert (~(np.abs(x[0, 1:]) <= 127 * scale[1:, None, None])).any()


# -- numerics through the node's FrameProcessor -------------------------------

def depths(engine, frame, **parameters):
    """(model-resolution depth, depth at the frame's size) from the node's processor with `engine`."""
    processor = build_processor(defaults(model_path=engine.path, **parameters), engine)
    model = processor.infer(frame)
    return model.depth, processor.finish(frame, model, ('depth',)).depth


def test_float_rgb_matches_onnx_engine(hbm, tmp_path, tiny_fixed_model, image):
    ref_model, ref = depths(OnnxRuntimeEngine(tiny_fixed_model), bgr_frame(image))
    _, got = depths(sim_engine(tmp_path, tiny_fixed_model, 'float_rgb'), bgr_frame(image))
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    # Same graph on the same tensor: only float noise allowed.
    assert np.nanmax(np.abs(got - ref)) <= 1e-5 * np.nanmax(np.abs(ref))
    assert np.ptp(ref_model) > 0.1  # the comparison is not between two constants


def test_int16_output_within_half_a_quantization_step(hbm, tmp_path, tiny_fixed_model, image):
    engine = sim_engine(tmp_path, tiny_fixed_model, 'int16_out')
    scale = float(engine.outputs[0].quant['scale'][0])
    ref_model, ref = depths(OnnxRuntimeEngine(tiny_fixed_model), bgr_frame(image))
    got_model, got = depths(engine, bgr_frame(image))
    assert got_model.dtype == np.float32
    err = np.abs(got_model - ref_model)
    # |dequant(round(x/s)) - x| <= s/2 per pixel; bilinear restoring is a convex
    # combination, so the image-size depth keeps the same bound.
    # Plus float32 rounding of the dequantization itself (a few ulp of |depth|).
    bound = scale / 2 + 4 * np.finfo(np.float32).eps * np.abs(ref_model).max()
    assert err.max() <= bound
    assert np.nanmax(np.abs(got - ref)) <= bound
    assert err.max() > 0  # the output really went through int16
    assert ref_model.max() / scale < 32767  # and was not clipped


def test_quantized_int16_input_per_channel(hbm, tmp_path, small_model, image):
    quant = {'scale': [4 / 32767, 4.2 / 32767, 4.4 / 32767], 'zero_point': [0, 10, -10], 'axis': 1}
    engine = sim_engine(tmp_path, small_model, 'float_rgb', input_quant=quant)
    assert engine.inputs[0].dtype == np.int16 and engine.inputs[0].quant['axis'] == 1
    ref_model, _ = depths(OnnxRuntimeEngine(small_model), bgr_frame(image))
    got_model, _ = depths(engine, bgr_frame(image))
    assert engine.runtime.fed_dtypes == {'pixel_values': np.int16}
    # Input steps of ~1.3e-4 (|x| <= 2.7 after ImageNet normalization, no clipping).
    m = compare_depth(got_model, ref_model)
    assert m['cosine'] > 0.99999 and m['rel_l1'] < 1e-3


@pytest.mark.parametrize('form', ['view', 'padded', 'raw'])
@pytest.mark.parametrize('variant', ['float_rgb', 'int16_out'])
def test_padded_output_rows_give_the_model_map(hbm, tmp_path, small_model, image, variant, form):
    """Rows padded by 3 elements (output_strides say so), handed back as a strided view, the
    whole padded array or raw bytes: the engine returns the 140x182 map, not the padding."""
    engine = sim_engine(tmp_path, small_model, variant, output_pad=3, output_form=form)
    item = 4 if variant == 'float_rgb' else 2
    assert engine._output_strides == {'predicted_depth': (140 * 185 * item, 185 * item, item)}
    feeds, _ = make_preprocessor(engine)(bgr_frame(image))
    got = engine.run(feeds)['predicted_depth']
    ref = OnnxRuntimeEngine(small_model).run(feeds)['predicted_depth']
    assert got.shape == (1, 140, 182) and got.dtype == np.float32 and got.flags.c_contiguous
    assert np.isfinite(got).all()                 # the padding (NaN / 32767) is not in it
    step = engine.outputs[0].quant['scale'][0] / 2 if variant == 'int16_out' else 0
    assert np.abs(got - ref).max() <= step + 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize('form', ['view', 'raw'])
def test_outputs_are_copies_the_runtime_cannot_overwrite(hbm, tmp_path, small_model, image, form):
    """The simulator reuses its output buffer on the next call, as the runtime may."""
    engine = sim_engine(tmp_path, small_model, 'float_rgb', output_pad=2, output_form=form)
    pre = make_preprocessor(engine)
    first_feeds, _ = pre(bgr_frame(image))
    first = engine.run(first_feeds)['predicted_depth']
    kept = first.copy()
    engine.run(pre(bgr_frame(np.ascontiguousarray(image[::-1])))[0])   # another picture
    np.testing.assert_array_equal(first, kept)
    again = engine.runtime.run(first_feeds)[sim.MODEL_NAME]['predicted_depth']
    assert not np.shares_memory(first, again)


def test_unreadable_output_is_an_engine_error(hbm, tmp_path, small_model):
    from depth_anything_ros.engines.hbm_engine import owned_output
    spec = TensorSpec('depth', (1, 140, 182), np.dtype(np.float32))
    with pytest.raises(EngineError, match='depth'):
        owned_output(np.zeros((1, 100, 182), np.float32), spec, None)


def test_four_threads_give_the_serial_results(hbm, tmp_path, small_model, image):
    quant = {'scale': [4 / 32767] * 3, 'zero_point': [0, 0, 0], 'axis': 1}
    engine = sim_engine(tmp_path, small_model, 'int16_out', input_quant=quant)
    pre = make_preprocessor(engine, Recipe(resize_mode='stretch'))
    inputs = [pre(bgr_frame(np.roll(image, 97 * k, axis=1)))[0] for k in range(4)]
    serial = [engine.run(f)['predicted_depth'] for f in inputs]
    assert not np.array_equal(serial[0], serial[1])  # distinct inputs, distinct outputs
    results, errors = {}, []
    barrier = threading.Barrier(4)

    def work(k):
        try:
            barrier.wait()
            results[k] = [engine.run(inputs[k])['predicted_depth'] for _ in range(2)]
        except Exception as exc:  # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(4):
        for out in results[k]:
            np.testing.assert_array_equal(out, serial[k])


# -- NV12 inputs ----------------------------------------------------------------

def test_preprocessor_choice_follows_the_inputs(hbm, tmp_path, small_model):
    assert isinstance(make_preprocessor(sim_engine(tmp_path, small_model, 'nv12')), Nv12Preprocessor)
    assert isinstance(make_preprocessor(sim_engine(tmp_path, small_model, 'float_rgb')), RgbPreprocessor)
    packed = [TensorSpec('nv12', (1, 210, 182, 1), np.dtype(np.uint8), 'NHWC')]
    assert nv12_input_kind(packed) == 'packed'
    assert nv12_input_kind(nv12_specs(140, 182)) == 'planes'
    assert nv12_input_kind([TensorSpec('rgb', (1, 3, 140, 182), np.dtype(np.float32))]) is None


@pytest.mark.parametrize('mode, min_cosine, max_rel_l1', [('stretch', 0.995, 0.08),
                                                          ('letterbox', 0.99, 0.15)])
def test_nv12_frames_through_nv12_model_vs_rgb_reference(hbm, tmp_path, tiny_fixed_model, image,
                                                         mode, min_cosine, max_rel_l1):
    """End to end: NV12 frame -> NV12 model vs (cv2 NV12->RGB) -> RGB path -> float model.
    Measured cosine/rel-L1: stretch 0.9990/0.036, letterbox 0.9965/0.068; the
    random-weight model amplifies input differences (a 1-level change of the
    letterbox pad alone moves rel-L1 by several %), hence the margins."""
    frame = nv12_frame(image)
    _, got = depths(sim_engine(tmp_path, tiny_fixed_model, 'nv12'), frame, resize_mode=mode)
    rgb = Frame('rgb8', cv2.cvtColor(frame.pixels, cv2.COLOR_YUV2RGB_NV12), 720, 1280)
    _, ref = depths(OnnxRuntimeEngine(tiny_fixed_model), rgb, resize_mode=mode)
    m = compare_depth(got, ref)
    assert m['cosine'] >= min_cosine and m['rel_l1'] <= max_rel_l1
    assert got.shape == (720, 1280) and np.isfinite(got).all()


def test_nv12_at_model_size_equals_rgb_path(hbm, tmp_path, small_model, image):
    """No resize anywhere: the NV12 model must give the RGB path's depth to float noise."""
    frame = nv12_frame(cv2.resize(image, SMALL_HW[::-1]))
    _, got = depths(sim_engine(tmp_path, small_model, 'nv12'), frame, resize_mode='stretch')
    rgb = Frame('rgb8', cv2.cvtColor(frame.pixels, cv2.COLOR_YUV2RGB_NV12), *SMALL_HW)
    _, ref = depths(OnnxRuntimeEngine(small_model), rgb, resize_mode='stretch')
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    assert np.ptp(ref) > 0.01


def test_full_range_nv12_model_gets_full_range_planes(hbm, tmp_path, small_model, image):
    """nv12_range 'full' (a full-range camera, a model compiled with input_space_and_range
    'regular'): RGB frames become full-range planes, and the model's depth is the RGB path's up to
    chroma subsampling; planes in video range (the node's default) would give the model washed-out
    colours."""
    frame = bgr_frame(cv2.resize(image, SMALL_HW[::-1]))
    ref = depths(OnnxRuntimeEngine(small_model), frame, resize_mode='stretch')[1]
    engine = sim_engine(tmp_path, small_model, 'nv12', nv12_range='full')
    right = depths(engine, frame, resize_mode='stretch', nv12_range='full')[1]
    wrong = depths(engine, frame, resize_mode='stretch')[1]
    assert compare_depth(right, ref)['rel_l1'] * 3 < compare_depth(wrong, ref)['rel_l1']
    # NV12 frames already in the model's range pass through untouched
    planes = Nv12Preprocessor(nv12_specs(*SMALL_HW), Recipe(resize_mode='stretch'), nv12_range='full')
    nv12 = Frame('nv12', np.concatenate([f[0].reshape(SMALL_HW[0] // (1 + (i == 1)), -1) for i, f in
                                         enumerate(planes(frame)[0].values())]), *SMALL_HW)
    fed = planes(nv12)[0]
    np.testing.assert_array_equal(fed['y'][0, :, :, 0], nv12.pixels[:SMALL_HW[0]])


def test_full_range_nv12_frames_into_an_rgb_model(hbm, tmp_path, small_model, image):
    """An RGB model (depth_any.hbm's float input) fed a full-range NV12 camera: with nv12_range
    'full' the frame decodes to its colours, the depth is the RGB frame's within chroma loss."""
    from depth_anything_ros.core.image_codec import rgb_to_nv12
    rgb = cv2.cvtColor(cv2.resize(image, SMALL_HW[::-1]), cv2.COLOR_BGR2RGB)
    nv12 = Frame('nv12', rgb_to_nv12(rgb, 'full'), *SMALL_HW)
    engine = sim_engine(tmp_path, small_model, 'float_rgb')
    ref = depths(engine, Frame('rgb8', rgb, *SMALL_HW), resize_mode='stretch')[1]
    right = depths(engine, nv12, resize_mode='stretch', nv12_range='full')[1]
    wrong = depths(engine, nv12, resize_mode='stretch')[1]
    assert compare_depth(right, ref)['rel_l1'] * 3 < compare_depth(wrong, ref)['rel_l1']


def test_board_model_runs_with_the_official_recipe(hbm, tmp_path, tiny_fixed_model, image, capsys):
    """A model file named depth_any.hbm gets the official recipe from models.yaml (ImageNet input,
    float cubic resize, align_corners upsampling), and the tools say so; `recipe d_robotics_sample`
    selects the sample's per-pixel normalization (|x| <= sqrt(2)) by name."""
    from argparse import Namespace

    from depth_anything_ros.tool_support.options import processor_from_args
    path = sim.write_sim_model(tmp_path / 'depth_any.hbm', tiny_fixed_model, 'float_rgb')
    processor = processor_from_args(Namespace(model_path=path))
    estimator = processor.estimator
    assert estimator.recipe.name == 'official'
    assert "depth_any.hbm: recipe 'official': resize_mode stretch, interpolation cubic, normalization imagenet" \
        in capsys.readouterr().out
    x = estimator.preprocess(bgr_frame(image))[0]['pixel_values']
    assert x.min() < -1.5 and x.max() > 1.5     # ImageNet-normalized: beyond the z-score's sqrt(2)
    result = processor.process(bgr_frame(image), ('depth',))
    assert result.depth.shape == image.shape[:2] and np.isfinite(result.depth).all()
    sample = processor_from_args(Namespace(model_path=path, recipe='d_robotics_sample')).estimator
    assert sample.recipe.name == 'd_robotics_sample' and sample.recipe.interpolation == 'nearest'
    z = sample.preprocess(bgr_frame(image))[0]['pixel_values']
    assert np.abs(z).max() <= np.sqrt(2) + 1e-5 and z.std() > 0.5
    overridden = processor_from_args(Namespace(model_path=path, recipe='d_robotics_sample',
                                               normalization='imagenet')).estimator
    assert overridden.recipe.normalization == 'imagenet' and overridden.recipe.interpolation == 'nearest'
