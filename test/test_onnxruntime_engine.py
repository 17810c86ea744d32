"""The ONNX Runtime engine's cancel(): a call in flight ends with an error, not a result."""
import threading

import numpy as np

from depth_anything_ros.engines import open_engine


def test_cancel_ends_a_call_in_flight(tiny_dynamic_model):
    engine = open_engine(tiny_dynamic_model, 'onnxruntime', intra_op_threads=1)
    name = engine.inputs[0].name
    big = np.zeros((1, 3, 1400, 1862), np.float32)  # seconds of work on one thread
    outcome = {}

    def call():
        try:
            outcome['result'] = engine.run({name: big})
        except Exception as exc:  # noqa: BLE001 - what the test inspects
            outcome['error'] = exc

    worker = threading.Thread(target=call)
    worker.start()
    registered = threading.Event()
    while worker.is_alive() and not registered.wait(0.001):  # until run() has its RunOptions
        with engine._lock:
            if engine._in_flight:
                registered.set()
    engine.cancel()
    worker.join(60)
    assert not worker.is_alive()
    assert registered.is_set() and 'result' not in outcome, 'the call ran to the end'
    assert 'terminate' in str(outcome['error']).lower(), outcome['error']
    small = np.zeros((1, 3, 56, 56), np.float32)
    assert engine.run({name: small})['predicted_depth'].shape[-2:] == (56, 56)  # the next call is not cancelled


def test_dynamic_models_run_without_the_growing_arena(tiny_dynamic_model, tiny_fixed_model):
    """ORT's CPU arena never returns memory: with a dynamic model one odd frame would raise the
    node's RSS for good, so only fixed-shape models (same shapes every call) keep it."""
    dynamic = open_engine(tiny_dynamic_model, 'onnxruntime')
    fixed = open_engine(tiny_fixed_model, 'onnxruntime')
    assert dynamic.session.get_session_options().enable_cpu_mem_arena is False
    assert fixed.session.get_session_options().enable_cpu_mem_arena is True


def test_a_model_is_loaded_once(monkeypatch, tiny_dynamic_model, tiny_fixed_model):
    """Whether to keep the arena is read from the file's input declarations, before the one load."""
    import onnxruntime as ort
    loads = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, 'InferenceSession', lambda path, *a, **k: loads.append(path) or real(path, *a, **k))
    for path in (tiny_dynamic_model, tiny_fixed_model):
        open_engine(path, 'onnxruntime')
    assert loads == [tiny_dynamic_model, tiny_fixed_model]


def test_the_input_declarations_are_read_as_onnx_runtime_reads_them(tmp_path, tiny_dynamic_model, tiny_fixed_model):
    from depth_anything_ros.engines.onnxruntime_engine import _has_dynamic_image_input
    assert _has_dynamic_image_input(tiny_dynamic_model) is True
    assert _has_dynamic_image_input(tiny_fixed_model) is False
    with open(tiny_fixed_model, 'rb') as f:
        head = f.read(200)
    for name, data in (('empty.onnx', b''), ('text.onnx', b'not a model at all'), ('cut.onnx', head)):
        (tmp_path / name).write_bytes(data)
        assert _has_dynamic_image_input(str(tmp_path / name)) is True   # unreadable: no arena, ORT says why
