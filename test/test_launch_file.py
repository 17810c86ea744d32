"""launch/depth.launch.py by what it starts: for given arguments, which nodes, with which parameters,
remappings and environment, what it logs, and which arguments it refuses.

It runs on test/launch_standin.py, a stand-in for launch and launch_ros that keeps their semantics
(neither is installable here); the same cases were run by hand with the real `ros2 launch` built
from the Jazzy sources, and the file under Humble's launch and launch_ros (docs/launch.md).
"""
import importlib.util
import os
import sys

import pytest

from helpers import launch_standin

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TROS = ('rviz2', 'hobot_usb_cam', 'mipi_cam', 'hobot_shm')
PROFILE = os.path.join(REPO, 'config', 'fastdds_local.xml')
SHM_PROFILE = '/opt/tros/hobot_shm/lib/hobot_shm/config/shm_fastdds.xml'


class Launched:
    def __init__(self, context):
        self.started = {node.package: node for node in context.started}
        self.log = ' '.join(context.log)
        self.env = context.environment
        assert len(self.started) == len(context.started), 'two nodes of one package'

    @property
    def depth(self):
        return self.started['depth_anything_ros']

    def overrides(self, package='depth_anything_ros') -> dict:
        """The parameters given beside the params file (a dict after the file, in launch_ros's order)."""
        return {k: v for item in self.started[package].parameters if isinstance(item, dict) for k, v in item.items()}


@pytest.fixture
def installed():
    """The packages the ament index finds, beside this one."""
    return set(TROS)


