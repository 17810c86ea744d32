"""The ROS 2 node: parameters, QoS, topics, diagnostics. Processing lives in the core.

Uses only rclpy APIs that Humble (the RDK S100's TROS) and Jazzy share.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ..engines import EngineError, open_engine
from ..core.image_codec import (Frame, ImageFormatError, canonical_encoding, check_compressed, decode_compressed,
                          decode_image, image_buffer, image_fields, is_compressed_encoding, to_rgb)
from ..core.metric_alignment import ReferenceAligner, decode_depth_image, pointcloud_xyz
from ..core.model_zoo import guess_depth_type, resolve_recipe
from ..core.params import PARAMS, ConfigError, validate
from ..core.estimator import BadOutputError, DepthEstimator
from ..core.pointcloud import depth_to_points, invalid_to_nan, pointcloud2_fields, scaled_intrinsics, to_millimetres
from ..core.postprocess import Colorizer
from ..core.preprocess import MAX_DYNAMIC_ASPECT, dynamic_input_limit
from ..core.stats import Counters, LatencyWindow, RateLimitedLog, RateMeter
from ..core.temporal import DepthSmoother
from ..core.worker_pool import ArrivalOrder, WorkerPool

DROP_REASONS = ('no_subscribers', 'bad_input', 'superseded', 'out_of_order', 'inference_error',
                'bad_output', 'inference_timeout')
# Stamps that cannot order frames; frames keep flowing in arrival order, each kind is reported.
STAMP_FAULTS = {'zero': 'input stamps are zero (a driver that never sets header.stamp)',
                'repeated': 'an input stamp repeats the previous one',
                'backward': 'input stamps went back in time (a looping bag, two clocks, a restart)'}
# Outputs skipped while the others go out; camera_info refused on arrival.
SKIPS = ('points_no_camera_info', 'points_failed', 'camera_info_rejected')
# metric_reference: why a frame went out relative (on depth/relative) instead of in metres.
UNALIGNED = ('no_reference', 'no_camera_info', 'low_support')
# The smallest DA-V2 (ViT-S) has 6 attention heads: the memory bound below is a lower one.
_VIT_S_HEADS = 6
RUNTIME_PARAMS = ('colormap', 'color_range', 'color_min', 'color_max', 'color_smoothing',
                  'temporal_smoothing', 'scene_cut')


def default_intra_op_threads(workers: int) -> int:
    """Cores shared out between the workers that run at once: more threads than cores makes
    each parallel step wait for a preempted thread (measured: 25 % of throughput on 2 cores)."""
    return max(1, (os.cpu_count() or 1) // workers)


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


def _open_engine(cfg: dict):
    cores = list(cfg['bpu_cores'])
    return open_engine(cfg['model_path'], cfg['engine'], providers=cfg['providers'],
                       intra_op_threads=cfg['intra_op_threads'] or default_intra_op_threads(cfg['workers']),
                       bpu_priority=cfg['bpu_priority'], bpu_cores=None if cores == [-1] else cores)


@dataclass
class Job:
    header: object
    frame: object     # a Frame, or a callable that decodes one (compressed input: on the worker)
    received: float
    seq: int = 0      # arrival order


class DepthNode(Node):
    def __init__(self, **node_kwargs):
        super().__init__('depth_anything', **node_kwargs)
        self.config = validate(self._declare_parameters())
        cfg = self.config
        try:
            engine = _open_engine(cfg)
            self.estimator = DepthEstimator.from_recipe(engine, resolve_recipe(cfg['model_path'], cfg),
                                                        cfg['input_size'])
        except (EngineError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        budget = (dynamic_input_budget(cfg['input_size'], cfg['workers'], _physical_memory())
                  if any(s.spatial_hw is None for s in engine.inputs) else None)
        self.depth_type, self.max_depth = self._resolve_depth_type(cfg)
        self.aligner = self._make_aligner(cfg)
        self.alignment = Counters('aligned', 'references', 'bad_reference', *UNALIGNED)
        self._fit = None
        self.colorizer, self.smoother = self._view_settings(cfg)
        self.drops = Counters(*DROP_REASONS)
        self.frames = Counters('received', 'published')  # received = published + drops + in flight
        self.stamp_faults = Counters(*STAMP_FAULTS)
        self.skips = Counters(*SKIPS)
        self.input_rate, self.output_rate = RateMeter(), RateMeter()
        self.latency = LatencyWindow()
        self.warn = RateLimitedLog(self.get_logger().warning)
        # Drops that are normal flow. Its own call site: rclpy refuses two severities from one.
        self.note = RateLimitedLog(lambda msg: self.get_logger().info(msg), period_s=30.0)
        self._order = ArrivalOrder()
        self._arrivals = itertools.count(1)
        self._last_stamp = None
        self._publish_lock = threading.Lock()
        self._camera_info = None
        self._closing = False

        out_qos = QoSProfile(depth=2)
        self.pub_depth = self.create_publisher(Image, 'depth', out_qos)
        self.pub_color = self.create_publisher(Image, 'depth/colorized', out_qos)
        self.pub_info = self.create_publisher(CameraInfo, 'depth/camera_info', out_qos)
        metric = self.depth_type == 'metric' or self.aligner is not None
        self.pub_mm = self.create_publisher(Image, 'depth/mm', out_qos) \
            if metric and cfg['publish_depth_mm'] else None
        self.pub_points = self.create_publisher(PointCloud2, 'depth/points', out_qos) \
            if metric and cfg['publish_points'] else None
        # Aligned to a reference, `depth` carries metres only; frames that could not be aligned
        # go out here instead, as relative inverse depth (a topic never mixes units).
        self.pub_relative = self.create_publisher(Image, 'depth/relative', out_qos) if self.aligner else None
        self.outputs = [p for p in (self.pub_depth, self.pub_color, self.pub_mm, self.pub_points,
                                    self.pub_relative) if p]
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.pool = WorkerPool(self._process, cfg['workers'], self._on_worker_error,
                               on_take=lambda job: self._order.started(job.seq))
        self._subscribe_input(cfg['input_transport'])
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, qos_profile_sensor_data)
        self._subscribe_reference(cfg['metric_reference'])
        self.create_timer(cfg['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        meaning = ('metric depth in metres' if self.depth_type == 'metric' else
                   f"metres aligned to {cfg['metric_reference']} (relative frames on depth/relative)"
                   if self.aligner else 'relative inverse depth (larger = nearer, not metres)')
        self.get_logger().info(f'{engine.describe()}; {cfg["workers"]} workers; publishing {meaning}; '
                               f'{self.estimator.recipe.describe()}')
        if budget:
            self.get_logger().info(budget)

    # -- parameters -------------------------------------------------------
    def _declare_parameters(self) -> dict:
        values = {}
        for p in PARAMS:
            descriptor = ParameterDescriptor(description=p.description,
                                             read_only=p.name not in RUNTIME_PARAMS)
            if p.choices:
                descriptor.additional_constraints = f'one of {list(p.choices)}'
            if p.min is not None and isinstance(p.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(p.min), to_value=int(p.max), step=1)]
            elif p.min is not None:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(p.min),
                                                                      to_value=float(p.max))]
            try:
                values[p.name] = self.declare_parameter(p.name, p.default, descriptor).value
            except Exception as exc:  # rclpy raises several types for a bad override
                raise ConfigError(f'parameter {p.name}: {exc}') from exc
        return values

    def _resolve_depth_type(self, cfg) -> tuple:
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

    @staticmethod
    def _make_aligner(cfg):
        if cfg['metric_reference'] == 'none':
            return None
        if len(cfg['reference_transform']) != 7:
            raise ConfigError(f"parameter reference_transform: {list(cfg['reference_transform'])} needs 7 numbers, "
                              'x y z qx qy qz qw (from the cloud\'s frame to the camera\'s optical frame)')
        try:
            return ReferenceAligner(cfg['metric_reference'], cfg['reference_tolerance'],
                                    [float(v) for v in cfg['reference_transform']], cfg['camera_height'],
                                    cfg['camera_pitch'], cfg['floor_rows'], cfg['alignment_min_support'],
                                    cfg['alignment_smoothing'], cfg['alignment_scene_cut'], cfg['max_depth'])
        except ValueError as exc:
            raise ConfigError(f'parameter metric_reference: {exc}') from exc

    @staticmethod
    def _view_settings(cfg, fallback_range: tuple = None) -> tuple:
        """Colorizer and temporal smoother from validated parameters; `fallback_range` stands in
        for an empty colour range (color_min >= color_max) while a set is under way (see
        _on_set_parameters)."""
        lo, hi = cfg['color_min'], cfg['color_max']
        colorizer = Colorizer(cfg['colormap'], cfg['color_range'],
                              fixed_range=(lo, hi) if lo < hi else fallback_range, smoothing=cfg['color_smoothing'])
        smoother = DepthSmoother(cfg['temporal_smoothing'], cfg['scene_cut']) if cfg['temporal_smoothing'] else None
        return colorizer, smoother

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate the set as a whole, then apply it. rclpy hands a SetParameters request
        over one parameter at a time, so color_min/color_max may pass through an empty range
        ([color_min=5, color_max=10] from [0, 1]): that step is accepted and the previous range
        kept until the other bound arrives; the outcome no longer depends on the order."""
        changes = {p.name: p.value for p in params}
        refused = [n for n in changes if n not in RUNTIME_PARAMS]
        if refused:
            return SetParametersResult(successful=False, reason=(
                f'{refused} are fixed at start-up; only {list(RUNTIME_PARAMS)} change at runtime'))
        merged = {**self.config, **changes}
        try:
            self.colorizer, self.smoother = self._view_settings(validate(merged, at_start_up=False),
                                                                self.colorizer.fixed_range)
        except ValueError as exc:  # ConfigError included
            return SetParametersResult(successful=False, reason=str(exc))
        if not merged['color_min'] < merged['color_max']:
            self.get_logger().info(f'color_min {merged["color_min"]} >= color_max {merged["color_max"]}: the fixed '
                                   f'colour range stays {list(self.colorizer.fixed_range)} until both are set')
        self.config = merged
        return SetParametersResult(successful=True)

    # -- input --------------------------------------------------------------
    def _subscribe_input(self, transport: str):
        sensor = qos_profile_sensor_data
        if transport == 'raw':
            self.create_subscription(Image, 'image', self._on_image, sensor)
        elif transport == 'compressed':  # image_transport's topic naming; Python has no image_transport
            self.create_subscription(CompressedImage, 'image/compressed', self._on_compressed, sensor)
        else:
            self.create_subscription(_hbmem_type(), '/hbmem_img', self._on_hbmem, sensor)

    def _subscribe_reference(self, source: str):
        sensor = qos_profile_sensor_data
        if source == 'depth_image':
            self.create_subscription(Image, 'reference/depth', self._on_reference_depth, sensor)
        elif source == 'points':
            self.create_subscription(PointCloud2, 'reference/points', self._on_reference_points, sensor)

    def _on_reference_depth(self, msg: Image):
        self._add_reference(lambda: self.aligner.add_depth_image(
            _stamp_ns(msg.header), decode_depth_image(msg.height, msg.width, msg.encoding, msg.is_bigendian,
                                                      msg.step, msg.data)))

    def _on_reference_points(self, msg: PointCloud2):
        fields = [(f.name, f.offset, f.datatype) for f in msg.fields]
        self._add_reference(lambda: self.aligner.add_points(
            _stamp_ns(msg.header), pointcloud_xyz(fields, msg.point_step, msg.data, msg.is_bigendian)))

    def _add_reference(self, add):
        try:
            add()
        except ImageFormatError as exc:
            self.alignment.add('bad_reference')
            self.warn('bad_reference', f'reference ignored: {exc}')
            return
        self.alignment.add('references')

    def _on_camera_info(self, msg: CameraInfo):
        """Keep the last usable camera_info; a bad one is counted and logged, never used."""
        try:
            scaled_intrinsics(msg.k, (msg.width, msg.height), (msg.width, msg.height))
        except ValueError as exc:
            self.skips.add('camera_info_rejected')
            self.warn('camera_info', f'camera_info ignored ({exc}); '
                                     + ('keeping the last good one' if self._camera_info else
                                        'depth/camera_info and depth/points wait for a usable one'))
            return
        self._camera_info = msg

    def _on_image(self, msg: Image):
        if is_compressed_encoding(msg.encoding):  # MJPEG in an Image (TROS hobot_usb_cam)
            self._on_compressed_bytes(msg.header, canonical_encoding(msg.encoding), msg.data)
            return
        self._accept(msg.header, lambda: decode_image(msg.height, msg.width, msg.encoding, msg.is_bigendian,
                                                      msg.step, msg.data, self.config['max_input_pixels']))

    def _on_compressed(self, msg: CompressedImage):
        self._on_compressed_bytes(msg.header, msg.format, msg.data)

    def _on_compressed_bytes(self, header, fmt: str, data):
        """Only the header is read here (size checked before any decoding); the decode runs on
        a worker, so a slow one never stalls the executor (timers, diagnostics)."""
        limit = self.config['max_input_pixels']

        def header_checked():
            check_compressed(fmt, data, limit)
            return lambda: decode_compressed(fmt, data, limit)
        self._accept(header, header_checked)

    def _on_hbmem(self, msg):
        header = Header(stamp=msg.time_stamp, frame_id=self.config['hbmem_frame_id'])
        encoding = bytes(msg.encoding).split(b'\0', 1)[0].decode('ascii', 'replace')
        data = memoryview(msg.data)[:msg.data_size]
        self._accept(header, lambda: decode_image(msg.height, msg.width, encoding, 0, msg.step, data,
                                                  self.config['max_input_pixels']))

    def _accept(self, header, decode):
        """Validate and hand a frame to the workers; cheap, so the executor never lags.

        Decoding here is only checks and zero-copy views (compressed frames: their
        header); a bad frame is rejected before it can displace a good one in the slot.
        """
        now = time.monotonic()
        self.input_rate.tick(now)
        self.frames.add('received')
        if not any(p.get_subscription_count() for p in self.outputs):
            self.drops.add('no_subscribers')
            self.note('no_subscribers', 'frames dropped (no_subscribers): nobody listens to the depth outputs')
            return
        try:
            frame = decode()
        except ImageFormatError as exc:
            self._bad_input(exc)
            return
        self._check_stamp(_stamp_ns(header))
        if self.pool.submit(Job(header, frame, now, next(self._arrivals))) is not None:
            self.drops.add('superseded')
            self.note('superseded', 'frames dropped (superseded): the camera is faster than inference, '
                                    'a frame waiting for a worker was replaced by a newer one')

    def _bad_input(self, exc: ImageFormatError):
        self.drops.add('bad_input')
        self.warn('bad_input', f'dropped an image: {exc}')

    def _check_stamp(self, stamp_ns: int):
        """Count and report stamps that cannot order frames; the frame goes on (arrival order)."""
        last, self._last_stamp = self._last_stamp, stamp_ns
        fault = ('zero' if stamp_ns == 0 else None if last is None or stamp_ns > last
                 else 'repeated' if stamp_ns == last else 'backward')
        if fault:
            self.stamp_faults.add(fault)
            self.warn(f'stamp_{fault}', f'{STAMP_FAULTS[fault]}: depth keeps the input stamps and is '
                                        'published in arrival order')

    # -- work (on worker threads) -------------------------------------------
    def _process(self, job: Job):
        try:
            self._infer_and_publish(job)
        finally:
            self._order.forget(job.seq)  # failed or not: later frames stop waiting for it

    def _infer_and_publish(self, job: Job):
        frame = job.frame() if callable(job.frame) else job.frame  # compressed: decoded here
        # Depth and colorized images are computed straight into their messages' buffers.
        depth_fields, depth_buffer = image_buffer(frame.height, frame.width, '32FC1')
        with self.pool.engine_call():  # never more calls in flight than workers
            result = self.estimator.estimate(frame, self.smoother, out=depth_buffer)
        self.latency.add(result.timings['inference'])
        if self.depth_type == 'metric' and self.max_depth:
            depth_buffer[...] = invalid_to_nan(depth_buffer, self.max_depth)
        metres = self.depth_type == 'metric' or (self.aligner is not None and self._align(job, depth_buffer))
        outputs = self._outputs(job, frame, depth_fields, result, metres)
        if self.pool.abandoned():  # a timed-out call: already counted
            return
        wait = self.pool.stall_limit(self.config['inference_timeout']) or self.config['inference_timeout']
        if not self._order.release(job.seq, lambda: self._publish(job.header, outputs), wait):
            self.drops.add('out_of_order')
            self.warn('out_of_order', 'a result finished after a newer frame was published (an older call '
                                      f'ran over {wait:.1f} s longer): dropped')

    def _publish(self, header, outputs: list):
        with self._publish_lock:
            if self._stopping():
                return
            for publisher, msg in outputs:
                publisher.publish(msg)
            self.frames.add('published')
            info = self._camera_info
            if info is not None:
                info.header = header
                self.pub_info.publish(info)
        self.output_rate.tick()

    def _stopping(self) -> bool:
        """Shutting down: Ctrl-C may invalidate the context before shutdown() runs."""
        return self._closing or not self.context.ok()

    def _align(self, job: Job, depth) -> bool:
        """Metres into `depth` from the reference paired with this frame; False (counted, logged at
        a limited rate) when the frame stays relative."""
        info = self._camera_info
        h, w = depth.shape
        intrinsics = scaled_intrinsics(info.k, (info.width, info.height), (w, h)) if info is not None else None
        fit, reason = self.aligner.align(_stamp_ns(job.header), depth, intrinsics)
        if fit is None:
            self.alignment.add(reason)
            self.note(f'unaligned_{reason}', f'a frame went out relative on depth/relative ({reason})')
            return False
        self.alignment.add('aligned')
        self._fit = fit
        return True

    def _outputs(self, job: Job, frame: Frame, depth_fields: dict, result, metres: bool) -> list:
        """(publisher, message) for every output someone listens to. depth/points is
        optional: without a usable camera_info it is skipped (counted), the others go out.
        A frame a reference could not align (`metres` False) goes to depth/relative alone."""
        wanted = [p for p in self.outputs if p.get_subscription_count()]
        depth = result.depth
        outputs = []
        depth_out = self.pub_depth if metres or self.aligner is None else self.pub_relative
        if depth_out in wanted:
            outputs.append((depth_out, self._image_msg(job.header, depth_fields)))
        if self.pub_color in wanted:
            color_fields, color_buffer = image_buffer(depth.shape[0], depth.shape[1], 'bgr8')
            self.colorizer(result.model_depth, result.placement, out=color_buffer)
            outputs.append((self.pub_color, self._image_msg(job.header, color_fields)))
        if not metres:
            return outputs
        if self.pub_mm in wanted:
            outputs.append((self.pub_mm, self._image_msg(job.header, image_fields(to_millimetres(depth), '16UC1'))))
        if self.pub_points in wanted:
            points = self._points_or_skip(job, frame, depth)
            if points is not None:
                outputs.append((self.pub_points, points))
        return outputs

    def _points_or_skip(self, job: Job, frame: Frame, depth):
        info = self._camera_info
        if info is None:
            self.skips.add('points_no_camera_info')
            self.warn('points_no_camera_info', 'depth/points skipped: no usable camera_info received yet')
            return None
        try:
            return self._points_msg(job, frame, depth, info)
        except ValueError as exc:
            self.skips.add('points_failed')
            self.warn('points_failed', f'depth/points skipped: {exc}')
            return None

    def _points_msg(self, job: Job, frame: Frame, depth, info) -> PointCloud2:
        h, w = depth.shape
        fx, fy, cx, cy = scaled_intrinsics(info.k, (info.width, info.height), (w, h))
        rgb = to_rgb(frame) if self.config['points_rgb'] else None
        bgr = None if rgb is None else rgb[:, :, ::-1]
        xyz, colors = depth_to_points(depth, fx, fy, cx, cy, self.config['points_decimation'], bgr)
        fields = pointcloud2_fields(xyz, colors)
        msg = PointCloud2(header=job.header)
        for name, value in fields.items():
            if name == 'fields':
                value = [PointField(name=n, offset=o, datatype=t, count=c) for n, o, t, c in value]
            setattr(msg, name, value)
        return msg

    @staticmethod
    def _image_msg(header, fields: dict) -> Image:
        msg = Image()
        msg.header = header
        for name, value in fields.items():
            setattr(msg, name, value)
        return msg

    def _on_worker_error(self, exc: Exception):
        if self._stopping():  # calls cancelled by shutdown, publishers gone with the context
            return
        if isinstance(exc, ImageFormatError):  # a compressed frame that failed to decode
            self._bad_input(exc)
            return
        reason = 'bad_output' if isinstance(exc, BadOutputError) else 'inference_error'
        self.drops.add(reason)
        self.warn(reason, f'frame dropped ({reason}): {type(exc).__name__}: {exc}')

    # -- diagnostics ----------------------------------------------------------
    def _publish_diagnostics(self):
        timeout = self.config['inference_timeout']
        stalled = self.pool.reap_stalled(timeout)
        for job in stalled:
            self._order.forget(job.seq)  # newer results stop waiting for it
        if stalled:
            self.drops.add('inference_timeout', len(stalled))
            self.warn('inference_timeout', f'{len(stalled)} inference call(s) ran past '
                                           f'{self.pool.stall_limit(timeout):.1f} s (inference_timeout, or 3x the '
                                           'slowest recent call): their results will be dropped; replacement '
                                           'workers wait for the engine')
        p50, p95 = self.latency.percentiles_ms(50, 95)
        drops = self.drops.snapshot()
        values = {'input_rate_hz': f'{self.input_rate.rate():.2f}',
                  'output_rate_hz': f'{self.output_rate.rate():.2f}',
                  'inference_latency_p50_ms': f'{p50:.1f}', 'inference_latency_p95_ms': f'{p95:.1f}',
                  **{f'frames_{k}': str(v) for k, v in self.frames.snapshot().items()},
                  **{f'drops_{k}': str(v) for k, v in drops.items()},
                  **{f'stamps_{k}': str(v) for k, v in self.stamp_faults.snapshot().items()},
                  **{k: str(v) for k, v in self.skips.snapshot().items()},
                  **self._alignment_values(),
                  'worker_threads': str(self.pool.threads_alive()),
                  'engine': self.estimator.engine.name, 'model': self.config['model_path']}
        status = DiagnosticStatus(name=f'{self.get_name()}: depth', hardware_id=self.estimator.engine.name,
                                  level=DiagnosticStatus.OK, message='ok')
        problems = self._problems(drops)
        if problems:
            status.level, status.message = DiagnosticStatus.WARN, '; '.join(problems)
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(array)

    def _alignment_values(self) -> dict:
        if self.aligner is None:
            return {}
        fit = self._fit
        latest = ({'alignment_scale': f'{fit.scale:.6g}', 'alignment_shift': f'{fit.shift:.6g}',
                   'alignment_support': str(fit.support), 'alignment_residual': f'{fit.residual:.4f}'}
                  if fit else {})
        counts = self.alignment.snapshot()
        return {'frames_aligned': str(counts['aligned']), 'references_received': str(counts['references']),
                'references_rejected': str(counts['bad_reference']),
                **{f'unaligned_{k}': str(counts[k]) for k in UNALIGNED}, **latest}

    def _problems(self, drops: dict) -> list:
        """Why diagnostics say WARN: counts since start-up."""
        problems = [f'{drops[k]} frames dropped ({k})' for k in ('inference_error', 'bad_output',
                                                                 'inference_timeout', 'bad_input') if drops[k]]
        problems += [f'{n} input stamps {k} (output in arrival order)'
                     for k, n in self.stamp_faults.snapshot().items() if n]
        problems += [f'{n} x {k}' for k, n in self.skips.snapshot().items() if n]
        return problems

    def shutdown(self) -> bool:
        """Stop the workers; False if one is stuck in an engine call (then the engine is
        left open: closing it under a running call would crash the process)."""
        with self._publish_lock:
            self._closing = True
        self._order.close()  # results waiting for older ones leave now
        self.estimator.engine.cancel()
        if not self.pool.stop(timeout=3.0):
            self.get_logger().warning('a worker is stuck inside an inference call: exiting without it')
            return False
        self.estimator.engine.close()
        return True


def _stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _hbmem_type():
    """TROS zero-copy image type, present only on a TROS install."""
    try:
        from hbm_img_msgs.msg import HbmMsg1080P
    except ImportError as exc:
        raise ConfigError("input_transport 'hbmem' needs TROS's hbm_img_msgs package "
                          f'(source /opt/tros/humble/setup.bash), but: {exc}; '
                          "use input_transport 'raw' with an Image topic instead") from exc
    return HbmMsg1080P
