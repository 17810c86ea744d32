"""The node under a camera load, as separate processes over DDS (bench, board-check): a camera
and a depth recorder in this process, the node in its own; frames/s, latency, drops by reason."""
from __future__ import annotations

import random
import threading
import time

import numpy as np

from ..core.camera_messages import stamp_ns
from ..core.output_topics import DEPTH
from ..core.params import PARAMS
from .environment import use_ros_environment
from .process_graph import RosGraph


def node_arguments(cfg: dict) -> list:
    """`-p name:=value` for every parameter that is not at its default."""
    return [arg for p in PARAMS if cfg[p.name] != p.default for arg in ('-p', f'{p.name}:={cfg[p.name]}')]


class LoadClient:
    """Camera and depth recorder in this process: stamps are publish times, so the
    latency of a depth frame is its arrival time minus its stamp (one clock)."""

    def __init__(self, domain: int):
        use_ros_environment(domain)  # the graph's, before this process imports a message
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import Image
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('bench_load', context=self.context)
        self.pub = self.node.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.arrivals = []  # (stamp ns, arrival ns)
        self.diagnostics = {}
        self.node.create_subscription(Image, DEPTH.topic(), self._on_depth, QoSProfile(depth=50))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()  # returns once the executor is shut down
        except Exception:  # noqa: BLE001 - the context went first
            pass

    def _on_depth(self, msg):
        self.arrivals.append((stamp_ns(msg.header), time.time_ns()))

    def _on_diagnostics(self, msg):
        self.diagnostics = {kv.key: kv.value for kv in msg.status[0].values}

    def publish(self, fields: dict):
        from .messages import header_at, image_message
        self.pub.publish(image_message(header_at(time.time_ns(), 'camera'), fields))

    def drops(self) -> dict:
        return {k[len('drops_'):]: int(v) for k, v in self.diagnostics.items() if k.startswith('drops_')}

    def close(self):
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        import rclpy
        rclpy.try_shutdown(context=self.context)


def load_run(cfg: dict, seconds: float, fields: dict, rate: float, domain: int | None = None) -> dict:
    """The node with parameters `cfg` under a camera publishing image `fields` at `rate`/s for
    `seconds`: published frames/s, latency p50/p95 (ms, publish to depth arrival), drops by reason."""
    domain = random.randint(120, 200) if domain is None else domain
    with RosGraph(domain) as graph:
        graph.start('node', graph.node_command(*node_arguments({**cfg, 'diagnostics_period': 0.5})))
        client = LoadClient(domain)
        try:
            deadline = time.monotonic() + 120
            while not client.arrivals and time.monotonic() < deadline:  # discovery and warm-up
                client.publish(fields)
                time.sleep(0.2)
            time.sleep(3.0)
            before, start = client.drops(), time.time_ns()
            period, tick = 1.0 / rate, time.monotonic()
            sent = 0
            while time.monotonic() - tick < seconds:
                client.publish(fields)
                sent += 1
                time.sleep(max(0.0, tick + sent * period - time.monotonic()))
            end = time.time_ns()
            time.sleep(5.0)  # in-flight frames land; two diagnostics periods pass
            after = client.drops()
            latencies = [(got - stamp) / 1e6 for stamp, got in client.arrivals if start <= stamp < end]
        finally:
            client.close()
    p50, p95 = np.percentile(latencies, (50, 95)) if latencies else (float('nan'),) * 2
    drops = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)}
    return {'workers': cfg['workers'], 'offered_fps': sent / seconds, 'published_fps': len(latencies) / seconds,
            'p50_ms': float(p50), 'p95_ms': float(p95), 'drops': drops}
