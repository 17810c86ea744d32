"""ros2 launch depth_anything_ros depth.launch.py model_path:=/path/model.hbm [camera:=usb|mipi] [rviz:=true]

`ros2 launch depth_anything_ros depth.launch.py --show-args` lists the arguments. The depth node is the
launch: when it exits, everything stops. RViz and the TROS cameras are optional extras that are skipped
with one line when their packages are missing. Arguments, conditions and substitutions are declared;
Python runs (OpaqueFunction) only where launch cannot say it: the checks that declared choices cannot
express, the Fast DDS profile (it depends on the environment and on installed packages), and the depth
node's parameter overrides (only the arguments given) and input remappings (the camera's only when it
starts). launch and launch_ros are imported only here: the package works without them.
"""
import os

from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from launch import Condition, LaunchDescription
from launch.actions import (DeclareLaunchArgument, GroupAction, LogInfo, OpaqueFunction, SetEnvironmentVariable,
                            SetLaunchConfiguration, Shutdown)
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from rclpy.validate_topic_name import validate_topic_name

from depth_anything_ros.engines import ENGINE_CHOICES, model_file_text
from depth_anything_ros.ros.environment import CHECK_FIELDS, PROFILE_VARIABLES, local_profile

PACKAGE = 'depth_anything_ros'
SHARE = get_package_share_directory(PACKAGE)
LAUNCHED_ENV = 'DEPTH_ANYTHING_ROS_LAUNCH'  # tells the node to phrase its fixes as launch arguments
INPUT_IMAGE = 'input_image'  # launch configuration set by the depth node's step: the raw image it reads
FLAG = ('true', 'false')
ARGUMENTS = {  # name: (default, choices or None, description)
    'model_path': ('', None, f'model file: {model_file_text()}; .hbm on the RDK S100 (default: the params '
                             'file\'s)'),
    'engine': ('', ('', *ENGINE_CHOICES), 'inference engine (default: the params file\'s, else auto)'),
    'params_file': (os.path.join(SHARE, 'config', 'depth.yaml'), None, 'node parameters file'),
    'input_transport': ('', ('', 'raw', 'compressed', 'hbmem'), 'what the node subscribes to: Image, '
                                                                'CompressedImage or TROS zero-copy (default: '
                                                                'the params file\'s, else raw)'),
    'image_topic': ('', None, 'topic the node reads images from, whatever input_transport '
                              '(default: image, image/compressed or /hbmem_img)'),
    'camera_info_topic': ('', None, 'camera_info topic (default: camera_info)'),
    'namespace': ('', None, 'namespace of the node, its output topics and RViz'),
    'rviz': ('false', FLAG, 'also start RViz showing the input and the depth topics'),
    'camera': ('none', ('none', 'usb', 'mipi'), 'also start a TROS camera on the RDK: usb (hobot_usb_cam '
                                                '>= 2.1.0, MJPEG as CompressedImage) or mipi (mipi_cam, NV12)'),
    'zero_copy': ('false', FLAG, 'TROS shared-memory input (hbm_img_msgs on /hbmem_img) with hobot_shm\'s '
                                 'environment; with camera:=mipi or another hbmem publisher'),
    'video_device': ('', None, 'camera:=usb: V4L2 device (default /dev/video0); camera:=mipi: sensor name '
                               '(e.g. F37, IMX219; default "" probes)'),
    'camera_width': ('640', None, 'camera image width'),
    'camera_height': ('480', None, 'camera image height'),
    'dds_profile': ('auto', None, 'Fast DDS profile for every process: auto = yours if '
                                  'FASTRTPS_DEFAULT_PROFILES_FILE is set, else hobot_shm\'s with zero_copy, else '
                                  'config/fastdds_local.xml (this host only: shared memory + loopback); none; or '
                                  'a path'),
}
# camera:=... -> (package, the depth node's input from it: input_transport, (its topic, the camera's topic))
CAMERAS = {'usb': ('hobot_usb_cam', 'compressed', ('image/compressed', '/image')),
           'mipi': ('mipi_cam', 'raw', ('image', '/image_raw'))}


