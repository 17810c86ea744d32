"""`depth-anything-ros`: the command-line tools, one module each under tools/."""
from __future__ import annotations

import argparse
import importlib
import sys

from .core.dependencies import MissingDependency, missing_dependency
from .tool_support.errors import CliError

# Each module defines HELP, add_arguments(parser) and run(args) -> exit code.
# Modules import heavy dependencies (torch, rclpy) inside run(), so --help is instant.
SUBCOMMANDS = {
    'make-test-model': 'make_test_model',
    'demo': 'demo',
    'camera': 'camera',
    'sink': 'sink',
    'bench': 'bench',
    'compare': 'compare',
    'board-check': 'board_check',
    'calibration-data': 'calibration',
    'infer': 'infer',
    'eval': 'eval',
    'export': 'export',
    'models': 'models',
    'bag': 'bag',
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='depth-anything-ros',
                                     description='Depth Anything V2 for ROS 2: tools on the node\'s core.')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(f'.tools.{module_name}', __package__)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    """Exit codes: 0 done, 1 something to install (one line says what), 2 a bad argument."""
    try:
        args = build_parser().parse_args(argv)
    except ImportError as exc:  # numpy or OpenCV, which the options' defaults already need
        return _missing(exc, 'depth-anything-ros')
    try:
        return args.run(args)
    except CliError as exc:
        print(f'depth-anything-ros {args.command}: {exc}', file=sys.stderr)
        return 2
    except (ImportError, MissingDependency) as exc:
        return _missing(exc, f'depth-anything-ros {args.command}')
    except KeyboardInterrupt:
        return 130


def _missing(exc: Exception, prefix: str) -> int:
    missing = missing_dependency(exc)
    if missing is None:
        raise exc
    print(f'{prefix}: {missing}', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
