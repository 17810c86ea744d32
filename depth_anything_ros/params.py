"""Every node parameter, once: default, type, range or choices, description.

The node declares from this table, config/depth.yaml is checked against it by
a test, and `validate` turns a bad value into a message that says what to fix.
"""
from __future__ import annotations

from dataclasses import dataclass

from .engines import ENGINE_CHOICES
from .postprocess import COLORMAPS, RANGE_MODES
from .preprocess import NORMALIZATIONS, RESIZE_MODES


class ConfigError(ValueError):
    """A parameter value that cannot work; the message says what to set."""


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    choices: tuple = ()
    min: float | None = None
    max: float | None = None


PARAMS = (
    Param('model_path', '', 'model file (.onnx or .hbm); required'),
    Param('input_transport', 'raw', "input: raw Image on 'image', CompressedImage on 'image/compressed', "
          "or TROS zero-copy hbm_img_msgs/HbmMsg1080P on '/hbmem_img'", ('raw', 'compressed', 'hbmem')),
    Param('hbmem_frame_id', 'camera_optical_frame', "frame_id for 'hbmem' input, whose messages carry none"),
    Param('engine', 'auto', 'inference engine; auto picks by file extension', ENGINE_CHOICES),
    Param('providers', ['cpu'], 'ONNX Runtime execution providers in order: cpu, cuda, tensorrt'),
    Param('intra_op_threads', 0, 'ONNX Runtime threads per inference; 0 = runtime default', min=0, max=256),
    Param('bpu_priority', 0, 'hbm engine: BPU scheduling priority, higher runs first', min=0, max=255),
    Param('bpu_cores', [-1], 'hbm engine: BPU core indices to run on; [-1] lets the runtime choose'),
    Param('workers', 2, 'inference worker threads (requests in flight)', min=1, max=16),
    Param('inference_timeout', 5.0, 'seconds before a stuck inference call is abandoned and its '
          'worker replaced', min=0.1, max=600.0),
    Param('resize_mode', 'letterbox', 'fixed-shape models: how other aspect ratios fit', RESIZE_MODES),
    Param('input_size', 518, 'dynamic-shape models: shorter side, rounded to a multiple of 14',
          min=14, max=4096),
    Param('normalization', 'imagenet', 'input normalization the model expects', NORMALIZATIONS),
    Param('colormap', 'inferno', 'colormap of depth/colorized', tuple(COLORMAPS)),
    Param('color_range', 'percentile', 'colour range per frame: minmax or 2-98 percentile', RANGE_MODES),
    Param('diagnostics_period', 1.0, 'seconds between /diagnostics messages', min=0.1, max=60.0),
)
PARAM_NAMES = tuple(p.name for p in PARAMS)


def validate(values: dict) -> dict:
    """Check every value against its Param; raise ConfigError naming what to fix."""
    for p in PARAMS:
        value = values[p.name]
        if p.choices and value not in p.choices:
            raise ConfigError(f"parameter {p.name}: '{value}' is not one of {list(p.choices)}")
        if p.min is not None and not p.min <= value <= p.max:
            raise ConfigError(f'parameter {p.name}: {value} is outside [{p.min}, {p.max}]')
    if not values['model_path']:
        raise ConfigError('parameter model_path is empty: set it to a .onnx or .hbm model '
                          '(-p model_path:=/path/to/model.onnx); '
                          '`depth-anything-ros make-test-model --out test.onnx` builds a test model')
    return values


def params_yaml() -> str:
    """config/depth.yaml's text: every parameter with its default and a comment."""
    import json
    lines = ['# depth_anything_ros node parameters, with their defaults (generated from params.py;',
             '# tests check that the two agree).',
             '# Use: ros2 launch depth_anything_ros depth.launch.py params_file:=this.yaml',
             '#  or: depth_node --ros-args --params-file this.yaml',
             '# `/**:` matches the node whatever its name or namespace.',
             '/**:', '  ros__parameters:']
    for p in PARAMS:
        limits = (f' ({", ".join(map(str, p.choices))})' if p.choices
                  else f' [{p.min}, {p.max}]' if p.min is not None else '')
        lines += [f'    # {p.description}{limits}', f'    {p.name}: {json.dumps(p.default)}']
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    print(params_yaml(), end='')
