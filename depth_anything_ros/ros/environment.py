"""The environment of this package's ROS processes on one host: the demo graph, bench's runs, the tests.

- A Fast DDS profile: the user's when one is set, else config/fastdds_local.xml (shared memory with a
  64 MB segment and loopback UDP: without it most large images between processes are lost here).
- ROS_PYTHON_CHECK_FIELDS=1: Jazzy's generated messages then check every field's type on assignment,
  as Humble's (the board's) always do, so a wrong type fails here as it would there.
- A DDS domain: the one asked for, else the user's, else a random one.
The launch file chooses the profile by its `dds_profile` argument, with the same variables.
"""
from __future__ import annotations

import os
import random

from ..core.paths import share_path

PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')  # Humble/Jazzy, Kilted
CHECK_FIELDS = {'ROS_PYTHON_CHECK_FIELDS': '1'}


def local_profile() -> str:
    return share_path('config', 'fastdds_local.xml')


def ros_environment(domain_id: int | None = None, base: dict | None = None) -> dict:
    """`base` (default: this process's environment) with the above set, for a child process."""
    env = dict(os.environ if base is None else base)
    if not any(env.get(name) for name in PROFILE_VARIABLES):
        env.update({name: local_profile() for name in PROFILE_VARIABLES})
    env.update(CHECK_FIELDS)
    env['ROS_DOMAIN_ID'] = str(domain_id) if domain_id is not None else (
        env.get('ROS_DOMAIN_ID') or str(random.randint(1, 101)))
    env['PYTHONUNBUFFERED'] = '1'
    return env


def use_ros_environment(domain_id: int | None = None) -> dict:
    """The same for this process: call it before its first ROS message import (generated messages read
    ROS_PYTHON_CHECK_FIELDS when imported) and its first participant (Fast DDS reads the profile then)."""
    env = ros_environment(domain_id)
    os.environ.update(env)
    return env
