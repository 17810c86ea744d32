"""Every node parameter, once: default, type, range or choices, description, whether it
changes at runtime, and which group of tool options it belongs to.

A new parameter is one row of PARAMS. The node declares from this table (and refuses runtime
changes to rows not marked `runtime`); the tools' options come from it (tool_support/options.py,
by `group`); config/depth.yaml and the README's parameter table are generated from it
(`python -m depth_anything_ros.core.params`, checked by tests); `validate` turns a bad value
into a message that says what to fix.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from ..engines import ENGINE_CHOICES, model_file_text
from .depth_type import DEPTH_KINDS
from .image_codec import DEFAULT_MAX_PIXELS, NV12_RANGES
from .metric_alignment import REFERENCE_SOURCES
from .postprocess import COLORMAPS, RANGE_MODES
from .recipe import CHANNEL_ORDERS, INTERPOLATIONS, NORMALIZATIONS, OFFICIAL_INPUT_SIZE, RESIZE_MODES, UPSAMPLINGS
from .sky import SKY_DEPTHS


class ConfigError(ValueError):
    """A parameter value that cannot work; the message says what to set."""


# Groups of tool options (tool_support/options.py): a tool takes whole groups. 'outputs': the
# topics a model may have beside depth (DA3's confidence and sky). 'node': only the node has these
# (its input, threads, timeouts, diagnostics); a tool may still take one by name.
GROUPS = ('engine', 'recipe', 'depth', 'metric', 'outputs', 'color', 'smoothing', 'node')


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    group: str
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    runtime: bool = False   # `ros2 param set` changes it while the node runs (the view: colours, smoothing)

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"parameter {self.name}: group '{self.group}' is not one of {GROUPS}")


PARAMS = (
    Param('model_path', '', f'model file: {model_file_text()}; required', 'engine'),
    Param('input_transport', 'raw', "input: raw Image on 'image', CompressedImage on 'image/compressed' (jpeg, "
          "png), or TROS zero-copy hbm_img_msgs/HbmMsg1080P on '/hbmem_img'", 'node', ('raw', 'compressed', 'hbmem')),
    Param('hbmem_frame_id', 'camera_optical_frame', "frame_id for 'hbmem' input, whose messages carry none", 'node'),
    Param('engine', 'auto', 'inference engine; auto picks by file extension', 'engine', ENGINE_CHOICES),
    Param('providers', ['cpu'], 'ONNX Runtime execution providers in order: cpu, cuda, tensorrt', 'engine'),
    Param('intra_op_threads', 0, 'ONNX Runtime/OpenVINO threads per inference; 0 = CPU cores / workers '
          '(tools that run one frame at a time: every core)', 'engine', min=0, max=256),
    Param('bpu_priority', 0, 'hbm engine: BPU scheduling priority, higher runs first', 'engine', min=0, max=255),
    Param('bpu_cores', [-1], 'hbm engine: BPU core indices to run on; [-1] lets the runtime choose', 'engine'),
    Param('workers', 2, 'inference worker threads (requests in flight; 2 keep the S100 BPU busy)', 'node',
          min=1, max=16),
    Param('inference_timeout', 5.0, 'seconds before a stuck inference call is abandoned (counted, its result '
          'dropped) and its worker replaced; armed once a call has finished, and never below 3x the '
          'slowest of the last 20 calls, so a slow machine is never silenced', 'node', min=0.1, max=600.0),
    Param('max_input_pixels', DEFAULT_MAX_PIXELS, 'frames with more pixels are refused as bad_input (compressed '
          'ones from their header, before decoding), and so are reference/depth images; the default (4096x4096) '
          'holds any 4K camera', 'node', min=1, max=2 ** 30),
    Param('depth_type', 'auto', "what the model's depth output is: relative (DA-V2: inverse depth, larger = "
          'nearer, no unit), relative_depth (DA3: larger = farther, no unit), metric (metres), metric_canonical '
          '(DA3Metric: metres = focal x output / 300, focal from camera_info); auto: from models/models.yaml (by '
          'file name or checksum), or a DA-V2 metric file name (the whole words '
          "'metric' and 'hypersim'/'indoor' = 20 m or 'vkitti'/'outdoor' = 80 m), else relative_depth for a model "
          'with DA3\'s sky or depth_conf output, else relative', 'depth', ('auto',) + tuple(DEPTH_KINDS)),
    Param('max_depth', 0.0, 'metric: depths beyond this (m) are invalid (NaN); 0: the model\'s own '
          'range (20 m indoor, 80 m outdoor) when known, else no limit', 'depth', min=0.0, max=1000.0),
    Param('sky_depth', 'infinite', "DA3Mono/DA3Metric: depth of the pixels the model sees as sky (score >= 0.3, "
          "as the official code reads it): infinite (+Inf, REP 118's 'too far'; no points there) or official_fill "
          '(the official code\'s 99th percentile of the other pixels\' depth)', 'depth', SKY_DEPTHS),
    Param('publish_depth_mm', False, 'metric: also publish depth/mm, 16UC1 millimetres (0 = invalid)', 'metric'),
    Param('publish_points', False, 'metric: also publish depth/points (PointCloud2) from camera_info', 'metric'),
    Param('points_decimation', 4, 'depth/points: use every Nth pixel in each direction', 'metric', min=1, max=64),
    Param('points_rgb', True, 'depth/points: colour each point from the input image', 'metric'),
    Param('publish_confidence', False, 'DA3 main series (Small, Base, ...): also publish depth/confidence, 32FC1 '
          'depth_conf at the image size (>= 1, larger = surer)', 'outputs'),
    Param('publish_sky', False, 'DA3Mono/DA3Metric: also publish depth/sky, mono8, 255 where the model reports '
          'sky (score >= 0.5, the official mask)', 'outputs'),
    Param('metric_reference', 'none', "relative models to metres: 'depth_image' (a metric depth Image "
          "registered to the camera on 'reference/depth'), 'points' (PointCloud2 on 'reference/points'), "
          "'ground_plane' (camera_height, camera_pitch); 'none': relative output", 'metric', REFERENCE_SOURCES),
    Param('reference_tolerance', 0.05, 'metric_reference: seconds between a frame and its reference for them '
          'to pair', 'metric', min=0.0, max=10.0),
    Param('reference_wait', 0.1, 'metric_reference: seconds after a frame arrived that its alignment may wait '
          'for a reference not yet received (only while references are arriving and none has passed '
          "the frame's stamp); 0: never wait", 'node', min=0.0, max=1.0),
    Param('reference_transform', [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "metric_reference 'points': x y z qx qy qz "
          "qw from the cloud's frame to the camera's optical frame, as tf2_echo prints it (finite; the "
          'quaternion is normalised)', 'metric'),
    Param('camera_height', 0.0, "metric_reference 'ground_plane': metres from the floor to the camera", 'metric',
          min=0.0, max=100.0),
    Param('camera_pitch', 0.0, "metric_reference 'ground_plane': radians the camera looks down from "
          'horizontal (no roll)', 'metric', min=-1.5, max=1.5),
    Param('floor_rows', 0.25, "metric_reference 'ground_plane': bottom fraction of the image taken as floor",
          'metric', min=0.01, max=1.0),
    Param('alignment_min_support', 50, 'metric_reference: reference pixels that must agree with the fit; '
          'fewer: the frame goes out relative on depth/relative', 'metric', min=2, max=1000000),
    Param('alignment_smoothing', 0.5, 'metric_reference: weight of the past in the fitted scale and shift',
          'metric', min=0.0, max=0.99),
    Param('alignment_scene_cut', 0.25, 'metric_reference: the fit restarts when the references disagree with '
          'it by more than this (median relative depth error)', 'metric', min=0.01, max=10.0),
    Param('temporal_smoothing', 0.0, 'weight of the past in an average of depth over frames, aligned '
          'per frame and reset on scene cuts; 0 = off', 'smoothing', min=0.0, max=0.99, runtime=True),
    Param('scene_cut', 0.5, 'temporal smoothing restarts when frames differ more than this', 'smoothing',
          min=0.01, max=10.0, runtime=True),
    Param('recipe', 'auto', 'how frames become model input, by name from models/models.yaml (official, '
          "d_robotics_sample, ...); auto: the model's own entry there, official for a model it does not list; "
          'the five settings below override single fields', 'recipe'),
    Param('nv12_range', 'video', 'colour range of NV12 frames (mipi_cam, hobot_codec): video (BT.601 16-235, '
          "how TROS's own nodes read it) or full (0-255, a JPEG's); NV12 models must be compiled for the "
          "same range (input_space_and_range 'bt601_video' or 'regular')", 'recipe', NV12_RANGES),
    Param('resize_mode', 'auto', 'fixed-shape models: how other aspect ratios fit: stretch, letterbox (whole '
          "view, aspect kept, padded), crop (centre, aspect kept); auto: the model's recipe in "
          'models/models.yaml (stretch unless it says otherwise)', 'recipe', ('auto',) + RESIZE_MODES),
    Param('input_size', OFFICIAL_INPUT_SIZE, 'dynamic-shape models: shorter side, rounded to a multiple of 14 '
          '(the official recipe); the long side is capped at 4x (wider frames go in by resize_mode); a value '
          "whose worst case cannot fit the machine's memory is refused at start-up", 'recipe', min=14, max=4096),
    Param('normalization', 'auto', 'input normalization the model expects: imagenet, pixel_zscore (the '
          "D-Robotics sample's), none (the model normalizes); auto: the model's recipe", 'recipe',
          ('auto',) + NORMALIZATIONS),
    Param('interpolation', 'auto', "input resize: cubic (float image, official), cubic_uint8 (faster, "
          "approximate), nearest; auto: the model's recipe", 'recipe', ('auto',) + INTERPOLATIONS),
    Param('channel_order', 'auto', "colour order the model expects; auto: the model's recipe (rgb)", 'recipe',
          ('auto',) + CHANNEL_ORDERS),
    Param('upsampling', 'auto', 'depth back to the image size: align_corners (official) or '
          "pixel_centres (faster, approximate); auto: the model's recipe", 'recipe', ('auto',) + UPSAMPLINGS),
    Param('colormap', 'inferno', 'colormap of depth/colorized', 'color', tuple(COLORMAPS), runtime=True),
    Param('color_range', 'percentile', 'colour range: per-frame minmax or 2-98 percentile, fixed '
          '[color_min, color_max], or smoothed (percentile range averaged over frames: no flicker)', 'color',
          RANGE_MODES, runtime=True),
    Param('color_min', 0.0, "color_range 'fixed': value drawn with the colormap's first colour", 'color',
          runtime=True),
    Param('color_max', 1.0, "color_range 'fixed': value drawn with the colormap's last colour", 'color',
          runtime=True),
    Param('color_smoothing', 0.9, "color_range 'smoothed': weight of the past range per frame", 'color',
          min=0.0, max=0.99, runtime=True),
    Param('diagnostics_period', 1.0, 'seconds between /diagnostics messages', 'node', min=0.1, max=60.0),
)
PARAM = {p.name: p for p in PARAMS}
RUNTIME = tuple(p.name for p in PARAMS if p.runtime)


def in_groups(*groups) -> tuple:
    """The names of the parameters in `groups`, in table order."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f'no parameter group {sorted(unknown)} (groups: {GROUPS})')
    return tuple(p.name for p in PARAMS if p.group in groups)


