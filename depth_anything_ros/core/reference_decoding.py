"""metric_reference messages, field by field, to ReferenceSamples. No ROS here.

Decoding reads only what the fit can use, whatever the message's size: a depth image is scanned
in row blocks and its sane readings sampled down to SAMPLE_BUDGET; a point cloud is read at
POINTS_READ points at most (evenly spread, jittered so an organized cloud's rows do not alias),
moved into the camera's frame, and those in front sampled down the same way. Every decoder is
wrapped by the image path's own guard: any error inside is an ImageFormatError, one rejected
reference, never an exception that ends the node.
"""
from __future__ import annotations

import numpy as np

from .image_codec import DEFAULT_MAX_PIXELS, ImageFormatError, any_error_is_bad_input, strided_rows
from .metric_fit import MAX_METRES, MIN_METRES
from .reference_samples import ReferenceSamples, RigidTransform, image_samples, ray_samples

DEPTH_ENCODINGS = {'16UC1': ('u2', 0.001), 'mono16': ('u2', 0.001), '32FC1': ('f4', 1.0)}
POINT_FIELD_TYPES = {7: 'f4', 8: 'f8'}   # sensor_msgs/PointField FLOAT32, FLOAT64
POINTS_READ = 1 << 18                    # points read per cloud: 6 MB of work, whatever the cloud
_SANE = f'between {MIN_METRES * 1000:g} mm and {MAX_METRES:g} m'


@any_error_is_bad_input
def decode_depth_image(height: int, width: int, encoding: str, is_bigendian: int, step: int, data,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> ReferenceSamples:
    """A metric depth Image registered to the camera (REP 118: 16UC1 millimetres with 0 = no
    reading, 32FC1 metres with NaN or 0 = no reading) as samples of its sane readings."""
    if encoding not in DEPTH_ENCODINGS:
        raise ImageFormatError(f"reference depth encoding '{encoding}' is not one of {sorted(DEPTH_ENCODINGS)}")
    if height <= 0 or width <= 0:
        raise ImageFormatError(f'reference depth size {width}x{height} is empty')
    if height * width > max_pixels:
        raise ImageFormatError(f'reference depth image {width}x{height} is over max_input_pixels {max_pixels}')
    kind, to_metres = DEPTH_ENCODINGS[encoding]
    dtype = np.dtype(('>' if is_bigendian else '<') + kind)
    rows = strided_rows(np.frombuffer(data, np.uint8), height, width * dtype.itemsize, step, encoding, dtype)
    samples = image_samples(rows, to_metres)
    if samples.size == 0:
        raise ImageFormatError(f'reference depth image {width}x{height} ({encoding}) has no reading {_SANE}')
    return samples


@any_error_is_bad_input
def decode_point_cloud(fields, height: int, width: int, point_step: int, row_step: int, data,
                       is_bigendian: int = 0, transform: RigidTransform | None = None) -> ReferenceSamples:
    """A PointCloud2's x, y, z (`fields`: (name, offset, datatype)), moved into the camera's optical
    frame by `transform`, as samples of the points in front of the camera."""
    by_name = {name: (offset, datatype) for name, offset, datatype in fields}
    missing = [axis for axis in 'xyz' if axis not in by_name or by_name[axis][1] not in POINT_FIELD_TYPES]
    if missing or point_step <= 0:
        raise ImageFormatError(f'point cloud has no float x, y, z fields (missing or not float: {missing}) '
                               f'or a point_step of {point_step}')
    count = height * width
    if count <= 0:
        raise ImageFormatError(f'point cloud of {width}x{height} has no points')
    row_bytes = width * point_step
    if height > 1 and row_step < row_bytes:
        raise ImageFormatError(f'point cloud row_step {row_step} is under a row of {width} points of '
                               f'{point_step} bytes')
    stride = row_step if height > 1 else row_bytes
    buf = np.frombuffer(data, np.uint8)
    need = stride * (height - 1) + row_bytes
    if buf.size < need:
        raise ImageFormatError(f'point cloud data has {buf.size} bytes, {width}x{height} points of {point_step} '
                               f'bytes need {need}')
    rows, cols = np.divmod(_spread(count, POINTS_READ), width)
    columns = []
    for axis in 'xyz':
        offset, datatype = by_name[axis]
        dtype = np.dtype(('>' if is_bigendian else '<') + POINT_FIELD_TYPES[datatype])
        if offset < 0 or offset + dtype.itemsize > point_step:
            raise ImageFormatError(f"point cloud field '{axis}' at offset {offset} does not fit a point of "
                                   f'{point_step} bytes')
        view = np.ndarray((height, width), dtype, buffer=buf, offset=offset, strides=(stride, point_step))
        columns.append(view[rows, cols].astype(np.float64))
    xyz = np.stack(columns, axis=1)
    samples = ray_samples(transform.apply(xyz) if transform is not None else xyz)
    if samples.size == 0:
        raise ImageFormatError(f'none of the {rows.size} points read of {count} lies {_SANE} in front of the '
                               'camera (an empty scan, or check reference_transform)')
    return samples


def _spread(count: int, most: int, seed: int = 0) -> np.ndarray:
    """Indices of `most` of `count` items, one at random in each of `most` equal runs (all if fewer)."""
    if count <= most:
        return np.arange(count)
    runs = np.arange(most) + np.random.default_rng(seed).random(most)
    return np.minimum((runs * (count / most)).astype(np.int64), count - 1)
