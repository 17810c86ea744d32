"""ros2 launch depth_anything_ros depth.launch.py model_path:=/path/model.hbm [rviz:=true]"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

SHARE = get_package_share_directory('depth_anything_ros')
ARGUMENTS = {
    'model_path': ('', 'model file: .hbm on the RDK S100, .onnx elsewhere'),
    'engine': ('auto', 'auto (by file extension), hbm or onnxruntime'),
    'image_topic': ('image', 'input image topic (sensor_msgs/Image)'),
    'camera_info_topic': ('camera_info', 'input camera_info topic'),
    'params_file': (os.path.join(SHARE, 'config', 'depth.yaml'), 'node parameters file'),
    'namespace': ('', 'namespace of the node and its output topics'),
    'rviz': ('false', 'also start RViz showing the input and both depth topics'),
}


def generate_launch_description():
    arg = LaunchConfiguration
    depth_node = Node(
        package='depth_anything_ros', executable='depth_node', name='depth_anything',
        namespace=arg('namespace'), output='screen',
        parameters=[arg('params_file'), {'model_path': arg('model_path'), 'engine': arg('engine')}],
        remappings=[('image', arg('image_topic')), ('camera_info', arg('camera_info_topic'))])
    rviz = Node(package='rviz2', executable='rviz2', output='screen',
                arguments=['-d', os.path.join(SHARE, 'config', 'depth.rviz')],
                condition=IfCondition(arg('rviz')))
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [depth_node, rviz])
