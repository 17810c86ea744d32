"""The tools' size options. A tensor is HxW and a camera WxH, so the option's name says which:
--model-size HxW (a model's input), --camera-size WxH (a camera's frames); never a bare --size."""
from __future__ import annotations

from ..core.placement import PATCH
from .errors import CliError

MODEL_SIZE, CAMERA_SIZE = '--model-size', '--camera-size'


def parse_size(text: str, option: str, order: str, multiple: int = 1) -> tuple:
    """'518x686' -> (518, 686), in the order the option documents ('HxW' or 'WxH'); positive
    multiples of `multiple`, else CliError naming `option`."""
    try:
        a, b = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise CliError(f"{option} '{text}' is not {order}, e.g. {'518x686' if order == 'HxW' else '640x480'}") from None
    if a <= 0 or b <= 0 or a % multiple or b % multiple:
        need = 'positive' if multiple == 1 else f'positive multiples of {multiple}'
        raise CliError(f'{option} {a}x{b}: both sides must be {need}')
    return a, b


def model_size(text: str, multiple: int = PATCH) -> tuple:
    """--model-size HxW -> (h, w): a model's input (built, exported or calibrated for)."""
    return parse_size(text, MODEL_SIZE, 'HxW', multiple)


def camera_size(text: str, option: str = CAMERA_SIZE) -> tuple:
    """--camera-size WxH (or the WxH of `option`, e.g. --load WxH@rate) -> (w, h)."""
    return parse_size(text, option, 'WxH')


def camera_at_rate(text: str, option: str, example: str) -> tuple:
    """WxH@frames/s (bench --load, board-check --camera) -> ('WxH', frames/s); CliError naming
    `option` if it is not that."""
    try:
        size, rate = text.split('@')
        camera_size(size, option)
        return size, float(rate)
    except ValueError:
        raise CliError(f"{option} '{text}' is not WxH@frames/s, e.g. {example}") from None
