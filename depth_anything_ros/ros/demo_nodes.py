"""The demo graph's camera and sink nodes (rclpy; used by the camera/sink tools)."""
from __future__ import annotations

import os
import time

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ..core.camera_messages import camera_frame
from ..core.image_codec import encode_bgr
from ..core.output_topics import COLORIZED, DEPTH
from .messages import image_message


def camera_info(header, width, height) -> CameraInfo:
    """Pinhole intrinsics for a ~60 degree horizontal field of view."""
    f = 0.866 * width
    info = CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob')
    info.k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    return info


class CameraNode(Node):
    """Publishes `image` and `camera_info` at a fixed rate from a frame iterator."""

    def __init__(self, frames, rate: float, encoding: str, max_frames: int = 0,
                 frame_id: str = 'camera_optical_frame'):
        super().__init__('sample_camera')
        self.frames, self.encoding, self.max_frames, self.frame_id = frames, encoding, max_frames, frame_id
        self.sent = 0
        self.pub_image = self.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.pub_info = self.create_publisher(CameraInfo, 'camera_info', qos_profile_sensor_data)
        self.create_timer(1.0 / rate, self._tick)

    def _tick(self):
        if self.max_frames and self.sent >= self.max_frames:
            raise SystemExit(0)
        bgr = next(self.frames)
        header = Header(frame_id=self.frame_id, stamp=self.get_clock().now().to_msg())
        self.pub_image.publish(image_message(header, encode_bgr(bgr, self.encoding)))
        self.pub_info.publish(camera_info(header, bgr.shape[1], bgr.shape[0]))
        self.sent += 1


class SinkNode(Node):
    """Receives depth and colorized depth, saves colorized frames, prints the rate."""

    def __init__(self, out_dir: str | None, save_every: int, max_frames: int = 0, seconds: float = 0.0):
        super().__init__('depth_sink')
        self.out_dir, self.save_every, self.max_frames = out_dir, save_every, max_frames
        self.deadline = time.monotonic() + seconds if seconds else None
        self.depth_stamps, self.colorized = [], 0
        self.last_depth_range = None
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        self.create_subscription(Image, DEPTH.topic(), self._on_depth, qos_profile_sensor_data)
        self.create_subscription(Image, COLORIZED.topic(), self._on_colorized, qos_profile_sensor_data)
        self.create_timer(1.0, self._report)

    def _on_depth(self, msg: Image):
        depth = np.frombuffer(msg.data, np.float32).reshape(msg.height, msg.step // 4)[:, :msg.width]
        finite = depth[np.isfinite(depth)]
        self.last_depth_range = (float(finite.min()), float(finite.max())) if finite.size else None
        self.depth_stamps.append(time.monotonic())
        if self.max_frames and len(self.depth_stamps) >= self.max_frames:
            raise SystemExit(0)

    def _on_colorized(self, msg: Image):
        self.colorized += 1
        if self.out_dir and (self.colorized - 1) % self.save_every == 0:
            frame = camera_frame(msg).decode()
            cv2.imwrite(os.path.join(self.out_dir, f'depth_{self.colorized:05d}.png'), frame.pixels)

    def fps(self) -> float:
        stamps = self.depth_stamps
        return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0

    def _report(self):
        print(f'sink: {len(self.depth_stamps)} depth frames, {self.colorized} colorized, '
              f'{self.fps():.2f} frames/s', flush=True)
        if self.deadline and time.monotonic() > self.deadline:
            raise SystemExit(0)
