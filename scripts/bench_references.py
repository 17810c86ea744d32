"""Memory and executor stalls of the node under huge metric references (issue 18, point 2).

Runs the node as its own process (one per case, 6 GiB address-space cap, like the attack that
found the problem), publishes huge references over DDS (ten by default), and prints the node's resident memory
(VmRSS before, VmHWM peak, VmRSS after) and the longest gap between its /diagnostics messages
(published every 0.5 s by the node's executor thread, gaps taken from their header stamps: a gap is the
executor stalled). Numbers, no verdict.
Best-effort delivery may lose a reference: the counts the node saw are printed.

    .venv/bin/python scripts/bench_references.py --model tiny.onnx [--baseline /path/to/other/source]

`--baseline` runs the same cases, in the same run, with the package from another source tree
(e.g. `git archive <commit> | tar -x -C /tmp/base`), for a before/after comparison.
"""
from __future__ import annotations

import argparse
import array
import os
import random
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAP_BYTES = 6 << 30
MB = 2**20


def cloud_fields(points: int, stacked: bool) -> dict:
    """15M points with x, y, z all at offset 0 and a 4-byte point (the attack), or an ordinary
    x, y, z, intensity cloud."""
    from sensor_msgs.msg import PointField
    rng = np.random.default_rng(0)
    if stacked:
        data, offsets, step = rng.uniform(0.5, 50.0, points).astype('<f4'), (0, 0, 0), 4
    else:
        data = rng.uniform(-20.0, 20.0, (points, 4)).astype('<f4')
        data[:, 2] = np.abs(data[:, 2]) + 0.5
        offsets, step = (0, 4, 8), 16
    fields = [PointField(name=n, offset=o, datatype=7, count=1) for n, o in zip('xyz', offsets)]
    return dict(height=1, width=points, fields=fields, is_bigendian=False, point_step=step,
                row_step=step * points, is_dense=True, data=array.array('B', data.tobytes()))


def depth_fields(side: int) -> dict:
    image = np.random.default_rng(0).integers(300, 20000, (side, side), dtype=np.uint16)
    return dict(height=side, width=side, encoding='16UC1', is_bigendian=0, step=2 * side,
                data=array.array('B', image.tobytes()))


CASES = {
    '15M-point clouds, x y z at offset 0, point_step 4 (57 MB)': ('points', lambda: cloud_fields(15_000_000, True)),
    '4000x4000 16UC1 depth images (31 MB)': ('depth_image', lambda: depth_fields(4000)),
    '5M-point x y z intensity clouds (76 MB)': ('points', lambda: cloud_fields(5_000_000, False)),
}


def proc_status(pid: int) -> dict:
    with open(f'/proc/{pid}/status') as f:
        return {k: int(v.split()[0]) * 1024 for k, v in (line.split(':', 1) for line in f) if k in ('VmRSS', 'VmHWM')}


class Client:
    """Reference publisher and /diagnostics recorder, in this process."""

    def __init__(self, domain: int, source: str):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, PointCloud2
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('bench_references', context=self.context)
        kind, topic = (Image, 'reference/depth') if source == 'depth_image' else (PointCloud2, 'reference/points')
        self.kind = kind
        self.pub = self.node.create_publisher(kind, topic, qos_profile_sensor_data)
        self.diagnostics, self.arrivals = {}, []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        threading.Thread(target=self._spin, daemon=True).start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the context went first
            pass

    def _on_diagnostics(self, msg):
        # when the node's executor published it (its clock, not this busy process's arrival time)
        self.arrivals.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
        self.diagnostics = {kv.key: kv.value for kv in msg.status[0].values}

    def publish(self, stamp_s: int, fields: dict):
        msg = self.kind(**fields)
        msg.header.stamp.sec, msg.header.frame_id = stamp_s, 'sensor'
        self.pub.publish(msg)

    def handled(self) -> int:
        return sum(int(self.diagnostics.get(k, 0)) for k in ('references_received', 'references_rejected'))

    def close(self):
        import rclpy
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def run_case(model: str, source: str, make_fields, pythonpath: str, count: int = 10) -> dict:
    sys.path.insert(0, REPO)
    from depth_anything_ros.ros.environment import use_ros_environment
    from depth_anything_ros.ros.process_graph import RosGraph
    domain = random.randint(120, 200)
    use_ros_environment(domain)
    fields = make_fields()
    os.chdir(os.path.dirname(pythonpath))   # `python -m` puts the working directory before PYTHONPATH
    with RosGraph(domain, extra_env={'PYTHONPATH': pythonpath}) as graph:
        command = ['prlimit', f'--as={CAP_BYTES}', *graph.node_command(
            '-p', f'model_path:={model}', '-p', f'metric_reference:={source}', '-p', 'diagnostics_period:=0.5')]
        node = graph.start('node', command)
        client = Client(domain, source)
        try:
            deadline = time.monotonic() + 120
            while (not client.diagnostics or not client.pub.get_subscription_count()) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            before = proc_status(node.pid)
            start_stamp = time.time()
            for i in range(count):
                client.publish(100 + i, fields)
                time.sleep(0.1)
            progress, handled = time.monotonic(), 0
            while client.handled() < count and time.monotonic() - progress < 10 and node.poll() is None:
                if client.handled() > handled:   # best effort: a reference may be lost; stop once none comes
                    progress, handled = time.monotonic(), client.handled()
                time.sleep(0.2)
            time.sleep(1.5)
            alive = node.poll() is None
            after = proc_status(node.pid) if alive else {}
            during = [t for t in client.arrivals if t >= start_stamp]
            gaps = np.diff([start_stamp, *during]) if during else [time.time() - start_stamp]
            return {'rss_before': before['VmRSS'], 'peak': after.get('VmHWM', float('nan')),
                    'rss_after': after.get('VmRSS', float('nan')), 'max_gap_s': float(np.max(gaps)),
                    'handled': client.handled(), 'alive': alive,
                    'received': client.diagnostics.get('references_received', '?'),
                    'rejected': client.diagnostics.get('references_rejected', '?')}
        finally:
            client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True, help='a model the node opens (the tiny test model will do)')
    parser.add_argument('--baseline', help='another source tree to run the same cases with, for comparison')
    parser.add_argument('--cases', default='all', help='comma list of case numbers (1-3), or all')
    parser.add_argument('--count', type=int, default=10, help='references per case (the attack sent 10)')
    args = parser.parse_args()
    trees = [('this tree', REPO)] + ([('baseline', os.path.abspath(args.baseline))] if args.baseline else [])
    cases = list(CASES.items())
    if args.cases != 'all':
        cases = [cases[int(n) - 1] for n in args.cases.split(',')]
    print(f'node: {args.count} references per case, one node per case and tree, address space capped at '
          f'{CAP_BYTES / 2**30:.0f} GiB; memory in MiB (VmRSS before, VmHWM peak, VmRSS after)')
    for name, (source, make_fields) in cases:
        print(f'\n{name} ({source}):')
        for label, tree in trees:
            r = run_case(args.model, source, make_fields, tree, args.count)
            print(f'  {label:<9} rss {r["rss_before"] / MB:6.0f} -> peak {r["peak"] / MB:6.0f} -> after '
                  f'{r["rss_after"] / MB:6.0f}; longest /diagnostics gap {r["max_gap_s"]:.1f} s; '
                  f'references received {r["received"]}, rejected {r["rejected"]}'
                  f'{"" if r["alive"] else "; THE NODE DIED"}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
