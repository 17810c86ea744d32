"""`depth-anything-ros`: the command-line tools, one module each under tools/."""
from __future__ import annotations

import argparse
import importlib
import sys

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


class CliError(Exception):
    """A bad path or argument: printed as one line, exit code 2."""


def parse_size(text: str, option: str, order: str = 'HxW', multiple: int = 1) -> tuple:
    """'518x686' -> (518, 686), in the order the option documents; positive multiples of `multiple`."""
    try:
        a, b = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise CliError(f"{option} '{text}' is not {order}, e.g. {'518x686' if order == 'HxW' else '640x480'}") from None
    if a <= 0 or b <= 0 or a % multiple or b % multiple:
        need = 'positive' if multiple == 1 else f'positive multiples of {multiple}'
        raise CliError(f'{option} {a}x{b}: both sides must be {need}')
    return a, b


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
    # Through the package's module, so that tools raise the same CliError class main() catches.
    from depth_anything_ros.cli import main as package_main
    sys.exit(package_main())
