"""A decoded frame to every output the package has. No ROS here.

The node, `bag`, `infer`, `eval` and `bench` all go through FrameProcessor, built
from the node's parameters (`from_config`), so an output means the same thing
whichever of them made it. One frame, top to bottom:

  1. infer    preprocess, run the engine, check the model-resolution depth   any thread, in parallel
  2. finish   temporal smoothing at model resolution, depth at the frame's   one frame at a time,
              size, then metric masking (metric model) or metres from a      in frame order
              reference (relative model + metric_reference), colorized
              view, millimetres, points

`finish` carries state from frame to frame (the smoothed depth, the alignment's running
fit, the smoothed colour range), so it sees frames one at a time and in order; `process`
runs both steps for callers that hand over one frame at a time. The node runs step 1 on
its workers in parallel and step 2 in arrival order (see ros/node.py).
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field

import numpy as np

from ..engines import EngineError, MissingRuntime, open_engine
from .dependencies import MissingDependency
from .estimator import DepthEstimator
from .image_codec import Frame, ImageFormatError, any_error_is_bad_input, empty_image, to_rgb
from .metric_alignment import ReferenceAligner
from .metric_fit import Unaligned
from .model_zoo import guess_depth_type, resolve_recipe
from .params import ConfigError
from .pointcloud import depth_to_points, invalid_to_nan, scaled_intrinsics, to_millimetres
from .reference_samples import RigidTransform
from .postprocess import Colorizer
from .preprocess import MAX_DYNAMIC_ASPECT, Placement, dynamic_input_limit
from .temporal import DepthSmoother

OUTPUTS = ('depth', 'colorized', 'depth_mm', 'points')
# The smallest DA-V2 (ViT-S) has 6 attention heads: the memory bound below is a lower one.
_VIT_S_HEADS = 6


@dataclass
class ModelDepth:
    """Step 1's result: the model's own depth map and where the frame went in its input."""
    depth: np.ndarray         # 2-D float32, model resolution
    placement: Placement
    timings: dict = field(default_factory=dict)  # stage -> seconds


@dataclass
class FrameOutputs:
    depth: np.ndarray               # HxW float32 at the frame's size, NaN where not seen or invalid
    metres: bool                    # depth in metres; else relative inverse depth (larger = nearer)
    colorized: np.ndarray | None = None   # HxWx3 bgr8
    depth_mm: np.ndarray | None = None    # HxW uint16 millimetres, 0 = invalid (REP 118)
    points: tuple | None = None           # (xyz float32 Nx3, rgb uint8 Nx3 or None), optical frame
    unaligned: str | None = None    # metric_reference: why this frame stayed relative (a counter's name)
    unaligned_detail: str = ''      # ... and in words, with numbers
    fit: object = None              # metric_reference: the InverseDepthFit that made the metres
    points_skipped: str | None = None     # 'no_camera_info' or the reason the camera_info failed
    timings: dict = field(default_factory=dict)


class NewArrays:
    """finish's depth (HxW float32) and colorized view (HxWx3 uint8) in arrays of their own."""

    @staticmethod
    def depth_array(height: int, width: int) -> np.ndarray:
        return empty_image(height, width, '32FC1')

    @staticmethod
    def colorized_array(height: int, width: int) -> np.ndarray:
        return empty_image(height, width, 'bgr8')


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


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


