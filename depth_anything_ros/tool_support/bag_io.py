"""Depth for every image of a rosbag2 topic, written to a new rosbag2, without ROS.

Reads and writes with the `rosbags` library (sqlite3 or mcap; rosbag2_py is not
installable without a ROS install). The output holds what the node would have
published, made by the same FrameProcessor and routed to the same topics
(core/output_topics.py) from frames decoded the node's way (core/camera_messages.py):
depth (32FC1) and its colorized view (bgr8); with metres also depth/mm and depth/points
when asked for, and, aligned to a reference or with DA3Metric, depth/relative for frames that
could not be in metres; DA3's depth/confidence and depth/sky when asked for.
Each message has the input's header and bag timestamp; every sensor_msgs/msg/CameraInfo
topic is copied byte for byte, and the one beside the image topic gives points their
intrinsics.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field

import numpy as np

from ..core.camera_messages import camera_frame, stamp_ns
from ..core.image_codec import ImageFormatError
from ..core.output_topics import IMAGE as IMAGE_OUTPUT
from ..core.output_topics import POINTCLOUD as POINTCLOUD_OUTPUT
from ..core.output_topics import MessageBuffers, destinations, routed

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
POINTCLOUD2 = 'sensor_msgs/msg/PointCloud2'
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
    outputs_skipped: dict = field(default_factory=dict)   # 'points: reason' / 'aligned: reason' -> count
    input_type: str = ''
    topics: dict = field(default_factory=dict)    # output topic -> message type


def typestore(distro: str = 'humble'):
    from rosbags.typesys import Stores, get_typestore
    stores = {'humble': Stores.ROS2_HUMBLE, 'jazzy': Stores.ROS2_JAZZY}
    if distro not in stores:
        raise BagError(f"ROS distro '{distro}' is not one of {list(stores)}")
    return get_typestore(stores[distro])


def header_of(store, header):
    """`header` (of the input typestore) as a std_msgs/msg/Header of the output typestore."""
    types = store.types
    stamp = types['builtin_interfaces/msg/Time'](sec=header.stamp.sec, nanosec=header.stamp.nanosec)
    return types['std_msgs/msg/Header'](stamp=stamp, frame_id=header.frame_id)


def image_message(store, header, fields: dict):
    """A sensor_msgs/msg/Image of the output typestore from image_codec's fields, with `header`."""
    return store.types[IMAGE](
        header=header_of(store, header), height=fields['height'], width=fields['width'],
        encoding=fields['encoding'], is_bigendian=fields['is_bigendian'], step=fields['step'],
        data=np.frombuffer(fields['data'], np.uint8))


def points_message(store, header, fields: dict):
    """A sensor_msgs/msg/PointCloud2 of the output typestore from pointcloud2_fields, with `header`."""
    types = store.types
    point_fields = [types['sensor_msgs/msg/PointField'](name=n, offset=o, datatype=t, count=c)
                    for n, o, t, c in fields['fields']]
    return types[POINTCLOUD2](
        header=header_of(store, header), height=fields['height'], width=fields['width'], fields=point_fields,
        is_bigendian=fields['is_bigendian'], point_step=fields['point_step'], row_step=fields['row_step'],
        data=np.frombuffer(fields['data'], np.uint8), is_dense=fields['is_dense'])


# output_topics' message kinds -> (rosbags message type, its builder)
OUTPUT_MESSAGES = {IMAGE_OUTPUT: (IMAGE, image_message), POINTCLOUD_OUTPUT: (POINTCLOUD2, points_message)}


def output_topics(processor, depth_topic: str, wanted) -> dict:
    """Output topic -> message type: the node's topics for this processor and `wanted` outputs."""
    return {d.topic(depth_topic): OUTPUT_MESSAGES[d.message][0] for d in destinations(processor, wanted)}


def image_topics(bag: str) -> dict:
    """topic -> message type of every Image/CompressedImage topic in `bag`."""
    reader = open_reader(bag)
    try:
        return {c.topic: c.msgtype for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED)}
    finally:
        reader.close()


def process_bag(bag: str, out: str, topic: str, processor, storage: str = 'sqlite3', distro: str = 'humble',
                depth_topic: str = '/depth', wanted=('depth', 'colorized'), reference_topic: str | None = None,
                progress=None) -> BagSummary:
    """Write `out` with depth for every message of `topic` in `bag`; see the module docstring."""
    if storage not in STORAGES:
        raise BagError(f"storage '{storage}' is not one of {list(STORAGES)}")
    if os.path.exists(out):
        raise BagError(f"output '{out}' already exists: rosbag2 writes a new directory; "
                       'choose another --out or delete it')
    store = typestore(distro)
    reader = open_reader(bag, store)
    try:
        return _convert(reader, bag, out, topic, processor, storage, store, depth_topic, wanted, reference_topic,
                        progress)
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


