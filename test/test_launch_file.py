"""launch/depth.launch.py's own logic: arguments, camera choice, remappings, environment, exits.

The real launch/launch_ros are not installable here (see README), so they are replaced by
minimal recorders; `ros2 launch` itself was checked by hand (README, Launch).
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


def recorder_class(name):
    return type(name, (Recorder,), {})


def fake_modules():
    launch = types.ModuleType('launch')
    launch.LaunchDescription = lambda actions: list(actions)
    actions = types.ModuleType('launch.actions')
    actions.DeclareLaunchArgument = lambda name, default_value, description: (name, default_value)
    actions.OpaqueFunction = lambda function: function
    for name in ('LogInfo', 'RegisterEventHandler', 'SetEnvironmentVariable', 'Shutdown'):
        setattr(actions, name, recorder_class(name))
    handlers = types.ModuleType('launch.event_handlers')
    handlers.OnProcessExit = recorder_class('OnProcessExit')
    substitutions = types.ModuleType('launch.substitutions')
    substitutions.LaunchConfiguration = LaunchConfiguration
    launch_ros = types.ModuleType('launch_ros')
    ros_actions = types.ModuleType('launch_ros.actions')
    ros_actions.Node = recorder_class('Node')
    return {'launch': launch, 'launch.actions': actions, 'launch.event_handlers': handlers,
            'launch.substitutions': substitutions, 'launch_ros': launch_ros, 'launch_ros.actions': ros_actions}


TROS = ('rviz2', 'hobot_usb_cam', 'mipi_cam', 'hobot_shm')


@pytest.fixture
def launched(monkeypatch):
    """(declared defaults, run(installed=..., **arguments) -> actions, the launch module)."""
    for name, module in fake_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE', 'RMW_IMPLEMENTATION'):
        monkeypatch.delenv(name, raising=False)
    import ament_index_python.packages as packages
    installed = set()

    def prefix(pkg):
        if pkg not in installed:
            raise packages.PackageNotFoundError(pkg)
        return f'/opt/tros/{pkg}'
    monkeypatch.setattr(packages, 'get_package_share_directory', lambda pkg: REPO)  # config/ of this tree
    monkeypatch.setattr(packages, 'get_package_prefix', prefix)
    spec = importlib.util.spec_from_file_location('depth_launch', os.path.join(REPO, 'launch', 'depth.launch.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = dict(a for a in description if isinstance(a, tuple))
    nodes_fn = next(a for a in description if callable(a))

    def run(installed_packages=TROS, **overrides):
        installed.clear()
        installed.update(installed_packages)
        return nodes_fn({**declared, **overrides})
    return declared, run, module


def of_type(actions, name):
    return [a for a in actions if type(a).__name__ == name]


def by_package(actions):
    return {a.kwargs['package']: a.kwargs for a in of_type(actions, 'Node')}


def environment(actions):
    return dict(a.args for a in of_type(actions, 'SetEnvironmentVariable'))


def logged(actions):
    return ' '.join(a.kwargs['msg'] for a in of_type(actions, 'LogInfo'))


def test_arguments_and_default_graph(launched):
    declared, run, _ = launched
    for name in ('model_path', 'engine', 'image_topic', 'camera_info_topic', 'params_file', 'namespace',
                 'rviz', 'camera', 'zero_copy', 'dds_profile', 'input_transport'):
        assert name in declared
    assert declared['params_file'].endswith(os.path.join('config', 'depth.yaml'))
    actions = run(model_path='/m.hbm', image_topic='/cam/image')
    nodes = by_package(actions)
    assert set(nodes) == {'depth_anything_ros'}
    depth = nodes['depth_anything_ros']
    assert depth['executable'] == 'depth_node'
    assert ('image', '/cam/image') in depth['remappings']
    assert depth['parameters'][1]['model_path'] == '/m.hbm'
    assert depth['additional_env'] == {'DEPTH_ANYTHING_ROS_LAUNCH': '1'}


def test_params_file_values_win_unless_the_argument_is_given(launched):
    _, run, _ = launched
    depth = by_package(run())['depth_anything_ros']
    assert depth['parameters'][0].endswith('depth.yaml')
    assert depth['parameters'][1] == {}, 'an argument left at its default must not override the params file'
    depth = by_package(run(model_path='/m.onnx', engine='onnxruntime'))['depth_anything_ros']
    assert depth['parameters'][1] == {'model_path': '/m.onnx', 'engine': 'onnxruntime'}


def test_image_topic_is_honoured_for_every_transport(launched):
    _, run, _ = launched
    remaps = by_package(run(image_topic='/cam/x', input_transport='compressed'))['depth_anything_ros']['remappings']
    assert {('image', '/cam/x'), ('image/compressed', '/cam/x'), ('/hbmem_img', '/cam/x')} <= set(remaps)
    depth = by_package(run(input_transport='compressed'))['depth_anything_ros']
    assert depth['parameters'][1] == {'input_transport': 'compressed'} and depth['remappings'] == []


def test_fastdds_profile_applied_only_when_the_user_has_none(launched, monkeypatch):
    _, run, _ = launched
    env = environment(run())
    assert env['FASTRTPS_DEFAULT_PROFILES_FILE'] == os.path.join(REPO, 'config', 'fastdds_local.xml')
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == env['FASTRTPS_DEFAULT_PROFILES_FILE']
    assert environment(run(dds_profile='none')) == {}
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', '/mine.xml')
    assert environment(run()) == {}, 'the user\'s own profile must stay'


@pytest.mark.parametrize('camera, package, transport, remap', [
    ('usb', 'hobot_usb_cam', 'compressed', ('image/compressed', '/image')),  # >= 2.1.0: CompressedImage
    ('mipi', 'mipi_cam', 'raw', ('image', '/image_raw'))])
def test_tros_camera_feeds_the_node(launched, camera, package, transport, remap):
    _, run, _ = launched
    nodes = by_package(run(camera=camera))
    assert package in nodes
    depth = nodes['depth_anything_ros']
    assert remap in depth['remappings'] and depth['parameters'][1]['input_transport'] == transport


def test_camera_devices(launched):
    _, run, module = launched
    assert by_package(run(camera='usb'))['hobot_usb_cam']['parameters'][0]['video_device'] == '/dev/video0'
    assert by_package(run(camera='mipi'))['mipi_cam']['parameters'][0]['video_device'] == ''  # "" probes
    assert by_package(run(camera='mipi', video_device='F37'))['mipi_cam']['parameters'][0]['video_device'] == 'F37'
    with pytest.raises(module.LaunchArgumentError, match='video_device:=/dev/video0: mipi_cam takes a sensor name'):
        run(camera='mipi', video_device='/dev/video0')


def test_missing_tros_camera_is_one_line_and_the_node_still_runs(launched):
    _, run, _ = launched
    actions = run(camera='usb', installed_packages=())
    assert set(by_package(actions)) == {'depth_anything_ros'}
    assert 'hobot_usb_cam is not installed; it is a TROS package' in logged(actions)


def test_zero_copy_uses_hobot_shm_environment(launched):
    _, run, module = launched
    actions = run(camera='mipi', zero_copy='true')
    nodes = by_package(actions)
    assert nodes['mipi_cam']['parameters'][0]['io_method'] == 'shared_mem'
    assert nodes['depth_anything_ros']['parameters'][1]['input_transport'] == 'hbmem'
    env = environment(actions)
    assert env['RMW_FASTRTPS_USE_QOS_FROM_XML'] == '1'
    assert env['FASTRTPS_DEFAULT_PROFILES_FILE'] == '/opt/tros/hobot_shm/lib/hobot_shm/config/shm_fastdds.xml'
    with pytest.raises(module.LaunchArgumentError, match="zero_copy:=true needs TROS's hobot_shm"):
        run(zero_copy='true', installed_packages=())
    with pytest.raises(module.LaunchArgumentError, match='zero_copy:=true: hobot_usb_cam shares MJPEG'):
        run(camera='usb', zero_copy='true')


def test_rviz_follows_namespace_and_remaps_and_is_optional(launched):
    _, run, _ = launched
    actions = run(rviz='true', namespace='robot1', image_topic='/cam/image')
    rviz = by_package(actions)['rviz2']
    with open(rviz['arguments'][1]) as f:
        config = f.read()
    os.remove(rviz['arguments'][1])
    for topic in ('/cam/image', '/robot1/depth', '/robot1/depth/colorized', '/robot1/depth/points'):
        assert f'Value: {topic}\n' in config
    assert 'Value: /depth\n' not in config and 'Value: /image\n' not in config
    actions = run(rviz='true', installed_packages=())
    assert set(by_package(actions)) == {'depth_anything_ros'}
    assert 'rviz2 is not installed' in logged(actions)


@pytest.mark.parametrize('argument, value, message', [
    ('camera_width', 'abc', 'camera_width:=abc: use a whole number of pixels'),
    ('camera_height', '-4', 'camera_height:=-4: use a whole number of pixels'),
    ('rviz', 'maybe', 'rviz:=maybe: use true or false'),
    ('camera', 'webcam', 'camera:=webcam: use one of none, usb, mipi'),
    ('input_transport', 'ffmpeg', 'input_transport:=ffmpeg: use one of'),
    ('params_file', '/nonexistent/depth.yaml', 'params_file:=/nonexistent/depth.yaml: no such file'),
    ('dds_profile', '/nonexistent.xml', 'dds_profile:=/nonexistent.xml: no such file'),
    ('image_topic', 'bad topic', 'image_topic:=bad topic: not a ROS name'),
    ('namespace', '1bad', 'namespace:=1bad: not a ROS name'),
])
def test_every_argument_is_validated_by_name(launched, argument, value, message):
    _, run, module = launched
    extra = {'camera': 'usb'} if argument.startswith('camera_') else {}
    with pytest.raises(module.LaunchArgumentError, match=message):
        run(**{argument: value, **extra})


def test_the_depth_node_exit_ends_the_launch_with_its_error(launched):
    _, run, module = launched
    actions = run()
    handler = of_type(actions, 'RegisterEventHandler')[0].args[0]
    assert handler.kwargs['target_action'] is of_type(actions, 'Node')[0]
    on_exit = handler.kwargs['on_exit']
    running, stopping = types.SimpleNamespace(is_shutdown=False), types.SimpleNamespace(is_shutdown=True)
    with pytest.raises(RuntimeError, match='depth node exited with code 1'):
        on_exit(types.SimpleNamespace(returncode=1), running)
    assert type(on_exit(types.SimpleNamespace(returncode=0), running)[0]).__name__ == 'Shutdown'
    assert type(on_exit(types.SimpleNamespace(returncode=-15), stopping)[0]).__name__ == 'Shutdown'


def test_engine_arguments_describe_every_registered_engine(launched):
    from depth_anything_ros.engines import ENGINE_CHOICES, ENGINES
    *_, module = launched
    model_path, engine = module.ARGUMENTS['model_path'][1], module.ARGUMENTS['engine'][1]
    assert all(ext in model_path for kind in ENGINES.values() for ext in kind.extensions), model_path
    assert all(name in engine for name in ENGINE_CHOICES), engine
