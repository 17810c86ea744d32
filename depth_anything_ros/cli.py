"""`depth-anything-ros`: the command-line tools, one module each under tools/."""
from __future__ import annotations

import argparse
import importlib
import sys

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
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CliError as exc:
        print(f'depth-anything-ros {args.command}: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
