"""camera: a sample camera publishing `image` and `camera_info` (the demo's input)."""
from __future__ import annotations

HELP = 'publish a sample camera stream (built-in robot-camera image panned, an image, or a video)'


def add_arguments(parser):
    parser.add_argument('--image', help='image file (default: the built-in robot camera frame)')
    parser.add_argument('--video', help='video file, looped (instead of --image)')
    parser.add_argument('--rate', type=float, default=10.0, help='frames per second (default 10)')
    parser.add_argument('--camera-size', default='640x480', metavar='WxH', help='published WxH (default 640x480)')
    parser.add_argument('--encoding', default='bgr8', choices=['bgr8', 'rgb8', 'mono8', 'nv12'])
    parser.add_argument('--frames', type=int, default=0, help='stop after N frames (0: run until Ctrl-C)')
    parser.add_argument('--frame-id', default='camera_optical_frame')


def frame_source(args):
    """An endless iterator of bgr8 frames of the requested size."""
    import cv2
    from ..core.paths import SAMPLE_IMAGE
    from ..tool_support.errors import CliError
    from ..tool_support.sizes import camera_size
    w, h = camera_size(args.camera_size)
    if args.video:
        return _video_frames(args.video, (w, h))
    path = args.image or SAMPLE_IMAGE
    image = cv2.imread(path)
    if image is None:
        raise CliError(f"cannot read image '{path}'")
    return _panned_frames(image, (w, h))


def _panned_frames(image, size):
    """A window sweeping back and forth across the image, so that frames change."""
    import cv2
    w, h = size
    ih, iw = image.shape[:2]
    crop_w, crop_h = min(iw, int(ih * w / h)), min(ih, int(iw * h / w))
    span, i = iw - crop_w, 0
    while True:
        x = abs((i * 8) % (2 * span) - span) if span else 0
        yield cv2.resize(image[(ih - crop_h) // 2:(ih + crop_h) // 2, x:x + crop_w], (w, h),
                         interpolation=cv2.INTER_AREA)
        i += 1


def _video_frames(path, size):
    import cv2
    from ..tool_support.errors import CliError
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise CliError(f"cannot open video '{path}'")
    while True:
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
            if not ok:
                raise CliError(f"video '{path}' has no readable frames")
        yield cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def run(args) -> int:
    frames = frame_source(args)
    from ..ros.demo_nodes import CameraNode
    from ..ros.ros_main import run_node
    return run_node(lambda: CameraNode(frames, args.rate, args.encoding, args.frames, args.frame_id))
