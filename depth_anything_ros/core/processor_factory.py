"""Validated node parameters -> the FrameProcessor they describe. No ROS here.

The node, `bag`, `infer`, `eval`, `bench` and `board-check` all build their processor here
(tools through tool_support/options.py), so a parameter means the same thing in each. What it
decides at start-up: the engine and its threads, the recipe (models.yaml, read once), what the
depth means (relative or metric, aligned or not), the memory a dynamic model may take, the view
(colour map, temporal smoothing; also rebuilt at runtime by the node), and the process's malloc.
A setting that cannot work raises ConfigError saying what to set.
"""
from __future__ import annotations

import ctypes
import os

from ..engines import EngineError, MissingRuntime, open_engine
from .dependencies import MissingDependency
from .depth_type import CONFIDENCE_OUTPUT, DEPTH_KINDS, EXTRA_OUTPUTS, SKY_OUTPUT, guess_depth_type
from .estimator import DepthEstimator
from .frame_processor import FrameProcessor
from .metric_alignment import ReferenceAligner
from .model_catalog import load_catalog
from .params import ConfigError
from .placement import MAX_DYNAMIC_ASPECT, dynamic_input_limit
from .postprocess import Colorizer
from .reference_samples import RigidTransform
from .temporal import DepthSmoother

# The smallest DA-V2 (ViT-S) has 6 attention heads: the memory bound below is a lower one.
_VIT_S_HEADS = 6
# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def build_processor(cfg: dict, engine=None) -> FrameProcessor:
    """The FrameProcessor of validated node parameters (core/params.py); ConfigError says what to
    set. `engine`: an open engine to use instead of opening cfg['model_path']. Sets the process's
    malloc to reuse freed frame buffers (keep_freed_memory)."""
    try:
        catalog = load_catalog()
        entry = catalog.entry(cfg['model_path'])
        recipe = catalog.recipe(entry, cfg)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    keep_freed_memory()
    try:
        engine = engine or open_engine(
            cfg['model_path'], cfg['engine'], providers=cfg['providers'],
            intra_op_threads=cfg['intra_op_threads'] or default_intra_op_threads(cfg['workers']),
            bpu_priority=cfg['bpu_priority'], bpu_cores=_bpu_cores(cfg['bpu_cores']))
        estimator = DepthEstimator(engine, recipe, cfg['input_size'], cfg['nv12_range'])
    except MissingRuntime as exc:  # an install step, not a parameter to change
        raise MissingDependency(str(exc)) from exc
    except (EngineError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    depth_type, max_depth = resolve_depth_type(cfg, entry, estimator.output_names)
    check_extra_outputs(cfg, estimator.output_names)
    colorizer, smoother = view_settings(cfg)
    processor = FrameProcessor(estimator, depth_type, max_depth, make_aligner(cfg, DEPTH_KINDS[depth_type].inverse),
                               colorizer, smoother, cfg['points_decimation'], cfg['points_rgb'], cfg['nv12_range'],
                               cfg['sky_depth'])
    if any(spec.spatial_hw is None for spec in engine.inputs):
        processor.notes.append(dynamic_input_budget(cfg['input_size'], cfg['workers'], _physical_memory()))
    return processor


def resolve_depth_type(cfg: dict, entry, output_names=()) -> tuple:
    """(depth_type, max_depth) of the model (`entry`: its models.yaml entry, or None; `output_names`:
    its outputs); ConfigError for outputs its depth cannot give."""
    kind, known_max = guess_depth_type(cfg['model_path'], entry, output_names)
    kind = kind if cfg['depth_type'] == 'auto' else cfg['depth_type']
    aligned = cfg['metric_reference'] != 'none'
    if DEPTH_KINDS[kind].metres and aligned:
        raise ConfigError(f"parameter metric_reference: '{cfg['metric_reference']}' aligns a relative model, "
                          f'but this model gives metres already ({kind}); set metric_reference: none')
    if not DEPTH_KINDS[kind].metres and not aligned and (cfg['publish_points'] or cfg['publish_depth_mm']):
        raise ConfigError(f'publish_points and publish_depth_mm need metric depth: this model gives '
                          f'{DEPTH_KINDS[kind].meaning}; use a metric model (DA-V2 metric, DA3Metric), set '
                          'metric_reference to align it to a depth sensor or the floor, or set '
                          'depth_type: metric if this one is metric')
    return kind, cfg['max_depth'] or known_max


def check_extra_outputs(cfg: dict, output_names) -> None:
    """ConfigError for publish_confidence or publish_sky on a model without that output."""
    for param, name in (('publish_confidence', CONFIDENCE_OUTPUT), ('publish_sky', SKY_OUTPUT)):
        if cfg[param] and name not in output_names:
            raise ConfigError(f"parameter {param}: this model has no '{name}' output ({EXTRA_OUTPUTS[name]}: "
                              f"DA3's {'main series' if name == CONFIDENCE_OUTPUT else 'Mono and Metric'} have "
                              f"one; its outputs: {', '.join(output_names) or 'none'}); set {param}: false")


def make_aligner(cfg: dict, inverse: bool = True) -> ReferenceAligner | None:
    """The reference aligner metric_reference asks for; `inverse`: the model gives inverse depth."""
    if cfg['metric_reference'] == 'none':
        return None
    pose = list(cfg['reference_transform'])
    try:
        RigidTransform.from_pose(pose)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'parameter reference_transform: {exc} (x y z qx qy qz qw from the cloud\'s frame to '
                          'the camera\'s optical frame, as tf2_echo prints it)') from exc
    try:
        return ReferenceAligner(cfg['metric_reference'], cfg['reference_tolerance'], pose, cfg['camera_height'],
                                cfg['camera_pitch'], cfg['floor_rows'], cfg['alignment_min_support'],
                                cfg['alignment_smoothing'], cfg['alignment_scene_cut'], cfg['max_depth'],
                                cfg['max_input_pixels'], inverse)
    except ValueError as exc:
        raise ConfigError(f'parameter metric_reference: {exc}') from exc


