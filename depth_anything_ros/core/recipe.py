"""How a model wants its input and how its output goes back onto the image: the `Recipe`. No ROS here.

models/models.yaml names recipes and gives every known model one (model_catalog.py reads it);
node parameters and tool options override single fields. One Recipe object goes from there to
the preprocessors (preprocess.py, nv12_input.py) and the upsampling (postprocess.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ('stretch', 'letterbox', 'crop')
NORMALIZATIONS = ('imagenet', 'pixel_zscore', 'none')
# cubic: the float image (official DA-V2); cubic_uint8: the 8-bit image, faster, rounds to a grey
# level and clips the cubic overshoot (see docs/recipes.md); nearest: the D-Robotics sample;
# area_cubic: DA3's two-step resize of the 8-bit image (preprocess.py).
INTERPOLATIONS = ('cubic', 'cubic_uint8', 'nearest', 'area_cubic')
CHANNEL_ORDERS = ('rgb', 'bgr')
# align_corners: the official bilinear upsampling of the output; pixel_centres: OpenCV's.
UPSAMPLINGS = ('align_corners', 'pixel_centres')
OFFICIAL = 'official'    # the recipe of every model models.yaml does not list
# The official recipe's shorter side of a dynamic model's input (the node parameter input_size).
OFFICIAL_INPUT_SIZE = 518
_CHOICES = {'resize_mode': RESIZE_MODES, 'interpolation': INTERPOLATIONS, 'normalization': NORMALIZATIONS,
            'channel_order': CHANNEL_ORDERS, 'upsampling': UPSAMPLINGS}


@dataclass(frozen=True)
class Recipe:
    """How a model wants its input and how its output goes back onto the image; the defaults are
    the official one. ValueError names a field outside its choices."""
    name: str = OFFICIAL
    resize_mode: str = 'stretch'       # fixed-shape models only; dynamic ones keep the aspect
    interpolation: str = 'cubic'
    normalization: str = 'imagenet'
    channel_order: str = 'rgb'
    upsampling: str = 'align_corners'

    def __post_init__(self):
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} '{getattr(self, name)}' is not one of {choices}")

    @property
    def settings(self) -> dict:
        """Every field but the name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != 'name'}

    def describe(self) -> str:
        return f"recipe '{self.name}': " + ', '.join(f'{k} {v}' for k, v in self.settings.items())

    def overridden(self, overrides: dict) -> 'Recipe':
        """This recipe with every field of `overrides` (node parameters, tool options) that is set
        (not None or 'auto') and differs put over it, and named for it."""
        changes = {k: v for k, v in overrides.items()
                   if k in _CHOICES and v not in (None, 'auto') and getattr(self, k) != v}
        if not changes:
            return self
        return dataclasses.replace(self, name=f'{self.name} with {", ".join(sorted(changes))} set', **changes)
