"""Every node parameter, once: default, type, range or choices, description.

The node declares from this table, config/depth.yaml is checked against it by
a test, and `validate` turns a bad value into a message that says what to fix.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..engines import ENGINE_CHOICES, model_file_text
from .image_codec import NV12_RANGES
from .metric_alignment import REFERENCE_SOURCES
from .postprocess import COLORMAPS, RANGE_MODES
from .preprocess import CHANNEL_ORDERS, INTERPOLATIONS, NORMALIZATIONS, RESIZE_MODES, UPSAMPLINGS


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
    Param('model_path', '', f'model file: {model_file_text()}; required'),
    Param('input_transport', 'raw', "input: raw Image on 'image', CompressedImage on 'image/compressed', "
          "or TROS zero-copy hbm_img_msgs/HbmMsg1080P on '/hbmem_img'", ('raw', 'compressed', 'hbmem')),
    Param('hbmem_frame_id', 'camera_optical_frame', "frame_id for 'hbmem' input, whose messages carry none"),
    Param('engine', 'auto', 'inference engine; auto picks by file extension', ENGINE_CHOICES),
    Param('providers', ['cpu'], 'ONNX Runtime execution providers in order: cpu, cuda, tensorrt'),
    Param('intra_op_threads', 0, 'ONNX Runtime/OpenVINO threads per inference; 0 = CPU cores / workers '
          '(tools that run one frame at a time: every core)',
          min=0, max=256),
    Param('bpu_priority', 0, 'hbm engine: BPU scheduling priority, higher runs first', min=0, max=255),
    Param('bpu_cores', [-1], 'hbm engine: BPU core indices to run on; [-1] lets the runtime choose'),
    Param('workers', 2, 'inference worker threads (requests in flight)', min=1, max=16),
    Param('inference_timeout', 5.0, 'seconds before a stuck inference call is abandoned (its result '
          'dropped) and its worker replaced; armed once a call has finished, and never below 3x the '
          'slowest of the last 20 calls', min=0.1, max=600.0),
    Param('max_input_pixels', 4096 * 4096, 'frames with more pixels are refused as bad_input (compressed ones '
          'from their header, before decoding); the default holds any 4K camera', min=1, max=2 ** 30),
    Param('depth_type', 'auto', 'relative (inverse depth, no unit) or metric (metres); auto: from '
          "models/models.yaml or a DA-V2 metric file name, else relative", ('auto', 'relative', 'metric')),
    Param('max_depth', 0.0, 'metric: depths beyond this (m) are invalid (NaN); 0: the model\'s own '
          'range (20 m indoor, 80 m outdoor) when known, else no limit', min=0.0, max=1000.0),
    Param('publish_depth_mm', False, 'metric: also publish depth/mm, 16UC1 millimetres (0 = invalid)'),
    Param('publish_points', False, 'metric: also publish depth/points (PointCloud2) from camera_info'),
    Param('points_decimation', 4, 'depth/points: use every Nth pixel in each direction', min=1, max=64),
    Param('points_rgb', True, 'depth/points: colour each point from the input image'),
    Param('metric_reference', 'none', "relative models to metres: 'depth_image' (a metric depth Image "
          "registered to the camera on 'reference/depth'), 'points' (PointCloud2 on 'reference/points'), "
          "'ground_plane' (camera_height, camera_pitch); 'none': relative output", REFERENCE_SOURCES),
    Param('reference_tolerance', 0.05, 'metric_reference: seconds between a frame and its reference for them '
          'to pair', min=0.0, max=10.0),
    Param('reference_wait', 0.1, 'metric_reference: seconds after a frame arrived that its alignment may wait '
          'for a reference not yet received (only while references are arriving and none has passed '
          "the frame's stamp); 0: never wait", min=0.0, max=1.0),
    Param('reference_transform', [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "metric_reference 'points': x y z qx qy qz "
          "qw from the cloud's frame to the camera's optical frame (finite; the quaternion is normalised)"),
    Param('camera_height', 0.0, "metric_reference 'ground_plane': metres from the floor to the camera",
          min=0.0, max=100.0),
    Param('camera_pitch', 0.0, "metric_reference 'ground_plane': radians the camera looks down from "
          'horizontal', min=-1.5, max=1.5),
    Param('floor_rows', 0.25, "metric_reference 'ground_plane': bottom fraction of the image taken as floor",
          min=0.01, max=1.0),
    Param('alignment_min_support', 50, 'metric_reference: reference pixels that must agree with the fit; '
          'fewer: the frame goes out relative on depth/relative', min=2, max=1000000),
    Param('alignment_smoothing', 0.5, 'metric_reference: weight of the past in the fitted scale and shift',
          min=0.0, max=0.99),
    Param('alignment_scene_cut', 0.25, 'metric_reference: the fit restarts when the references disagree with '
          'it by more than this (median relative depth error)', min=0.01, max=10.0),
    Param('temporal_smoothing', 0.0, 'weight of the past in an average of depth over frames, aligned '
          'per frame and reset on scene cuts; 0 = off', min=0.0, max=0.99),
    Param('scene_cut', 0.5, 'temporal smoothing restarts when frames differ more than this', min=0.01, max=10.0),
    Param('recipe', 'auto', 'how frames become model input, by name from models/models.yaml (official, '
          "d_robotics_sample, ...); auto: the model's own entry there, official for a model it does not list; "
          'the five settings below override single fields'),
    Param('nv12_range', 'video', 'colour range of NV12 frames (mipi_cam, hobot_codec): video (BT.601 16-235, '
          "how TROS's own nodes read it) or full (0-255, a JPEG's); NV12 models must be compiled for the "
          "same range (input_space_and_range 'bt601_video' or 'regular')", NV12_RANGES),
    Param('resize_mode', 'auto', "fixed-shape models: how other aspect ratios fit; auto: the model's "
          'recipe in models/models.yaml (stretch unless it says otherwise)', ('auto',) + RESIZE_MODES),
    Param('input_size', 518, 'dynamic-shape models: shorter side, rounded to a multiple of 14',
          min=14, max=4096),
    Param('normalization', 'auto', "input normalization the model expects; auto: the model's recipe "
          '(imagenet unless models.yaml says otherwise)', ('auto',) + NORMALIZATIONS),
    Param('interpolation', 'auto', "input resize: cubic (float image, official), cubic_uint8 (faster, "
          "approximate), nearest; auto: the model's recipe", ('auto',) + INTERPOLATIONS),
    Param('channel_order', 'auto', "colour order the model expects; auto: the model's recipe (rgb)",
          ('auto',) + CHANNEL_ORDERS),
    Param('upsampling', 'auto', 'depth back to the image size: align_corners (official) or '
          "pixel_centres (faster, approximate); auto: the model's recipe", ('auto',) + UPSAMPLINGS),
    Param('colormap', 'inferno', 'colormap of depth/colorized', tuple(COLORMAPS)),
    Param('color_range', 'percentile', 'colour range: per-frame minmax or 2-98 percentile, fixed '
          '[color_min, color_max], or smoothed (percentile range averaged over frames: no flicker)', RANGE_MODES),
    Param('color_min', 0.0, "color_range 'fixed': value drawn with the colormap's first colour"),
    Param('color_max', 1.0, "color_range 'fixed': value drawn with the colormap's last colour"),
    Param('color_smoothing', 0.9, "color_range 'smoothed': weight of the past range per frame", min=0.0, max=0.99),
    Param('diagnostics_period', 1.0, 'seconds between /diagnostics messages', min=0.1, max=60.0),
)


def validate(values: dict, at_start_up: bool = True, setting=None) -> dict:
    """Check every value against its Param; raise ConfigError naming what to fix. At runtime an
    empty colour range may be a step of a set that changes both bounds (the node keeps the last
    range until the set is whole): only start-up refuses it. `setting(name=value)` writes how the
    user sets a value in the hints (default: the node's launch or ros-args form)."""
    setting = setting or ros_setting
    for p in PARAMS:
        value = values[p.name]
        if p.choices and value not in p.choices:
            raise ConfigError(f"parameter {p.name}: '{value}' is not one of {list(p.choices)}")
        if p.min is not None and not p.min <= value <= p.max:
            raise ConfigError(f'parameter {p.name}: {value} is outside [{p.min}, {p.max}]')
    lo, hi = values['color_min'], values['color_max']
    if not (math.isfinite(lo) and math.isfinite(hi) and (lo < hi or not at_start_up)):
        raise ConfigError(f'parameters color_min ({lo}) and color_max ({hi}) need finite values with '
                          f"color_min < color_max ({setting(color_min='0.0', color_max='1.0')})")
    path = values['model_path']
    if not path:
        raise ConfigError(f'parameter model_path is empty: set it to a model file, {model_file_text()}: '
                          f"{setting(model_path='/path/to/model.onnx')}; "
                          '`depth-anything-ros make-test-model --out test.onnx` builds a test model')
    if os.path.isdir(path):
        raise ConfigError(f"parameter model_path: '{path}' is a directory; set it to the model file in it "
                          f"({setting(model_path=os.path.join(path, 'model.onnx'))})")
    return values


def ros_setting(**values) -> str:
    """How the user sets parameters: launch arguments when launched (depth.launch.py sets
    DEPTH_ANYTHING_ROS_LAUNCH), else ros2 run's form."""
    if os.environ.get('DEPTH_ANYTHING_ROS_LAUNCH'):
        return ' '.join(f'{name}:={value}' for name, value in values.items())
    return ' '.join(['--ros-args'] + [f'-p {name}:={value}' for name, value in values.items()])


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
