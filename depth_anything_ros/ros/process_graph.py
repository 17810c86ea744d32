"""Start ROS 2 processes side by side without `ros2 launch` (not on PyPI): demo and tests."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading

from .environment import ros_environment


class RosGraph:
    """Processes sharing one ROS domain (ros_environment's); stopped with SIGINT, like Ctrl-C, on exit."""

    def __init__(self, domain_id: int | None = None, extra_env: dict | None = None):
        self.env = {**ros_environment(domain_id), **(extra_env or {})}
        self.procs = {}
        self.output = {}

    @staticmethod
    def node_command(*ros_args) -> list:
        return [sys.executable, '-m', 'depth_anything_ros.ros.ros_main', '--ros-args', *ros_args]

    @staticmethod
    def cli_command(*args) -> list:
        return [sys.executable, '-m', 'depth_anything_ros.cli', *args]

    def start(self, name: str, command: list, echo: bool = False) -> subprocess.Popen:
        proc = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        self.procs[name] = proc
        self.output[name] = []
        threading.Thread(target=self._drain, args=(name, proc, echo), daemon=True).start()
        return proc

    def _drain(self, name, proc, echo):
        for line in proc.stdout:
            self.output[name].append(line)
            if echo:
                print(line, end='', flush=True)

    def text(self, name: str) -> str:
        return ''.join(self.output[name])

    def stop(self, timeout: float = 10.0) -> dict:
        """SIGINT every process still running; return exit codes (killed ones: -9)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = -9
        return codes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
