"""ros2 launch depth_anything_ros depth.launch.py model_path:=/path/model.hbm [camera:=usb|mipi] [rviz:=true]

`ros2 launch depth_anything_ros depth.launch.py --show-args` lists the arguments. The depth node is the
launch: when it exits, everything stops (with its error when it failed); RViz and the TROS cameras are
optional extras that are skipped with one line when their packages are missing.
launch and launch_ros are imported only here: the package works without them.
"""
import os
import re
import tempfile

from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, LogInfo, OpaqueFunction, RegisterEventHandler,
                            SetEnvironmentVariable, Shutdown)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from depth_anything_ros.engines import ENGINE_CHOICES, model_file_text

PACKAGE = 'depth_anything_ros'
SHARE = get_package_share_directory(PACKAGE)
LAUNCHED_ENV = 'DEPTH_ANYTHING_ROS_LAUNCH'  # tells the node to phrase its fixes as launch arguments
PROFILE_ENVS = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')  # Humble/Jazzy, Kilted
ARGUMENTS = {
    'model_path': ('', f'model file: {model_file_text()}; .hbm on the RDK S100 (default: the params file\'s)'),
    'engine': ('', f'{", ".join(ENGINE_CHOICES)} (default: the params file\'s, else auto)'),
    'params_file': (os.path.join(SHARE, 'config', 'depth.yaml'), 'node parameters file'),
    'input_transport': ('', 'raw, compressed or hbmem (default: the params file\'s, else raw)'),
    'image_topic': ('', 'topic the node reads images from, whatever input_transport '
                        '(default: image, image/compressed or /hbmem_img)'),
    'camera_info_topic': ('', 'camera_info topic (default: camera_info)'),
    'namespace': ('', 'namespace of the node and its output topics'),
    'rviz': ('false', 'also start RViz showing the input and the depth topics'),
    'camera': ('none', 'also start a TROS camera on the RDK: usb (hobot_usb_cam >= 2.1.0, MJPEG as '
                       'CompressedImage) or mipi (mipi_cam, NV12)'),
    'zero_copy': ('false', 'TROS shared-memory input (hbm_img_msgs on /hbmem_img) with hobot_shm\'s '
                           'environment; with camera:=mipi or another hbmem publisher'),
    'video_device': ('', 'camera:=usb: V4L2 device (default /dev/video0); camera:=mipi: sensor name '
                         '(e.g. F37, IMX219; default "" probes)'),
    'camera_width': ('640', 'camera image width'),
    'camera_height': ('480', 'camera image height'),
    'dds_profile': ('auto', 'Fast DDS profile for every process: auto = yours if '
                            'FASTRTPS_DEFAULT_PROFILES_FILE is set, else hobot_shm\'s with zero_copy, else '
                            'config/fastdds_local.xml (this host only: shared memory + loopback); none; or a path'),
}


class LaunchArgumentError(RuntimeError):
    """A launch argument that cannot work; the message names it (ros2 launch prints it and exits 1)."""


def installed(package: str) -> bool:
    try:
        get_package_prefix(package)
        return True
    except PackageNotFoundError:
        return False


def flag(args: dict, name: str) -> bool:
    value = args[name].strip().lower()
    if value not in ('true', 'false', '1', '0', 'yes', 'no'):
        raise LaunchArgumentError(f'{name}:={args[name]}: use true or false')
    return value in ('true', '1', 'yes')


def pixels(args: dict, name: str) -> int:
    if not args[name].strip().isdigit() or int(args[name]) <= 0:
        raise LaunchArgumentError(f'{name}:={args[name]}: use a whole number of pixels, e.g. {name}:=640')
    return int(args[name])


def ros_name(args: dict, name: str) -> str:
    """A topic or namespace: ROS name tokens (letters, digits, _; not starting with a digit) joined by /."""
    if args[name] and not re.fullmatch(r'~?/?([A-Za-z_]\w*(/[A-Za-z_]\w*)*/?)?', args[name]):
        raise LaunchArgumentError(f'{name}:={args[name]}: not a ROS name (letters, digits and _ between '
                                  f'slashes, no token starting with a digit)')
    return args[name]


def choice(args: dict, name: str, choices: tuple) -> str:
    if args[name] not in choices:
        raise LaunchArgumentError(f'{name}:={args[name]}: use one of {", ".join(c or chr(34) * 2 for c in choices)}')
    return args[name]


def tros_camera(args: dict, zero_copy: bool):
    """(camera nodes, node overrides, remappings, the one line when skipped) for camera:=none|usb|mipi."""
    kind = choice(args, 'camera', ('none', 'usb', 'mipi'))
    if kind == 'none':
        return [], {}, [], None
    package = {'usb': 'hobot_usb_cam', 'mipi': 'mipi_cam'}[kind]
    size = {'image_width': pixels(args, 'camera_width'), 'image_height': pixels(args, 'camera_height')}
    if kind == 'usb':
        if zero_copy:
            raise LaunchArgumentError('zero_copy:=true: hobot_usb_cam shares MJPEG, which the node cannot take '
                                      'from shared memory; use camera:=mipi, or zero_copy:=false with camera:=usb')
        # hobot_usb_cam >= 2.1.0 publishes MJPEG as sensor_msgs/CompressedImage on /image; the node decodes it
        camera = Node(package=package, executable=package, name='usb_cam', output='screen',
                      parameters=[{**size, 'video_device': args['video_device'] or '/dev/video0',
                                   'pixel_format': 'mjpeg', 'frame_id': 'camera_optical_frame',
                                   'zero_copy': False}])
        overrides, remaps = {'input_transport': 'compressed'}, [('image/compressed', '/image')]
    else:
        if args['video_device'].startswith('/dev/'):
            raise LaunchArgumentError(f'video_device:={args["video_device"]}: mipi_cam takes a sensor name '
                                      '(e.g. F37, IMX219), or "" to probe, not a device path')
        camera = Node(package=package, executable=package, name='mipi_cam', output='screen',
                      parameters=[{**size, 'out_format': 'nv12', 'video_device': args['video_device'],
                                   'io_method': 'shared_mem' if zero_copy else 'ros'}])
        overrides, remaps = ({}, []) if zero_copy else ({'input_transport': 'raw'}, [('image', '/image_raw')])
    if not installed(package):
        return [], overrides, remaps, (f'camera:={kind}: {package} is not installed; it is a TROS package '
                                       f'(D-Robotics RDK, source /opt/tros/humble/setup.bash): starting without '
                                       f'a camera')
    return [camera], overrides, remaps, None


