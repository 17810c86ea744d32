"""launch/depth.launch.py's own logic: arguments, camera choice, remappings.

The real launch/launch_ros are not installable here (see README), so they are
replaced by minimal recorders; `ros2 launch` itself runs only on a ROS install.
"""
import importlib.util
import os
import sys
import types

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


def fake_modules():
    launch = types.ModuleType('launch')
    launch.LaunchDescription = lambda actions: list(actions)
    actions = types.ModuleType('launch.actions')
    actions.DeclareLaunchArgument = lambda name, default_value, description: (name, default_value)
    actions.OpaqueFunction = lambda function: function
    substitutions = types.ModuleType('launch.substitutions')
    substitutions.LaunchConfiguration = LaunchConfiguration
    launch_ros = types.ModuleType('launch_ros')
    ros_actions = types.ModuleType('launch_ros.actions')
    ros_actions.Node = Recorder
    return {'launch': launch, 'launch.actions': actions, 'launch.substitutions': substitutions,
            'launch_ros': launch_ros, 'launch_ros.actions': ros_actions}


@pytest.fixture
def launched(monkeypatch):
    for name, module in fake_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv('AMENT_PREFIX_PATH', REPO)  # any prefix: only the share path string is used
    import ament_index_python.packages as packages
    monkeypatch.setattr(packages, 'get_package_share_directory', lambda pkg: os.path.join(REPO, 'share', pkg))
    spec = importlib.util.spec_from_file_location('depth_launch', os.path.join(REPO, 'launch', 'depth.launch.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = dict(a for a in description if isinstance(a, tuple))
    nodes_fn = next(a for a in description if callable(a))

    def run(**overrides):
        return nodes_fn({**declared, **overrides})
    return declared, run


def by_package(actions):
    return {a.kwargs['package']: a.kwargs for a in actions}


def test_arguments_and_default_graph(launched):
    declared, run = launched
    for name in ('model_path', 'engine', 'image_topic', 'camera_info_topic', 'params_file', 'namespace',
                 'rviz', 'camera'):
        assert name in declared
    assert declared['params_file'].endswith(os.path.join('config', 'depth.yaml'))
    nodes = by_package(run(model_path='/m.hbm', image_topic='/cam/image'))
    assert set(nodes) == {'depth_anything_ros'}
    depth = nodes['depth_anything_ros']
    assert depth['executable'] == 'depth_node'
    assert ('image', '/cam/image') in depth['remappings']
    assert depth['parameters'][1]['model_path'] == '/m.hbm'


@pytest.mark.parametrize('camera, package, topic', [('usb', 'hobot_codec', '/image_nv12'),
                                                    ('mipi', 'mipi_cam', '/image_raw')])
def test_tros_camera_option_feeds_the_node_nv12(launched, camera, package, topic):
    _, run = launched
    nodes = by_package(run(camera=camera))
    assert package in nodes
    assert ('image', topic) in nodes['depth_anything_ros']['remappings']


def test_rviz_option_and_bad_camera(launched):
    _, run = launched
    assert 'rviz2' in by_package(run(rviz='true'))
    assert 'rviz2' not in by_package(run())
    with pytest.raises(RuntimeError, match='camera:=webcam'):
        run(camera='webcam')
