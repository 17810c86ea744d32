"""The ROS 2 node: parameters, QoS, topics, diagnostics. Processing lives in the core.

Uses only rclpy APIs that Humble (the RDK S100's TROS) and Jazzy share.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from ..core.camera_messages import PendingFrame, camera_frame, check_camera_info, stamp_ns
from ..core.diagnostics import Counters, LatencyWindow, RateLimitedLog, RateMeter, RecentGrowth
from ..core.estimator import BadOutputError
from ..core.image_codec import ImageFormatError
from ..core.output_topics import MessageBuffers, destinations, requested_outputs, routed
from ..core.params import PARAMS, RUNTIME, ConfigError, validate
from ..core.processor_factory import build_processor, view_settings
from ..core.worker_pool import ArrivalOrder, WorkerPool
from .messages import message_type, output_message

DROP_REASONS = ('no_subscribers', 'bad_input', 'superseded', 'out_of_order', 'inference_error',
                'bad_output', 'inference_timeout')
# Stamps that cannot order frames; frames keep flowing in arrival order, each kind is reported.
STAMP_FAULTS = {'zero': 'input stamps are zero (a driver that never sets header.stamp)',
                'repeated': 'an input stamp repeats the previous one',
                'backward': 'input stamps went back in time (a looping bag, two clocks, a restart)'}
# Outputs skipped while the others go out; camera_info refused on arrival.
SKIPS = ('points_no_camera_info', 'points_failed', 'camera_info_rejected')
# metric_reference or DA3Metric: why a frame went out relative (on depth/relative) instead of in metres.
UNALIGNED = ('no_reference', 'unusable_stamp', 'no_camera_info', 'low_support', 'fit_refused')
# ... of which these are warned about with their numbers (the others are reported on /diagnostics).
UNALIGNED_WARNED = ('low_support', 'fit_refused')
# /diagnostics is WARN while frames went out relative, or references were refused, this recently.
ALIGNMENT_WINDOW_S = 10.0


@dataclass
class Job:
    header: object
    pending: PendingFrame  # checked on arrival; its decode() runs on the worker (for jpeg/png the costly part)
    seq: int          # arrival order
    restart: bool     # its stamp went back: temporal smoothing starts over from this frame
    arrival: float    # time.monotonic() when it arrived


class DepthNode(Node):
    """Frames from a camera topic -> depth topics, through a FrameProcessor.

    The executor thread only checks and queues frames (`_accept`); worker threads run
    the model in parallel, then finish and publish one frame at a time in arrival order.
    Every frame not published is counted by reason and reported on /diagnostics.
    """

    def __init__(self, engine=None, **node_kwargs):
        """`engine`: an open engine to run instead of opening model_path (tests); `node_kwargs`
        go to rclpy's Node (context, parameter_overrides, ...)."""
        super().__init__('depth_anything', **node_kwargs)
        self.config = validate(self._declare_parameters())
        cfg = self.config
        self.processor = build_processor(cfg, engine)
        self.alignment = Counters('aligned', 'references', 'bad_reference', 'reference_restarts', *UNALIGNED)
        self.recent_alignment = RecentGrowth(self.alignment, ALIGNMENT_WINDOW_S)
        self._fit = None          # the last frame's metres: a reference fit (DepthFit) or DA3Metric's focal
        self._refusal = ''        # why the last frame stayed relative, in words
        self.drops = Counters(*DROP_REASONS)
        self.frames = Counters('received', 'published')  # received = published + drops + in flight
        self.stamp_faults = Counters(*STAMP_FAULTS)
        self.skips = Counters(*SKIPS)
        self.input_rate, self.output_rate = RateMeter(), RateMeter()
        self.latency = LatencyWindow()
        self.warn = RateLimitedLog(self.get_logger().warning)
        # Drops that are normal flow. Its own call site: rclpy refuses two severities from one.
        self.note = RateLimitedLog(lambda msg: self.get_logger().info(msg), period_s=30.0)
        self._order = ArrivalOrder()  # frames are finished and published in arrival order
        self._arrivals = itertools.count(1)
        self._last_stamp = None
        self._publish_lock = threading.Lock()
        self._camera_info = None
        self._frame_wh = None     # the last finished frame's size, to check camera_info against
        self._closing = False

        out_qos = QoSProfile(depth=2)
        requested = requested_outputs(cfg)
        # output_topics.Destination -> its publisher; an output is computed only for listeners
        self.output_publishers = {d: self.create_publisher(message_type(d), d.topic(), out_qos)
                                  for d in destinations(self.processor, requested)}
        self.pub_info = self.create_publisher(CameraInfo, 'depth/camera_info', out_qos)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.pool = WorkerPool(self._process, cfg['workers'], self._on_worker_error,
                               on_take=lambda job: self._order.started(job.seq))
        self._subscribe_input(cfg['input_transport'])
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, qos_profile_sensor_data)
        self._subscribe_reference(cfg['metric_reference'])
        self.create_timer(cfg['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        engine = self.processor.estimator.engine
        self.get_logger().info(f'{engine.describe()}; {cfg["workers"]} workers; publishing on depth '
                               f'{self.processor.meaning()}; depth/colorized: {self.processor.view_meaning()}; '
                               f'{self.processor.estimator.recipe.describe()}')
        for note in self.processor.notes:
            self.get_logger().info(note)

    # -- parameters -------------------------------------------------------
    def _declare_parameters(self) -> dict:
        values = {}
        for p in PARAMS:
            descriptor = ParameterDescriptor(description=p.description,
                                             read_only=not p.runtime)
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

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate the set as a whole, then apply it. rclpy hands a SetParameters request
        over one parameter at a time, so color_min/color_max may pass through an empty range
        ([color_min=5, color_max=10] from [0, 1]): that step is accepted and the previous range
        kept until the other bound arrives; the outcome no longer depends on the order."""
        changes = {p.name: p.value for p in params}
        refused = [n for n in changes if n not in RUNTIME]
        if refused:
            return SetParametersResult(successful=False, reason=(
                f'{refused} are fixed at start-up; only {list(RUNTIME)} change at runtime'))
        merged = {**self.config, **changes}
        try:
            self.processor.set_view(*view_settings(validate(merged, at_start_up=False),
                                                   self.processor.colorizer.fixed_range))
        except ValueError as exc:  # ConfigError included
            return SetParametersResult(successful=False, reason=str(exc))
        if not merged['color_min'] < merged['color_max']:
            kept = list(self.processor.colorizer.fixed_range)
            self.get_logger().info(f'color_min {merged["color_min"]} >= color_max {merged["color_max"]}: the fixed '
                                   f'colour range stays {kept} until both are set')
        self.config = merged
        return SetParametersResult(successful=True)

    # -- input --------------------------------------------------------------
    def _subscribe_input(self, transport: str):
        sensor = qos_profile_sensor_data
        if transport == 'raw':
            self.create_subscription(Image, 'image', self._on_image, sensor)
        elif transport == 'compressed':  # image_transport's topic naming; Python has no image_transport
            self.create_subscription(CompressedImage, 'image/compressed', self._on_image, sensor)
        else:
            self.create_subscription(_hbmem_type(), '/hbmem_img', self._on_hbmem, sensor)

    def _subscribe_reference(self, source: str):
        sensor = qos_profile_sensor_data
        if source == 'depth_image':
            self.create_subscription(Image, 'reference/depth', self._on_reference, sensor)
        elif source == 'points':
            self.create_subscription(PointCloud2, 'reference/points', self._on_reference, sensor)

    def _on_reference(self, msg):
        """Decoded down to the few readings the fit uses, stored by stamp; one that cannot be used
        (any decoding error, an unusable stamp) is counted and warned about, never fatal."""
        try:
            restarted = self.processor.add_reference(stamp_ns(msg.header), msg)
        except ImageFormatError as exc:
            self.alignment.add('bad_reference')
            self.warn('bad_reference', f'reference ignored: {exc}')
            return
        self.alignment.add('references')
        if restarted:
            self.alignment.add('reference_restarts')
            self.warn('reference_restart', 'reference stamps went back more than a second (a looping bag, a clock '
                                           'reset, or stamps far ahead before): the reference store restarted')

    def _on_camera_info(self, msg: CameraInfo):
        """Keep the last usable camera_info; a bad one is counted and logged, never used. Checked
        against the frames' size once one is known (and again when it changes: `_check_frame_size`)."""
        try:
            check_camera_info(msg, self._frame_wh)
        except ValueError as exc:
            self._reject_camera_info(exc)
            return
        self._camera_info = msg

    def _reject_camera_info(self, exc: ValueError):
        self.skips.add('camera_info_rejected')
        self.warn('camera_info', f'camera_info ignored ({exc}); '
                                 + ('keeping the last good one' if self._camera_info else
                                    'depth/camera_info, depth/points and metres that need it wait for a usable one'))

    def _check_frame_size(self, frame):
        """A new frame size (the first frame, a resolution change): the camera_info kept must
        describe it, or it is rejected like a bad one on arrival."""
        size = (frame.width, frame.height)
        if size == self._frame_wh:
            return
        self._frame_wh, info = size, self._camera_info
        note = self.processor.estimator.input_note(frame.height, frame.width)
        if note:
            self.get_logger().info(note)
        if info is None:
            return
        try:
            check_camera_info(info, size)
        except ValueError as exc:
            self._camera_info = None
            self._reject_camera_info(exc)

    def _on_image(self, msg):
        """An Image or a CompressedImage."""
        self._accept(msg.header, msg)

    def _on_hbmem(self, msg):
        self._accept(Header(stamp=msg.time_stamp, frame_id=self.config['hbmem_frame_id']), msg)

    def _accept(self, header, msg):
        """Check a camera message and hand it to the workers; cheap, so the executor never lags.

        Only checks and zero-copy views here (jpeg/png: their header, the decode runs on a
        worker); a bad frame is rejected before it can displace a good one in the slot.
        """
        now = time.monotonic()
        self.input_rate.tick(now)
        self.frames.add('received')
        if not any(p.get_subscription_count() for p in self.output_publishers.values()):
            self.drops.add('no_subscribers')
            self.note('no_subscribers', 'frames dropped (no_subscribers): nobody listens to the depth outputs')
            return
        try:
            pending = camera_frame(msg, self.config['max_input_pixels'])
        except ImageFormatError as exc:
            self._bad_input(exc)
            return
        stamp = stamp_ns(header)
        restart = self._check_stamp(stamp) == 'backward'
        self.processor.expect_frame(stamp)
        displaced = self.pool.submit(Job(header, pending, next(self._arrivals), restart, now))
        if displaced is not None:
            self.processor.forget_frame(stamp_ns(displaced.header))
            self.drops.add('superseded')
            self.note('superseded', 'frames dropped (superseded): the camera is faster than inference, '
                                    'a frame waiting for a worker was replaced by a newer one')

    def _bad_input(self, exc: ImageFormatError):
        self.drops.add('bad_input')
        self.warn('bad_input', f'dropped an image: {exc}')

    def _check_stamp(self, stamp: int) -> str | None:
        """Count and report stamps that cannot order frames; the frame goes on (arrival order)."""
        last, self._last_stamp = self._last_stamp, stamp
        fault = ('zero' if stamp == 0 else None if last is None or stamp > last
                 else 'repeated' if stamp == last else 'backward')
        if fault:
            self.stamp_faults.add(fault)
            self.warn(f'stamp_{fault}', f'{STAMP_FAULTS[fault]}: depth keeps the input stamps and is '
                                        'published in arrival order')
        return fault

    # -- work (on worker threads) -------------------------------------------
    def _process(self, job: Job):
        try:
            self._infer_and_publish(job)
        finally:
            self._order.forget(job.seq)  # failed or not: later frames stop waiting for it
            self.processor.forget_frame(stamp_ns(job.header))

    def _infer_and_publish(self, job: Job):
        frame = job.pending.decode()
        with self.pool.engine_call():  # never more calls in flight than workers
            model = self.processor.infer(frame)
        self.latency.add(model.timings['inference'])
        if self.pool.abandoned():  # a timed-out call: already counted
            return
        wait = self.pool.stall_limit(self.config['inference_timeout']) or self.config['inference_timeout']
        # finish carries state from frame to frame (smoothing, alignment): one frame at a time, in order
        if not self._order.release(job.seq, lambda: self._finish_and_publish(job, frame, model), wait):
            self._out_of_order(wait)

    def _finish_and_publish(self, job: Job, frame, model):
        listened = {d for d, p in self.output_publishers.items() if p.get_subscription_count()}
        self._check_frame_size(frame)
        buffers = MessageBuffers()
        out = self.processor.finish(frame, model, {d.output for d in listened}, stamp_ns(job.header),
                                    self._camera_info, buffers, job.restart,
                                    job.arrival + self.config['reference_wait'])
        self._count_outputs(out)
        self._publish(job.header, [(self.output_publishers[d], output_message(d, job.header, fields))
                                   for d, fields in routed(out, buffers, self.processor.relative_fallback)
                                   if d in listened])

    def _out_of_order(self, wait: float):
        self.drops.add('out_of_order')
        self.warn('out_of_order', 'a result finished after a newer frame was published (an older call '
                                  f'ran over {wait:.1f} s longer): dropped')

    def _publish(self, header, messages: list):
        with self._publish_lock:
            if self._stopping():
                return
            for publisher, msg in messages:
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

    def _count_outputs(self, out):
        """Alignment and skipped outputs: counted, and logged at a limited rate."""
        if out.unaligned:
            self.alignment.add(out.unaligned)
            self._refusal = f'{out.unaligned}: {out.unaligned_detail}'
            log = self.warn if out.unaligned in UNALIGNED_WARNED else self.note
            log(f'unaligned_{out.unaligned}', f'a frame went out relative on depth/relative ({self._refusal})')
        elif out.fit is not None or out.focal is not None:
            self.alignment.add('aligned')
            self._fit = out.fit if out.fit is not None else out.focal
        if out.points_skipped == 'no_camera_info':
            self.skips.add('points_no_camera_info')
            self.warn('points_no_camera_info', 'depth/points skipped: no usable camera_info received yet')
        elif out.points_skipped:
            self.skips.add('points_failed')
            self.warn('points_failed', f'depth/points skipped: {out.points_skipped}')

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
                  'depth': self.processor.meaning(), 'colorized': self.processor.view_meaning(),
                  'engine': self.processor.estimator.engine.name, 'model': self.config['model_path']}
        status = DiagnosticStatus(name=f'{self.get_name()}: depth', hardware_id=self.processor.estimator.engine.name,
                                  level=DiagnosticStatus.OK, message='ok')
        problems = self._problems(drops)
        if problems:
            status.level, status.message = DiagnosticStatus.WARN, '; '.join(problems)
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(array)

    def _alignment_values(self) -> dict:
        if not self.processor.relative_fallback:
            return {}
        counts = self.alignment.snapshot()
        if self.processor.aligner is None:   # DA3Metric: metres from camera_info's focal length
            return {'frames_metres': str(counts['aligned']), 'unaligned_no_camera_info': str(counts['no_camera_info']),
                    **({'alignment_last_refusal': self._refusal} if self._refusal else {}),
                    **({'canonical_focal_px': f'{self._fit:.2f}'} if self._fit is not None else {})}
        fit = self._fit
        latest = ({'alignment_scale': f'{fit.scale:.6g}', 'alignment_shift': f'{fit.shift:.6g}',
                   'alignment_support': str(fit.support), 'alignment_residual': f'{fit.residual:.4f}'}
                  if fit else {})
        return {'frames_aligned': str(counts['aligned']), 'references_received': str(counts['references']),
                'references_rejected': str(counts['bad_reference']),
                'reference_restarts': str(counts['reference_restarts']),
                **{f'unaligned_{k}': str(counts[k]) for k in UNALIGNED},
                **({'alignment_last_refusal': self._refusal} if self._refusal else {}), **latest}

    def _problems(self, drops: dict) -> list:
        """Why diagnostics say WARN: counts since start-up; for metric_reference, what went wrong
        in the last ALIGNMENT_WINDOW_S (at start-up frames and references race, so a permanent
        WARN for the first frames would hide every later one)."""
        problems = [f'{drops[k]} frames dropped ({k})' for k in ('inference_error', 'bad_output',
                                                                 'inference_timeout', 'bad_input') if drops[k]]
        problems += [f'{n} input stamps {k} (output in arrival order)'
                     for k, n in self.stamp_faults.snapshot().items() if n]
        problems += [f'{n} x {k}' for k, n in self.skips.snapshot().items() if n]
        if self.processor.relative_fallback:
            problems += self._alignment_problems(self.recent_alignment.grown())
        return problems

    @staticmethod
    def _alignment_problems(recent: dict) -> list:
        window = f'in the last {ALIGNMENT_WINDOW_S:g} s'
        relative = {k: recent[k] for k in UNALIGNED if recent.get(k)}
        problems = []
        if relative:
            reasons = ', '.join(f'{k} {n}' for k, n in relative.items())
            problems.append(f'{sum(relative.values())} frames out relative on depth/relative {window} ({reasons})')
        if recent.get('bad_reference'):
            problems.append(f"{recent['bad_reference']} references rejected {window}")
        if recent.get('reference_restarts'):
            problems.append(f"reference store restarted {recent['reference_restarts']} times {window}")
        return problems

    def shutdown(self) -> bool:
        """Stop the workers; False if one is stuck in an engine call (then the engine is
        left open: closing it under a running call would crash the process)."""
        with self._publish_lock:
            self._closing = True
        self._order.close()  # results waiting for older ones leave now
        self.processor.estimator.engine.cancel()
        if not self.pool.stop(timeout=3.0):
            self.get_logger().warning('a worker is stuck inside an inference call: exiting without it')
            return False
        self.processor.estimator.engine.close()
        return True


def _hbmem_type():
    """TROS zero-copy image type, present only on a TROS install."""
    try:
        from hbm_img_msgs.msg import HbmMsg1080P
    except ImportError as exc:
        raise ConfigError("input_transport 'hbmem' needs TROS's hbm_img_msgs package "
                          f'(source /opt/tros/humble/setup.bash), but: {exc}; '
                          "use input_transport 'raw' with an Image topic instead") from exc
    return HbmMsg1080P