def view_settings(cfg: dict, fallback_range: tuple | None = None) -> tuple:
    """(Colorizer, DepthSmoother or None) from validated parameters (the ones that change at
    runtime); `fallback_range` stands in for an empty colour range (color_min >= color_max) while
    a runtime set is under way."""
    lo, hi = cfg['color_min'], cfg['color_max']
    colorizer = Colorizer(cfg['colormap'], cfg['color_range'],
                          fixed_range=(lo, hi) if lo < hi else fallback_range, smoothing=cfg['color_smoothing'])
    smoother = DepthSmoother(cfg['temporal_smoothing'], cfg['scene_cut']) if cfg['temporal_smoothing'] else None
    return colorizer, smoother


def default_intra_op_threads(workers: int) -> int:
    """Cores shared out between the workers that run at once: more threads than cores makes
    each parallel step wait for a preempted thread (measured: 25 % of throughput on 2 cores)."""
    return max(1, (os.cpu_count() or 1) // workers)


def _bpu_cores(cores) -> list | None:
    cores = list(cores)
    return None if cores == [-1] else cores


def keep_freed_memory() -> bool:
    """Let freed frame-sized buffers be reused, not returned to the system: glibc maps every block
    over its (adaptive) threshold afresh and trims the heap as soon as 2x that lies free, so each
    frame's multi-MB arrays can come back as new pages the kernel faults in and zeroes one by one
    (measured up to 2300 faults and 6.6 ms of system time per 1080p frame, in the main thread, with
    a 518x686 model). Blocks up to 32 MiB (glibc's limit) from the heap, trimmed past 256 MiB: the
    resident size stays at the largest frame's working set. Process-wide; False where the C
    library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))


# -- the memory of a dynamic model -----------------------------------------------------------
def attention_bytes(input_size: int) -> int:
    """Bytes of one attention head's score matrix (float32 tokens x tokens) for the largest
    input a dynamic model gets: the allocation that grows fastest with input_size."""
    short, long = dynamic_input_limit(input_size)
    tokens = (short // 14) * (long // 14)
    return tokens * tokens * 4


def _physical_memory() -> int:
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def dynamic_input_budget(input_size: int, workers: int, memory: int) -> str:
    """A start-up line on the worst-case memory of a dynamic model; ConfigError when even
    the smallest DA-V2 could not fit `workers` calls into `memory` bytes."""
    short, long = dynamic_input_limit(input_size)
    per_call = attention_bytes(input_size) * _VIT_S_HEADS
    if per_call * workers > memory:
        # the largest s with tokens = MAX_DYNAMIC_ASPECT (s/14)^2 whose 4-byte scores fit
        fit = int(14 * (memory / (workers * _VIT_S_HEADS * 4 * MAX_DYNAMIC_ASPECT ** 2)) ** 0.25) // 14 * 14
        raise ConfigError(f'parameter input_size: {input_size} needs about {per_call / 2**30:.0f} GiB per inference '
                          f'(worst case {short}x{long}, attention of the smallest DA-V2) x {workers} workers, '
                          f'more than this machine\'s {memory / 2**30:.0f} GiB; use input_size <= {fit}')
    return (f'dynamic model: input at most {short}x{long} (wider frames go in by resize_mode); attention '
            f'needs about {per_call / 2**20:.0f} MiB (ViT-S) to {per_call / _VIT_S_HEADS * 16 / 2**20:.0f} MiB '
            f'(ViT-L) per call, x {workers} workers')
