"""The engine registry: each engine gets only its own options, a typo is refused, help texts list every model file."""
import importlib
import inspect
import os
import re

import pytest

from depth_anything_ros.core.params import PARAMS, ConfigError, validate
from depth_anything_ros.engines import ENGINE_OPTIONS, ENGINES, EngineError, model_file_text, open_engine
from depth_anything_ros.engines.onnxruntime_engine import OnnxRuntimeEngine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('name', sorted(ENGINES))
def test_registry_options_are_the_constructor_keywords(name):
    kind = ENGINES[name]
    cls = getattr(importlib.import_module(kind.module, 'depth_anything_ros.engines'), kind.class_name)
    parameters = inspect.signature(cls).parameters
    assert list(parameters)[0] == 'path'
    assert set(parameters) - {'path'} == set(kind.options)
    assert not any(p.kind == p.VAR_KEYWORD for p in parameters.values()), 'a **kwargs would swallow typos'


def test_a_mistyped_option_is_refused_naming_the_valid_ones(tiny_fixed_model):
    with pytest.raises(EngineError, match=re.escape("['intra_op_thread']")) as err:
        open_engine(tiny_fixed_model, intra_op_thread=2)
    assert all(name in str(err.value) for name in ENGINE_OPTIONS)


def test_each_engine_gets_only_its_own_options(tiny_fixed_model, monkeypatch):
    seen = {}
    real_init = OnnxRuntimeEngine.__init__

    def recording_init(self, path, **options):
        seen.update(options)
        real_init(self, path, **options)
    monkeypatch.setattr(OnnxRuntimeEngine, '__init__', recording_init)
    engine = open_engine(tiny_fixed_model, 'auto', providers=['cpu'], intra_op_threads=1,
                         bpu_priority=3, bpu_cores=[0])
    assert isinstance(engine, OnnxRuntimeEngine)
    assert seen == {'providers': ['cpu'], 'intra_op_threads': 1}


def test_the_constructor_refuses_an_unknown_keyword(tiny_fixed_model):
    with pytest.raises(TypeError, match='bpu_priority'):
        OnnxRuntimeEngine(tiny_fixed_model, bpu_priority=3)


def test_the_engine_sets_its_own_path(tiny_fixed_model):
    engine = OnnxRuntimeEngine(tiny_fixed_model)
    assert engine.path == tiny_fixed_model
    assert f"'{tiny_fixed_model}'" in engine.describe()


def test_help_texts_list_every_model_file():
    extensions = [ext for kind in ENGINES.values() for ext in kind.extensions]
    assert len(extensions) >= 4
    text = model_file_text()
    assert all(ext in text for ext in extensions) and all(f'({name})' in text for name in ENGINES)
    model_path = next(p for p in PARAMS if p.name == 'model_path')
    assert text in model_path.description
    with open(os.path.join(REPO, 'config', 'depth.yaml')) as f:
        assert text in f.read()


@pytest.mark.parametrize('path', ['missing.onnx', 'model.tflite'])
def test_model_file_errors_list_every_model_file(path, tmp_path):
    target = tmp_path / path
    if path.endswith('.tflite'):
        target.write_bytes(b'')
    with pytest.raises(EngineError) as err:
        open_engine(str(target))
    assert model_file_text() in str(err.value)


def test_an_empty_model_path_lists_every_model_file():
    with pytest.raises(ConfigError) as err:
        validate({p.name: p.default for p in PARAMS})
    assert model_file_text() in str(err.value)
