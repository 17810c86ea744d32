"""calibration-data: PTQ calibration samples for the RDK S100 toolchain (hb_compile).

hb_compile calibrates the float ONNX itself, so a sample is what the ONNX takes:
float32 NCHW, fully normalized. It is computed from what the compiled model
receives at run time (the node's own preprocessing) followed by the template's
in-model steps, so the quantizer sees the running node's value distribution:

- featuremap template (norm_type no_preprocess): the node's float tensor as is.
- nv12 template: the node's Y/UV planes, decoded to RGB the way the BPU is
  assumed to (BT.601 video range, OpenCV's NV12 convention), then
  `(pixel - mean_value) * scale_value` with the template's values.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

HELP = ('write calibration samples (float32 NCHW 1x3xHxW .npy, what the ONNX takes) for an S100 '
        'hb_compile template, from exactly the node\'s preprocessing')
TEMPLATE_FILES = {'featuremap': 'depth_anything_featuremap.yaml', 'nv12': 'depth_anything_nv12.yaml'}


@dataclass(frozen=True)
class Template:
    """What calibration needs from an hb_compile config: the run-time input kind and,
    for NV12, the per-channel in-model normalization on the 0-255 pixel scale."""
    path: str
    kind: str                # 'featuremap' or 'nv12' (input_type_rt)
    mean: tuple = (0.0, 0.0, 0.0)
    scale: tuple = (1.0, 1.0, 1.0)


def add_arguments(parser):
    from ..tool_support.options import RECIPE, add_param_options
    parser.add_argument('--for', dest='template', default='featuremap', metavar='TEMPLATE',
                        help="the hb_compile template the samples are for: 'featuremap', 'nv12' (the "
                             'templates in models/s100/) or a path to your own template .yaml '
                             '(default featuremap)')
    parser.add_argument('--model-size', default='518x686',
                        help="the compiled model's input HxW (default 518x686, depth_any.hbm)")
    parser.add_argument('--out', required=True, help='output directory (created if missing)')
    parser.add_argument('--recipe', default='official',
                        help="the recipe the node will run the compiled model with (models/models.yaml): "
                             "'official' (default: what the node uses for a model it does not know) or "
                             "'d_robotics_sample' (depth_any.hbm's); the options below override single "
                             'fields. NV12 templates normalize with their own mean_value/scale_value')
    add_param_options(parser, RECIPE[1:], what='overrides the recipe: ')
    parser.add_argument('--max-samples', type=int, default=100,
                        help='at most this many samples, picked evenly from the images in order '
                             '(default 100; the toolchain documentation recommends 20-100)')
    parser.add_argument('images', nargs='+', metavar='IMAGES', help='image files or directories')


def template_path(name: str) -> str:
    """'featuremap' / 'nv12' -> the installed template; anything else is a path."""
    from ..core.paths import share_path
    return share_path('models', 's100', TEMPLATE_FILES[name]) if name in TEMPLATE_FILES else name


def load_template(path: str) -> Template:
    """Parse an hb_compile template; errors name the key and what to set."""
    import yaml

    from ..tool_support.errors import CliError
    try:
        with open(path, encoding='utf-8') as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read template '{path}': {exc}") from exc
    inputs = (config or {}).get('input_parameters') if isinstance(config, dict) else None
    if not isinstance(inputs, dict):
        raise CliError(f"template '{path}' has no input_parameters section")
    kind, norm = inputs.get('input_type_rt'), inputs.get('norm_type')
    if kind == 'featuremap':
        if norm != 'no_preprocess':
            raise CliError(f"template '{path}': a featuremap input needs norm_type 'no_preprocess' "
                           f"(the node normalizes), not {norm!r}")
        return Template(path, kind)
    if kind != 'nv12':
        raise CliError(f"template '{path}': input_type_rt {kind!r} is not 'featuremap' or 'nv12'")
    mean = _channel_values(inputs, 'mean_value', norm in ('data_mean', 'data_mean_and_scale'), 0.0, path)
    scale = _channel_values(inputs, 'scale_value', norm in ('data_scale', 'data_mean_and_scale'), 1.0, path)
    return Template(path, kind, mean, scale)


def _channel_values(inputs: dict, key: str, used: bool, default: float, path: str) -> tuple:
    """'123.675 116.28 103.53' (or one value for all channels) -> 3 floats."""
    from ..tool_support.errors import CliError
    if not used:
        return (default,) * 3
    try:
        values = tuple(float(v) for v in str(inputs.get(key, '')).split())
    except ValueError:
        values = ()
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise CliError(f"template '{path}': {key} {inputs.get(key)!r} must be 1 or 3 numbers")
    return values


def pick_evenly(items: list, limit: int) -> list:
    """At most `limit` items spread over the whole list, in order."""
    import numpy as np
    if len(items) <= limit:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def sampler(template: Template, canvas_hw: tuple, recipe):
    """frame -> the float32 NCHW tensor the template's ONNX receives for it on the board, when
    the node runs the compiled model with `recipe`."""
    import numpy as np

    from ..engines import TensorSpec
    from ..core.nv12_input import Nv12Preprocessor
    from ..core.preprocess import RgbPreprocessor
    if template.kind == 'featuremap':
        rgb = RgbPreprocessor(canvas_hw, 'NCHW', recipe.resize_mode, normalization=recipe.normalization,
                              interpolation=recipe.interpolation, channel_order=recipe.channel_order)
        return lambda frame: rgb(frame)[0]
    h, w = canvas_hw
    u8 = np.dtype(np.uint8)
    planes = Nv12Preprocessor([TensorSpec('y', (1, h, w, 1), u8, 'NHWC'),
                               TensorSpec('uv', (1, h // 2, w // 2, 2), u8, 'NHWC')], recipe.resize_mode)
    return lambda frame: nv12_in_model(planes(frame)[0], template)


def nv12_in_model(feeds: dict, template: Template):
    """An NV12 template's in-model steps on the node's planes: NV12 -> RGB (0-255),
    then (pixel - mean) * scale per channel, as float32 NCHW."""
    import cv2
    import numpy as np
    y, uv = feeds['y'][0, :, :, 0], feeds['uv'][0]
    nv12 = np.concatenate([y, uv.reshape(uv.shape[0], -1)], axis=0)
    rgb = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12).astype(np.float32)
    mean, scale = np.float32(template.mean), np.float32(template.scale)
    return ((rgb - mean) * scale).transpose(2, 0, 1)[None].astype(np.float32)


def run(args) -> int:
    import numpy as np

    from ..tool_support.errors import CliError, parse_size
    from ..tool_support.files import expand_images, read_frame
    template = load_template(template_path(args.template))
    multiple = 2 if template.kind == 'nv12' else 1  # chroma covers 2x2 pixels
    canvas = parse_size(args.model_size, '--model-size', multiple=multiple)
    if args.max_samples < 1:
        raise CliError(f'--max-samples {args.max_samples} must be at least 1')
    if template.kind == 'nv12' and args.normalization != 'auto':
        raise CliError(f"--normalization does not apply to the NV12 template '{template.path}': it "
                       'normalizes on the BPU with its own mean_value/scale_value; leave it out')
    recipe = chosen_recipe(args)
    found = expand_images(args.images)
    images = pick_evenly(found, args.max_samples)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create --out '{args.out}': {exc}") from exc
    sample = sampler(template, canvas, recipe)
    for index, path in enumerate(images):
        np.save(os.path.join(args.out, sample_name(index, path)), sample(read_frame(path)))
    how = (recipe.describe() if template.kind == 'featuremap'
           else f'resize_mode {recipe.resize_mode}, NV12 decoded, mean {template.mean} scale {template.scale}')
    print(f"wrote {len(images)} samples (of {len(found)} images) of 1x3x{canvas[0]}x{canvas[1]} "
          f"float32 to '{args.out}' for {template.kind} template '{template.path}' "
          f'({how}); run the compiled model with the same recipe')
    return 0


def chosen_recipe(args):
    """--recipe from models.yaml with the single-field options over it."""
    import dataclasses

    from ..tool_support.errors import CliError
    from ..core.model_zoo import RECIPE_FIELDS, load_recipes
    recipes = load_recipes()
    if args.recipe not in recipes:
        raise CliError(f"--recipe '{args.recipe}' is not one of {sorted(recipes)} (models/models.yaml)")
    changes = {k: getattr(args, k) for k in RECIPE_FIELDS if getattr(args, k) != 'auto'}
    return dataclasses.replace(recipes[args.recipe], **changes)


def sample_name(index: int, image_path: str) -> str:
    stem = os.path.splitext(os.path.basename(image_path))[0]
    return f'{index:05d}_{stem}.npy'  # index first: unique and in input order
