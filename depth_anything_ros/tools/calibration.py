"""calibration-data: PTQ calibration samples for the RDK S100 toolchain (hb_compile).

hb_compile calibrates the float ONNX itself, so a sample is what the ONNX takes:
float32, fully normalized. It is computed from what the compiled model receives at
run time (the node's own preprocessing) followed by the template's in-model steps,
so the quantizer sees the running node's value distribution:

- featuremap template: the node's float tensor as is.
- nv12 template: the node's Y/UV planes (in the node's `nv12_range`), decoded to
  RGB as the template's input_space_and_range says ('bt601_video': BT.601 video
  range; 'regular', hb_compile's default: full range), put in input_type_train's
  colour order, then normalized by mean_value and scale_value or std_value.

Templates are read the way hb_compile 3.x reads them (models/s100/README.md has the
sources): the normalization follows from which of mean_value, scale_value and std_value
are set ((pixel - mean) * scale, or (pixel - mean) / std), values separated by commas or
spaces; norm_type is only the old spelling, accepted where it says the same as the values.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

HELP = ('write calibration samples (float32 .npy, what the ONNX takes) for an S100 hb_compile '
        'template, from exactly the node\'s preprocessing')
TEMPLATE_FILES = {'featuremap': 'depth_anything_featuremap.yaml', 'nv12': 'depth_anything_nv12.yaml',
                  'da3_featuremap': 'da3_featuremap.yaml', 'da3_nv12': 'da3_nv12.yaml'}
# input_space_and_range -> the range hb_compile decodes NV12 in; absent or empty is 'regular'
SPACE_AND_RANGE = {'regular': 'full', 'bt601_video': 'video'}
RANGE_KEY = {v: k for k, v in SPACE_AND_RANGE.items()}
CHANNELS = 3


@dataclass(frozen=True)
class Template:
    """What calibration needs from an hb_compile config: the run-time input kind and, for
    NV12, the in-model steps: decode range, colour order, layout, per-channel normalization
    on the 0-255 pixel scale ((pixel - mean) * scale; a std_value s is a scale of 1/s)."""
    path: str
    kind: str                       # 'featuremap' or 'nv12' (input_type_rt)
    mean: tuple = (0.0,) * CHANNELS
    scale: tuple = (1.0,) * CHANNELS
    nv12_range: str = 'video'       # NV12 decode: 'video' (bt601_video) or 'full' (regular)
    train_order: str = 'rgb'        # input_type_train: the ONNX's colour order
    layout: str = 'NCHW'            # input_layout_train
    normalization: str = 'none'     # the keys that set it, for messages
    onnx_model: str = ''            # model_parameters.onnx_model: its models.yaml entry gives the recipe


class TemplateError(ValueError):
    """A template calibration-data cannot read as hb_compile would; the message names the key."""


def add_arguments(parser):
    from ..core.params import in_groups
    from ..tool_support.options import add_param_options
    parser.add_argument('--for', dest='template', default='featuremap', metavar='TEMPLATE',
                        help="the hb_compile template the samples are for: 'featuremap', 'nv12' (DA-V2), "
                             "'da3_featuremap', 'da3_nv12' (DA3 Mono/Metric; the templates in models/s100/) "
                             'or a path to your own template .yaml (default featuremap)')
    parser.add_argument('--model-size', default='518x686', metavar='HxW',
                        help="the compiled model's input HxW (default 518x686, depth_any.hbm)")
    parser.add_argument('--out', required=True, help='output directory (created if missing)')
    add_param_options(parser, tuple(n for n in in_groups('recipe') if n != 'input_size'),  # --model-size is it
                      what="as the node will run the compiled model (auto: the recipe models.yaml gives the "
                           "template's onnx_model, by its file name: 'da3' for DA3, else official): ")
    parser.add_argument('--max-samples', type=int, default=100,
                        help='at most this many samples, picked evenly from the images in order '
                             '(default 100; the toolchain documentation recommends 20-100)')
    parser.add_argument('images', nargs='+', metavar='IMAGES', help='image files or directories')


def template_path(name: str) -> str:
    """A TEMPLATE_FILES name -> the installed template; anything else is a path."""
    from ..core.paths import share_path
    return share_path('models', 's100', TEMPLATE_FILES[name]) if name in TEMPLATE_FILES else name


def load_template(path: str) -> Template:
    """Parse an hb_compile template; CliError names the key and what to set."""
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
    model = config.get('model_parameters')
    onnx_model = str(model.get('onnx_model') or '') if isinstance(model, dict) else ''
    try:
        return dataclasses.replace(read_input_parameters(path, inputs), onnx_model=onnx_model)
    except TemplateError as exc:
        raise CliError(f"template '{path}': {exc}") from exc


def read_input_parameters(path: str, inputs: dict) -> Template:
    """input_parameters as hb_compile 3.x reads them, for a single-input model."""
    kind = _text(inputs, 'input_type_rt')
    if kind not in ('featuremap', 'nv12'):
        raise TemplateError(f"input_type_rt {kind!r} is not 'featuremap' or 'nv12'")
    train = _text(inputs, 'input_type_train')
    mean, scale, std = (_channel_values(inputs, key) for key in ('mean_value', 'scale_value', 'std_value'))
    if scale and std:
        raise TemplateError('scale_value and std_value are both set; hb_compile takes one of them')
    normalization = '_and_'.join(name for name, values in (('mean', mean), ('scale', scale), ('std', std))
                                 if values) or 'none'
    _check_norm_type(inputs, normalization)
    space = _text(inputs, 'input_space_and_range') or 'regular'
    if space not in SPACE_AND_RANGE:
        raise TemplateError(f'input_space_and_range {space!r} is not one of {sorted(SPACE_AND_RANGE)}')
    if kind == 'featuremap':
        if normalization != 'none':
            raise TemplateError(f"a featuremap input takes no mean_value/scale_value/std_value (hb_compile "
                                f'refuses them; the node normalizes): remove {normalization.replace("_and_", ", ")}')
        if train != 'featuremap':
            raise TemplateError(f"input_type_train {train!r} of a featuremap input must be 'featuremap'")
        if space != 'regular':
            raise TemplateError(f"input_space_and_range {space!r} applies to nv12 inputs only")
        return Template(path, kind)
    if train not in ('rgb', 'bgr'):
        raise TemplateError(f"input_type_train {train!r}: the NV12 input converts to 'rgb' or 'bgr' here")
    layout = _text(inputs, 'input_layout_train')
    if layout not in ('NCHW', 'NHWC'):
        raise TemplateError(f"input_layout_train {layout!r} must be 'NCHW' or 'NHWC' (hb_compile needs it "
                            'for an nv12 input)')
    return Template(path, kind, mean or (0.0,) * CHANNELS,
                    tuple(1 / v for v in std) if std else scale or (1.0,) * CHANNELS,
                    SPACE_AND_RANGE[space], train, layout, normalization)


def _text(inputs: dict, key: str) -> str:
    """A single-input key's value: quotes and a trailing ';' dropped; several inputs refused."""
    value = inputs.get(key)
    text = '' if value is None else str(value).replace('"', ' ').replace("'", ' ').strip().rstrip(';').strip()
    if ';' in text:
        raise TemplateError(f'{key} {value!r} names several inputs; calibration-data serves '
                            'single-input models (one image input)')
    return text


