"""What comes in from a camera, as message fields: frames, stamps, camera_info. No ROS here.

`camera_frame` is the one way from a camera message to a Frame, for the node (rclpy messages)
and `bag` (rosbags messages) alike: it reads the fields only, so any object that has them will do.
  - sensor_msgs/Image in any SUPPORTED_ENCODING, jpeg/png bytes inside one included (TROS's
    hobot_usb_cam publishes MJPEG that way);
  - sensor_msgs/CompressedImage, jpeg or png (image_transport's `compressed`); compressedDepth
    (a depth image, not a camera's) is refused;
  - TROS's zero-copy hbm_img_msgs/HbmMsg1080P (a fixed buffer, `data_size` of it used).
"""
from __future__ import annotations

from dataclasses import dataclass

from .image_codec import (DEFAULT_MAX_PIXELS, Frame, ImageFormatError, any_error_is_bad_input, canonical_encoding,
                          check_compressed, decode_compressed, decode_image, is_compressed_encoding)
from .pointcloud import scaled_intrinsics


@dataclass(frozen=True)
class RawFrame:
    """An uncompressed camera image, checked and viewed (zero-copy) on arrival."""
    frame: Frame

    def decode(self) -> Frame:
        return self.frame


@dataclass(frozen=True)
class CompressedFrame:
    """jpeg or png bytes whose header was checked on arrival (size within the pixel limit);
    `decode` is the expensive part, for a worker thread: a slow one never stalls the executor."""
    format: str
    data: object
    max_pixels: int

    def decode(self) -> Frame:
        return decode_compressed(self.format, self.data, self.max_pixels)


PendingFrame = RawFrame | CompressedFrame


@any_error_is_bad_input
def camera_frame(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> PendingFrame:
    """A camera message (see the module docstring; told apart by their fields) checked against
    `max_pixels`; its `decode()` gives the Frame. ImageFormatError says why it cannot be one."""
    if hasattr(msg, 'format'):  # CompressedImage
        if 'compresseddepth' in msg.format.lower():
            raise ImageFormatError(f"'{msg.format}' is a compressed depth image, not a camera image")
        return _compressed(msg.format, msg.data, max_pixels)
    if hasattr(msg, 'data_size'):  # HbmMsg1080P: NUL-padded encoding, the image in the buffer's start
        encoding = bytes(msg.encoding).split(b'\0', 1)[0].decode('ascii', 'replace')
        data = memoryview(msg.data)[:msg.data_size]
        return RawFrame(decode_image(msg.height, msg.width, encoding, 0, msg.step, data, max_pixels))
    if is_compressed_encoding(msg.encoding):
        return _compressed(canonical_encoding(msg.encoding), msg.data, max_pixels)
    return RawFrame(decode_image(msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data,
                                 max_pixels))


def _compressed(fmt: str, data, max_pixels: int) -> CompressedFrame:
    check_compressed(fmt, data, max_pixels)  # the header only: cheap
    return CompressedFrame(fmt, data, max_pixels)


def stamp_ns(header) -> int:
    """A message header's stamp in nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def check_camera_info(camera, frame_wh: tuple | None = None) -> None:
    """ValueError saying why a camera_info cannot give intrinsics (for frames of `frame_wh`,
    width and height, when known)."""
    info_wh = (camera.width, camera.height)
    scaled_intrinsics(camera.k, info_wh, frame_wh or info_wh)
