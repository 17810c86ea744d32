"""Tools' options come from the node's parameter table: same names, defaults, choices and ranges."""
import argparse

import pytest

from depth_anything_ros import cli
from depth_anything_ros.core.params import PARAMS
from depth_anything_ros.tool_support.errors import CliError
from depth_anything_ros.tool_support.options import (COLOR, METRIC, MODEL, SMOOTHING, add_param_options,
                                                     config_from_args, option_of)

ALL = MODEL + COLOR + SMOOTHING + METRIC


def parser_with(names=ALL):
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_param_options(parser, names)
    return parser


def test_every_option_defaults_to_the_node_parameter(tmp_path):
    model = tmp_path / 'm.onnx'
    model.write_bytes(b'')
    cfg = config_from_args(parser_with().parse_args(['--model', str(model)]))
    # a tool without --workers runs one frame at a time: one worker (every core for its inferences)
    assert cfg == {p.name: str(model) if p.name == 'model_path' else 1 if p.name == 'workers' else p.default
                   for p in PARAMS}


def test_a_tool_with_workers_keeps_the_node_default(tmp_path):
    model = tmp_path / 'm.onnx'
    model.write_bytes(b'')
    cfg = config_from_args(parser_with(MODEL + ('workers',)).parse_args(['--model', str(model)]))
    assert cfg['workers'] == next(p.default for p in PARAMS if p.name == 'workers') == 2


def test_options_take_the_parameters_types_and_choices(tmp_path):
    model = tmp_path / 'm.onnx'
    model.write_bytes(b'')
    args = parser_with().parse_args([
        '--model', str(model), '--input-size', '280', '--providers', 'cuda', 'cpu', '--bpu-cores', '0', '1',
        '--reference-transform', '1', '2', '3', '0', '0', '0', '1', '--no-points-rgb', '--publish-points',
        '--colormap', 'turbo', '--temporal-smoothing', '0.5'])
    cfg = config_from_args(args)
    assert (cfg['input_size'], cfg['providers'], cfg['bpu_cores']) == (280, ['cuda', 'cpu'], [0, 1])
    assert cfg['reference_transform'] == [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0]
    assert (cfg['points_rgb'], cfg['publish_points'], cfg['colormap'], cfg['temporal_smoothing']) == \
        (False, True, 'turbo', 0.5)


@pytest.mark.parametrize('argv,expected', [
    (['--input-size', '5'], 'outside [14, 4096]'),
    (['--input-size', 'big'], 'is not an integer'),
    (['--colormap', 'rainbow'], 'invalid choice'),
    (['--temporal-smoothing', '1.5'], 'outside [0.0, 0.99]'),
])
def test_a_value_outside_the_parameter_range_is_refused(argv, expected):
    with pytest.raises(argparse.ArgumentError, match=expected.replace('[', r'\[')):
        parser_with().parse_args(['--model', 'm.onnx'] + argv)


def test_configuration_errors_name_the_option(tmp_path):
    with pytest.raises(CliError) as error:
        config_from_args(parser_with().parse_args(['--model', str(tmp_path)]))
    message = str(error.value)
    assert message.startswith('option --model:') and f"--model {tmp_path}/model.onnx" in message
    assert 'parameter' not in message and 'ros-args' not in message


def test_every_option_name_follows_the_rule():
    assert option_of('model_path') == '--model' and option_of('color_min', '-a') == '--color-min-a'
    help_text = parser_with().format_help()
    for p in PARAMS:
        if p.name in ALL:
            assert option_of(p.name) in help_text


def test_the_tools_options_are_the_node_parameters(tmp_path, capsys):
    """A typo in a model option is refused by the tool, as the node refuses an unknown parameter."""
    with pytest.raises(SystemExit) as code:
        cli.main(['infer', '--model', 'm.onnx', '--input-sise', '280', '--out', str(tmp_path), 'x.jpg'])
    assert code.value.code == 2 and '--input-sise' in capsys.readouterr().err


@pytest.mark.parametrize('names,threads', [(MODEL, 6), (MODEL + ('workers',), 3)])
def test_one_frame_at_a_time_tools_give_inference_every_core(monkeypatch, tmp_path, names, threads):
    """infer, eval, compare, bag (no --workers) run one frame at a time: intra_op_threads 0 means
    every core there; a tool with --workers (bench) keeps the node's cores / workers."""
    from depth_anything_ros.core import frame_processor
    from depth_anything_ros.engines import EngineError
    from depth_anything_ros.tool_support.options import processor_from_args
    model = tmp_path / 'm.onnx'
    model.write_bytes(b'')
    opened = {}

    def open_engine(path, engine, **options):
        opened.update(options)
        raise EngineError('not opened in this test')
    monkeypatch.setattr(frame_processor, 'open_engine', open_engine)
    monkeypatch.setattr(frame_processor.os, 'cpu_count', lambda: 6)
    with pytest.raises(CliError, match='not opened in this test'):
        processor_from_args(parser_with(names).parse_args(['--model', str(model)]))
    assert opened['intra_op_threads'] == threads
