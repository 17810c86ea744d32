"""Where the package's shared files (config/, models/, launch/) and caches are."""
from __future__ import annotations

import os
import sys

PACKAGE = 'depth_anything_ros'
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(_PACKAGE_DIR, 'samples')  # installed with the package (package_data)
SAMPLE_IMAGE = os.path.join(SAMPLE_DIR, 'robot_camera.jpg')


def share_dir() -> str:
    """share/depth_anything_ros of the ament index (colcon), of this Python prefix
    (`pip install .`), or else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(PACKAGE)
    except (ImportError, LookupError, OSError):  # not installed, not indexed, AMENT_PREFIX_PATH unset
        pass
    installed = os.path.join(sys.prefix, 'share', PACKAGE)
    if os.path.isdir(installed):
        return installed
    return os.path.dirname(_PACKAGE_DIR)


def share_path(*parts) -> str:
    return os.path.join(share_dir(), *parts)


def cache_dir() -> str:
    root = os.environ.get('XDG_CACHE_HOME', os.path.join(os.path.expanduser('~'), '.cache'))
    path = os.path.join(root, PACKAGE)
    os.makedirs(path, exist_ok=True)
    return path
