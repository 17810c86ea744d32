"""The ROS 2 node: parameters, QoS, topics, diagnostics. Processing lives in the core.

Uses only rclpy APIs that Humble (the RDK S100's TROS) and Jazzy share.
"""
from __future__ import annotations

import os
import sys
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

from .engines import EngineError, open_engine
from .image_codec import (Frame, ImageFormatError, decode_compressed, decode_image, image_buffer, image_fields,
                          to_rgb)
from .model_zoo import guess_depth_type, resolve_recipe
from .params import PARAMS, ConfigError, validate
from .pipeline import BadOutputError, DepthEstimator
from .pointcloud import depth_to_points, invalid_to_nan, pointcloud2_fields, scaled_intrinsics, to_millimetres
from .postprocess import Colorizer
from .ros_main import run_node
from .stats import Counters, LatencyWindow, RateLimitedLog, RateMeter
from .temporal import DepthSmoother
from .worker_pool import StampOrder, WorkerPool

DROP_REASONS = ('no_subscribers', 'bad_input', 'superseded', 'out_of_order', 'inference_error',
                'bad_output', 'inference_timeout')
RUNTIME_PARAMS = ('colormap', 'color_range', 'color_min', 'color_max', 'color_smoothing',
                  'temporal_smoothing', 'scene_cut')


