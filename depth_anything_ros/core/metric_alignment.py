"""Metres from a relative model, one object per node: references in, metres out. No ROS here.

The pieces, one job each:
  reference_decoding.py  a reference message's fields -> ReferenceSamples (bounded, whatever its size)
  reference_samples.py   the samples, the pairs they give a frame, the floor, the static transform
  reference_pairing.py   the store: which reference each frame pairs with, by stamp
  metric_fit.py          the robust line 1/Z = s * d + t (inverse depth) or Z = s * d + t, and when it is refused
"""
from __future__ import annotations

import numpy as np

from .image_codec import DEFAULT_MAX_PIXELS
from .metric_fit import DepthFit, ScaleTracker, Unaligned, relative_range
from .reference_decoding import decode_depth_image, decode_point_cloud
from .reference_pairing import StampedReferences
from .reference_samples import IDENTITY, RigidTransform, floor_depth, image_samples

REFERENCE_SOURCES = ('none', 'depth_image', 'points', 'ground_plane')


class ReferenceAligner:
    """Turns each frame's relative depth into metres with the reference paired to it.

    `source`: 'depth_image' (a metric depth Image registered to the camera), 'points' (a point
    cloud, moved into the camera's optical frame by `transform`, x y z qx qy qz qw), or
    'ground_plane' (the floor below a camera at `camera_height` m, pitched down by `camera_pitch`
    rad, in the bottom `floor_rows` of the image). `inverse`: the model's output is inverse depth
    (DA-V2), else depth (DA3): the line is fitted in that space (metric_fit.py). `align` says why a
    frame stays relative when it does. ValueError for settings that cannot work.
    """

    def __init__(self, source: str, tolerance_s: float = 0.05, transform=IDENTITY,
                 camera_height: float = 0.0, camera_pitch: float = 0.0, floor_rows: float = 0.25,
                 min_support: int = 20, smoothing: float = 0.0, scene_cut: float = 0.25, max_depth: float = 0.0,
                 max_pixels: int = DEFAULT_MAX_PIXELS, inverse: bool = True):
        if source not in REFERENCE_SOURCES[1:]:
            raise ValueError(f"reference source '{source}' is not one of {list(REFERENCE_SOURCES[1:])}")
        if source == 'ground_plane' and camera_height <= 0:
            raise ValueError('ground_plane needs camera_height > 0 (metres from the floor to the camera)')
        self.source = source
        self.references = StampedReferences(tolerance_s)
        self.transform = RigidTransform.from_pose(transform)
        self.floor = (camera_height, camera_pitch, floor_rows)
        self.tracker = ScaleTracker(min_support, smoothing, scene_cut, inverse=inverse)
        self.max_depth = max_depth
        self.max_pixels = max_pixels
        self._floor_cache = (None, None)
        self._last_frame_stamp = None

    # -- references in (the executor thread) ---------------------------------------------
    def add_depth_image(self, stamp_ns: int, height, width, encoding, is_bigendian, step, data) -> bool:
        """A metric depth Image's fields; True if its stamp restarted the store; ImageFormatError
        (ValueError) if it cannot be used."""
        self.references.check_stamp(stamp_ns)
        return self.references.add(stamp_ns, decode_depth_image(height, width, encoding, is_bigendian, step, data,
                                                                self.max_pixels))

    def add_points(self, stamp_ns: int, fields, height, width, point_step, row_step, data, is_bigendian) -> bool:
        """A PointCloud2's fields (`fields`: (name, offset, datatype)); as add_depth_image."""
        self.references.check_stamp(stamp_ns)
        return self.references.add(stamp_ns, decode_point_cloud(fields, height, width, point_step, row_step, data,
                                                                is_bigendian, self.transform))

    # -- frames: announced on arrival, aligned in order ------------------------------------
    def expect(self, stamp_ns: int) -> None:
        """A frame is in flight: what it pairs with stays stored until `forget`."""
        self.references.expect(stamp_ns)

    def forget(self, stamp_ns: int) -> None:
        self.references.forget(stamp_ns)

    def align(self, stamp_ns: int, depth: np.ndarray, intrinsics: tuple | None,
              deadline: float | None = None) -> DepthFit:
        """Write metres into `depth` (relative output at frame size, NaN where unseen) and return
        the fit; or raise Unaligned with `depth` untouched. `intrinsics`: fx, fy, cx, cy for depth's
        size, if known. `deadline` (time.monotonic()): until when to wait for a late reference."""
        previous, self._last_frame_stamp = self._last_frame_stamp, stamp_ns
        samples = self._samples(stamp_ns, previous, depth.shape, intrinsics, deadline)
        if not samples.registered and intrinsics is None:
            raise Unaligned('no_camera_info', 'no usable camera_info to project the points with')
        fit = self.tracker.update(*samples.pairs(depth, intrinsics), relative_range(depth))
        fit.to_metres(depth, self.max_depth, out=depth)
        return fit

    def _samples(self, stamp_ns, previous_stamp, shape, intrinsics, deadline):
        if self.source == 'ground_plane':
            if intrinsics is None:
                raise Unaligned('no_camera_info', 'no usable camera_info to place the floor with')
            return self._floor(shape, intrinsics)
        if stamp_ns <= 0 or stamp_ns == previous_stamp:
            raise Unaligned('unusable_stamp', f'the frame\'s stamp is {"zero" if stamp_ns <= 0 else "repeated"}: '
                                              'it cannot be paired with a reference by time')
        samples = self.references.pair(stamp_ns, deadline)
        if samples is None:
            raise Unaligned('no_reference', 'no reference within reference_tolerance of the frame\'s stamp')
        return samples

    def _floor(self, shape, intrinsics):
        key, floor = self._floor_cache
        if key != (shape, tuple(intrinsics)):
            floor = image_samples(floor_depth(shape, intrinsics, *self.floor))
            self._floor_cache = ((shape, tuple(intrinsics)), floor)
        return floor
