"""What to install when a module the node or a tool needs is missing: one line per route.

Imports nothing beyond the standard library: it must work where numpy or OpenCV does not.
On the RDK S100 (and any ROS install) numpy and OpenCV come from apt, built for the ROS
Python; pip's wheels would replace them (numpy 2 breaks Humble's messages).
"""
from __future__ import annotations

PC = "on a PC without ROS: pip install '.[pc]'"
HINTS = {
    'cv2': 'OpenCV for Python (cv2) is not installed: on the RDK S100 or another ROS install '
           '`sudo apt-get install python3-opencv` (not pip\'s opencv-python there); ' + PC,
    'numpy': 'numpy is not installed: on the RDK S100 or another ROS install `sudo apt-get install '
             'python3-numpy` (never numpy 2 from pip there: Humble\'s messages are built for numpy 1.x); ' + PC,
    'yaml': 'PyYAML is not installed: `sudo apt-get install python3-yaml` on a ROS install, `pip install pyyaml` '
            'elsewhere',
    'depth_anything_ros.core._kernels':
        'the package\'s compiled kernels are not built: install it with `pip install .` or `colcon build` (they need '
        '`sudo apt-get install build-essential python3-dev`), or in a source tree run '
        '`python3 setup.py build_ext --inplace`',
}


class MissingDependency(RuntimeError):
    """A module this route needs is not installed; the message (one line) says what to install."""


def missing_dependency(exc: BaseException) -> MissingDependency | None:
    """The install step for an ImportError of a module we know, else None (a real bug)."""
    if isinstance(exc, MissingDependency):
        return exc
    name = (getattr(exc, 'name', None) if isinstance(exc, ImportError) else None) or ''
    hint = HINTS.get(name) or HINTS.get(name.split('.')[0])
    return MissingDependency(hint) if hint else None
