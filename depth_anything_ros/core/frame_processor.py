"""A decoded frame to every output the package has. No ROS here.

The node, `bag`, `infer`, `eval` and `bench` all go through FrameProcessor, built
from the node's parameters by processor_factory.build_processor, so an output means the
same thing whichever of them made it. One frame, top to bottom:

  1. infer    preprocess, run the engine, check the model-resolution maps,   any thread, in parallel
              read DA3's sky (sky.py)
  2. finish   temporal smoothing at model resolution, depth at the frame's   one frame at a time,
              size, then metres: metric masking (metric model), the focal    in frame order
              length (DA3Metric) or a reference (relative model +
              metric_reference); sky to +Inf, colorized view, millimetres,
              points, confidence and sky mask (DA3)

`finish` carries state from frame to frame (the smoothed depth, the alignment's running
fit, the smoothed colour range), so it sees frames one at a time and in order; `process`
runs both steps for callers that hand over one frame at a time. The node runs step 1 on
its workers in parallel and step 2 in arrival order (see ros/node.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import sky as sky_reading
from .depth_type import CANONICAL_FOCAL, DEPTH_KINDS, SKY_OUTPUT
from .estimator import DepthEstimator, ModelDepth
from .image_codec import Frame, ImageFormatError, any_error_is_bad_input, empty_image, to_rgb
from .metric_alignment import ReferenceAligner
from .metric_fit import Unaligned
from .placement import Placement
from .pointcloud import depth_to_points, invalid_to_nan, scaled_intrinsics, to_millimetres
from .postprocess import Colorizer
from .temporal import DepthSmoother

OUTPUTS = ('depth', 'colorized', 'depth_mm', 'points', 'confidence', 'sky')


@dataclass
class FrameOutputs:
    depth: np.ndarray               # HxW float32 at the frame's size, NaN where not seen or invalid, +Inf sky
    metres: bool                    # depth in metres; else the model's relative output (its DepthKind)
    colorized: np.ndarray | None = None   # HxWx3 bgr8
    depth_mm: np.ndarray | None = None    # HxW uint16 millimetres, 0 = invalid (REP 118)
    points: tuple | None = None           # (xyz float32 Nx3, rgb uint8 Nx3 or None), optical frame
    confidence: np.ndarray | None = None  # HxW float32: DA3 depth_conf at the frame's size (NaN unseen)
    sky: np.ndarray | None = None         # HxW uint8: 255 where the model reports sky (score >= 0.5)
    unaligned: str | None = None    # why this frame stayed relative (a counter's name): metric_reference, DA3Metric
    unaligned_detail: str = ''      # ... and in words, with numbers
    fit: object = None              # metric_reference: the metric_fit.DepthFit that made the metres
    focal: float | None = None      # DA3Metric: the focal length (pixels of the network input) that made them
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


class FrameProcessor:
    """Frames -> FrameOutputs with one model, depth meaning and view (see the module docstring).

    `depth_type`: a depth_type.DEPTH_KINDS name; `max_depth` (metres, 0: none) masks metric depth;
    `aligner` turns a relative model's depth into metres. `sky_depth` (sky.SKY_DEPTHS): what depth
    DA3's sky pixels get. `colorizer` and `smoother` are the view settings, replaced at runtime by
    `set_view`.
    """

    def __init__(self, estimator: DepthEstimator, depth_type: str, max_depth: float,
                 aligner: ReferenceAligner | None, colorizer: Colorizer, smoother: DepthSmoother | None,
                 points_decimation: int, points_rgb: bool, nv12_range: str, sky_depth: str = 'infinite'):
        self.estimator = estimator
        self.nv12_range = nv12_range  # of NV12 frames: their colours on the points
        self.depth_type = depth_type
        self.kind = DEPTH_KINDS[depth_type]
        self.max_depth = max_depth
        self.aligner = aligner
        self.colorizer = colorizer
        self.smoother = smoother
        self.points_decimation = points_decimation
        self.points_rgb = points_rgb
        self.sky_depth = sky_depth
        self.notes = []  # start-up lines worth logging (build_processor's)

    @property
    def metric(self) -> bool:
        """Whether frames can come out in metres (a metric model, or one aligned to a reference)."""
        return self.kind.metres or self.aligner is not None

    @property
    def relative_fallback(self) -> bool:
        """Whether frames that cannot be in metres go out relative (on depth/relative): beside a
        reference aligner, and with DA3Metric (no usable camera_info)."""
        return self.aligner is not None or self.kind.canonical

    def meaning(self) -> str:
        """What `depth` carries, in words."""
        if self.aligner is not None:
            return (f'metres aligned to {self.aligner.source} (frames it cannot align: {self.kind.meaning}, '
                    'on depth/relative)')
        sky = (f"; sky: {'+Inf' if self.sky_depth == 'infinite' else 'the official fill'}"
               if self.estimator.has_output(SKY_OUTPUT) else '')
        return self.kind.meaning + sky

    def view_meaning(self) -> str:
        """How depth/colorized draws it, in words."""
        colorizer = self.colorizer
        if colorizer.range_mode == 'fixed':
            lo, hi = colorizer.fixed_range
            span = f'from {lo:g} to {hi:g}'
        else:
            span = f'over each frame\'s {colorizer.range_mode} range'
        ends = 'nearer' if self.kind.inverse else 'farther'
        sky = ', sky at the official fill depth' if self.estimator.has_output(SKY_OUTPUT) else ''
        return (f"{colorizer.colormap} {span} of the model's {'inverse depth' if self.kind.inverse else 'depth'}: "
                f'{ends} = the colormap\'s high end{sky}')

    def set_view(self, colorizer: Colorizer, smoother: DepthSmoother | None) -> None:
        self.colorizer, self.smoother = colorizer, smoother

    # -- the two steps -----------------------------------------------------------------
    def infer(self, frame: Frame) -> ModelDepth:
        """The model's maps; DA3's sky read as the official code reads it, its depth filled as the
        official code fills it (what smoothing and colouring see; `finish` decides what is published)."""
        model = self.estimator.model_depth(frame)
        if model.sky_score is not None:
            model.sky = sky_reading.read_sky(model.sky_score, model.depth)
            model.depth = sky_reading.filled(model.depth, model.sky)
        return model

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
        out = FrameOutputs(depth, self.kind.metres and not self.kind.canonical, timings=dict(model.timings))
        intrinsics, camera_problem = frame_intrinsics(camera, depth.shape)
        sky = self._sky_pixels(model)
        if sky is not None:
            depth[sky] = np.nan    # no depth for metres, fits or limits to use
        self._to_metres(out, model.placement, intrinsics, camera_problem, stamp_ns, reference_deadline)
        if sky is not None:
            depth[sky] = np.inf    # REP 118: too far to measure
        t1 = clock()
        if color is not None:
            view = model_depth if out.focal is None else model_depth * np.float32(out.focal / CANONICAL_FOCAL)
            out.colorized = self.colorizer(view, model.placement, color)
        t2 = clock()
        if out.metres and 'depth_mm' in wanted:
            out.depth_mm = to_millimetres(depth)
        if out.metres and 'points' in wanted:
            out.points, out.points_skipped = self._points(frame, depth, intrinsics, camera_problem)
        self._model_maps(out, model, wanted)
        out.timings.update(postprocess=t1 - t0, colorize=t2 - t1, metric_outputs=clock() - t2)
        return out

    def process(self, frame: Frame, wanted=OUTPUTS, stamp_ns: int = 0, camera=None, arrays=None,
                restart: bool = False) -> FrameOutputs:
        """Both steps, for callers that hand over one frame at a time in order."""
        return self.finish(frame, self.infer(frame), wanted, stamp_ns, camera, arrays, restart)

    def _to_metres(self, out: FrameOutputs, placement: Placement, intrinsics, camera_problem, stamp_ns: int,
                   reference_deadline) -> None:
        """Depth (at the frame's size, in place) to metres where the model and the frame allow it."""
        depth = out.depth
        if self.kind.canonical:
            if intrinsics is None:
                out.unaligned = 'no_camera_info'
                out.unaligned_detail = f'DA3Metric needs the focal length for metres: {camera_problem}'
                return
            out.focal = network_focal(intrinsics, placement)
            depth *= np.float32(out.focal / CANONICAL_FOCAL)
            out.metres = True
        if out.metres and self.max_depth:
            depth[...] = invalid_to_nan(depth, self.max_depth)
        elif self.aligner is not None:
            try:
                out.fit = self.aligner.align(stamp_ns, depth, intrinsics, reference_deadline)
                out.metres = True
            except Unaligned as exc:
                out.unaligned, out.unaligned_detail = exc.reason, str(exc)

    def _sky_pixels(self, model: ModelDepth) -> np.ndarray | None:
        """The frame's pixels whose depth is sky (+Inf), when sky_depth is 'infinite'."""
        sky = model.sky
        if self.sky_depth != 'infinite' or sky is None or sky.replaced is None:
            return None
        return sky_reading.on_image(sky.replaced, model.placement, self.estimator.recipe.upsampling)

    def _model_maps(self, out: FrameOutputs, model: ModelDepth, wanted) -> None:
        """DA3's confidence and sky mask at the frame's size, where asked for and the model has them."""
        if 'confidence' in wanted and model.confidence is not None:
            out.confidence = self.estimator.restore(model.confidence, model.placement)
        if 'sky' in wanted and model.sky is not None:
            upsampling = self.estimator.recipe.upsampling
            out.sky = sky_reading.on_image(model.sky.mask, model.placement, upsampling).view(np.uint8) * np.uint8(255)

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


def network_focal(intrinsics: tuple, placement: Placement) -> float:
    """The mean of fx and fy (pixels) at the network's input: each scaled as its axis of the frame
    was (the placement's source rectangle onto its target), as the official InputProcessor scales
    a camera matrix with the image. `intrinsics`: fx, fy, cx, cy at the frame's size."""
    fx, fy = intrinsics[0], intrinsics[1]
    src, dst = placement.source, placement.target
    return (fx * dst.width / src.width + fy * dst.height / src.height) / 2


def frame_intrinsics(camera, depth_hw: tuple) -> tuple:
    """((fx, fy, cx, cy) for a frame of `depth_hw`, None) from a camera_info, or (None, why not):
    'no_camera_info', or the reason this one does not fit the frame."""
    if camera is None:
        return None, 'no_camera_info'
    try:
        return scaled_intrinsics(camera.k, (camera.width, camera.height), (depth_hw[1], depth_hw[0])), None
    except ValueError as exc:
        return None, str(exc)