def _channel_values(inputs: dict, key: str) -> tuple:
    """'123.675 116.28 103.53', '123.675,116.28,103.53' or one value for all channels -> 3
    floats; () when the key is absent or empty."""
    text = _text(inputs, key)
    if not text:
        return ()
    try:
        values = tuple(float(v) for v in text.replace(',', ' ').split())
    except ValueError:
        raise TemplateError(f'{key} {inputs[key]!r} is not numbers separated by commas or spaces') from None
    if len(values) == 1:
        values *= CHANNELS
    if len(values) != CHANNELS:
        raise TemplateError(f'{key} {inputs[key]!r} must be 1 or {CHANNELS} numbers')
    if key in ('scale_value', 'std_value') and 0 in values:
        raise TemplateError(f'{key} {inputs[key]!r} has a 0')
    return values


def _check_norm_type(inputs: dict, normalization: str) -> None:
    """norm_type, deprecated: hb_compile 3.x ignores it and normalizes by the values set.
    Accepted only where it says the same, so the samples never follow a reading the
    toolchain does not share."""
    norm_type = _text(inputs, 'norm_type')
    implied = 'no_preprocess' if normalization == 'none' else f'data_{normalization}'
    if norm_type and norm_type != implied:
        raise TemplateError(f"norm_type {norm_type!r} disagrees with the values set ({implied}): hb_compile "
                            '3.x ignores norm_type (deprecated) and normalizes by mean_value/scale_value/'
                            'std_value; remove norm_type and set the values you mean')