def default_intra_op_threads(workers: int) -> int:
    """Cores shared out between the workers that run at once: more threads than cores makes
    each parallel step wait for a preempted thread (measured: 25 % of throughput on 2 cores)."""
    return max(1, (os.cpu_count() or 1) // workers)


def _open_engine(cfg: dict):
    cores = list(cfg['bpu_cores'])
    return open_engine(cfg['model_path'], cfg['engine'], providers=cfg['providers'],
                       intra_op_threads=cfg['intra_op_threads'] or default_intra_op_threads(cfg['workers']),
                       bpu_priority=cfg['bpu_priority'], bpu_cores=None if cores == [-1] else cores)


@dataclass
class Job:
    header: object
    frame: Frame
    received: float


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
        self.depth_type, self.max_depth = self._resolve_depth_type(cfg)
        self.colorizer, self.smoother = self._view_settings(cfg)
        self.drops = Counters(*DROP_REASONS)
        self.frames = Counters('received', 'published')  # received = published + drops + in flight
        self.input_rate, self.output_rate = RateMeter(), RateMeter()
        self.latency = LatencyWindow()
        self.warn = RateLimitedLog(self.get_logger().warning)
        self._order = StampOrder()
        self._publish_lock = threading.Lock()
        self._camera_info = None
        self._closing = False

        out_qos = QoSProfile(depth=2)
        self.pub_depth = self.create_publisher(Image, 'depth', out_qos)
        self.pub_color = self.create_publisher(Image, 'depth/colorized', out_qos)
        self.pub_info = self.create_publisher(CameraInfo, 'depth/camera_info', out_qos)
        metric = self.depth_type == 'metric'
        self.pub_mm = self.create_publisher(Image, 'depth/mm', out_qos) \
            if metric and cfg['publish_depth_mm'] else None
        self.pub_points = self.create_publisher(PointCloud2, 'depth/points', out_qos) \
            if metric and cfg['publish_points'] else None
        self.outputs = [p for p in (self.pub_depth, self.pub_color, self.pub_mm, self.pub_points) if p]
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.pool = WorkerPool(self._process, cfg['workers'], self._on_worker_error)
        self._subscribe_input(cfg['input_transport'])
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, qos_profile_sensor_data)
        self.create_timer(cfg['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        meaning = ('metric depth in metres' if metric else
                   'relative inverse depth (larger = nearer, not metres)')
        self.get_logger().info(f'{engine.describe()}; {cfg["workers"]} workers; publishing {meaning}; '
                               f'{self.estimator.recipe.describe()}')

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
        if kind != 'metric' and (cfg['publish_points'] or cfg['publish_depth_mm']):
            raise ConfigError('publish_points and publish_depth_mm need metric depth: this model gives '
                              'relative inverse depth (no unit); use a DA-V2 metric model, or set '
                              'depth_type: metric if this one is')
        return kind, cfg['max_depth'] or known_max

    @staticmethod
    def _view_settings(cfg) -> tuple:
        """Colorizer and temporal smoother from parameters (ValueError if inconsistent)."""
        colorizer = Colorizer(cfg['colormap'], cfg['color_range'], fixed_range=(cfg['color_min'], cfg['color_max']),
                              smoothing=cfg['color_smoothing'])
        smoother = DepthSmoother(cfg['temporal_smoothing'], cfg['scene_cut']) if cfg['temporal_smoothing'] else None
        return colorizer, smoother

    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        refused = [n for n in changes if n not in RUNTIME_PARAMS]
        if refused:
            return SetParametersResult(successful=False, reason=(
                f'{refused} are fixed at start-up; only {list(RUNTIME_PARAMS)} change at runtime'))
        merged = {**self.config, **changes}
        try:
            self.colorizer, self.smoother = self._view_settings(validate(merged))
        except ValueError as exc:  # ConfigError included
            return SetParametersResult(successful=False, reason=str(exc))
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

    def _on_camera_info(self, msg: CameraInfo):
        self._camera_info = msg

    def _on_image(self, msg: Image):
        self._accept(msg.header, lambda: decode_image(msg.height, msg.width, msg.encoding,
                                                      msg.is_bigendian, msg.step, msg.data))

    def _on_compressed(self, msg: CompressedImage):
        self._accept(msg.header, lambda: decode_compressed(msg.format, msg.data))

    def _on_hbmem(self, msg):
        header = Header(stamp=msg.time_stamp, frame_id=self.config['hbmem_frame_id'])
        encoding = bytes(msg.encoding).split(b'\0', 1)[0].decode('ascii', 'replace')
        data = memoryview(msg.data)[:msg.data_size]
        self._accept(header, lambda: decode_image(msg.height, msg.width, encoding, 0, msg.step, data))

    def _accept(self, header, decode):
        """Validate and hand a frame to the workers; cheap, so the executor never lags.

        Decoding here is only checks and zero-copy views; a bad frame is
        rejected before it can displace a good one waiting in the slot.
        """
        now = time.monotonic()
        self.input_rate.tick(now)
        self.frames.add('received')
        if not any(p.get_subscription_count() for p in self.outputs):
            self.drops.add('no_subscribers')
            return
        try:
            frame = decode()
        except ImageFormatError as exc:
            self.drops.add('bad_input')
            self.warn('bad_input', f'dropped an image: {exc}')
            return
        if self.pool.submit(Job(header, frame, now)) is not None:
            self.drops.add('superseded')

    # -- work (on worker threads) -------------------------------------------
    def _process(self, job: Job):
        # Depth and colorized images are computed straight into their messages' buffers.
        depth_fields, depth_buffer = image_buffer(job.frame.height, job.frame.width, '32FC1')
        result = self.estimator.estimate(job.frame, self.smoother, out=depth_buffer)
        self.latency.add(result.timings['inference'])
        if self.depth_type == 'metric' and self.max_depth:
            depth_buffer[...] = invalid_to_nan(depth_buffer, self.max_depth)
        outputs = self._outputs(job, depth_fields, result)
        stamp_ns = job.header.stamp.sec * 1_000_000_000 + job.header.stamp.nanosec
        with self._publish_lock:
            if self._closing or self.pool.abandoned():  # a timed-out call: already counted
                return
            resets = self._order.resets
            if not self._order.admit(stamp_ns):
                self.drops.add('out_of_order')
                return
            if self._order.resets != resets:
                self.warn('stamp_reset', 'input stamps jumped back in time (a looping bag?): '
                                         'output order restarted from this frame')
            for publisher, msg in outputs:
                publisher.publish(msg)
            self.frames.add('published')
            if self._camera_info is not None:
                self._camera_info.header = job.header
                self.pub_info.publish(self._camera_info)
        self.output_rate.tick()

    def _outputs(self, job: Job, depth_fields: dict, result) -> list:
        """(publisher, message) for every output someone listens to."""
        wanted = [p for p in self.outputs if p.get_subscription_count()]
        depth = result.depth
        outputs = []
        if self.pub_depth in wanted:
            outputs.append((self.pub_depth, self._image_msg(job.header, depth_fields)))
        if self.pub_color in wanted:
            color_fields, color_buffer = image_buffer(depth.shape[0], depth.shape[1], 'bgr8')
            self.colorizer(result.model_depth, result.placement, out=color_buffer)
            outputs.append((self.pub_color, self._image_msg(job.header, color_fields)))
        if self.pub_mm in wanted:
            outputs.append((self.pub_mm, self._image_msg(job.header, image_fields(to_millimetres(depth), '16UC1'))))
        info = self._camera_info
        if self.pub_points in wanted and info is not None:
            outputs.append((self.pub_points, self._points_msg(job, depth, info)))
        return outputs

    def _points_msg(self, job: Job, depth, info) -> PointCloud2:
        h, w = depth.shape
        fx, fy, cx, cy = scaled_intrinsics(info.k, (info.width, info.height), (w, h))
        rgb = to_rgb(job.frame) if self.config['points_rgb'] else None
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
        if self._closing:  # calls cancelled by shutdown
            return
        reason = 'bad_output' if isinstance(exc, BadOutputError) else 'inference_error'
        self.drops.add(reason)
        self.warn(reason, f'frame dropped ({reason}): {type(exc).__name__}: {exc}')

    # -- diagnostics ----------------------------------------------------------
    def _publish_diagnostics(self):
        stalled = self.pool.reap_stalled(self.config['inference_timeout'])
        if stalled:
            self.drops.add('inference_timeout', stalled)
            self.warn('inference_timeout', f'{stalled} inference call(s) ran past inference_timeout '
                                           f'({self.config["inference_timeout"]} s): replaced the worker(s); '
                                           'their results will be dropped')
        p50, p95 = self.latency.percentiles_ms(50, 95)
        drops = self.drops.snapshot()
        values = {'input_rate_hz': f'{self.input_rate.rate():.2f}',
                  'output_rate_hz': f'{self.output_rate.rate():.2f}',
                  'inference_latency_p50_ms': f'{p50:.1f}', 'inference_latency_p95_ms': f'{p95:.1f}',
                  **{f'frames_{k}': str(v) for k, v in self.frames.snapshot().items()},
                  **{f'drops_{k}': str(v) for k, v in drops.items()},
                  'stamp_resets': str(self._order.resets), 'worker_threads': str(self.pool.threads_alive()),
                  'engine': self.estimator.engine.name, 'model': self.config['model_path']}
        status = DiagnosticStatus(name=f'{self.get_name()}: depth', hardware_id=self.estimator.engine.name,
                                  level=DiagnosticStatus.OK, message='ok')
        if any(drops[k] for k in ('inference_error', 'bad_output', 'inference_timeout', 'bad_input')):
            status.level, status.message = DiagnosticStatus.WARN, 'frames failed or were malformed'
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(array)

    def shutdown(self) -> bool:
        """Stop the workers; False if one is stuck in an engine call (then the engine is
        left open: closing it under a running call would crash the process)."""
        with self._publish_lock:
            self._closing = True
        self.estimator.engine.cancel()
        if not self.pool.stop(timeout=3.0):
            self.get_logger().warning('a worker is stuck inside an inference call: exiting without it')
            return False
        self.estimator.engine.close()
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


def main(args=None) -> int:
    return run_node(DepthNode, args)


if __name__ == '__main__':
    sys.exit(main())
