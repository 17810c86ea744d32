"""The ROS 2 node: parameters, QoS, topics, diagnostics. Processing lives in the core.

Uses only rclpy APIs that Humble (the RDK S100's TROS) and Jazzy share.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from .engines import EngineError, open_engine
from .image_codec import Frame, ImageFormatError, decode_compressed, decode_image, image_fields
from .params import PARAMS, ConfigError, validate
from .pipeline import BadOutputError, DepthEstimator
from .postprocess import Colorizer
from .ros_main import run_node
from .stats import Counters, LatencyWindow, RateLimitedLog, RateMeter
from .worker_pool import StampOrder, WorkerPool

DROP_REASONS = ('no_subscribers', 'bad_input', 'superseded', 'out_of_order', 'inference_error',
                'bad_output', 'inference_timeout')
RUNTIME_PARAMS = ('colormap', 'color_range')


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
            engine = open_engine(cfg['model_path'], cfg['engine'], providers=cfg['providers'],
                                 intra_op_threads=cfg['intra_op_threads'], bpu_priority=cfg['bpu_priority'],
                                 bpu_cores=None if list(cfg['bpu_cores']) == [-1] else list(cfg['bpu_cores']))
            self.estimator = DepthEstimator(engine, cfg['resize_mode'], cfg['input_size'],
                                            cfg['normalization'])
        except (EngineError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        self.colorizer = Colorizer(cfg['colormap'], cfg['color_range'])
        self.drops = Counters(*DROP_REASONS)
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
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.pool = WorkerPool(self._process, cfg['workers'], self._on_worker_error)
        self._subscribe_input(cfg['input_transport'])
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, qos_profile_sensor_data)
        self.create_timer(cfg['diagnostics_period'], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(f'{engine.describe()}; {cfg["workers"]} workers; '
                               f'publishing relative inverse depth (larger = nearer, not metres)')

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

    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        refused = [n for n in changes if n not in RUNTIME_PARAMS]
        if refused:
            return SetParametersResult(successful=False, reason=(
                f'{refused} are fixed at start-up; only {list(RUNTIME_PARAMS)} change at runtime'))
        merged = {**self.config, **changes}
        try:
            colorizer = Colorizer(merged['colormap'], merged['color_range'])
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.config, self.colorizer = merged, colorizer
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
        if self.pub_depth.get_subscription_count() + self.pub_color.get_subscription_count() == 0:
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
        result = self.estimator.estimate(job.frame)
        self.latency.add(result.timings['inference'])
        outputs = [(self.pub_depth, self._image_msg(job.header, result.depth, '32FC1'))]
        if self.pub_color.get_subscription_count():
            colorized = self.colorizer(result.model_depth, result.placement)
            outputs.append((self.pub_color, self._image_msg(job.header, colorized, 'bgr8')))
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
            if self._camera_info is not None:
                self._camera_info.header = job.header
                self.pub_info.publish(self._camera_info)
        self.output_rate.tick()

    @staticmethod
    def _image_msg(header, pixels, encoding) -> Image:
        msg = Image()
        msg.header = header
        for name, value in image_fields(pixels, encoding).items():
            setattr(msg, name, value)
        return msg

    def _on_worker_error(self, exc: Exception):
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

    def shutdown(self):
        with self._publish_lock:
            self._closing = True
        if not self.pool.stop(timeout=3.0):
            self.get_logger().warning('a worker was still inside an inference call at shutdown')
        self.estimator.engine.close()


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
