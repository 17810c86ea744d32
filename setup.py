import glob
import os

from setuptools import Extension, find_packages, setup

PACKAGE = 'depth_anything_ros'


def share(folder, pattern='*'):
    files = [f for f in glob.glob(f'{folder}/{pattern}')
             if os.path.isfile(f) and not f.endswith(('.onnx', '.hbm'))]
    return (f'share/{PACKAGE}/{folder}', sorted(files))


# The per-pixel passes around inference (core/kernels.py): C against Python's own API, no numpy
# headers (one build serves apt's numpy 1.x and pip's 2.x). Needs a C compiler and Python's headers
# (apt: build-essential, python3-dev).
KERNELS = Extension(f'{PACKAGE}.core._kernels', [f'{PACKAGE}/core/_kernels.c'],
                    extra_compile_args=['-O3', '-std=gnu99', '-fno-strict-aliasing'])

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    ext_modules=[KERNELS],
    package_data={PACKAGE: ['samples/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        # where ros2 run/launch look; a launcher into bin/, where every install route puts console scripts
        (f'lib/{PACKAGE}', ['resource/depth_node']),
        (f'share/{PACKAGE}', ['package.xml']),
        share('launch', '*.py'),
        share('config'),
        share('models'),
        share('models/s100'),
    ],
    # Nothing here may replace a board's apt numpy/OpenCV (Humble's messages are built against numpy 1.x):
    # an unpinned name already installed is left alone, and OpenCV from apt is no pip distribution.
    # A PC without ROS's numpy and OpenCV installs them with `pip install '.[pc]'`.
    install_requires=['setuptools', 'pyyaml'],
    extras_require={
        'pc': ['numpy', 'opencv-python-headless', 'onnxruntime'],
        # DA3 test models and export also need the official code, installed without its declared
        # dependencies (numpy<2, xformers, open3d, ...): pip install --no-deps depth-anything-3==0.1.1
        # (requirements/dev-no-deps.txt); what its model code imports is listed here.
        'test-models': ['torch==2.13.0', 'transformers', 'onnx', 'omegaconf==2.3.0',
                        'antlr4-python3-runtime==4.9.3', 'einops', 'addict'],
    },
    zip_safe=False,
    maintainer='depth_anything_ros developers',
    maintainer_email='dev@depth-anything-ros.invalid',
    description='Monocular depth (Depth Anything V2) for ROS 2 on the RDK S100 BPU and on any PC.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'depth_node = depth_anything_ros.ros.ros_main:depth_node',
            'depth-anything-ros = depth_anything_ros.cli:main',
        ],
    },
)