@pytest.fixture
def launch_file(monkeypatch, installed):
    """The launch file's module, loaded on the stand-in, with this tree as its share directory."""
    for name, module in launch_standin.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    import ament_index_python.packages as packages

    def prefix(package):
        if package not in installed:
            raise packages.PackageNotFoundError(package)
        return f'/opt/tros/{package}'
    monkeypatch.setattr(packages, 'get_package_share_directory', lambda package: REPO)
    monkeypatch.setattr(packages, 'get_package_prefix', prefix)
    spec = importlib.util.spec_from_file_location('depth_launch', os.path.join(REPO, 'launch', 'depth.launch.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def launch(launch_file, installed):
    """launch(packages=..., env=..., **arguments) -> Launched: `ros2 launch ... name:=value ...`."""
    def run(packages=TROS, env=None, **arguments):
        installed.clear()
        installed.update(packages)
        return Launched(launch_standin.run(launch_file.generate_launch_description(), arguments, env or {}))
    return run


def declared(launch_file) -> dict:
    return {a.name: a for a in launch_file.generate_launch_description().entities
            if isinstance(a, launch_standin.DeclareLaunchArgument)}


def test_default_launch_is_the_depth_node_on_the_params_file(launch, launch_file):
    launched = launch()
    assert set(launched.started) == {'depth_anything_ros'}
    depth = launched.depth
    assert (depth.executable, depth.name, depth.namespace) == ('depth_node', 'depth_anything', '')
    assert depth.parameters == [os.path.join(REPO, 'config', 'depth.yaml'), {}], \
        'an argument left at its default must not override the params file'
    assert depth.remappings == []
    assert isinstance(depth.on_exit, launch_standin.Shutdown), 'the depth node exiting ends the launch'
    assert {'model_path', 'engine', 'image_topic', 'camera_info_topic', 'params_file', 'namespace', 'rviz',
            'camera', 'zero_copy', 'video_device', 'camera_width', 'camera_height', 'dds_profile',
            'input_transport'} == set(declared(launch_file))


def test_node_environment(launch):
    """The node learns it was launched (its fixes then read as launch arguments) and, like every
    process of the package, gets Humble's message field checks under Jazzy too."""
    env = launch().depth.env
    assert env['DEPTH_ANYTHING_ROS_LAUNCH'] == '1' and env['ROS_PYTHON_CHECK_FIELDS'] == '1'


def test_given_arguments_override_the_params_file(launch):
    launched = launch(model_path='/m.onnx', engine='onnxruntime', input_transport='compressed')
    assert launched.overrides() == {'model_path': '/m.onnx', 'engine': 'onnxruntime', 'input_transport': 'compressed'}
    assert launch(params_file=PROFILE).depth.parameters[0] == PROFILE  # any existing file


def test_image_topic_is_honoured_for_every_transport(launch):
    depth = launch(image_topic='/cam/x', input_transport='compressed', camera_info_topic='/cam/info').depth
    assert set(depth.remappings) == {('image', '/cam/x'), ('image/compressed', '/cam/x'), ('/hbmem_img', '/cam/x'),
                                     ('camera_info', '/cam/info')}


def test_namespace_applies_to_the_node_and_rviz(launch):
    launched = launch(namespace='robot1', rviz='true')
    assert launched.depth.namespace == 'robot1' and launched.started['rviz2'].namespace == 'robot1'


@pytest.mark.parametrize('env, dds_profile, expected', [
    ({}, 'auto', PROFILE),                                   # ours: large images arrive between processes
    ({}, 'none', None),
    ({}, PROFILE, PROFILE),                                  # a file of the user's
    ({'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'}, 'auto', '/mine.xml'),  # never replaced
])
def test_fastdds_profile(launch, env, dds_profile, expected):
    launched = launch(env=env, dds_profile=dds_profile)
    for process in [launched.depth.env, launched.env]:
        assert process.get('FASTRTPS_DEFAULT_PROFILES_FILE') == expected
        if not env:
            assert process.get('FASTDDS_DEFAULT_PROFILES_FILE') == expected  # Kilted's name


@pytest.mark.parametrize('camera, package, transport, remap', [
    ('usb', 'hobot_usb_cam', 'compressed', ('image/compressed', '/image')),  # >= 2.1.0: CompressedImage
    ('mipi', 'mipi_cam', 'raw', ('image', '/image_raw'))])
def test_tros_camera_feeds_the_node(launch, camera, package, transport, remap):
    launched = launch(camera=camera, camera_width='1280', camera_height='720')
    assert set(launched.started) == {package, 'depth_anything_ros'}
    assert launched.depth.remappings == [remap] and launched.overrides() == {'input_transport': transport}
    settings = launched.overrides(package)
    assert (settings['image_width'], settings['image_height']) == (1280, 720)  # typed, as the camera declares them
    # what the user gives still wins
    launched = launch(camera=camera, image_topic='/other', input_transport='raw')
    assert ('image', '/other') in launched.depth.remappings and launched.overrides() == {'input_transport': 'raw'}


def test_camera_settings(launch):
    usb = launch(camera='usb').overrides('hobot_usb_cam')
    assert usb['video_device'] == '/dev/video0' and usb['pixel_format'] == 'mjpeg' and usb['zero_copy'] is False
    assert launch(camera='usb', video_device='/dev/video2').overrides('hobot_usb_cam')['video_device'] == '/dev/video2'
    mipi = launch(camera='mipi').overrides('mipi_cam')
    assert mipi['video_device'] == '' and mipi['out_format'] == 'nv12' and mipi['io_method'] == 'ros'  # "" probes
    assert launch(camera='mipi', video_device='F37').overrides('mipi_cam')['video_device'] == 'F37'


@pytest.mark.parametrize('camera, package', [('usb', 'hobot_usb_cam'), ('mipi', 'mipi_cam')])
def test_missing_camera_is_one_line_and_the_node_keeps_its_input(launch, camera, package):
    """Without the camera package the camera does not start, so the node reads what the user configured."""
    launched = launch(camera=camera, packages=())
    assert set(launched.started) == {'depth_anything_ros'}
    assert f'camera:={camera}: {package} is not installed; it is a TROS package' in launched.log
    assert launched.depth.remappings == [] and launched.overrides() == {}
    launched = launch(camera=camera, packages=(), input_transport='compressed', image_topic='/cam/jpeg')
    assert launched.overrides() == {'input_transport': 'compressed'}
    assert ('image/compressed', '/cam/jpeg') in launched.depth.remappings


def test_zero_copy_uses_hobot_shm_environment(launch):
    launched = launch(camera='mipi', zero_copy='true')
    assert launched.overrides('mipi_cam')['io_method'] == 'shared_mem'
    assert launched.overrides() == {'input_transport': 'hbmem'} and launched.depth.remappings == []
    for env in (launched.depth.env, launched.started['mipi_cam'].env):
        assert env['RMW_FASTRTPS_USE_QOS_FROM_XML'] == '1' and env['RMW_IMPLEMENTATION'] == 'rmw_fastrtps_cpp'
        assert env['FASTRTPS_DEFAULT_PROFILES_FILE'] == SHM_PROFILE
    assert launch(zero_copy='true', env={'RMW_IMPLEMENTATION': 'x'}).depth.env['RMW_IMPLEMENTATION'] == 'x'
    assert 'RMW_FASTRTPS_USE_QOS_FROM_XML' not in launch().depth.env


def test_rviz_follows_the_node_topics(launch):
    launched = launch(rviz='true', namespace='robot1', image_topic='/cam/image')
    rviz = launched.started['rviz2']
    assert rviz.arguments == ['-d', os.path.join(REPO, 'config', 'depth.rviz')]
    assert rviz.namespace == 'robot1' and rviz.remappings == [('image', '/cam/image')]
    assert launch(rviz='true', camera='mipi').started['rviz2'].remappings == [('image', '/image_raw')]
    assert launch(rviz='true').started['rviz2'].remappings == [('image', 'image')]
    # its displays name the node's topics relatively: namespace and remappings resolve them as the node's
    with open(os.path.join(REPO, 'config', 'depth.rviz')) as f:
        topics = [line.split('Value:')[1].strip() for line in f if line.strip().startswith('Value:')
                  and line.startswith(' ' * 8)]
    assert sorted(topics) == ['depth', 'depth/colorized', 'depth/points', 'image']


def test_missing_rviz_is_one_line(launch):
    launched = launch(rviz='true', packages=())
    assert set(launched.started) == {'depth_anything_ros'} and 'rviz2 is not installed' in launched.log
    assert 'rviz2' not in launch(rviz='false').started


@pytest.mark.parametrize('arguments, message', [
    ({'camera_width': 'abc', 'camera': 'usb'}, 'camera_width:=abc: use a whole number of pixels'),
    ({'camera_height': '-4'}, 'camera_height:=-4: use a whole number of pixels'),
    ({'rviz': 'maybe'}, 'Argument "rviz" provided value "maybe" is not valid'),
    ({'camera': 'webcam'}, 'Argument "camera" provided value "webcam" is not valid'),
    ({'zero_copy': 'yes'}, 'Argument "zero_copy" provided value "yes" is not valid'),
    ({'engine': 'tensorrt'}, 'Argument "engine" provided value "tensorrt" is not valid'),
    ({'input_transport': 'ffmpeg'}, 'Argument "input_transport" provided value "ffmpeg" is not valid'),
    ({'params_file': '/nonexistent/depth.yaml'}, 'params_file:=/nonexistent/depth.yaml: no such file'),
    ({'dds_profile': '/nonexistent.xml'}, 'dds_profile:=/nonexistent.xml: no such file'),
    ({'image_topic': 'bad topic'}, 'image_topic:=bad topic: Invalid topic name'),
    ({'camera_info_topic': '1bad'}, 'camera_info_topic:=1bad: Invalid topic name'),
    ({'camera': 'mipi', 'video_device': '/dev/video0'}, 'video_device:=/dev/video0: mipi_cam takes a sensor name'),
    ({'camera': 'usb', 'zero_copy': 'true'}, 'zero_copy:=true: hobot_usb_cam shares MJPEG'),
])
def test_bad_arguments_stop_the_launch_before_anything_starts(launch, arguments, message):
    with pytest.raises(RuntimeError, match=message):
        launch(**arguments)


def test_zero_copy_without_hobot_shm_says_what_to_do(launch):
    with pytest.raises(RuntimeError, match="zero_copy:=true needs TROS's hobot_shm"):
        launch(zero_copy='true', packages=('mipi_cam',))


def test_engine_arguments_describe_every_registered_engine(launch_file):
    from depth_anything_ros.engines import ENGINE_CHOICES, ENGINES
    arguments = declared(launch_file)
    assert all(ext in arguments['model_path'].description for kind in ENGINES.values() for ext in kind.extensions)
    assert tuple(arguments['engine'].choices) == ('', *ENGINE_CHOICES)
