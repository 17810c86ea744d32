"""Image and video files in, output folders out: what the offline tools (compare, infer, eval, ...) share.

Errors are `errors.CliError` (one line, exit code 2): these helpers exist for the
command-line tools; the node never calls them.
"""
from __future__ import annotations

import os

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg')


def expand_images(paths) -> list:
    """Files as given, directories as their image files (sorted); missing paths are errors."""
    return expand_inputs(paths, videos=False)[0]


def expand_inputs(paths, videos: bool = True) -> tuple:
    """(image files, video files): files by extension, directories as their images (sorted).

    With videos=False every file is taken as an image (the caller reads it as one).
    """
    from .errors import CliError
    images, found_videos = [], []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path)
                           if n.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise CliError(f"directory '{path}' holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            images += found
        elif os.path.isfile(path):
            (found_videos if videos and path.lower().endswith(VIDEO_EXTENSIONS) else images).append(path)
        else:
            raise CliError(f"image '{path}' does not exist")
    return images, found_videos


def read_frame(path: str):
    """An image file as a bgr8 Frame, the node's input type."""
    import cv2

    from .errors import CliError
    from ..core.image_codec import Frame
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise CliError(f"cannot read image '{path}'")
    return Frame('bgr8', bgr, bgr.shape[0], bgr.shape[1])


def prepare_out_dir(path: str, option: str = '--out') -> str:
    """Create `path` if needed and prove it is writable before any work is done."""
    import tempfile

    from .errors import CliError
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise CliError(f"{option} '{path}' is not a writable directory: {exc.strerror or exc}") from exc
    return path


def progress(iterable, total=None, desc=None, unit='it'):
    """A tqdm bar on stderr, shown only on a terminal (logs stay clean); plain iteration without tqdm."""
    import sys
    try:
        from tqdm import tqdm
    except ImportError:  # not a dependency of the node itself
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=None,
                dynamic_ncols=True)
