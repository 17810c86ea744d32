"""The parameter table, the shipped params file and start-up validation agree."""
import os
import re

import pytest
import yaml

from depth_anything_ros.core.params import (GROUPS, PARAMS, README_BEGIN, README_END, ConfigError, Param, in_groups,
                                            parameters_table, params_yaml, readme_with_parameters, validate)

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


def test_readme_parameter_table_is_generated_from_the_table():
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = f.read()
    assert README_BEGIN in readme and README_END in readme, \
        f'README.md needs the lines {README_BEGIN} and {README_END} around its parameter table'
    assert readme == readme_with_parameters(readme), \
        'the README parameter table is stale: python -m depth_anything_ros.core.params --readme README.md'


def test_the_table_generator_fills_only_between_the_markers():
    text = f'# Title\n\nbefore\n{README_BEGIN}\n| old | table |\n{README_END}\nafter\n'
    filled = readme_with_parameters(text)
    assert filled.startswith(f'# Title\n\nbefore\n{README_BEGIN}\n| parameter |')
    assert filled.endswith(f'|\n{README_END}\nafter\n') and '| old | table |' not in filled
    assert readme_with_parameters(filled) == filled                     # idempotent: the staleness check holds
    rows = [line for line in parameters_table().splitlines()[2:]]
    assert [row.split(' | ')[0] for row in rows] == [f'| `{p.name}`' for p in PARAMS]
    assert '| `colormap` | `inferno` | yes |' in filled and '| `workers` | `2` |  |' in filled
    assert '| `providers` | `[cpu]` |' in filled and '| `points_rgb` | `true` |' in filled
    with pytest.raises(ValueError, match='parameters:begin'):
        readme_with_parameters('# a README without the markers\n')


def test_every_parameter_has_a_group_and_the_runtime_ones_are_the_view():
    """The node changes at runtime only what FrameProcessor.set_view rebuilds (view_settings: the
    colour and smoothing groups): a runtime row elsewhere would be accepted and never applied."""
    assert {p.name for p in PARAMS if p.runtime} == set(in_groups('color', 'smoothing'))
    assert {p.group for p in PARAMS} == set(GROUPS)
    with pytest.raises(ValueError, match="group 'camera'"):
        Param('x', 0, 'a parameter of no known group', 'camera')
    with pytest.raises(ValueError, match='no parameter group'):
        in_groups('engine', 'camera')
