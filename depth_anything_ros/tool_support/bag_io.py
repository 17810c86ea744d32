"""Depth for every image of a rosbag2 topic, written to a new rosbag2, without ROS.

Reads and writes with the `rosbags` library (sqlite3 or mcap; rosbag2_py is not
installable without a ROS install). The output holds real sensor_msgs/msg/Image
messages: depth (32FC1) and its colorized view (bgr8), each with the input
message's header and bag timestamp, plus every sensor_msgs/msg/CameraInfo
topic copied byte for byte.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field

import numpy as np

from ..core.image_codec import ImageFormatError, decode_compressed, decode_image, image_fields

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
STORAGES = ('sqlite3', 'mcap')
DISTROS = ('humble', 'jazzy')
BAG_VERSION = 8  # rosbags writes 8 or 9; 8 is what Jazzy's rosbag2 writes by default


class BagError(ValueError):
    """A bag, topic or output that cannot be used; the message says what to fix."""


@dataclass
class BagSummary:
    images: int = 0
    camera_info: int = 0
    skipped: dict = field(default_factory=dict)   # reason -> count of undecodable images
    input_type: str = ''
    topics: dict = field(default_factory=dict)    # output topic -> message type


def typestore(distro: str = 'humble'):
    from rosbags.typesys import Stores, get_typestore
    stores = {'humble': Stores.ROS2_HUMBLE, 'jazzy': Stores.ROS2_JAZZY}
    if distro not in stores:
        raise BagError(f"ROS distro '{distro}' is not one of {list(stores)}")
    return get_typestore(stores[distro])


def frame_from_message(msg, msgtype: str):
    """A deserialized Image or CompressedImage -> Frame (ImageFormatError if it cannot be decoded)."""
    if msgtype == IMAGE:
        return decode_image(msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data)
    if 'compresseddepth' in msg.format.lower():
        raise ImageFormatError(f"'{msg.format}' is a compressed depth image, not a camera image")
    return decode_compressed(msg.format, msg.data)


def image_message(store, header, pixels: np.ndarray, encoding: str):
    """A sensor_msgs/msg/Image of the output typestore with `header` (copied field by field)."""
    types = store.types
    stamp = types['builtin_interfaces/msg/Time'](sec=header.stamp.sec, nanosec=header.stamp.nanosec)
    fields = image_fields(pixels, encoding)
    return types[IMAGE](
        header=types['std_msgs/msg/Header'](stamp=stamp, frame_id=header.frame_id),
        height=fields['height'], width=fields['width'], encoding=encoding,
        is_bigendian=fields['is_bigendian'], step=fields['step'],
        data=np.frombuffer(fields['data'], np.uint8))


def image_topics(bag: str) -> dict:
    """topic -> message type of every Image/CompressedImage topic in `bag`."""
    reader = open_reader(bag)
    try:
        return {c.topic: c.msgtype for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED)}
    finally:
        reader.close()


def process_bag(bag: str, out: str, topic: str, estimator, colorizer, storage: str = 'sqlite3',
                distro: str = 'humble', depth_topic: str = '/depth', progress=None) -> BagSummary:
    """Write `out` with depth for every message of `topic` in `bag`; see the module docstring."""
    if storage not in STORAGES:
        raise BagError(f"storage '{storage}' is not one of {list(STORAGES)}")
    if os.path.exists(out):
        raise BagError(f"output '{out}' already exists: rosbag2 writes a new directory; "
                       'choose another --out or delete it')
    store = typestore(distro)
    reader = open_reader(bag, store)
    try:
        return _convert(reader, bag, out, topic, estimator, colorizer, storage, store, depth_topic, progress)
    finally:
        reader.close()


def open_reader(bag: str, store=None):
    from rosbags.highlevel import AnyReader, AnyReaderError
    reader = AnyReader([_bag_path(bag)], default_typestore=store)
    try:
        reader.open()
    except (AnyReaderError, OSError) as exc:
        raise BagError(f"cannot read bag '{bag}': {exc}") from exc
    if not reader.is2:
        reader.close()
        raise BagError(f"'{bag}' is a ROS 1 bag: convert it with rosbags-convert first")
    return reader


def _convert(reader, bag, out, topic, estimator, colorizer, storage, store, depth_topic, progress):
    from rosbags.rosbag2 import StoragePlugin, Writer
    summary = BagSummary()
    sources = [c for c in reader.connections if c.topic == topic]
    if not sources:
        found = {c.topic: c.msgtype for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED)}
        listed = ', '.join(f'{t} ({m})' for t, m in sorted(found.items())) or 'none'
        raise BagError(f"topic '{topic}' is not in '{bag}'; its image topics: {listed}")
    wrong = sorted({c.msgtype for c in sources} - {IMAGE, COMPRESSED})
    if wrong:
        raise BagError(f"topic '{topic}' carries {wrong[0]}, not {IMAGE} or {COMPRESSED}")
    infos = [c for c in reader.connections if c.msgtype == CAMERA_INFO]
    summary.input_type = sources[0].msgtype
    total = sum(c.msgcount for c in sources + infos)

    writer = Writer(out, version=BAG_VERSION,
                    storage_plugin=StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3)
    try:
        writer.open()
    except Exception as exc:  # rosbags' WriterError, or the directory
        raise BagError(f"cannot create bag '{out}': {exc}") from exc
    try:
        depth_conn = writer.add_connection(depth_topic, IMAGE, typestore=store)
        color_conn = writer.add_connection(f'{depth_topic}/colorized', IMAGE, typestore=store)
        # One output connection per input topic (a topic recorded twice is still one topic).
        info_out = {}
        for conn in infos:
            if conn.topic not in info_out:
                info_out[conn.topic] = writer.add_connection(conn.topic, CAMERA_INFO, typestore=store)
        summary.topics = {depth_topic: IMAGE, f'{depth_topic}/colorized': IMAGE,
                          **{t: CAMERA_INFO for t in info_out}}
        messages = reader.messages(connections=sources + infos)
        for conn, timestamp, raw in (progress(messages, total) if progress else messages):
            if conn.msgtype == CAMERA_INFO:
                writer.write(info_out[conn.topic], timestamp, raw)  # same CDR: copied as is
                summary.camera_info += 1
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            try:
                frame = frame_from_message(msg, conn.msgtype)
            except ImageFormatError as exc:  # one bad frame should not lose the whole bag
                summary.skipped[str(exc)] = summary.skipped.get(str(exc), 0) + 1
                continue
            result = estimator.estimate(frame)
            colorized = colorizer(result.model_depth, result.placement)
            for out_conn, pixels, encoding in ((depth_conn, result.depth, '32FC1'),
                                               (color_conn, colorized, 'bgr8')):
                image = image_message(store, msg.header, pixels, encoding)
                writer.write(out_conn, timestamp, store.serialize_cdr(image, IMAGE))
            summary.images += 1
        writer.close()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.abort()
        shutil.rmtree(out, ignore_errors=True)  # no half-written bag left behind
        raise
    return summary


def _bag_path(bag: str):
    from pathlib import Path
    if not os.path.exists(bag):
        raise BagError(f"bag '{bag}' does not exist")
    return Path(bag)