def default_intra_op_threads(workers: int) -> int:
    """Cores shared out between the workers that run at once: more threads than cores makes
    each parallel step wait for a preempted thread (measured: 25 % of throughput on 2 cores)."""
    return max(1, (os.cpu_count() or 1) // workers)


class FrameProcessor:
    """Frames -> FrameOutputs with one model, depth meaning and view (see the module docstring).

    `depth_type`: 'relative' or 'metric'; `max_depth` (metres, 0: none) masks a metric
    model's depth; `aligner` turns a relative model's depth into metres. `colorizer` and
    `smoother` are the view settings, replaced at runtime by `set_view`.
    """

    def __init__(self, estimator: DepthEstimator, depth_type: str = 'relative', max_depth: float = 0.0,
                 aligner: ReferenceAligner | None = None, colorizer: Colorizer | None = None,
                 smoother: DepthSmoother | None = None, points_decimation: int = 4, points_rgb: bool = True,
                 nv12_range: str = 'video'):
        self.estimator = estimator
        self.nv12_range = nv12_range  # of NV12 frames: their colours on the points
        self.depth_type = depth_type
        self.max_depth = max_depth
        self.aligner = aligner
        self.colorizer = colorizer or Colorizer()
        self.smoother = smoother
        self.points_decimation = points_decimation
        self.points_rgb = points_rgb
        self.notes = []  # start-up lines worth logging (from_config)

    @classmethod
    def from_config(cls, cfg: dict, engine=None) -> 'FrameProcessor':
        """From validated node parameters (core/params.py); ConfigError says what to set.
        `engine`: an open engine to use instead of opening cfg['model_path']. Sets the process's
        malloc to reuse freed frame buffers (keep_freed_memory)."""
        depth_type, max_depth = resolve_depth_type(cfg)
        keep_freed_memory()
        try:
            engine = engine or open_engine(
                cfg['model_path'], cfg['engine'], providers=cfg['providers'],
                intra_op_threads=cfg['intra_op_threads'] or default_intra_op_threads(cfg['workers']),
                bpu_priority=cfg['bpu_priority'], bpu_cores=_bpu_cores(cfg['bpu_cores']))
            estimator = DepthEstimator.from_recipe(engine, resolve_recipe(cfg['model_path'], cfg), cfg['input_size'],
                                                   cfg['nv12_range'])
        except MissingRuntime as exc:  # an install step, not a parameter to change
            raise MissingDependency(str(exc)) from exc
        except (EngineError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        colorizer, smoother = view_settings(cfg)
        processor = cls(estimator, depth_type, max_depth, make_aligner(cfg), colorizer, smoother,
                        cfg['points_decimation'], cfg['points_rgb'], cfg['nv12_range'])
        if any(spec.spatial_hw is None for spec in engine.inputs):
            processor.notes.append(dynamic_input_budget(cfg['input_size'], cfg['workers'], _physical_memory()))
        return processor

    @property
    def metric(self) -> bool:
        """Whether frames can come out in metres (a metric model, or one aligned to a reference)."""
        return self.depth_type == 'metric' or self.aligner is not None

    def meaning(self) -> str:
        if self.depth_type == 'metric':
            return 'metric depth in metres'
        if self.aligner is not None:
            return f'metres aligned to {self.aligner.source} (relative frames on depth/relative)'
        return 'relative inverse depth (larger = nearer, not metres)'

    def set_view(self, colorizer: Colorizer, smoother: DepthSmoother | None) -> None:
        self.colorizer, self.smoother = colorizer, smoother

    # -- the two steps -----------------------------------------------------------------
    def infer(self, frame: Frame) -> ModelDepth:
        depth, placement, timings = self.estimator.model_depth(frame)
        return ModelDepth(depth, placement, timings)

    def finish(self, frame: Frame, model: ModelDepth, wanted=OUTPUTS, stamp_ns: int = 0, camera=None,
               arrays=None, restart: bool = False, reference_deadline: float | None = None) -> FrameOutputs:
        """The outputs in `wanted` (depth always); call it one frame at a time, in frame order.
        `camera`: the last usable camera_info (anything with k, width, height), for points and
        references that need intrinsics. `arrays`: where depth and colorized are written (NewArrays,
        or output_topics.MessageBuffers: into messages). `restart`: this frame does not follow
        the previous one (stamps went back): temporal smoothing starts over from it.
        `reference_deadline` (time.monotonic()): until when alignment may wait for a late reference."""
        arrays = arrays or NewArrays()
        clock = self.estimator.clock
        depth = arrays.depth_array(frame.height, frame.width)
        color = arrays.colorized_array(frame.height, frame.width) if 'colorized' in wanted else None
        t0 = clock()
        model_depth = self._smoothed(model, restart)
        self.estimator.restore(model_depth, model.placement, depth)
        out = FrameOutputs(depth, self.depth_type == 'metric', timings=dict(model.timings))
        intrinsics, camera_problem = frame_intrinsics(camera, depth.shape)
        if out.metres and self.max_depth:
            depth[...] = invalid_to_nan(depth, self.max_depth)
        elif self.aligner is not None:
            try:
                out.fit = self.aligner.align(stamp_ns, depth, intrinsics, reference_deadline)
                out.metres = True
            except Unaligned as exc:
                out.unaligned, out.unaligned_detail = exc.reason, str(exc)
        t1 = clock()
        if color is not None:
            out.colorized = self.colorizer(model_depth, model.placement, color)
        t2 = clock()
        if out.metres and 'depth_mm' in wanted:
            out.depth_mm = to_millimetres(depth)
        if out.metres and 'points' in wanted:
            out.points, out.points_skipped = self._points(frame, depth, intrinsics, camera_problem)
        out.timings.update(postprocess=t1 - t0, colorize=t2 - t1, metric_outputs=clock() - t2)
        return out

    def process(self, frame: Frame, wanted=OUTPUTS, stamp_ns: int = 0, camera=None, arrays=None,
                restart: bool = False) -> FrameOutputs:
        """Both steps, for callers that hand over one frame at a time in order."""
        return self.finish(frame, self.infer(frame), wanted, stamp_ns, camera, arrays, restart)

    def _smoothed(self, model: ModelDepth, restart: bool) -> np.ndarray:
        smoother = self.smoother
        if smoother is None:
            return model.depth
        if restart:
            smoother.reset()
        return smoother(model.depth, model.placement)

    @any_error_is_bad_input
    def add_reference(self, stamp_ns: int, msg) -> bool:
        """A metric_reference message (fields of a sensor_msgs Image for 'depth_image', of a
        PointCloud2 for 'points'); True if its stamp restarted the reference store;
        ImageFormatError, whatever went wrong, if it cannot be used."""
        if self.aligner.source == 'depth_image':
            return self.aligner.add_depth_image(stamp_ns, msg.height, msg.width, msg.encoding, msg.is_bigendian,
                                                msg.step, msg.data)
        fields = [(f.name, f.offset, f.datatype) for f in msg.fields]
        return self.aligner.add_points(stamp_ns, fields, msg.height, msg.width, msg.point_step, msg.row_step,
                                       msg.data, msg.is_bigendian)

    def expect_frame(self, stamp_ns: int) -> None:
        """A frame stamped `stamp_ns` arrived and will be finished (or forgotten) later: the
        reference it pairs with is kept for it meanwhile."""
        if self.aligner is not None:
            self.aligner.expect(stamp_ns)

    def forget_frame(self, stamp_ns: int) -> None:
        """That frame is finished, superseded or failed."""
        if self.aligner is not None:
            self.aligner.forget(stamp_ns)

    def _points(self, frame: Frame, depth: np.ndarray, intrinsics, camera_problem) -> tuple:
        if intrinsics is None:
            return None, camera_problem
        try:
            bgr = to_rgb(frame, self.nv12_range)[:, :, ::-1] if self.points_rgb else None
            return depth_to_points(depth, *intrinsics, self.points_decimation, bgr), None
        except (ValueError, ImageFormatError) as exc:
            return None, str(exc)


def frame_intrinsics(camera, depth_hw: tuple) -> tuple:
    """((fx, fy, cx, cy) for a frame of `depth_hw`, None) from a camera_info, or (None, why not):
    'no_camera_info', or the reason this one does not fit the frame."""
    if camera is None:
        return None, 'no_camera_info'
    try:
        return scaled_intrinsics(camera.k, (camera.width, camera.height), (depth_hw[1], depth_hw[0])), None
    except ValueError as exc:
        return None, str(exc)


def _bpu_cores(cores) -> list | None:
    cores = list(cores)
    return None if cores == [-1] else cores


# -- from parameters -----------------------------------------------------------------------
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


def resolve_depth_type(cfg: dict) -> tuple:
    """(depth_type, max_depth) of the model; ConfigError for outputs its depth cannot give."""
    kind, known_max = guess_depth_type(cfg['model_path'])
    kind = kind if cfg['depth_type'] == 'auto' else cfg['depth_type']
    aligned = cfg['metric_reference'] != 'none'
    if kind == 'metric' and aligned:
        raise ConfigError(f"parameter metric_reference: '{cfg['metric_reference']}' aligns a relative model, "
                          'but this model gives metres already; set metric_reference: none')
    if kind != 'metric' and not aligned and (cfg['publish_points'] or cfg['publish_depth_mm']):
        raise ConfigError('publish_points and publish_depth_mm need metric depth: this model gives '
                          'relative inverse depth (no unit); use a DA-V2 metric model, set '
                          'metric_reference to align it to a depth sensor or the floor, or set '
                          'depth_type: metric if this one is metric')
    return kind, cfg['max_depth'] or known_max


def make_aligner(cfg: dict) -> ReferenceAligner | None:
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
                                cfg['max_input_pixels'])
    except ValueError as exc:
        raise ConfigError(f'parameter metric_reference: {exc}') from exc


def view_settings(cfg: dict, fallback_range: tuple | None = None) -> tuple:
    """(Colorizer, DepthSmoother or None) from validated parameters; `fallback_range` stands in
    for an empty colour range (color_min >= color_max) while a runtime set is under way."""
    lo, hi = cfg['color_min'], cfg['color_max']
    colorizer = Colorizer(cfg['colormap'], cfg['color_range'],
                          fixed_range=(lo, hi) if lo < hi else fallback_range, smoothing=cfg['color_smoothing'])
    smoother = DepthSmoother(cfg['temporal_smoothing'], cfg['scene_cut']) if cfg['temporal_smoothing'] else None
    return colorizer, smoother
