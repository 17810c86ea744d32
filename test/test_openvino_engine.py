"""OpenVINO engine: the same depth as ONNX Runtime through the node's pipeline, thread-safe.

What this proves: on the tiny fixed (518x686) and dynamic DA-V2 test models, OpenVINO on CPU
(reading the .onnx, and the .xml IR saved from it) gives the node's depth within 1e-3 of
ONNX Runtime's relative to the depth's range (measured about 1e-5); 4 threads calling one engine at
once return exactly what serial calls return; the specs come from the compiled model; `auto`
picks openvino for .xml and keeps .onnx on onnxruntime.
"""
import threading

import cv2
import numpy as np
import pytest

pytest.importorskip('openvino')

from depth_anything_ros.engines import engine_for_path, open_engine  # noqa: E402
from depth_anything_ros.core.image_codec import Frame  # noqa: E402
from depth_anything_ros.core.paths import SAMPLE_IMAGE  # noqa: E402
from depth_anything_ros.core.estimator import DepthEstimator  # noqa: E402
from depth_anything_ros.core.recipe import Recipe  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.dev_tools]

RELATIVE_BOUND = 1e-3


def _frames():
    bgr = cv2.imread(SAMPLE_IMAGE)
    sizes = [(640, 480), (480, 640), (1280, 720), (334, 250)]
    return [Frame('bgr8', img, img.shape[0], img.shape[1])
            for img in (cv2.resize(bgr, s) for s in sizes)]


def _depth(estimator, frame):
    """The frame's depth at its size: the node's infer step, then its upsampling."""
    model = estimator.model_depth(frame)
    return estimator.restore(model.depth, model.placement)


def _max_relative_diff(a, b) -> float:
    finite = np.isfinite(b)
    assert np.array_equal(finite, np.isfinite(a))  # NaN (unseen) in the same places
    span = float(np.ptp(b[finite]))
    assert span > 0  # random weights that still vary across the image
    return float(np.abs(a[finite] - b[finite]).max() / span)


@pytest.fixture(scope='module')
def ov_dynamic(tiny_dynamic_model):
    # Compiling costs seconds: one engine for the tests that can share it.
    return open_engine(tiny_dynamic_model, 'openvino')


@pytest.mark.parametrize('model', ['tiny_fixed_model', 'tiny_dynamic_model'])
def test_matches_onnxruntime(model, request, ov_dynamic):
    path = request.getfixturevalue(model)
    ov_engine = ov_dynamic if model == 'tiny_dynamic_model' else open_engine(path, 'openvino')
    ort_engine = open_engine(path, 'onnxruntime')
    assert ov_engine.name == 'openvino'
    assert [(s.name, s.shape, s.dtype, s.layout) for s in ov_engine.inputs] == \
        [(s.name, s.shape, s.dtype, s.layout) for s in ort_engine.inputs]
    assert ov_engine.outputs[0].name == 'predicted_depth'
    letterbox = Recipe(resize_mode='letterbox')
    ov_est, ort_est = DepthEstimator(ov_engine, letterbox), DepthEstimator(ort_engine, letterbox)
    worst = 0.0
    for frame in _frames():
        a, b = _depth(ov_est, frame), _depth(ort_est, frame)
        assert a.shape == (frame.height, frame.width)
        worst = max(worst, _max_relative_diff(a, b))
    print(f'{model}: OpenVINO vs ONNX Runtime max |diff| / depth range = {worst:.2e}')
    assert worst < RELATIVE_BOUND


def test_every_output_of_a_da3_model_by_name(da3_small_model, da3_metric_model):
    """DA3's second map (depth_conf, sky) comes back beside depth, by name, as ONNX Runtime gives it."""
    for path, second in ((da3_small_model, 'depth_conf'), (da3_metric_model, 'sky')):
        ov_engine, ort_engine = open_engine(path, 'openvino'), open_engine(path, 'onnxruntime')
        assert [o.name for o in ov_engine.outputs] == ['depth', second]
        feeds, _ = DepthEstimator(ort_engine).preprocess(_frames()[0])
        got, want = ov_engine.run(feeds), ort_engine.run(feeds)
        assert list(got) == ['depth', second]
        for name in got:
            assert np.abs(got[name] - want[name]).max() < RELATIVE_BOUND * np.ptp(want[name]), name


def test_xml_ir_is_auto_selected(tiny_dynamic_model, tmp_path):
    import openvino as ov
    xml = str(tmp_path / 'tiny.xml')
    # Full-precision weights: save_model/ovc default to fp16 weights (~2e-3 of the range off here).
    ov.save_model(ov.Core().read_model(tiny_dynamic_model), xml, compress_to_fp16=False)
    assert engine_for_path(xml) == 'openvino'
    assert engine_for_path(tiny_dynamic_model) == 'onnxruntime'
    frame = _frames()[0]
    a = _depth(DepthEstimator(open_engine(xml)), frame)
    b = _depth(DepthEstimator(open_engine(tiny_dynamic_model)), frame)
    assert _max_relative_diff(a, b) < RELATIVE_BOUND


def test_threads_match_serial(ov_dynamic):
    estimator = DepthEstimator(ov_dynamic)
    frames = _frames()
    serial = [_depth(estimator, f) for f in frames]
    results = {}
    barrier = threading.Barrier(4)

    def worker(i):
        barrier.wait()  # all four in the engine at the same time
        for round_ in range(3):
            results[(i, round_)] = _depth(estimator, frames[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 12
    for (i, _), depth in results.items():
        np.testing.assert_array_equal(depth, serial[i])
    # Different frames gave different depth: a shared output buffer would have mixed them up.
    assert serial[0].shape != serial[1].shape or not np.array_equal(serial[0], serial[1])


def test_bad_model_is_engine_error(tmp_path):
    from depth_anything_ros.engines import EngineError
    bad = tmp_path / 'bad.xml'
    bad.write_text('<net>not a model</net>')
    with pytest.raises(EngineError, match='OpenVINO cannot load'):
        open_engine(str(bad))
