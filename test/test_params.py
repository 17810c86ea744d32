"""The parameter table, the shipped params file and start-up validation agree."""
import os
import re

import pytest
import yaml

from depth_anything_ros.core.params import PARAMS, ConfigError, params_yaml, validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_params_file_lists_every_parameter_with_its_default():
    with open(os.path.join(REPO, 'config', 'depth.yaml')) as f:
        text = f.read()
    assert text == params_yaml(), \
        'config/depth.yaml is stale: python -m depth_anything_ros.core.params > config/depth.yaml'
    values = yaml.safe_load(text)['/**']['ros__parameters']
    assert values == {p.name: p.default for p in PARAMS}


def defaults(**changes):
    return {**{p.name: p.default for p in PARAMS}, 'model_path': 'm.onnx', **changes}


@pytest.mark.parametrize('name, value, message', [
    ('workers', 0, 'workers: 0 is outside [1, 16]'),
    ('resize_mode', 'squash', "resize_mode: 'squash' is not one of"),
    ('colormap', 'rainbow', "colormap: 'rainbow' is not one of"),
    ('input_transport', 'ffmpeg', "input_transport: 'ffmpeg' is not one of"),
    ('model_path', '', 'model_path is empty'),
])
def test_validate_names_the_parameter_and_the_fix(name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(defaults(**{name: value}))


def test_validate_accepts_the_defaults():
    assert validate(defaults())['workers'] == 2


def test_readme_documents_every_parameter():
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = f.read()
    missing = [p.name for p in PARAMS if f'| `{p.name}` |' not in readme]
    assert not missing, f'README parameters table lacks {missing}'
