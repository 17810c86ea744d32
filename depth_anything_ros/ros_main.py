"""Run a node until Ctrl-C or SystemExit; Ctrl-C exits 0 on Humble and Jazzy alike."""
from __future__ import annotations


def run_node(make_node, args=None) -> int:
    """Init rclpy, build the node (a ConfigError there exits 1 with its message), spin."""
    import os
    import sys

    import rclpy
    from rclpy.executors import ExternalShutdownException

    from .params import ConfigError
    rclpy.init(args=args)
    node = None
    code = 0
    clean = True
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C: Humble raises the first, Jazzy the second
    except SystemExit as stop:
        code = stop.code or 0
    except ConfigError as exc:
        print(f'cannot start: {exc}', file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            clean = getattr(node, 'shutdown', lambda: True)() is not False
            node.destroy_node()
        rclpy.try_shutdown()
    if not clean:
        # A thread is still inside native code (a hung driver call): interpreter teardown would
        # free what it uses and abort. Everything of ours is closed; leave without teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