def _convert(reader, bag, out, topic, processor, storage, store, depth_topic, wanted, reference_topic, progress):
    from rosbags.rosbag2 import StoragePlugin, Writer
    summary = BagSummary()
    sources = _sources(reader, bag, topic)
    infos = [c for c in reader.connections if c.msgtype == CAMERA_INFO]
    camera_topic = camera_info_topic(topic, {c.topic for c in infos})
    references = _reference_connections(reader, bag, processor, reference_topic)
    summary.input_type = sources[0].msgtype
    total = sum(c.msgcount for c in sources + infos + references)

    writer = Writer(out, version=BAG_VERSION,
                    storage_plugin=StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3)
    try:
        writer.open()
    except Exception as exc:  # rosbags' WriterError, or the directory
        raise BagError(f"cannot create bag '{out}': {exc}") from exc
    try:
        topics = output_topics(processor, depth_topic, wanted)
        conns = {t: writer.add_connection(t, m, typestore=store) for t, m in topics.items()}
        # One output connection per input topic (a topic recorded twice is still one topic).
        for conn in infos:
            if conn.topic not in conns:
                conns[conn.topic] = writer.add_connection(conn.topic, CAMERA_INFO, typestore=store)
        summary.topics = {**topics, **{c.topic: CAMERA_INFO for c in infos}}
        camera = None
        messages = reader.messages(connections=sources + infos + references)
        for conn, timestamp, raw in (progress(messages, total) if progress else messages):
            if conn.msgtype == CAMERA_INFO:
                writer.write(conns[conn.topic], timestamp, raw)  # same CDR: copied as is
                summary.camera_info += 1
                if conn.topic == camera_topic:
                    camera = reader.deserialize(raw, conn.msgtype)
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            if conn in references:
                _add_reference(processor, msg, summary)
                continue
            try:
                frame = camera_frame(msg).decode()
            except ImageFormatError as exc:  # one bad frame should not lose the whole bag
                _count(summary.skipped, str(exc))
                continue
            buffers = MessageBuffers()
            result = processor.process(frame, wanted, stamp_ns(msg.header), camera, buffers)
            for name, serialized in _outputs(store, msg.header, result, buffers, depth_topic, processor, summary):
                writer.write(conns[name], timestamp, serialized)
            summary.images += 1
        writer.close()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.abort()
        shutil.rmtree(out, ignore_errors=True)  # no half-written bag left behind
        raise
    return summary


def _outputs(store, header, result, buffers, depth_topic, processor, summary):
    """(topic, serialized message) of one frame's outputs, as the node would publish them."""
    if result.unaligned:
        _count(summary.outputs_skipped, f'metres: {result.unaligned}')
    if result.points_skipped:
        _count(summary.outputs_skipped, f'points: {result.points_skipped}')
    for destination, fields in routed(result, buffers, processor.relative_fallback):
        msgtype, build = OUTPUT_MESSAGES[destination.message]
        yield destination.topic(depth_topic), store.serialize_cdr(build(store, header, fields), msgtype)


def _sources(reader, bag, topic):
    sources = [c for c in reader.connections if c.topic == topic]
    if not sources:
        found = {c.topic: c.msgtype for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED)}
        listed = ', '.join(f'{t} ({m})' for t, m in sorted(found.items())) or 'none'
        raise BagError(f"topic '{topic}' is not in '{bag}'; its image topics: {listed}")
    wrong = sorted({c.msgtype for c in sources} - {IMAGE, COMPRESSED})
    if wrong:
        raise BagError(f"topic '{topic}' carries {wrong[0]}, not {IMAGE} or {COMPRESSED}")
    return sources


def camera_info_topic(image_topic: str, info_topics: set) -> str | None:
    """The CameraInfo topic of `image_topic`: camera_info in its namespace (image_transport's
    rule, also for .../image_raw/compressed), else the bag's only one."""
    namespace = image_topic.rsplit('/', 2 if image_topic.endswith('/compressed') else 1)[0]
    beside = f'{namespace}/camera_info'
    if beside in info_topics:
        return beside
    return next(iter(info_topics)) if len(info_topics) == 1 else None


def _reference_connections(reader, bag, processor, reference_topic):
    aligner = processor.aligner
    if aligner is None or aligner.source == 'ground_plane':
        return []
    wanted = IMAGE if aligner.source == 'depth_image' else POINTCLOUD2
    conns = [c for c in reader.connections if c.topic == reference_topic]
    if not conns or any(c.msgtype != wanted for c in conns):
        raise BagError(f"metric_reference '{aligner.source}' needs --reference-topic, a {wanted} topic of "
                       f"'{bag}'; got {reference_topic!r}")
    return conns


def _add_reference(processor, msg, summary):
    try:
        processor.add_reference(stamp_ns(msg.header), msg)
    except ImageFormatError as exc:
        _count(summary.outputs_skipped, f'reference: {exc}')


def _count(counts: dict, key: str):
    counts[key] = counts.get(key, 0) + 1


def _bag_path(bag: str):
    from pathlib import Path
    if not os.path.exists(bag):
        raise BagError(f"bag '{bag}' does not exist")
    return Path(bag)
