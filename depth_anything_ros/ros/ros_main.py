"""Run a node: a start-up failure is one ERROR line from the ROS logger (so on /rosout) and exit 1;
Ctrl-C, once or twice, at any point, exits 0 without a traceback, on Humble and Jazzy alike."""
from __future__ import annotations

import os
import re
import signal
import sys
import threading


def rcl_arguments_error(exc: Exception) -> str:
    """rcl's 'failed to initialize rcl: Couldn't parse params file: ...' as one line naming the argument."""
    text = str(exc)
    found = re.search(r"Couldn't parse (.+?): '(.+?)'\. Error: (.+?)(?:, at |\n|$)", text)
    if not found:
        return f'cannot start: {text.splitlines()[0]}'
    what, rule, error = found.groups()
    form = (' (YAML: `/**:`, then `ros__parameters:`, then `name: value` lines)'
            if what == 'params file' else '')
    return f'cannot start: {rule}: {error.strip()}; fix the {what}{form}'


def _node_under_construction(exc: BaseException):
    """The node whose constructor raised: it still exists, so its logger reaches /rosout."""
    from rclpy.node import Node
    tb = exc.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get('self')
        if isinstance(candidate, Node):
            return candidate
        tb = tb.tb_next
    return None


def _fail(message: str, node=None) -> int:
    try:
        from rclpy.logging import get_logger
    except ImportError:  # rclpy itself cannot load (it needs numpy): a plain line then
        print(f'[ERROR] [depth_anything]: {message}', file=sys.stderr)
        return 1
    (node.get_logger() if node is not None else get_logger('depth_anything')).error(message)
    return 1


_interrupted = threading.Event()


def _on_interrupt(signum, frame):
    """Python's own Ctrl-C behaviour, remembered: rclpy chains its handler to this one, and an error
    that the interrupt caused (an import cut short, a context shut down) must not read as a failure."""
    _interrupted.set()
    raise KeyboardInterrupt


def _leave(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _leave_on_interrupt(code: int) -> None:
    """After the first Ctrl-C, another one means 'now': leave at once, without a traceback."""
    signal.signal(signal.SIGINT, lambda *_: _leave(code))


def _close(rclpy, node, code: int) -> bool:
    """Destroy the node and shut rclpy down; False if a thread is stuck in native code."""
    clean = True
    try:
        _leave_on_interrupt(code)
        if node is not None:
            clean = getattr(node, 'shutdown', lambda: True)() is not False
            node.destroy_node()
        rclpy.try_shutdown()
    except KeyboardInterrupt:  # the second Ctrl-C came before our handler was in place
        _leave(code)
    # All closed. Python's exit resets a handler of ours to the default, which a late Ctrl-C would
    # turn into death by SIGINT (rc -2); an ignored signal stays ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return clean


def _executor(context):
    """A single-threaded executor built with SIGINT held back: a Ctrl-C inside rclpy's Executor
    constructor leaves a half-built executor whose __del__ prints a traceback at exit
    ('has no attribute _sigint_gc'); held back, the signal arrives once it is whole."""
    from rclpy.executors import SingleThreadedExecutor
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return SingleThreadedExecutor(context=context)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def run_node(make_node, args=None) -> int:
    """Init rclpy, build the node (a ConfigError there logs its message and exits 1), spin."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from ..core.dependencies import MissingDependency
    from ..core.params import ConfigError
    signal.signal(signal.SIGINT, _on_interrupt)
    try:
        rclpy.init(args=args)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # RCLError: an unreadable --params-file or a malformed -p
        return _fail(rcl_arguments_error(exc))
    node = None
    code = 0
    try:
        node = make_node()
        executor = _executor(node.context)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C: Humble raises the first, Jazzy the second; during start-up too
    except SystemExit as stop:
        code = stop.code or 0
    except Exception as exc:  # ConfigError included
        if _interrupted.is_set() or not rclpy.ok():
            pass  # Ctrl-C while the node was being built: what failed after it is no failure of ours
        elif isinstance(exc, (ConfigError, MissingDependency)):
            code = _fail(f'cannot start: {exc}', _node_under_construction(exc))
        else:
            raise
    finally:
        clean = _close(rclpy, node, code)
    if not clean:
        # A thread is still inside native code (a hung driver call): interpreter teardown would
        # free what it uses and abort. Everything of ours is closed; leave without teardown.
        _leave(code)
    return code


def depth_node() -> int:
    """The `depth_node` executable: Ctrl-C while the node's imports load exits 0 as well; a
    missing numpy or OpenCV is one line saying what to install."""
    from ..core.dependencies import missing_dependency
    signal.signal(signal.SIGINT, _on_interrupt)
    try:
        from .node import DepthNode
    except KeyboardInterrupt:
        return 0
    except ImportError as exc:
        if _interrupted.is_set():  # Python 3.10: an interrupted extension import reads as this
            return 0
        missing = missing_dependency(exc)
        if missing is None:
            raise
        return _fail(f'cannot start: {missing}')
    return run_node(DepthNode)


if __name__ == '__main__':
    sys.exit(depth_node())