class LaunchArgumentError(RuntimeError):
    """A launch argument that cannot work; the message names it (ros2 launch prints it and exits 1)."""


def installed(package: str) -> bool:
    try:
        get_package_prefix(package)
        return True
    except PackageNotFoundError:
        return False


def when_installed(package: str, present: bool = True) -> Condition:
    """True when `package` is in the ament index (present=False: when it is not)."""
    return Condition(predicate=lambda _context: installed(package) == present)


def argument_is(name: str, value: str) -> IfCondition:
    """`name:=value`; for arguments whose choices are declared, so the expression only sees those words."""
    return IfCondition(PythonExpression(["'", LaunchConfiguration(name), f"' == '{value}'"]))


def optional_node(condition: Condition, skipped: str, package: str, **node) -> GroupAction:
    """A node started when `condition` holds and its package is installed; one line (`skipped`) when missing."""
    return GroupAction(condition=condition, actions=[
        Node(package=package, output='screen', condition=when_installed(package), **node),
        LogInfo(msg=skipped, condition=when_installed(package, False))])


def check_arguments(context):
    """What the declared choices cannot say: numbers, files, topic names, and combinations of arguments
    (launch_ros checks the namespace itself)."""
    def arg(name):
        return LaunchConfiguration(name).perform(context)
    for name in ('image_topic', 'camera_info_topic'):
        try:
            validate_topic_name(arg(name) or 'unset')
        except Exception as exc:  # rclpy's InvalidTopicNameException: its first line says what is wrong
            raise LaunchArgumentError(f'{name}:={arg(name)}: {str(exc).splitlines()[0].rstrip(":")}') from None
    for name in ('camera_width', 'camera_height'):
        if not arg(name).isdigit() or int(arg(name)) <= 0:
            raise LaunchArgumentError(f'{name}:={arg(name)}: use a whole number of pixels, e.g. {name}:=640')
    if not os.path.isfile(arg('params_file')):
        raise LaunchArgumentError(f'params_file:={arg("params_file")}: no such file')
    if arg('camera') == 'usb' and arg('zero_copy') == 'true':
        raise LaunchArgumentError('zero_copy:=true: hobot_usb_cam shares MJPEG, which the node cannot take from '
                                  'shared memory; use camera:=mipi, or zero_copy:=false with camera:=usb')
    if arg('camera') == 'mipi' and arg('video_device').startswith('/dev/'):
        raise LaunchArgumentError(f'video_device:={arg("video_device")}: mipi_cam takes a sensor name (e.g. F37, '
                                  'IMX219), or "" to probe, not a device path')
    if arg('zero_copy') == 'true' and not installed('hobot_shm'):
        raise LaunchArgumentError('zero_copy:=true needs TROS\'s hobot_shm (its shared-memory profile): '
                                  'source /opt/tros/humble/setup.bash, or zero_copy:=false')
    return []


def dds_profile(context):
    """Computed: the profile file, by dds_profile, zero_copy and the environment (the user's stays)."""
    profile = LaunchConfiguration('dds_profile').perform(context)
    zero_copy = LaunchConfiguration('zero_copy').perform(context) == 'true'
    if profile == 'none' or (profile == 'auto' and any(context.environment.get(v) for v in PROFILE_VARIABLES)):
        return []
    if profile == 'auto':
        profile = (os.path.join(get_package_prefix('hobot_shm'), 'lib', 'hobot_shm', 'config', 'shm_fastdds.xml')
                   if zero_copy else local_profile())
    elif not os.path.isfile(profile):
        raise LaunchArgumentError(f'dds_profile:={profile}: no such file; use auto, none or a Fast DDS XML file')
    return [SetEnvironmentVariable(v, profile) for v in PROFILE_VARIABLES]


