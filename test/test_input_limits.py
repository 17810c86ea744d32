"""Bounds on what one frame may cost (issue 11, B4): the dynamic-model input cap and the
start-up memory estimate."""
import re

import pytest

from depth_anything_ros.core.processor_factory import dynamic_input_budget
from depth_anything_ros.core.params import ConfigError
from depth_anything_ros.core.placement import dynamic_input_limit, place


@pytest.mark.parametrize('hw, canvas', [
    ((720, 1280), (518, 924)),      # 16:9: the official recipe, untouched
    ((480, 640), (518, 686)),
    ((500, 1000), (518, 1036)),     # 2:1: the official size
    ((375, 1242), (518, 1722)),     # KITTI, 3.3:1: the official size
    ((100, 1000), (518, 2072)),     # was 518x5180
    ((64, 2000), (518, 2072)),      # was 518x16184
    ((3, 100000), (518, 2072)),     # was 518x17266662
    ((100000, 3), (2072, 518)),
])
def test_dynamic_input_is_at_most_4_to_1(hw, canvas):
    for mode in ('letterbox', 'crop', 'stretch'):
        p = place(hw, None, mode, 518)
        assert p.canvas_hw == canvas
        t = p.target
        assert 0 <= t.x and t.x + t.width <= canvas[1] and 0 <= t.y and t.y + t.height <= canvas[0]
        assert t.width >= 1 and t.height >= 1


def test_wider_frames_are_letterboxed_whole():
    p = place((100, 1000), None, 'letterbox', 518)
    assert (p.source.width, p.source.height) == (1000, 100)       # all of the image is seen
    assert (p.target.width, p.target.height) == (2072, 207)


def test_limit_follows_input_size():
    assert dynamic_input_limit(518) == (518, 2072)
    assert dynamic_input_limit(1036) == (1036, 4144)


def test_memory_estimate_is_logged_and_an_impossible_input_size_refused():
    line = dynamic_input_budget(518, 2, 16 * 2**30)
    assert '518x2072' in line and 'MiB (ViT-S)' in line and 'x 2 workers' in line
    with pytest.raises(ConfigError) as refused:
        dynamic_input_budget(4096, 1, 64 * 2**30)
    message = str(refused.value)
    assert message.startswith('parameter input_size: 4096 needs about')
    fit = int(re.search(r'use input_size <= (\d+)', message).group(1))
    dynamic_input_budget(fit, 1, 64 * 2**30)                      # the advice holds
    with pytest.raises(ConfigError):
        dynamic_input_budget(fit + 14, 1, 64 * 2**30)
