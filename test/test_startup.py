"""Start-up and shutdown of the node process: every failure is one ERROR line from the ROS logger
naming the parameter or file and the fix (as a launch argument when launched), exit 1, no
traceback; Ctrl-C during start-up, or twice, exits 0 without a traceback."""
import signal

import psutil
import pytest

from helpers.dds import domain_for
from helpers.threads import wait_until

from depth_anything_ros.ros.process_graph import RosGraph
from depth_anything_ros.ros.ros_main import rcl_arguments_error

pytestmark = pytest.mark.graph
DOMAIN = domain_for(11)  # this run's own (no DDS traffic is asserted on)


def run_to_exit(*ros_args, env=None, timeout=60) -> tuple:
    graph = RosGraph(DOMAIN, extra_env=env)
    proc = graph.start('node', graph.node_command(*ros_args))
    code = proc.wait(timeout=timeout)
    graph.stop()
    return code, graph.text('node')


def assert_one_error_line(code, output, *expected):
    assert code == 1, output
    errors = [line for line in output.splitlines() if '[ERROR]' in line]
    assert len(errors) >= 1 and 'Traceback' not in output, output
    for text in expected:
        assert text in errors[-1], (text, errors[-1])


@pytest.mark.parametrize('params, expected', [
    (['-p', 'color_min:=2.0', '-p', 'color_max:=1.0'],
     ['parameters color_min (2.0) and color_max (1.0)', '--ros-args -p color_min:=0.0']),
    (['-p', 'color_min:=.nan'], ['parameters color_min (nan)']),
])
def test_colour_range_is_refused_naming_both_parameters(tiny_fixed_model, params, expected):
    code, output = run_to_exit('-p', f'model_path:={tiny_fixed_model}', *params)
    assert_one_error_line(code, output, *expected)


def test_model_path_that_is_a_directory(tmp_path):
    code, output = run_to_exit('-p', f'model_path:={tmp_path}')
    assert_one_error_line(code, output, f"model_path: '{tmp_path}' is a directory")


def test_fix_is_a_launch_argument_when_launched_and_logged_by_the_node():
    """depth.launch.py sets DEPTH_ANYTHING_ROS_LAUNCH; the line comes from the node's own logger
    (its namespace in the name), the one that publishes on /rosout."""
    code, output = run_to_exit('-r', '__ns:=/robot7', env={'DEPTH_ANYTHING_ROS_LAUNCH': '1'})
    assert_one_error_line(code, output, '[robot7.depth_anything]', 'model_path:=/path/to/model.onnx')
    assert '-p model_path' not in output


@pytest.mark.parametrize('content', [None, 'model_path: [unclosed\n  - : :'])
def test_missing_or_malformed_params_file(tmp_path, content):
    path = tmp_path / 'params.yaml'
    if content is not None:
        path.write_text(content)
    code, output = run_to_exit('--params-file', str(path))
    assert_one_error_line(code, output, f'cannot start: --params-file {path}', 'fix the params file')


def test_rcl_error_text_becomes_one_line():
    exc = RuntimeError("failed to initialize rcl: Couldn't parse params file: '--params-file /x.yaml'. "
                       'Error: Error opening YAML file, at /project/src/parser.c:271, at arguments.c:415')
    assert rcl_arguments_error(exc).startswith('cannot start: --params-file /x.yaml: Error opening YAML file; '
                                               'fix the params file (YAML: ')


def start(model):
    graph = RosGraph(domain_for(12))
    return graph, graph.start('node', graph.node_command('-p', f'model_path:={model}'))


def mapped(proc, library: str) -> bool:
    try:
        return any(library in m.path for m in psutil.Process(proc.pid).memory_maps())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@pytest.mark.parametrize('library', ['_rclpy_pybind11', 'onnxruntime_pybind11'])
def test_sigint_during_start_up_exits_zero_without_traceback(tiny_fixed_model, library):
    """Ctrl-C while rclpy's imports load, and while the engine loads."""
    graph, proc = start(tiny_fixed_model)
    assert wait_until(lambda: mapped(proc, library) or proc.poll() is not None, timeout=60), graph.text('node')
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    graph.stop()
    assert code == 0 and 'Traceback' not in graph.text('node'), graph.text('node')


def test_double_sigint_exits_zero_without_traceback(tiny_fixed_model):
    graph, proc = start(tiny_fixed_model)
    assert wait_until(lambda: 'publishing' in graph.text('node'), timeout=60), graph.text('node')
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    graph.stop()
    assert code == 0 and 'Traceback' not in graph.text('node'), graph.text('node')
