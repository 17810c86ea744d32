"""--intrinsics FX FY CX CY: a camera matrix for tools that read image files (no camera_info), so a
model that needs the focal length (DA3Metric) gives metres there too."""
from __future__ import annotations

from types import SimpleNamespace


def add_intrinsics_option(parser) -> None:
    parser.add_argument('--intrinsics', nargs=4, type=float, metavar=('FX', 'FY', 'CX', 'CY'),
                        help='the camera matrix of the images (pixels, at their size), as camera_info gives it '
                             'to the node: DA3Metric turns its canonical depth into metres with it; without it '
                             'DA3Metric gives relative depth')


def camera_of(intrinsics, frame):
    """A camera_info stand-in (k, width, height) for --intrinsics at the frame's size, or None."""
    if not intrinsics:
        return None
    fx, fy, cx, cy = intrinsics
    return SimpleNamespace(k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0], width=frame.width, height=frame.height)
