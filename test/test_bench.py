"""`depth-anything-ros bench`: it runs the node's FrameProcessor and a real node, and prints numbers.

Speed is printed, never asserted: these tests check that every table is there, that its
numbers are measurements (positive, finite), and that the graph run got frames from a real node.
"""
import re

import pytest

from helpers.dds import domain_for

from depth_anything_ros import cli

pytestmark = pytest.mark.slow


def _numbers(line: str) -> list:
    return [float(v) for v in re.findall(r'\d+\.\d+', line)]


def test_stage_and_thread_tables(tiny_fixed_model, capsys):
    assert cli.main(['bench', '--model', tiny_fixed_model, '--what', 'stages,threads', '--frames', '2',
                     '--threads', '1,2', '--camera-size', '320x240']) == 0
    out = capsys.readouterr().out
    stages = {line.split()[0]: _numbers(line) for line in out.splitlines()
              if re.match(r'\s+(decode|preprocess|postprocess|colorize|message fill|sum)\s', line)}
    assert set(stages) == {'decode', 'preprocess', 'postprocess', 'colorize', 'message', 'sum'}
    # wall and CPU of the official recipe, then of the fast options measured in the same run
    assert re.search(r'official\s+fast options', out)
    assert all(len(v) == 4 and all(x >= 0 for x in v) for v in stages.values())
    assert all(stages[k][i] > 0 for k in ('preprocess', 'postprocess') for i in range(4))
    assert re.search(r'compiled passes: (baseline|avx2|avx512) variant', out)
    spread = _numbers(next(line for line in out.splitlines() if 'p25-p75' in line))
    assert len(spread) == 4 and spread[0] <= spread[1] and spread[2] <= spread[3]
    rows = [line.split() for line in out.splitlines() if re.match(r'\s+[12]\s+2\s', line)]
    assert [r[0] for r in rows] == ['1', '2'] and all(float(r[-1]) > 0 for r in rows)


def test_stage_table_of_a_chosen_instruction_set(tiny_fixed_model, capsys):
    """--instruction-set times that variant of the compiled passes, and leaves the process's choice as it was;
    a name that is not one (or not this CPU's) is a bad argument."""
    from depth_anything_ros.core import kernels
    before = kernels.instruction_set()
    common = ['bench', '--model', tiny_fixed_model, '--what', 'stages', '--frames', '2', '--camera-size', '320x240']
    assert cli.main(common + ['--instruction-set', 'baseline']) == 0
    assert 'compiled passes: baseline variant' in capsys.readouterr().out
    assert kernels.instruction_set() == before
    assert cli.main(common + ['--instruction-set', 'sse5']) == 2
    assert "--instruction-set: instruction set 'sse5' is not" in capsys.readouterr().err
    assert kernels.instruction_set() == before


@pytest.mark.graph
def test_graph_run_measures_a_real_node(tiny_fixed_model, capsys):
    assert cli.main(['bench', '--model', tiny_fixed_model, '--what', 'graph', '--frames', '2',
                     '--seconds', '4', '--camera-rate', '15', '--domain', str(domain_for(15))]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith('graph:'))
    end_to_end, bare, ratio = _numbers(line)[0], _numbers(line)[1], _numbers(line)[-1]
    assert end_to_end > 0 and bare > 0
    # the ratio of the unrounded rates: within what rounding both to 2 decimals (and it to 3) allows
    assert (end_to_end - 0.005) / (bare + 0.005) - 5e-4 <= ratio <= (end_to_end + 0.005) / (bare - 0.005) + 5e-4, line
