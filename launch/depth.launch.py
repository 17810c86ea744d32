"""ros2 launch depth_anything_ros depth.launch.py model_path:=/path/model.hbm [camera:=usb|mipi] [rviz:=true]

launch and launch_ros are imported only here: the package works without them.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

SHARE = get_package_share_directory('depth_anything_ros')
ARGUMENTS = {
    'model_path': ('', 'model file: .hbm on the RDK S100, .onnx elsewhere'),
    'engine': ('auto', 'auto (by file extension), hbm, onnxruntime'),
    'image_topic': ('image', 'input image topic (sensor_msgs/Image); set for you by camera:=usb|mipi'),
    'camera_info_topic': ('camera_info', 'input camera_info topic'),
    'params_file': (os.path.join(SHARE, 'config', 'depth.yaml'), 'node parameters file'),
    'namespace': ('', 'namespace of the node and its output topics'),
    'rviz': ('false', 'also start RViz showing the input and both depth topics'),
    'camera': ('none', 'also start a TROS camera on the RDK: usb (hobot_usb_cam + hobot_codec) or mipi'),
    'video_device': ('/dev/video0', 'camera:=usb: V4L2 device; camera:=mipi: sensor name ("" to probe)'),
    'camera_width': ('640', 'camera image width'),
    'camera_height': ('480', 'camera image height'),
}


def tros_camera(kind, arg):
    """TROS camera nodes and the topic where NV12 frames come out."""
    size = {'image_width': int(arg('camera_width')), 'image_height': int(arg('camera_height'))}
    if kind == 'usb':  # MJPEG from V4L2, decoded to NV12 by the hardware codec
        return [Node(package='hobot_usb_cam', executable='hobot_usb_cam', name='usb_cam', output='screen',
                     parameters=[{**size, 'video_device': arg('video_device'), 'pixel_format': 'mjpeg',
                                  'frame_id': 'camera_optical_frame', 'zero_copy': False}]),
                Node(package='hobot_codec', executable='hobot_codec_republish', name='mjpeg_decoder',
                     output='screen',
                     parameters=[{'channel': 1, 'in_mode': 'ros', 'in_format': 'jpeg', 'sub_topic': '/image',
                                  'out_mode': 'ros', 'out_format': 'nv12', 'pub_topic': '/image_nv12'}])], \
            '/image_nv12'
    if kind == 'mipi':
        return [Node(package='mipi_cam', executable='mipi_cam', name='mipi_cam', output='screen',
                     parameters=[{**size, 'out_format': 'nv12', 'io_method': 'ros',
                                  'video_device': arg('video_device')}])], '/image_raw'
    if kind == 'none':
        return [], None
    raise RuntimeError(f"camera:={kind}: use none, usb or mipi")


def nodes(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)
    camera_nodes, camera_topic = tros_camera(arg('camera'), arg)
    depth = Node(
        package='depth_anything_ros', executable='depth_node', name='depth_anything',
        namespace=arg('namespace'), output='screen',
        parameters=[arg('params_file'), {'model_path': arg('model_path'), 'engine': arg('engine')}],
        remappings=[('image', camera_topic or arg('image_topic')),
                    ('camera_info', arg('camera_info_topic'))])
    actions = camera_nodes + [depth]
    if arg('rviz').lower() in ('true', '1', 'yes'):
        actions.append(Node(package='rviz2', executable='rviz2', output='screen',
                            arguments=['-d', os.path.join(SHARE, 'config', 'depth.rviz')]))
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
