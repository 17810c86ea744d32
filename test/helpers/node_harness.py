"""The depth node in this process, driven message by message: the one harness of the in-process node tests.

- The engine is injected (DepthNode's `engine`): one the test controls, usually wrapping the real one.
- Every publisher the node creates records what it publishes (`sent[topic]`, the messages) and has one
  listener, so every output is computed; with `forward` each message also goes to the real publisher.
- Messages enter through the node's own subscription callbacks and the diagnostics come from its own
  timer's: what the executor would call, without DDS in between.
- Its log lines are recorded as well as logged (`logged`: (severity, text)).
The node is a subclass that overrides rclpy's create_publisher and get_logger; nothing private is patched.
"""
from __future__ import annotations

import collections
import contextlib
import copy

import rclpy
from rclpy.parameter import Parameter

from depth_anything_ros.core.camera_messages import stamp_ns
from depth_anything_ros.ros.node import DepthNode


class RecordingPublisher:
    """An rclpy publisher as the node sees it, with one listener, recording a copy of each message
    as it was when published (as a subscriber would receive it: the node reuses its camera_info)."""

    def __init__(self, real, sent: list, forward: bool):
        self.real, self.sent, self.forward = real, sent, forward
        self.topic_name = real.topic_name

    def get_subscription_count(self) -> int:
        return 1

    def publish(self, msg) -> None:
        self.sent.append(copy.deepcopy(msg))
        if self.forward:
            self.real.publish(msg)


class RecordingLogger:
    """The node's rclpy logger; each line is also recorded as (severity, text)."""

    def __init__(self, real, logged: list):
        self.real, self.logged = real, logged

    def info(self, msg, **kwargs):
        self.logged.append(('INFO', msg))
        return self.real.info(msg, **kwargs)

    def warning(self, msg, **kwargs):
        self.logged.append(('WARN', msg))
        return self.real.warning(msg, **kwargs)

    def error(self, msg, **kwargs):
        self.logged.append(('ERROR', msg))
        return self.real.error(msg, **kwargs)


class RecordingDepthNode(DepthNode):
    def __init__(self, harness: NodeHarness, engine, **node_kwargs):
        self.harness = harness  # before DepthNode's constructor: it creates publishers and logs
        super().__init__(engine, **node_kwargs)

    def create_publisher(self, msg_type, topic, qos_profile, **kwargs):
        real = super().create_publisher(msg_type, topic, qos_profile, **kwargs)
        return RecordingPublisher(real, self.harness.sent[real.topic_name], self.harness.forward)

    def get_logger(self):
        return RecordingLogger(super().get_logger(), self.harness.logged)


class NodeHarness:
    """What a test sees of the node: `node`, `engine` (the injected one), `sent`, `logged`."""

    def __init__(self, engine, forward: bool):
        self.engine, self.forward = engine, forward
        self.sent = collections.defaultdict(list)   # topic -> messages published, in order
        self.logged = []                            # (severity, text)
        self.node = None

    def send(self, topic: str, msg) -> None:
        """`msg` as the node's subscription of `topic` (as the node names it: 'image', 'camera_info',
        'reference/depth', ...) receives it."""
        names = (topic, '/' + topic)
        callbacks = [s.callback for s in self.node.subscriptions if s.topic_name in names]
        assert callbacks, f"the node does not subscribe to '{topic}': {[s.topic_name for s in self.node.subscriptions]}"
        callbacks[0](msg)

    def stamps(self, topic: str) -> list:
        """The header stamps (ns) of what was published on `topic`, in order."""
        return [stamp_ns(msg.header) for msg in self.sent[topic]]

    def diagnostics(self):
        """Fire the diagnostics timer (it also reaps stalled calls); the DiagnosticStatus it published."""
        timers = list(self.node.timers)
        assert len(timers) == 1, 'the node has one timer: diagnostics'
        timers[0].callback()
        return self.sent['/diagnostics'][-1].status[0]

    def diagnostic_values(self) -> dict:
        return {kv.key: kv.value for kv in self.diagnostics().values}

    def lines(self, containing: str = '', severity: str | None = None) -> list:
        """Logged lines holding `containing`, of `severity` ('INFO', 'WARN', 'ERROR') or any."""
        return [text for level, text in self.logged if containing in text and severity in (None, level)]


@contextlib.contextmanager
def running_node(model: str, engine, forward: bool = False, **params):
    """The depth node for `model` running `engine`, in a context of its own; parameters as given
    (workers 1 unless set). Shut down and destroyed after, whatever the test did."""
    context = rclpy.Context()
    rclpy.init(context=context)
    harness = NodeHarness(engine, forward)
    values = {'model_path': model, 'workers': 1, **params}
    try:
        harness.node = RecordingDepthNode(harness, engine, context=context,
                                          parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        yield harness
    finally:
        if harness.node is not None:
            harness.node.shutdown()
            harness.node.destroy_node()
        rclpy.try_shutdown(context=context)
