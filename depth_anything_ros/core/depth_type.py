"""What a model's depth means, for `depth_type: auto`: relative (inverse depth, no unit) or metric
(metres, and up to how far), from its models.yaml entry or its file name. No ROS here."""
from __future__ import annotations

import os
import re

# DA-V2's metric checkpoints name their training set: depth_anything_v2_metric_hypersim_vits.pth,
# Depth-Anything-V2-Metric-Indoor-Small-hf. Each word must be a whole token of the file name.
METRIC_RANGE_BY_TOKEN = {'hypersim': 20.0, 'indoor': 20.0, 'vkitti': 80.0, 'outdoor': 80.0}


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


def guess_depth_type(model_path: str, entry=None) -> tuple:
    """('relative' | 'metric', max depth in metres or None) for `depth_type: auto`.

    A file listed in models.yaml (its `entry`, model_catalog.Catalog.entry) says so itself;
    otherwise a DA-V2 metric file name (the tokens 'metric' and 'hypersim'/'indoor' = 20 m or
    'vkitti'/'outdoor' = 80 m, see `metric_name`) is metric, and anything else is taken as relative.
    """
    if entry is not None:
        return entry.depth, entry.max_depth_m
    metric, max_depth = metric_name(model_path)
    if metric and max_depth is not None:
        return 'metric', max_depth
    return 'relative', None
