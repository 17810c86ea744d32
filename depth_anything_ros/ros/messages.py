"""ROS messages from the plain values core/ produces: one way to build each."""
from __future__ import annotations

from sensor_msgs.msg import Image
from std_msgs.msg import Header


def header_at(stamp_ns: int, frame_id: str) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def image_message(header: Header, fields: dict) -> Image:
    """A sensor_msgs/Image from image_codec's fields (height, width, encoding, is_bigendian, step, data).

    Their `data` is array-backed, which Humble's per-element checks on assignment take in milliseconds
    (bytes would take about 0.8 s per 1080p frame there)."""
    msg = Image(header=header)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg
