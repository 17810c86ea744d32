"""ROS messages from the plain values core/ produces: one way to build each.

`bag` builds the same messages with the rosbags library from the same fields (tool_support/bag_io.py)."""
from __future__ import annotations

from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from ..core.output_topics import IMAGE, POINTCLOUD



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


def points_message(header: Header, fields: dict) -> PointCloud2:
    """A sensor_msgs/PointCloud2 from pointcloud.pointcloud2_fields (array-backed `data`, as above)."""
    msg = PointCloud2(header=header)
    for name, value in fields.items():
        if name == 'fields':
            value = [PointField(name=n, offset=o, datatype=t, count=c) for n, o, t, c in value]
        setattr(msg, name, value)
    return msg


# output_topics' message kinds -> (message type, its builder)
OUTPUT_MESSAGES = {IMAGE: (Image, image_message), POINTCLOUD: (PointCloud2, points_message)}


def message_type(destination):
    """The message class of an output_topics.Destination (its publisher's type)."""
    return OUTPUT_MESSAGES[destination.message][0]


def output_message(destination, header: Header, fields: dict):
    """The message of an output_topics.Destination from its fields (output_topics.routed)."""
    return OUTPUT_MESSAGES[destination.message][1](header, fields)
