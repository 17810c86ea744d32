"""The depth node as a process in a ROS 2 graph, and a probe node (ros_probe) in this process beside it."""
import contextlib

from depth_anything_ros.ros.environment import use_ros_environment
from depth_anything_ros.ros.process_graph import RosGraph

from .dds import domain_for
from .ros_probe import Probe


def start_node(graph: RosGraph, model: str, *params) -> None:
    args = ['-p', f'model_path:={model}', '-p', 'diagnostics_period:=0.5', *params]
    graph.start('node', graph.node_command(*args))


@contextlib.contextmanager
def node_and_probe(model: str, offset: int, *params, extra_env=None, **probe_args):
    """A depth node in a domain of its own (domain_for(offset)), and a probe beside it; both stopped after."""
    domain = domain_for(offset)
    use_ros_environment(domain)
    graph = RosGraph(domain, extra_env=extra_env)
    start_node(graph, model, *params)
    probe = Probe(**probe_args)
    try:
        yield graph, probe
    finally:
        probe.close()
        graph.stop()
