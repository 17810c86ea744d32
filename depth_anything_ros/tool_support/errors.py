"""Errors of the command-line tools (one line, exit code 2) and the size options they check."""
from __future__ import annotations


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


def parse_model_size(text: str) -> tuple:
    """--size HxW of a model to build or export: the patch size (14) must divide both sides."""
    return parse_size(text, '--size', 'HxW', multiple=14)
