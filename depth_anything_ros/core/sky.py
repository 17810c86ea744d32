"""Sky in Depth Anything 3 Mono/Metric output, read as the official code reads it. No ROS here.

The official forward (depth_anything_3 0.1.1, model/da3.py `_process_mono_sky_estimation`) takes
pixels whose sky score is >= 0.3 as sky (utils/alignment.py compute_sky_mask: non-sky is score < 0.3)
and, when more than 10 pixels are sky and more than 10 are not, replaces their depth with the 99th
percentile of the other pixels' depth (over a random 100000 of them when there are more: this takes
the exact percentile, the value that sample estimates). The mask it reports (utils/io/output_processor.py)
is score >= 0.5. The exported graph stops before that data-dependent step: it is done here, at the
network's resolution, in FrameProcessor.infer.

What the node publishes there (`sky_depth`): `infinite`, REP 118's +Inf ("too far") for those pixels,
so no point is made of them; or `official_fill`, the official code's fill value.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .placement import Placement
from .postprocess import to_image

FILL_THRESHOLD = 0.3     # model/da3.py: compute_sky_mask(output.sky, threshold=0.3)
MASK_THRESHOLD = 0.5     # utils/io/output_processor.py: sky >= 0.5
MIN_PIXELS = 10          # the fill needs more than this many sky and non-sky pixels
FILL_QUANTILE = 0.99
SKY_DEPTHS = ('infinite', 'official_fill')


@dataclass(frozen=True)
class Sky:
    """A frame's sky at model resolution: `replaced` (bool) the pixels whose depth the official code
    replaces, None when it replaces none (too few sky or non-sky pixels); `fill` the value it puts
    there; `mask` (bool) the mask it reports."""
    replaced: np.ndarray | None
    fill: float | None
    mask: np.ndarray


def read_sky(score: np.ndarray, depth: np.ndarray) -> Sky:
    """The official reading of a sky score map against the depth map of the same frame."""
    sky = score >= FILL_THRESHOLD
    count = int(np.count_nonzero(sky))
    mask = score >= MASK_THRESHOLD
    if count <= MIN_PIXELS or sky.size - count <= MIN_PIXELS:
        return Sky(None, None, mask)
    ground = depth[~sky].astype(np.float64)
    return Sky(sky, float(np.quantile(ground, FILL_QUANTILE)), mask)


def filled(depth: np.ndarray, sky: Sky) -> np.ndarray:
    """The official depth at network resolution: `depth` with the sky pixels set to the fill value."""
    if sky.replaced is None:
        return depth
    out = depth.copy()
    out[sky.replaced] = np.float32(sky.fill)
    return out


def on_image(mask: np.ndarray, placement: Placement, upsampling: str) -> np.ndarray:
    """A model-resolution mask at the frame's size (bool): a pixel is in it where the mask, upsampled
    as the depth is (`upsampling`), is at least one half, i.e. where the model pixels its depth is
    interpolated from are mostly in the mask. False where the model never saw the frame."""
    return to_image(mask.astype(np.float32), placement, 0.0, upsampling=upsampling) >= 0.5
