"""Where each output of a FrameProcessor goes, and its message fields. No ROS here.

One description for the node (rclpy messages, ros/messages.py) and `bag` (rosbags messages,
tool_support/bag_io.py): the same topics, the same routing, the same fields. Topics follow the
depth topic (the node's `depth`, bag's --depth-topic):

  depth             32FC1 Image   the model's depth: metres with a metric model or a reference,
                                  else its relative output (depth_type.DepthKind)
  depth/relative    32FC1 Image   with metric_reference or DA3Metric: frames that could not be in
                                  metres (the relative output; a topic never mixes units)
  depth/colorized   bgr8 Image    the colorized view
  depth/mm          16UC1 Image   metres as REP 118 millimetres (publish_depth_mm)
  depth/points      PointCloud2   metres as points in the camera's optical frame (publish_points)
  depth/confidence  32FC1 Image   DA3 main series: depth_conf at the image size (publish_confidence)
  depth/sky         mono8 Image   DA3 Mono/Metric: 255 where the model reports sky (publish_sky)
"""
from __future__ import annotations

from dataclasses import dataclass

from .image_codec import image_buffer, image_fields
from .pointcloud import pointcloud2_fields

IMAGE, POINTCLOUD = 'Image', 'PointCloud2'   # sensor_msgs message types
DEPTH_ENCODING, COLORIZED_ENCODING, MM_ENCODING, SKY_ENCODING = '32FC1', 'bgr8', '16UC1', 'mono8'


@dataclass(frozen=True)
class Destination:
    output: str    # the FrameProcessor output it carries (frame_processor.OUTPUTS)
    suffix: str    # its topic after the depth topic
    message: str   # IMAGE or POINTCLOUD

    def topic(self, depth_topic: str = 'depth') -> str:
        return depth_topic + self.suffix


DEPTH = Destination('depth', '', IMAGE)
RELATIVE = Destination('depth', '/relative', IMAGE)
COLORIZED = Destination('colorized', '/colorized', IMAGE)
MILLIMETRES = Destination('depth_mm', '/mm', IMAGE)
POINTS = Destination('points', '/points', POINTCLOUD)
CONFIDENCE = Destination('confidence', '/confidence', IMAGE)
SKY = Destination('sky', '/sky', IMAGE)
# Published only when the parameter publish_<output> asks for them.
OPTIONAL = (MILLIMETRES, POINTS, CONFIDENCE, SKY)


def requested_outputs(cfg: dict) -> tuple:
    """The outputs a configuration (node parameters, or tool options by the same names) asks for
    (frame_processor.OUTPUTS names)."""
    return ('depth', 'colorized') + tuple(d.output for d in OPTIONAL if cfg.get(f'publish_{d.output}'))


def destinations(processor, requested) -> tuple:
    """Every destination a processor publishes to for the `requested` outputs: millimetres and
    points only in metres, depth/relative only where frames may stay relative (a reference
    aligner, DA3Metric), confidence and sky where asked for (processor_factory refuses them for a
    model without those outputs)."""
    found = [DEPTH, COLORIZED]
    if processor.relative_fallback:
        found.append(RELATIVE)
    if processor.metric:
        found += [d for d in (MILLIMETRES, POINTS) if d.output in requested]
    return tuple(found + [d for d in (CONFIDENCE, SKY) if d.output in requested])


class MessageBuffers:
    """Where FrameProcessor.finish writes depth and its colorized view: straight into their
    messages' data, so no copy of the pixels is made between the computation and the message
    (a 1080p 32FC1 copy is ~1 ms). After finish, `depth` and `colorized` are those messages' fields
    (None when not computed)."""

    def __init__(self):
        self.depth = self.colorized = None

    def depth_array(self, height: int, width: int):
        self.depth, array = self.new_buffer(height, width, DEPTH_ENCODING)
        return array

    def colorized_array(self, height: int, width: int):
        self.colorized, array = self.new_buffer(height, width, COLORIZED_ENCODING)
        return array

    def new_buffer(self, height: int, width: int, encoding: str) -> tuple:
        """(message fields, writable array sharing their data)."""
        return image_buffer(height, width, encoding)


def routed(out, buffers: MessageBuffers, relative_fallback: bool) -> list:
    """(Destination, message fields) of every output in `out` (a FrameOutputs finished into
    `buffers`). Where frames may stay relative (FrameProcessor.relative_fallback), one that is not
    in metres goes to depth/relative."""
    found = [(DEPTH if out.metres or not relative_fallback else RELATIVE, buffers.depth)]
    if out.colorized is not None:
        found.append((COLORIZED, buffers.colorized))
    if out.depth_mm is not None:
        found.append((MILLIMETRES, image_fields(out.depth_mm, MM_ENCODING)))
    if out.points is not None:
        found.append((POINTS, pointcloud2_fields(*out.points)))
    if out.confidence is not None:
        found.append((CONFIDENCE, image_fields(out.confidence, DEPTH_ENCODING)))
    if out.sky is not None:
        found.append((SKY, image_fields(out.sky, SKY_ENCODING)))
    return found
