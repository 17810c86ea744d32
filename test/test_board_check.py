"""`board-check` against the hbm_runtime stand-in (test/hbm_sim: the float ONNX playing the compiled
model), and the content of the report it writes: every section there, measured, and the recipe
verdict following the model's calibration.

To make that verdict checkable here, the stand-in gets an int16 input quantizer like the compiled
model's: calibrated for the D-Robotics sample's per-pixel z-score (|x| <= 1.42) it clips ImageNet
input (|x| up to 2.64), so the report must name d_robotics_sample; calibrated for ImageNet's range
it must name official. What the real BPU does is for the board to tell."""
import os
import re
import sys

import pytest

from helpers.dds import domain_for

from depth_anything_ros import cli

from helpers.hbm import SIM_ROOT, sim

pytestmark = [pytest.mark.slow, pytest.mark.graph]
DOMAIN = domain_for(10)
INT16_MAX = 32767


def stand_in(tmp_path, onnx, input_range: float) -> str:
    """A depth_any.hbm stand-in whose float input is int16, quantized per tensor over +-input_range."""
    return sim.write_sim_model(tmp_path / 'depth_any.hbm', onnx, 'float_rgb',
                               input_quant={'scale': [input_range / INT16_MAX], 'zero_point': [0]})


@pytest.fixture
def runtime(monkeypatch):
    """The stand-in for this process and for the node process the report starts."""
    monkeypatch.setitem(sys.modules, 'hbm_runtime', sim)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [SIM_ROOT,
                                                                     os.environ.get('PYTHONPATH')])))
    return sim


def board_check(tmp_path, model, float_model, *options) -> tuple:
    out = tmp_path / 'report.md'
    code = cli.main(['board-check', '--model', model, '--float-model', float_model, '--out', str(out),
                     '--frames', '2', '--threads', '1,2', '--domain', str(DOMAIN), *options])
    return code, out.read_text()


def section(report: str, title: str) -> str:
    found = re.search(rf'^## {re.escape(title)}\n(.*?)(?=^## |\Z)', report, re.S | re.M)
    assert found, f'no section {title!r} in:\n{report}'
    return found.group(1)


