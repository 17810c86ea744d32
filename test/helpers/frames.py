"""Camera frames: the package's sample image at a size, as Frames, and NV12 model inputs."""
import cv2
import numpy as np

from depth_anything_ros.core.image_codec import Frame, bgr_to_nv12
from depth_anything_ros.core.paths import SAMPLE_IMAGE
from depth_anything_ros.engines import TensorSpec


def sample_bgr(w: int = 640, h: int = 480) -> np.ndarray:
    """The package's sample camera frame resized to w x h, BGR."""
    return cv2.resize(cv2.imread(SAMPLE_IMAGE), (w, h))


def bgr_frame(bgr) -> Frame:
    return Frame('bgr8', bgr, *bgr.shape[:2])


def nv12_frame(bgr) -> Frame:
    return Frame('nv12', bgr_to_nv12(bgr), *bgr.shape[:2])


def nv12_specs(h: int, w: int) -> list:
    """The input tensors of an NV12 model of h x w (separate Y and interleaved UV planes, NHWC)."""
    return [TensorSpec('y', (1, h, w, 1), np.dtype(np.uint8), 'NHWC'),
            TensorSpec('uv', (1, h // 2, w // 2, 2), np.dtype(np.uint8), 'NHWC')]
