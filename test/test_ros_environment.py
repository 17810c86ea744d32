"""ros/environment.py (the one ROS environment of the package's processes and tests) and ros/messages.py
(the one way to fill an Image): Humble's field checks are on here, so a wrong field type fails here."""
import subprocess
import sys

import numpy as np
import pytest

from depth_anything_ros.core.image_codec import encode_bgr
from depth_anything_ros.ros.environment import PROFILE_VARIABLES, local_profile, ros_environment
from depth_anything_ros.ros.messages import header_at, image_message
from depth_anything_ros.ros.process_graph import RosGraph


def test_local_profile_unless_the_user_has_one():
    env = ros_environment(7, base={})
    assert all(env[name] == local_profile() for name in PROFILE_VARIABLES)
    assert local_profile().endswith('fastdds_local.xml')
    for name in PROFILE_VARIABLES:
        env = ros_environment(7, base={name: '/mine.xml'})
        assert env[name] == '/mine.xml' and all(env.get(other) in (None, '/mine.xml') for other in PROFILE_VARIABLES)


def test_field_checks_and_domain():
    env = ros_environment(7, base={'ROS_PYTHON_CHECK_FIELDS': '0', 'ROS_DOMAIN_ID': '3'})
    assert env['ROS_PYTHON_CHECK_FIELDS'] == '1' and env['ROS_DOMAIN_ID'] == '7'
    assert ros_environment(base={'ROS_DOMAIN_ID': '3'})['ROS_DOMAIN_ID'] == '3'
    assert 1 <= int(ros_environment(base={})['ROS_DOMAIN_ID']) <= 101


def test_processes_of_a_graph_get_it():
    code = ('import os; print(os.environ["ROS_PYTHON_CHECK_FIELDS"], os.environ["ROS_DOMAIN_ID"], '
            'os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"])')
    done = subprocess.run([sys.executable, '-c', code], env=RosGraph(9).env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    check, domain, profile = done.stdout.split()
    assert (check, domain) == ('1', '9') and profile.endswith('.xml')


def test_messages_check_their_fields_in_the_tests():
    """conftest applies the environment before any message import: a wrong type raises, as on Humble."""
    header = header_at(1_500_000_123, 'camera')
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (1, 500_000_123, 'camera')
    fields = encode_bgr(np.zeros((4, 6, 3), np.uint8), 'bgr8')
    msg = image_message(header, fields)
    assert (msg.height, msg.width, msg.encoding, msg.step, len(msg.data)) == (4, 6, 'bgr8', 18, 72)
    assert msg._check_fields
    with pytest.raises(AssertionError, match="'height' field must be of type 'int'"):
        image_message(header, {**fields, 'height': np.int64(4)})