def depth_node(context):
    """Computed: the parameters given here (an empty argument keeps the params file's value) and the
    input remappings, which follow the camera only when it starts."""
    def arg(name):
        return LaunchConfiguration(name).perform(context)
    camera = arg('camera')
    overrides, remaps = {}, []
    if camera in CAMERAS and installed(CAMERAS[camera][0]) and arg('zero_copy') == 'false':
        _, transport, remap = CAMERAS[camera]
        overrides, remaps = {'input_transport': transport}, [remap]
    overrides.update({k: arg(k) for k in ('model_path', 'engine', 'input_transport') if arg(k)})
    if arg('zero_copy') == 'true':
        overrides['input_transport'] = 'hbmem'
    if arg('image_topic'):  # the node reads one of these, by input_transport
        remaps = [(name, arg('image_topic')) for name in ('image', 'image/compressed', '/hbmem_img')]
    if arg('camera_info_topic'):
        remaps.append(('camera_info', arg('camera_info_topic')))
    return [Node(package=PACKAGE, executable='depth_node', name='depth_anything', namespace=arg('namespace'),
                 output='screen', parameters=[arg('params_file'), overrides], remappings=remaps,
                 additional_env={LAUNCHED_ENV: '1', **CHECK_FIELDS},
                 on_exit=Shutdown(reason='the depth node exited')),
            SetLaunchConfiguration(INPUT_IMAGE, dict(remaps).get('image', 'image'))]


def cameras() -> list:
    width, height = LaunchConfiguration('camera_width'), LaunchConfiguration('camera_height')
    device = LaunchConfiguration('video_device')

    def skipped(kind, package):
        return (f'camera:={kind}: {package} is not installed; it is a TROS package (D-Robotics RDK, source '
                '/opt/tros/humble/setup.bash): starting without a camera')
    # hobot_usb_cam >= 2.1.0 publishes MJPEG as sensor_msgs/CompressedImage on /image; the node decodes it
    usb = optional_node(argument_is('camera', 'usb'), skipped('usb', 'hobot_usb_cam'), 'hobot_usb_cam',
                        executable='hobot_usb_cam', name='usb_cam', parameters=[{
                            'image_width': width, 'image_height': height, 'pixel_format': 'mjpeg',
                            'video_device': ParameterValue(  # a device path holds no quotes
                                PythonExpression(['"', device, '" or "/dev/video0"']), value_type=str),
                            'frame_id': 'camera_optical_frame', 'zero_copy': False}])
    io_method = PythonExpression(["'shared_mem' if '", LaunchConfiguration('zero_copy'), "' == 'true' else 'ros'"])
    mipi = optional_node(argument_is('camera', 'mipi'), skipped('mipi', 'mipi_cam'), 'mipi_cam',
                         executable='mipi_cam', name='mipi_cam', parameters=[{
                             'image_width': width, 'image_height': height, 'out_format': 'nv12',
                             'video_device': ParameterValue(device, value_type=str), 'io_method': io_method}])
    return [usb, mipi]


def rviz() -> GroupAction:
    """RViz in the node's namespace: config/depth.rviz names its topics relatively (depth, image, ...),
    so they resolve as the node's do, and the input display gets the node's input remapping."""
    return optional_node(IfCondition(LaunchConfiguration('rviz')), 'rviz:=true: rviz2 is not installed (apt '
                         'install ros-$ROS_DISTRO-rviz2): starting without RViz', 'rviz2', executable='rviz2',
                         namespace=LaunchConfiguration('namespace'),
                         arguments=['-d', os.path.join(SHARE, 'config', 'depth.rviz')],
                         remappings=[('image', LaunchConfiguration(INPUT_IMAGE))])


def generate_launch_description():
    zero_copy = IfCondition(LaunchConfiguration('zero_copy'))
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, choices=choices, description=text)
          for name, (default, choices, text) in ARGUMENTS.items()),
        OpaqueFunction(function=check_arguments),
        # zero_copy: the environment TROS's hobot_shm launch sets
        SetEnvironmentVariable('RMW_FASTRTPS_USE_QOS_FROM_XML', '1', condition=zero_copy),
        SetEnvironmentVariable('RMW_IMPLEMENTATION', EnvironmentVariable('RMW_IMPLEMENTATION',
                                                                         default_value='rmw_fastrtps_cpp'),
                               condition=zero_copy),
        OpaqueFunction(function=dds_profile),
        *cameras(),
        OpaqueFunction(function=depth_node),
        rviz(),
    ])
