"""A test-side ROS 2 participant: publishes camera frames, records what comes back."""
import array
import threading
import time

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from depth_anything_ros.core.camera_messages import stamp_ns
from depth_anything_ros.ros.demo_nodes import camera_info
from depth_anything_ros.ros.messages import header_at, image_message
from depth_anything_ros.core.image_codec import encode_bgr


class Probe:
    """Camera publisher plus recorders of depth, colorized, camera_info and diagnostics."""

    def __init__(self, subscribe_outputs: bool = True, name: str = 'probe', compressed: bool = False,
                 extra: tuple = ()):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.cond = threading.Condition()
        self.received = {'depth': [], 'depth/colorized': [], 'depth/camera_info': [], 'diagnostics': [],
                         **{topic: [] for topic, _ in extra}}
        self.pub_image = (self.node.create_publisher(CompressedImage, 'image/compressed', qos_profile_sensor_data)
                          if compressed else self.node.create_publisher(Image, 'image', qos_profile_sensor_data))
        self.pub_info = self.node.create_publisher(CameraInfo, 'camera_info', qos_profile_sensor_data)
        if subscribe_outputs:
            for topic, kind in (('depth', Image), ('depth/colorized', Image), ('depth/camera_info', CameraInfo)):
                self.node.create_subscription(kind, topic, self._recorder(topic), QoSProfile(depth=50))
        for topic, kind in extra:
            self.node.create_subscription(kind, topic, self._recorder(topic), QoSProfile(depth=50))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._recorder('diagnostics'), 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - context shut down while spinning
                return

    def _recorder(self, topic):
        def record(msg):
            with self.cond:
                self.received[topic].append(msg)
                self.cond.notify_all()
        return record

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True

    def wait_connected(self, timeout: float = 20.0, outputs: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self.pub_image.get_subscription_count() > 0
            if outputs:
                ready = ready and self.node.count_publishers('depth') > 0
            if ready:
                return True
            time.sleep(0.1)
        return False

    def warm_up(self, bgr: np.ndarray, timeout: float = 30.0, topics: tuple = ('depth',)) -> bool:
        """Offer frames (stamps 1, 2, ... ns) until depth comes back: both directions
        of discovery are then complete, so later single frames are not lost to it."""
        deadline = time.monotonic() + timeout
        stamp = 0
        jpeg = cv2.imencode('.jpg', bgr)[1].tobytes()
        while time.monotonic() < deadline:
            stamp += 1
            if self.pub_image.msg_type is CompressedImage:
                self.publish_compressed(jpeg, 'jpeg', stamp)
            else:
                self.publish(bgr, 'bgr8', stamp)
            if self.wait_for(lambda: all(self.received[t] for t in topics), timeout=0.5):
                return True
        return False

    def publish(self, bgr: np.ndarray, encoding: str, stamp_ns: int, overrides: dict = None) -> Header:
        header = header_at(stamp_ns, 'camera_optical_frame')
        msg = image_message(header, {**encode_bgr(bgr, encoding), **(overrides or {})})
        self.pub_info.publish(camera_info(header, bgr.shape[1], bgr.shape[0]))
        self.pub_image.publish(msg)
        return header

    def publish_compressed(self, data: bytes, fmt: str, stamp_ns: int) -> Header:
        header = header_at(stamp_ns, 'camera_optical_frame')
        msg = CompressedImage(header=header, format=fmt)
        msg.data = array.array('B', data)
        self.pub_image.publish(msg)
        return header

    def stamps(self, topic: str) -> list:
        with self.cond:
            return [stamp_ns(m.header) for m in self.received[topic]]

    def latest_diagnostics(self) -> dict:
        with self.cond:
            if not self.received['diagnostics']:
                return {}
            status = self.received['diagnostics'][-1].status[0]
        return {kv.key: kv.value for kv in status.values}

    def close(self):
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(2.0)
