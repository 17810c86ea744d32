"""What `pip install .` (a wheel) puts where ROS looks: the executable `ros2 run` and `ros2 launch`
find in <prefix>/lib/depth_anything_ros, share/, the ament index marker; and dependencies that leave
a board's apt numpy and OpenCV alone."""
import email
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'depth_anything_ros'


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                    '-w', str(out), REPO], check=True)
    (path,) = out.glob('*.whl')
    return str(path)


@pytest.fixture(scope='module')
def prefix(wheel, tmp_path_factory):
    root = tmp_path_factory.mktemp('prefix')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--ignore-installed',
                    '--prefix', str(root), wheel], check=True)
    return str(root)


def requirements(wheel) -> list:
    with zipfile.ZipFile(wheel) as whl:
        name = next(n for n in whl.namelist() if n.endswith('.dist-info/METADATA'))
        return email.message_from_bytes(whl.read(name)).get_all('Requires-Dist')


def test_dependencies_never_replace_the_boards_numpy_or_opencv(wheel):
    required = requirements(wheel)
    unconditional = [r for r in required if 'extra ==' not in r]
    assert not [r for r in unconditional if r.split()[0].split(';')[0] in ('numpy', 'opencv-python-headless',
                                                                         'opencv-python', 'onnxruntime')]
    for name in ('numpy', 'opencv-python-headless', 'onnxruntime'):
        assert any(r.startswith(name) and 'extra == "pc"' in r for r in required), (name, required)


def test_model_building_dependencies_only_in_the_test_models_extra(wheel):
    """PyTorch and the official model code never come with the node; depth-anything-3 not even with
    the extra: its declared dependencies (numpy<2, xformers, open3d...) go with --no-deps."""
    required = requirements(wheel)
    names = {r.split(';')[0].split('=')[0].split('<')[0].split('>')[0].strip(): r for r in required}
    assert 'depth-anything-3' not in names and 'depth_anything_3' not in names, required
    for name in ('torch', 'transformers', 'onnx', 'omegaconf', 'einops', 'addict'):
        assert name in names and 'extra == "test-models"' in names[name], (name, required)


def test_installed_layout_is_what_ros2_run_and_launch_look_for(prefix, monkeypatch):
    launcher = os.path.join(prefix, 'lib', PACKAGE, 'depth_node')
    assert os.listdir(os.path.dirname(launcher)) == ['depth_node'], 'one executable, no duplicate'
    assert os.access(launcher, os.X_OK)
    assert os.access(os.path.join(prefix, 'bin', 'depth_node'), os.X_OK)
    share = os.path.join(prefix, 'share', PACKAGE)
    for path in ('package.xml', 'launch/depth.launch.py', 'config/depth.yaml', 'config/depth.rviz',
                 'config/fastdds_local.xml', 'models/models.yaml'):
        assert os.path.isfile(os.path.join(share, path)), path
    import ament_index_python.packages as packages
    monkeypatch.setenv('AMENT_PREFIX_PATH', prefix)
    assert packages.get_package_prefix(PACKAGE) == prefix  # the ament index marker
    assert packages.get_package_share_directory(PACKAGE) == share


def test_installed_executable_runs_the_node(prefix, tmp_path):
    """The launcher hands over to bin/depth_node, which runs the node far enough to refuse a
    model path that is a directory (one ERROR line, exit 1)."""
    site = sysconfig.get_path('purelib', vars={'base': prefix, 'platbase': prefix})
    env = {**os.environ, 'PYTHONPATH': site}  # ROS_DOMAIN_ID: this run's own (conftest)
    result = subprocess.run([os.path.join(prefix, 'lib', PACKAGE, 'depth_node'), '--ros-args',
                             '-p', f'model_path:={tmp_path}'], env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "[ERROR]" in output and f"model_path: '{tmp_path}' is a directory" in output, output
    assert 'Traceback' not in output
