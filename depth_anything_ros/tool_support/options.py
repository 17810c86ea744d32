"""Command-line options generated from the node's parameter table (core/params.py).

A parameter `name_with_underscores` is the option `--name-with-underscores` (model_path
is `--model`), with the parameter's default, choices, range and description, so
a tool and the node take the same settings and explain them the same way.
Tools turn the options into the node's FrameProcessor with `processor_from_args`.
"""
from __future__ import annotations

import argparse
import os
import re

from ..core.params import PARAMS, ConfigError, validate
from .errors import CliError

PARAM = {p.name: p for p in PARAMS}
ENGINE = ('model_path', 'engine', 'providers', 'intra_op_threads', 'bpu_priority', 'bpu_cores')
RECIPE = ('input_size', 'recipe', 'resize_mode', 'interpolation', 'normalization', 'channel_order', 'upsampling',
          'nv12_range')
DEPTH = ('depth_type', 'max_depth')
MODEL = ENGINE + RECIPE + DEPTH
COLOR = ('colormap', 'color_range', 'color_min', 'color_max', 'color_smoothing')
SMOOTHING = ('temporal_smoothing', 'scene_cut')
METRIC = ('metric_reference', 'reference_tolerance', 'reference_transform', 'camera_height', 'camera_pitch',
          'floor_rows', 'alignment_min_support', 'alignment_smoothing', 'alignment_scene_cut',
          'publish_depth_mm', 'publish_points', 'points_decimation', 'points_rgb')


def option_of(name: str, suffix: str = '') -> str:
    return '--' + ('model' if name == 'model_path' else name.replace('_', '-')) + suffix


def dest_of(name: str, suffix: str = '') -> str:
    return name + suffix.replace('-', '_')


def add_param_options(parser, names, suffix: str = '', what: str = '', required=('model_path',),
                      inherit: bool = False) -> None:
    """One option per parameter in `names`. `suffix` ('-a') and `what` ('model A; ') serve tools
    that take two models; with `inherit` the options default to None: the unsuffixed option's value
    (config_from_args' fallback_suffix)."""
    for name in names:
        p = PARAM[name]
        default = None if inherit else p.default
        shown = 'the option without suffix' if inherit else default
        kwargs = {'dest': dest_of(name, suffix), 'default': default,
                  'help': f'{what}{p.description}' + ('' if name in required else f' (default {shown})')}
        if name in required and not inherit:
            kwargs.update(required=True, default=None)
        if isinstance(p.default, bool):
            kwargs['action'] = argparse.BooleanOptionalAction
        elif isinstance(p.default, list):
            kwargs.update(nargs='+', type=_typed(p, type(p.default[0])), metavar=name.split('_')[-1].upper())
        else:
            kwargs.update(type=_typed(p, type(p.default)), metavar=option_of(name)[2:].upper().replace('-', '_'))
            if p.choices:
                kwargs.update(choices=p.choices, metavar='{' + ','.join(p.choices) + '}')
        parser.add_argument(option_of(name, suffix), **kwargs)


def _typed(p, kind):
    """The option's type: the parameter's own, inside its range (argparse reports a miss)."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {'an integer' if kind is int else 'a number'}") \
                from None
        if p.min is not None and not p.min <= value <= p.max:
            raise argparse.ArgumentTypeError(f'{value} is outside [{p.min}, {p.max}]')
        return value
    return str if kind is str else convert


def config_from_args(args, suffix: str = '', fallback_suffix: str | None = None) -> dict:
    """The node's parameters: the table's defaults, then every option the tool defined. With
    `fallback_suffix`, an option left at None takes the value of the one with that suffix."""
    values = {}
    for name, p in PARAM.items():
        value = getattr(args, dest_of(name, suffix), None)
        if value is None and fallback_suffix is not None:
            value = getattr(args, dest_of(name, fallback_suffix), None)
        values[name] = p.default if value is None else value
    if not hasattr(args, dest_of('workers', suffix)):
        # A tool without --workers runs one frame at a time: one worker, so intra_op_threads 0 (the
        # node's cores / workers) gives its inferences every core, not the node's per-worker share.
        values['workers'] = 1
    try:
        return validate(values, setting=_option_setting)
    except ConfigError as exc:
        raise CliError(in_option_words(str(exc), suffix)) from exc


def processor_from_args(args, suffix: str = '', fallback_suffix: str | None = None):
    """The node's FrameProcessor from the options (its recipe printed); CliError if it cannot be built."""
    return processor_from_config(config_from_args(args, suffix, fallback_suffix), suffix)


def processor_from_config(cfg: dict, suffix: str = '', engine=None):
    """FrameProcessor.from_config for a tool: its recipe printed, a ConfigError in option words."""
    from ..core.frame_processor import FrameProcessor
    try:
        processor = FrameProcessor.from_config(cfg, engine)
    except ConfigError as exc:
        raise CliError(in_option_words(str(exc), suffix)) from exc
    print(f"{os.path.basename(cfg['model_path'])}: {processor.estimator.recipe.describe()}")
    return processor


def _option_setting(**values) -> str:
    return ' '.join(f'{option_of(name)} {value}' for name, value in values.items())


def in_option_words(message: str, suffix: str = '') -> str:
    """'parameter input_size: ...' -> 'option --input-size: ...' (core messages name parameters)."""
    return re.sub(r'parameters? (\w+)', lambda m: f'option {option_of(m.group(1), suffix)}'
                  if m.group(1) in PARAM else m.group(0), message)