def pick_evenly(items: list, limit: int) -> list:
    """At most `limit` items spread over the whole list, in order."""
    import numpy as np
    if len(items) <= limit:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def sampler(template: Template, canvas_hw: tuple, recipe, nv12_range: str = 'video'):
    """frame -> the float32 tensor the template's ONNX receives for it on the board, when the
    node runs the compiled model with `recipe` and `nv12_range`."""
    import numpy as np

    from ..engines import TensorSpec
    from ..core.nv12_input import Nv12Preprocessor
    from ..core.preprocess import RgbPreprocessor, rgb_input
    if template.kind == 'featuremap':
        rgb = RgbPreprocessor(rgb_input(canvas_hw), recipe)
        return lambda frame: rgb.tensor(frame)[0]
    h, w = canvas_hw
    u8 = np.dtype(np.uint8)
    planes = Nv12Preprocessor([TensorSpec('y', (1, h, w, 1), u8, 'NHWC'),
                               TensorSpec('uv', (1, h // 2, w // 2, 2), u8, 'NHWC')], recipe, nv12_range=nv12_range)
    return lambda frame: nv12_in_model(planes(frame)[0], template)


def nv12_in_model(feeds: dict, template: Template):
    """An NV12 template's in-model steps on the node's planes: NV12 -> RGB or BGR (0-255) in
    the template's range, then (pixel - mean) * scale per channel, float32 in its layout."""
    import numpy as np

    from ..core.image_codec import nv12_to_rgb
    y, uv = feeds['y'][0, :, :, 0], feeds['uv'][0]
    nv12 = np.concatenate([y, uv.reshape(uv.shape[0], -1)], axis=0)
    pixels = nv12_to_rgb(nv12, template.nv12_range).astype(np.float32)
    if template.train_order == 'bgr':
        pixels = pixels[..., ::-1]
    mean, scale = np.float32(template.mean), np.float32(template.scale)
    hwc = (pixels - mean) * scale
    return np.ascontiguousarray(hwc.transpose(2, 0, 1) if template.layout == 'NCHW' else hwc)[None]


def run(args) -> int:
    import numpy as np

    from ..tool_support.errors import CliError
    from ..tool_support.sizes import model_size
    from ..tool_support.files import expand_images, read_frame
    template = load_template(template_path(args.template))
    multiple = 2 if template.kind == 'nv12' else 1  # chroma covers 2x2 pixels
    canvas = model_size(args.model_size, multiple)
    if args.max_samples < 1:
        raise CliError(f'--max-samples {args.max_samples} must be at least 1')
    if template.kind == 'nv12':
        check_nv12_options(template, args)
    recipe = chosen_recipe(args, template)
    found = expand_images(args.images)
    images = pick_evenly(found, args.max_samples)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create --out '{args.out}': {exc}") from exc
    sample = sampler(template, canvas, recipe, args.nv12_range)
    for index, path in enumerate(images):
        np.save(os.path.join(args.out, sample_name(index, path)), sample(read_frame(path)))
    how = (recipe.describe() if template.kind == 'featuremap' else
           f'resize_mode {recipe.resize_mode}, NV12 in {template.nv12_range} range (input_space_and_range '
           f'{RANGE_KEY[template.nv12_range]}) to {template.train_order}, {template.normalization}: '
           f'mean {template.mean} scale {tuple(round(v, 8) for v in template.scale)}, {template.layout}')
    shape = (1, 3) + canvas if template.kind == 'featuremap' or template.layout == 'NCHW' else (1,) + canvas + (3,)
    print(f"wrote {len(images)} samples (of {len(found)} images) of {'x'.join(map(str, shape))} float32 to "
          f"'{args.out}' for {template.kind} template '{template.path}' ({how}); run the compiled model "
          'with the same settings')
    return 0


def check_nv12_options(template: Template, args) -> None:
    """The node's options that an NV12 model ignores or must match."""
    from ..tool_support.errors import CliError
    if args.normalization != 'auto':
        raise CliError(f"--normalization does not apply to the NV12 template '{template.path}': it "
                       'normalizes on the BPU with its own mean_value/scale_value/std_value; leave it out')
    if template.nv12_range != args.nv12_range:
        key = RANGE_KEY[template.nv12_range]
        raise CliError(f"template '{template.path}' decodes NV12 as {template.nv12_range} range "
                       f"(input_space_and_range {key!r}{' by default' if key == 'regular' else ''}), but the "
                       f'node sends {args.nv12_range}-range NV12 (--nv12-range {args.nv12_range}, the node '
                       f"parameter nv12_range): set input_space_and_range: '{RANGE_KEY[args.nv12_range]}' in "
                       f'the template, or --nv12-range {template.nv12_range} if that is your camera\'s range')


def chosen_recipe(args, template: Template):
    """--recipe from models.yaml (auto: the recipe of the template's onnx_model, as the node picks it
    for the compiled model of that name; official for a model it does not know) with the
    single-field options over it."""
    from ..core.model_catalog import load_catalog
    from ..tool_support.errors import CliError
    from ..tool_support.options import in_option_words
    try:
        catalog = load_catalog()
        return catalog.recipe(catalog.entry(template.onnx_model), vars(args))
    except ValueError as exc:
        raise CliError(in_option_words(str(exc))) from exc


def sample_name(index: int, image_path: str) -> str:
    stem = os.path.splitext(os.path.basename(image_path))[0]
    return f'{index:05d}_{stem}.npy'  # index first: unique and in input order