def defaults(**values) -> dict:
    """Every parameter at its default, with `values` put over them (not validated)."""
    unknown = set(values) - set(PARAM)
    if unknown:
        raise KeyError(f'no parameter {sorted(unknown)}')
    return {**{p.name: p.default for p in PARAMS}, **values}


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


README_BEGIN, README_END = '<!-- parameters:begin -->', '<!-- parameters:end -->'


def parameters_table() -> str:
    """The README's parameter table (Markdown): name, default, whether it changes at runtime, and
    the description with the choices or range."""
    rows = ['| parameter | default | runtime | |', '|---|---|---|---|']
    for p in PARAMS:
        limits = (f"; one of {', '.join(f'`{c}`' for c in p.choices)}" if p.choices
                  else f'; {_shown(p.min)} to {_shown(p.max)}' if p.min is not None else '')
        rows.append(f"| `{p.name}` | `{_shown(p.default)}` | {'yes' if p.runtime else ''} | {p.description}{limits} |")
    return '\n'.join(rows) + '\n'


def _shown(value) -> str:
    """A default as YAML writes it: true, [cpu], 0.05, \"\" for an empty string."""
    if isinstance(value, list):
        return '[' + ', '.join(_shown(v) for v in value) + ']'
    if isinstance(value, (bool, str)):
        return json.dumps(value) if value == '' else str(value).lower() if isinstance(value, bool) else value
    return str(value)


def readme_with_parameters(readme: str) -> str:
    """`readme` with parameters_table() between its README_BEGIN and README_END lines; ValueError
    if it lacks them."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f'no {README_BEGIN} ... {README_END} lines to put the parameter table between')
    head = readme[:begin + len(README_BEGIN)]
    return f'{head}\n{parameters_table()}{readme[end:]}'


def main(argv=None) -> int:
    """No arguments: print config/depth.yaml. `--readme FILE`: rewrite the parameter table in FILE."""
    import argparse
    parser = argparse.ArgumentParser(prog='python -m depth_anything_ros.core.params', description=main.__doc__)
    parser.add_argument('--readme', metavar='FILE', help='rewrite the table between the parameters markers in FILE')
    args = parser.parse_args(argv)
    if not args.readme:
        print(params_yaml(), end='')
        return 0
    with open(args.readme, encoding='utf-8') as f:
        text = f.read()
    with open(args.readme, 'w', encoding='utf-8') as f:
        f.write(readme_with_parameters(text))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