def dds_environment(args: dict, zero_copy: bool) -> list:
    """Environment for every process: a Fast DDS profile (never over one the user set) and hbmem's."""
    actions = []
    profile = args['dds_profile']
    if zero_copy:
        if not installed('hobot_shm'):
            raise LaunchArgumentError('zero_copy:=true needs TROS\'s hobot_shm (its shared-memory profile): '
                                      'source /opt/tros/humble/setup.bash, or zero_copy:=false')
        actions += [SetEnvironmentVariable('RMW_FASTRTPS_USE_QOS_FROM_XML', '1'),
                    SetEnvironmentVariable('RMW_IMPLEMENTATION',
                                           os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp'))]
    if profile == 'none' or (profile == 'auto' and any(os.environ.get(e) for e in PROFILE_ENVS)):
        return actions
    if profile == 'auto':
        profile = (os.path.join(get_package_prefix('hobot_shm'), 'lib', 'hobot_shm', 'config', 'shm_fastdds.xml')
                   if zero_copy else os.path.join(SHARE, 'config', 'fastdds_local.xml'))
    elif not os.path.isfile(profile):
        raise LaunchArgumentError(f'dds_profile:={profile}: no such file; use auto, none or a Fast DDS XML file')
    return actions + [SetEnvironmentVariable(e, profile) for e in PROFILE_ENVS]


def rviz_config(namespace: str, topics: dict) -> str:
    """config/depth.rviz with this launch's topic names (namespace, remaps), written to a temp file."""
    with open(os.path.join(SHARE, 'config', 'depth.rviz')) as f:
        text = f.read()
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''

    def resolve(match):
        name = topics.get(match.group(2), match.group(2))
        return match.group(1) + (name if name.startswith('/') else f'{ns}/{name}')
    text = re.sub(r'^(\s*Value: )/(image|depth|depth/colorized|depth/points)$', resolve, text, flags=re.M)
    fd, path = tempfile.mkstemp(prefix='depth_anything_', suffix='.rviz')
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    return path


def on_depth_exit(event, context):
    """The depth node is the launch: end it, as a failure when the node failed (ros2 launch exits 1)."""
    if event.returncode and not context.is_shutdown:
        raise RuntimeError(f'depth node exited with code {event.returncode} (its [ERROR] line above says why)')
    return [Shutdown(reason='depth node exited')]


def nodes(context):
    args = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    params_file = args['params_file']
    if not os.path.isfile(params_file):
        raise LaunchArgumentError(f'params_file:={params_file}: no such file')
    zero_copy = flag(args, 'zero_copy')
    rviz = flag(args, 'rviz')
    choice(args, 'input_transport', ('', 'raw', 'compressed', 'hbmem'))
    for name in ('image_topic', 'camera_info_topic', 'namespace'):
        ros_name(args, name)
    camera_nodes, overrides, remaps, skipped = tros_camera(args, zero_copy)
    actions = dds_environment(args, zero_copy) + camera_nodes + ([LogInfo(msg=skipped)] if skipped else [])
    # Only what is given here goes over the params file; an argument left empty keeps the file's value.
    overrides.update({k: args[k] for k in ('model_path', 'engine', 'input_transport') if args[k]})
    if zero_copy:
        overrides['input_transport'] = 'hbmem'
    if args['image_topic']:  # the node reads one of these, by input_transport
        remaps = [(name, args['image_topic']) for name in ('image', 'image/compressed', '/hbmem_img')]
    if args['camera_info_topic']:
        remaps.append(('camera_info', args['camera_info_topic']))
    depth = Node(package=PACKAGE, executable='depth_node', name='depth_anything', namespace=args['namespace'],
                 output='screen', parameters=[params_file, overrides], remappings=remaps,
                 additional_env={LAUNCHED_ENV: '1'})
    actions += [depth, RegisterEventHandler(OnProcessExit(target_action=depth, on_exit=on_depth_exit))]
    if rviz and not installed('rviz2'):
        actions.append(LogInfo(msg='rviz:=true: rviz2 is not installed (apt install ros-$ROS_DISTRO-rviz2): '
                                   'starting without RViz'))
    elif rviz:
        # RViz's Image display shows raw images: the input display follows the raw input's topic
        topics = {'image': dict(remaps).get('image', 'image')}
        actions.append(Node(package='rviz2', executable='rviz2', output='screen',
                            arguments=['-d', rviz_config(args['namespace'], topics)]))
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
