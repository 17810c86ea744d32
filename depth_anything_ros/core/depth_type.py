"""What a model's depth means: its kind (DepthKind), and for `depth_type: auto` which kind a model
file gives, from its models.yaml entry, its file name or its outputs. No ROS here.

Four kinds, by the parameter `depth_type`:
  relative          DA-V2 relative models: affine-invariant inverse depth (larger = nearer, no unit)
  relative_depth    DA3 relative models (Small, Base, Mono, ...): depth up to scale and shift
                    (larger = farther, no unit)
  metric            DA-V2 metric models: metres
  metric_canonical  DA3Metric: canonical depth, metres = focal x depth / 300 with the focal length in
                    pixels of the network input (the package's apply_metric_scaling)
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# DA-V2's metric checkpoints name their training set: depth_anything_v2_metric_hypersim_vits.pth,
# Depth-Anything-V2-Metric-Indoor-Small-hf. Each word must be a whole token of the file name.
METRIC_RANGE_BY_TOKEN = {'hypersim': 20.0, 'indoor': 20.0, 'vkitti': 80.0, 'outdoor': 80.0}
# The focal length (pixels) at which DA3Metric's canonical depth is metres: utils/alignment.py
# apply_metric_scaling, metres = depth * focal / 300.
CANONICAL_FOCAL = 300.0
# Outputs beside the depth map (the first output), by name, as torch_models/da3_build.py exports
# them: the main series' confidence (exp + 1, larger = surer) and Mono/Metric's sky score.
CONFIDENCE_OUTPUT, SKY_OUTPUT = 'depth_conf', 'sky'
EXTRA_OUTPUTS = {CONFIDENCE_OUTPUT: 'confidence', SKY_OUTPUT: 'sky'}   # output name -> what it is


@dataclass(frozen=True)
class DepthKind:
    name: str          # the depth_type value
    inverse: bool      # larger = nearer (inverse depth); else larger = farther
    metres: bool       # the frame can be in metres without a reference
    canonical: bool    # ... only with the camera's focal length (metres = focal x output / 300)
    meaning: str       # in words, for logs, /diagnostics and the tools


DEPTH_KINDS = {k.name: k for k in (
    DepthKind('relative', True, False, False, 'relative inverse depth (larger = nearer, no unit, not metres)'),
    DepthKind('relative_depth', False, False, False,
              'relative depth (larger = farther, unknown scale and shift, no unit, not metres)'),
    DepthKind('metric', False, True, False, 'metric depth in metres'),
    DepthKind('metric_canonical', False, True, True,
              'metric depth in metres from DA3Metric canonical depth (focal x depth / 300, the focal length '
              "from camera_info scaled to the network input; frames without a usable camera_info go out as "
              'relative depth on depth/relative)'),
)}


def name_tokens(path: str) -> list:
    """The lowercase words of a file name, split at every character that is not a letter or digit:
    'depth_anything_v2_metric_hypersim_vits.pth' -> [..., 'metric', 'hypersim', 'vits', 'pth']."""
    return [token for token in re.split(r'[^a-z0-9]+', os.path.basename(path).lower()) if token]


def metric_name(path: str) -> tuple:
    """(whether the name has the token 'metric', and then the range in metres its training-set
    token gives, or None). 'asymmetric' or 'nonmetric' are other words, not 'metric'."""
    tokens = name_tokens(path)
    if 'metric' not in tokens:
        return False, None
    ranges = [METRIC_RANGE_BY_TOKEN[t] for t in tokens if t in METRIC_RANGE_BY_TOKEN]
    return True, (ranges[0] if ranges else None)


def guess_depth_type(model_path: str, entry=None, output_names=()) -> tuple:
    """(depth_type, max depth in metres or None) for `depth_type: auto`.

    A file listed in models.yaml (its `entry`, model_catalog.Catalog.entry) says so itself;
    otherwise a DA-V2 metric file name (the tokens 'metric' and 'hypersim'/'indoor' = 20 m or
    'vkitti'/'outdoor' = 80 m, see `metric_name`) is metric; a model with DA3's outputs beside depth
    (`output_names`: sky or depth_conf) gives relative depth (DA3Metric's canonical depth is the same
    network as DA3Mono's: only its name tells, so an unlisted name is never taken for metres); and
    anything else is taken as DA-V2 relative inverse depth.
    """
    if entry is not None:
        return entry.depth, entry.max_depth_m
    metric, max_depth = metric_name(model_path)
    if metric and max_depth is not None:
        return 'metric', max_depth
    if any(name in EXTRA_OUTPUTS for name in output_names):
        return 'relative_depth', None
    return 'relative', None