def table_rows(text: str) -> dict:
    """First cell -> the other cells, for every row of the Markdown tables in text."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if line.startswith('|') and not set(cells[0]) <= set('-'):
            rows[cells[0]] = cells[1:]
    return rows


def test_full_report_against_the_stand_in(runtime, tmp_path, tiny_fixed_model):
    model = stand_in(tmp_path, tiny_fixed_model, 1.5)   # calibrated for the z-score's range
    code, report = board_check(tmp_path, model, tiny_fixed_model, '--seconds', '3', '--camera', '320x240@10')
    assert code == 0, report
    assert report.startswith('# depth_anything_ros board check') and 'Failed' not in report
    assert re.search(r'compiled model: `.*depth_any\.hbm`, \d+ bytes, sha256 `[0-9a-f]{64}`', report)
    # the photos shipped with the package, when none are given
    for photo in ('robot_camera.jpg', 'outdoor_dav2_demo08.jpg', 'indoor_redwood_00000.jpg', 'office_tum.jpg'):
        assert f'`{photo}`' in report

    runtime_part = section(report, 'Runtime and model')
    assert 'library `sim-0.1`' in runtime_part and 'BPU cores [0]' in runtime_part
    tensors = table_rows(runtime_part)
    shape, dtype, quant, strides, _ = tensors['`pixel_values`']
    assert (shape, dtype) == ('[1, 3, 518, 686]', 'S16')
    assert quant.startswith('SCALE, axis 0, 1 scale(s) [4.57778e-05]')
    assert strides == '[2132088, 710696, 1372, 2]'
    assert tensors['`predicted_depth`'][:3] == ['[1, 518, 686]', 'F32', 'none']

    agreement = section(report, 'Agreement with the float model, per recipe')
    rows = table_rows(agreement)
    same = {name: float(rows[f'`{name}`'][0]) for name in ('official', 'd_robotics_sample')}
    official_input = {name: float(rows[f'`{name}`'][2]) for name in ('official', 'd_robotics_sample')}
    assert same['d_robotics_sample'] > 0.9999 > same['official']       # ImageNet input clipped at 1.5
    assert official_input['official'] == pytest.approx(same['official'])
    assert official_input['d_robotics_sample'] < 0.9                    # luminance lost: other depth
    assert 'agrees best with recipe **`d_robotics_sample`**' in agreement
    assert len([r for r in rows if r.endswith('.jpg`')]) == 4           # one row per photo

    perf = table_rows(section(report, 'BPU throughput by caller threads'))
    for threads in ('1', '2'):
        frames, total_ms, latency_ms, fps = (float(v) for v in perf[threads])
        assert frames == 2 and total_ms > 0 and latency_ms > 0 and fps == pytest.approx(2000 / total_ms, rel=0.01)

    stages = table_rows(section(report, 'CPU per stage at 1920x1080'))
    assert list(stages)[1:] == ['decode', 'preprocess', 'postprocess', 'colorize', 'message fill', 'sum']
    assert all(float(v) >= 0 for row in stages.values() if row[0] != 'bgr8 wall ms' for v in row)
    assert float(stages['preprocess'][0]) > 0 and float(stages['preprocess'][2]) > 0

    node = table_rows(section(report, 'Camera -> node -> sink'))
    workers, offered, published, p50, p95, drops = node['320x240 nv12 @ 10/s']
    assert workers == '2' and float(offered) > 5 and float(published) > 0 and 0 < float(p50) <= float(p95)


def test_verdict_follows_the_calibration(runtime, tmp_path, tiny_fixed_model):
    model = stand_in(tmp_path, tiny_fixed_model, 3.0)   # room for ImageNet's range: nothing clips
    code, report = board_check(tmp_path, model, tiny_fixed_model, '--what', 'agreement')
    assert code == 0, report
    rows = table_rows(section(report, 'Agreement with the float model, per recipe'))
    assert float(rows['`official`'][0]) > 0.9999 and float(rows['`official`'][2]) > 0.9999
    assert '## Runtime and model' not in report and '## Camera -> node -> sink' not in report


def test_a_failing_section_is_reported_and_the_others_go_on(runtime, tmp_path, tiny_fixed_model, capsys):
    model = stand_in(tmp_path, tiny_fixed_model, 3.0)
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes(b'not an onnx model')
    code, report = board_check(tmp_path, model, str(broken), '--what', 'runtime,agreement,throughput')
    assert code == 1
    assert section(report, 'Agreement with the float model, per recipe').strip().startswith('**Failed**: `')
    assert 'Failed' not in section(report, 'Runtime and model')
    assert '| 2 | 2 |' in section(report, 'BPU throughput by caller threads')
    assert "failed: Agreement with the float model, per recipe" in capsys.readouterr().out


def test_without_hbm_runtime_one_line_names_the_install(monkeypatch, tmp_path, tiny_fixed_model, capsys):
    monkeypatch.setitem(sys.modules, 'hbm_runtime', None)   # import raises ImportError
    model = sim.write_sim_model(tmp_path / 'depth_any.hbm', tiny_fixed_model, 'float_rgb')
    assert cli.main(['board-check', '--model', model, '--float-model', tiny_fixed_model,
                     '--out', str(tmp_path / 'r.md')]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install hbm-runtime' in err[0] and err[0].startswith('depth-anything-ros board-check')
    assert not (tmp_path / 'r.md').exists()


@pytest.mark.parametrize('option, message', [(['--what', 'runtime,perf'], '--what'),
                                             (['--threads', '0'], '--threads'),
                                             (['--camera', '640x480'], '--camera'),
                                             (['--out', '/nonexistent/folder/r.md'], "cannot write --out")])
def test_bad_options(runtime, tmp_path, tiny_fixed_model, capsys, option, message):
    model = stand_in(tmp_path, tiny_fixed_model, 3.0)
    assert cli.main(['board-check', '--model', model, '--float-model', tiny_fixed_model, *option]) == 2
    assert message in capsys.readouterr().err
