"""A missing numpy, OpenCV, engine runtime or build of the compiled kernels stops `depth_node` and
`depth-anything-ros` with one line naming the install step for the route (apt on the board, the `pc`
extra on a PC) and exit code 1, never a traceback (issue 19: a plain `pip install .` on a PC ended `ros2 launch` with
`No module named 'cv2'`).

Each case runs the real entry point in a fresh interpreter whose import system refuses the module
(a meta-path finder raising ModuleNotFoundError, as Python does for a module that is not there), so
every import of it, wherever it happens first, fails the way it would on such a machine."""
import os
import subprocess
import sys

import pytest

from helpers.data import REPO
from helpers.dds import domain_for

from depth_anything_ros.core.dependencies import HINTS
from depth_anything_ros.ros.environment import ros_environment

pytestmark = pytest.mark.slow
DOMAIN = domain_for(11)  # shared with test_startup: no DDS traffic is asserted on

HIDE = '''
import sys
hidden, entry, argv = sys.argv[1], sys.argv[2], sys.argv[3:]


class Missing:
    def find_spec(self, name, path=None, target=None):
        if name == hidden or name.startswith(hidden + '.'):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Missing())
sys.argv = [entry] + argv
if entry == 'depth_node':
    from depth_anything_ros.ros.ros_main import depth_node
    sys.exit(depth_node())
from depth_anything_ros.cli import main
sys.exit(main())
'''

# module -> text the line must hold: the install step for the board and for a PC
EXPECTED = {
    'cv2': ('sudo apt-get install python3-opencv', "pip install '.[pc]'"),
    'numpy': ('sudo apt-get install python3-numpy', "pip install '.[pc]'"),
    'onnxruntime': ('pip install onnxruntime', "pip install '.[pc]'"),
    'depth_anything_ros.core._kernels': ('colcon build', 'build-essential python3-dev',
                                         'python3 setup.py build_ext --inplace'),
}


@pytest.fixture(scope='module')
def hider(tmp_path_factory):
    path = tmp_path_factory.mktemp('hide') / 'hide.py'
    path.write_text(HIDE)
    return str(path)


def run_without(hider, module, *command, tmp_path):
    env = ros_environment(DOMAIN)  # the package from this tree, installed or not (the board job's is not)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO, env.get('PYTHONPATH')]))
    proc = subprocess.run([sys.executable, hider, module, *command], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def assert_one_line(code, output, module):
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 1, output
    assert 'Traceback' not in output, output
    assert len(lines) == 1, output
    for text in EXPECTED[module]:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.mark.parametrize('module', sorted(EXPECTED))
def test_depth_node_names_the_install_step(hider, tmp_path, module):
    model = tmp_path / 'model.onnx'
    model.write_bytes(b'not read: the runtime is missing first')
    code, output = run_without(hider, module, 'depth_node', '--ros-args', '-p', f'model_path:={model}',
                               tmp_path=tmp_path)
    line = assert_one_line(code, output, module)
    assert '[ERROR]' in line and 'cannot start:' in line


@pytest.mark.parametrize('module', sorted(EXPECTED))
def test_the_tools_name_the_install_step(hider, tmp_path, module):
    model = tmp_path / 'model.onnx'
    model.write_bytes(b'not read')
    image = tmp_path / 'image.png'
    image.write_bytes(b'not read either')
    code, output = run_without(hider, module, 'depth-anything-ros', 'infer', '--model', str(model),
                               '--out', str(tmp_path / 'out'), str(image), tmp_path=tmp_path)
    line = assert_one_line(code, output, module)
    assert line.startswith('depth-anything-ros')


def test_an_unknown_missing_module_still_shows_its_traceback():
    """Only modules with a known install step are turned into a line: anything else is a bug."""
    from depth_anything_ros.core.dependencies import missing_dependency
    assert missing_dependency(ModuleNotFoundError("No module named 'foo'", name='foo')) is None
    assert missing_dependency(ModuleNotFoundError("No module named 'cv2.gapi'", name='cv2.gapi')) is not None
    assert missing_dependency(ImportError('numpy.core.multiarray failed to import')) is None
    assert set(HINTS) >= {'cv2', 'numpy'}
    # the compiled kernels by their full name: another module of the package missing is a bug
    kernels = ModuleNotFoundError("No module named 'depth_anything_ros.core._kernels'",
                                  name='depth_anything_ros.core._kernels')
    assert 'build_ext --inplace' in str(missing_dependency(kernels))
    assert missing_dependency(ModuleNotFoundError('', name='depth_anything_ros.core.nothing')) is None
