"""The node in a real ROS 2 graph: separate processes talking over Fast DDS."""
import os
import signal
import time

import cv2
import numpy as np
import psutil
import pytest

from depth_anything_ros.ros.environment import use_ros_environment
from depth_anything_ros.ros.process_graph import RosGraph

from helpers import hbm, hostile_images
from helpers.dds import domain_for
from helpers.frames import sample_bgr
from helpers.graph import node_and_probe
from helpers.ros_probe import Probe
from helpers.models import cached_model

pytestmark = pytest.mark.graph

W, H = 640, 480


def interrupt(proc, timeout: float = 60.0) -> int:
    """Ctrl-C a process: its exit code (the timeout catches a hang, it measures no speed)."""
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=timeout)


@pytest.fixture(scope='module')
def live(tiny_fixed_model):
    """A depth node (Humble-style field checks on, as everywhere: ros_environment) and a probe in one
    fresh domain."""
    with node_and_probe(tiny_fixed_model, 1) as (graph, probe):
        assert probe.wait_connected() and probe.warm_up(sample_bgr()), f'node never answered:\n{graph.text("node")}'
        yield graph, probe


def test_depth_and_colorized_for_each_encoding(live):
    graph, probe = live
    bgr = sample_bgr()
    for i, encoding in enumerate(('rgb8', 'bgr8', 'nv12')):
        stamp = 1_000_000_000 * (10 + i) + 123
        probe.publish(bgr, encoding, stamp)
        got = probe.wait_for(lambda: stamp in probe.stamps('depth') and stamp in probe.stamps('depth/colorized')
                             and stamp in probe.stamps('depth/camera_info'), timeout=30)
        assert got, f'no output for {encoding}:\n{graph.text("node")}'
    with probe.cond:
        depth = probe.received['depth'][-1]
        colorized = probe.received['depth/colorized'][-1]
        info = probe.received['depth/camera_info'][-1]
    assert (depth.encoding, depth.width, depth.height, depth.step) == ('32FC1', W, H, W * 4)
    assert (colorized.encoding, colorized.width, colorized.height) == ('bgr8', W, H)
    assert depth.header.frame_id == 'camera_optical_frame'
    values = np.frombuffer(depth.data, np.float32)
    assert np.isfinite(values).all() and values.std() > 0
    assert (info.width, info.height) == (W, H) and info.header.stamp == depth.header.stamp


def test_diagnostics_report_rates_latency_and_drops(live):
    """Values, not just keys: the counts follow frames this test sends, latencies are ordered."""
    graph, probe = live

    def settled():  # every frame received so far is published or counted as a drop
        diag = probe.latest_diagnostics()
        if 'frames_received' not in diag:
            return None
        drops = sum(int(v) for k, v in diag.items() if k.startswith('drops_'))
        return diag if int(diag['frames_received']) == int(diag['frames_published']) + drops else None

    assert probe.wait_for(lambda: settled() is not None, timeout=30), probe.latest_diagnostics()
    before = settled()
    stamp = 1_000_000_000 * 15  # after the encodings test's, before the bad-input test's
    probe.publish(sample_bgr(), 'bgr8', stamp)
    assert probe.wait_for(lambda: stamp in probe.stamps('depth'), timeout=60), graph.text('node')
    assert probe.wait_for(lambda: (settled() or {}).get('frames_published') not in (None, before['frames_published']),
                          timeout=30), probe.latest_diagnostics()
    diag = settled()
    assert int(diag['frames_published']) >= int(before['frames_published']) + 1
    assert int(diag['frames_received']) >= int(before['frames_received']) + 1
    p50, p95 = float(diag['inference_latency_p50_ms']), float(diag['inference_latency_p95_ms'])
    assert 0 < p50 <= p95
    assert float(diag['input_rate_hz']) >= 0 and float(diag['output_rate_hz']) >= 0
    assert diag['engine'] == 'onnxruntime' and diag['model'].endswith('.onnx')
    assert int(diag['worker_threads']) == 2  # the default pool, none replaced


def _bad_messages(bgr):
    good = dict(height=H, width=W, encoding='bgr8', step=W * 3)
    return {
        'wrong step': {**good, 'step': W * 3 - 1},
        'truncated data': {**good, 'height': H + 10},
        'unknown encoding': {**good, 'encoding': 'bayer_xyz9'},
        'zero size': {**good, 'width': 0, 'step': 0},
    }


def test_bad_input_is_counted_and_next_good_frame_processed(live):
    graph, probe = live
    bgr = sample_bgr()
    for i, (what, fields) in enumerate(_bad_messages(bgr).items()):
        probe.publish(bgr, 'bgr8', 1_000_000_000 * (20 + i), fields)
    good = 1_000_000_000 * 30
    probe.publish(bgr, 'bgr8', good)
    assert probe.wait_for(lambda: good in probe.stamps('depth'), timeout=60), graph.text('node')
    assert probe.wait_for(lambda: int(probe.latest_diagnostics().get('drops_bad_input', 0)) >= 4,
                          timeout=15), probe.latest_diagnostics()
    assert graph.procs['node'].poll() is None
    assert 'dropped an image' in graph.text('node')


def test_flood_of_10000_frames_keeps_memory_and_threads_flat(live):
    """10 000 frames at the publisher's top rate, far faster than inference."""
    graph, probe = live
    node = psutil.Process(graph.procs['node'].pid)
    bgr = sample_bgr()
    base = 1_000_000_000 * 100
    total, warm_up = 10_000, 500

    def flood(start, stop):
        for i in range(start, stop):
            probe.publish(bgr, 'bgr8', base + i * 1_000_000)

    def unaccounted():
        """Frames the node took in that were neither published nor counted as dropped."""
        diag = probe.latest_diagnostics()
        drops = sum(int(v) for k, v in diag.items() if k.startswith('drops_'))
        return int(diag['frames_received']) - int(diag['frames_published']) - drops

    def flood_and_settle(start, stop):
        """Offer frames, then wait until every frame the node received is accounted for
        (best-effort QoS may lose any frame, the last one included)."""
        received_before = int(probe.latest_diagnostics().get('frames_received', 0))
        flood(start, stop)
        assert probe.wait_for(lambda: unaccounted() == 0 and int(probe.latest_diagnostics()['frames_received'])
                              > received_before, timeout=60), probe.latest_diagnostics()

    flood_and_settle(0, warm_up)
    rss_warm, threads_warm = node.memory_info().rss, node.num_threads()
    started = time.monotonic()
    flood_and_settle(warm_up, total)
    rate = (total - warm_up) / (time.monotonic() - started)
    rss_end, threads_end = node.memory_info().rss, node.num_threads()
    stamps = [s for s in probe.stamps('depth') if s >= base]
    assert stamps and stamps == sorted(stamps), 'results left out of stamp order'
    diag = probe.latest_diagnostics()
    assert threads_end <= threads_warm, 'threads leaked'
    # Memory is a measurement, not a verdict here (allocator- and machine-dependent): printed.
    print(f"flood: {total} frames offered at {rate:.0f}/s; node received {diag['frames_received']}, "
          f"published {diag['frames_published']}, superseded {diag['drops_superseded']}; "
          f'RSS {rss_warm / 2**20:.0f} -> {rss_end / 2**20:.0f} MiB, threads {threads_warm} -> {threads_end}')


def test_sigint_mid_inference_exits_zero_quickly(tiny_fixed_model):
    with node_and_probe(tiny_fixed_model, 2, name='probe_sigint') as (graph, probe):
        assert probe.wait_connected() and probe.warm_up(sample_bgr()), graph.text('node')
        for i in range(5):
            probe.publish(sample_bgr(1280, 720), 'bgr8', 1_000_000_000 * (50 + i))
        assert probe.wait_for(lambda: len(probe.stamps('depth')) > 1, timeout=60), graph.text('node')
        probe.publish(sample_bgr(1280, 720), 'bgr8', 1_000_000_000 * 60)
        code = interrupt(graph.procs['node'])  # wherever the frame is: slot, worker or publisher
    assert code == 0, graph.text('node')
    assert 'Traceback' not in graph.text('node')


def test_no_inference_without_subscribers(tiny_fixed_model):
    with node_and_probe(tiny_fixed_model, 3, subscribe_outputs=False, name='probe_nosub') as (graph, probe):
        assert probe.wait_connected(outputs=False), graph.text('node')
        def dropped():
            return int(probe.latest_diagnostics().get('drops_no_subscribers', 0))
        for i in range(100):  # best effort: keep offering frames until the node has seen 5
            probe.publish(sample_bgr(), 'bgr8', 1_000_000_000 * (70 + i))
            if probe.wait_for(lambda: dropped() >= 5, timeout=0.2):
                break
        assert dropped() >= 5
        assert probe.latest_diagnostics()['inference_latency_p50_ms'] == 'nan'


def test_compressed_input_jpeg_and_png(tiny_fixed_model):
    with node_and_probe(tiny_fixed_model, 5, '-p', 'input_transport:=compressed',
                        name='probe_compressed', compressed=True) as (graph, probe):
        bgr = sample_bgr()
        assert probe.wait_connected() and probe.warm_up(bgr), graph.text('node')
        probe.publish_compressed(b'not an image', 'jpeg', 1_000_000_000 * 80)
        for i, ext in enumerate(('.jpg', '.png')):
            stamp = 1_000_000_000 * (81 + i)
            ok, data = cv2.imencode(ext, bgr)
            probe.publish_compressed(data.tobytes(), ext[1:].replace('jpg', 'jpeg'), stamp)
            assert probe.wait_for(lambda: stamp in probe.stamps('depth'), timeout=30), graph.text('node')
        with probe.cond:
            depth = probe.received['depth'][-1]
        assert (depth.width, depth.height) == (W, H)
        assert probe.wait_for(lambda: int(probe.latest_diagnostics().get('drops_bad_input', 0)) >= 1, timeout=5)


def test_metric_model_publishes_metres_millimetres_and_points(tiny_metric_model):
    from sensor_msgs.msg import Image as ImageMsg
    from sensor_msgs.msg import PointCloud2
    extra = (('depth/mm', ImageMsg), ('depth/points', PointCloud2))
    with node_and_probe(tiny_metric_model, 8, '-p', 'publish_points:=true', '-p', 'publish_depth_mm:=true',
                        '-p', 'points_decimation:=8', name='probe_metric', extra=extra) as (graph, probe):
        assert probe.wait_connected() and probe.warm_up(sample_bgr(), topics=('depth', 'depth/mm', 'depth/points')), \
            graph.text('node')
        stamp = 1_000_000_000 * 95
        probe.publish(sample_bgr(), 'bgr8', stamp)
        assert probe.wait_for(lambda: all(stamp in probe.stamps(t) for t in ('depth', 'depth/mm', 'depth/points')),
                              timeout=30), graph.text('node')
        with probe.cond:
            depth = next(m for m in probe.received['depth'] if m.header.stamp.sec == 95)
            mm = next(m for m in probe.received['depth/mm'] if m.header.stamp.sec == 95)
            cloud = next(m for m in probe.received['depth/points'] if m.header.stamp.sec == 95)
    assert 'metric depth in metres' in graph.text('node')
    assert "recipe 'official': resize_mode stretch, interpolation cubic" in graph.text('node')  # logged
    metres = np.frombuffer(depth.data, np.float32).reshape(H, W)
    assert np.nanmax(metres) <= 20.0 and np.nanmin(metres) > 0
    millimetres = np.frombuffer(mm.data, np.uint16).reshape(H, W)
    assert mm.encoding == '16UC1'
    assert np.abs(millimetres.astype(float) - metres * 1000).max() <= 0.5 + 1e-3
    assert cloud.width == ((H + 7) // 8) * ((W + 7) // 8) and [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb']
    z = np.frombuffer(cloud.data, np.float32).reshape(cloud.width, 4)[:, 2]
    assert np.allclose(np.sort(z), np.sort(metres[::8, ::8].ravel()))


def test_points_on_a_relative_model_fail_start_up(tiny_fixed_model):
    graph = RosGraph(domain_for(9))
    proc = graph.start('node', graph.node_command('-p', f'model_path:={tiny_fixed_model}',
                                                  '-p', 'publish_points:=true'))
    assert proc.wait(timeout=60) == 1
    graph.stop()
    assert 'need metric depth' in graph.text('node')


@pytest.mark.parametrize('variant', ['float_rgb', 'nv12'])
def test_hbm_engine_on_the_simulator(tiny_fixed_model, tmp_path, variant):
    """engine: hbm in the real graph; hbm_runtime is the ONNX Runtime-backed simulator. The float
    model is named like D-Robotics' depth_any.hbm: its start-up line names the official recipe."""
    model = str(tmp_path / ('depth_any.hbm' if variant == 'float_rgb' else f'{variant}.hbm'))
    hbm.sim.write_sim_model(model, tiny_fixed_model, variant)
    pythonpath = os.pathsep.join(filter(None, [hbm.SIM_ROOT, os.environ.get('PYTHONPATH')]))
    with node_and_probe(model, 6, '-p', 'engine:=hbm', '-p', 'bpu_priority:=200',
                        extra_env={'PYTHONPATH': pythonpath}, name=f'probe_hbm_{variant}') as (graph, probe):
        assert probe.wait_connected() and probe.warm_up(sample_bgr()), graph.text('node')
        stamp = 1_000_000_000 * 90
        probe.publish(sample_bgr(), 'nv12', stamp)
        assert probe.wait_for(lambda: stamp in probe.stamps('depth'), timeout=30), graph.text('node')
        with probe.cond:
            depth = probe.received['depth'][-1]
        values = np.frombuffer(depth.data, np.float32)
        assert (depth.width, depth.height) == (W, H) and np.isfinite(values).all() and values.std() > 0
        assert "hbm '" in graph.text('node')
        if variant == 'float_rgb':
            assert "recipe 'official': resize_mode stretch, interpolation cubic, normalization imagenet" \
                in graph.text('node')


@pytest.mark.parametrize('params, expected', [
    (['-p', 'input_transport:=hbmem'], 'hbm_img_msgs'),
    (['-p', 'engine:=hbm'], 'hobot-dnn'),
    (['-p', 'model_path:=/nonexistent/model.onnx'], "'/nonexistent/model.onnx' does not exist"),
    (['-p', "model_path:=''"], 'model_path is empty'),
    (['-p', 'workers:=0'], 'workers'),
    (['-p', 'resize_mode:=squash'], "resize_mode: 'squash' is not one of"),
    (['-p', 'recipe:=zscore'], "recipe: 'zscore' is not one of ['d_robotics_sample', 'da3', 'official']"),
    (['-p', 'nv12_range:=studio'], "nv12_range: 'studio' is not one of"),
    (['-p', 'engine:=tpu'], "engine: 'tpu' is not one of"),
    (['-p', 'providers:=[cuda]'], 'CUDAExecutionProvider'),
])
def test_bad_configuration_fails_start_up_with_a_message(tiny_fixed_model, params, expected):
    args = ['-p', f'model_path:={tiny_fixed_model}', *params]
    graph = RosGraph(domain_for(4))
    proc = graph.start('node', graph.node_command(*args))
    code = proc.wait(timeout=60)
    graph.stop()
    assert code == 1
    assert expected in graph.text('node')


def _rank2_model(path):
    """A valid ONNX file whose input is not an image batch (rank 2)."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [4, 4])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [4, 4])
    model = helper.make_model(helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', [x], [y]),
                              opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8  # ONNX Runtime reads IR <= 13; recent onnx.helper writes newer
    onnx.save(model, path)


@pytest.mark.parametrize('kind, expected', [
    ('truncated', 'ONNX Runtime cannot load'),
    ('not_a_model', 'ONNX Runtime cannot load'),
    ('rank2', 'is not a batch of 3-channel images'),
])
def test_bad_model_file_fails_start_up_naming_file_and_problem(tiny_fixed_model, model_dir, tmp_path, kind,
                                                             expected):
    path = str(tmp_path / f'{kind}.onnx')
    if kind == 'truncated':
        with open(tiny_fixed_model, 'rb') as src, open(path, 'wb') as dst:
            dst.write(src.read()[:5000])
    elif kind == 'not_a_model':
        with open(path, 'w') as f:
            f.write('this is not a model')
    else:
        path = cached_model(model_dir, 'rank2_input.onnx', _rank2_model)
    graph = RosGraph(domain_for(7))
    proc = graph.start('node', graph.node_command('-p', f'model_path:={path}'))
    code = proc.wait(timeout=60)
    graph.stop()
    assert code == 1
    assert expected in graph.text('node') and path in graph.text('node')


def _peak_rss(pid: int) -> int:
    with open(f'/proc/{pid}/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmHWM:'))


@pytest.mark.parametrize('transport', ['compressed', 'raw'])
def test_hostile_sizes_under_a_6_gb_address_space_cap(tiny_dynamic_model, transport):
    """Issue 11 B3/B4 as the attack sent them, the node capped at 6 GB of address space:
    B3 (compressed) a jpeg header claiming 20000x20000 and a 1-bit png of 20000x20000;
    B4 (raw rgb8 into a dynamic model) 100x1000, 64x2000 and 3x100000 frames. The node stays
    up, its peak RSS under 1.5 GB, and the next good frame is published."""
    import sys
    jpeg_claiming, png_1bit = hostile_images.jpeg_claiming, hostile_images.png_1bit
    capped = [sys.executable, '-c', 'import resource, runpy, sys; '
              'resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); '
              'runpy.run_module("depth_anything_ros.ros.ros_main", run_name="__main__")']
    domain = domain_for(13 if transport == 'raw' else 14)
    use_ros_environment(domain)
    graph = RosGraph(domain)
    # inference_timeout: a 10:1 frame fills the dynamic model's widest input, ~3x the tokens of the
    # warm-up frame and ~9x its attention, which on a busy machine outlasts the default's 5 s; the
    # watchdog is tested in test_node_faults, here every frame must reach the model.
    graph.start('node', [*capped, '--ros-args', '-p', f'model_path:={tiny_dynamic_model}', '-p',
                         f'input_transport:={transport}', '-p', 'diagnostics_period:=0.5', '-p',
                         'inference_timeout:=300.0'])
    probe = Probe(name=f'probe_capped_{transport}', compressed=transport == 'compressed')
    try:
        assert probe.wait_connected() and probe.warm_up(sample_bgr(), timeout=60), graph.text('node')
        if transport == 'compressed':
            for i, payload in enumerate((jpeg_claiming(20000, 20000), png_1bit(20000, 20000))):
                probe.publish_compressed(payload, 'jpeg' if i == 0 else 'png', 1_000_000_000 * (500 + i))
            hostile = 2
        else:
            for i, (h, w) in enumerate(((100, 1000), (64, 2000), (3, 100000))):
                probe.publish(np.full((h, w, 3), 100, np.uint8), 'rgb8', 1_000_000_000 * (500 + i))
                # one at a time: each must reach the model, not be superseded by the next
                assert probe.wait_for(lambda: 1_000_000_000 * (500 + i) in probe.stamps('depth'), timeout=60), \
                    graph.text('node')
            hostile = 0
        good = 1_000_000_000 * 600
        if transport == 'compressed':
            probe.publish_compressed(cv2.imencode('.jpg', sample_bgr())[1].tobytes(), 'jpeg', good)
        else:
            probe.publish(sample_bgr(), 'bgr8', good)
        assert probe.wait_for(lambda: good in probe.stamps('depth'), timeout=60), graph.text('node')
        assert graph.procs['node'].poll() is None
        assert probe.wait_for(lambda: int(probe.latest_diagnostics().get('drops_bad_input', -1)) == hostile,
                              timeout=10), probe.latest_diagnostics()
        peak = _peak_rss(graph.procs['node'].pid)
        print(f'{transport}: node peak RSS {peak / 2**20:.0f} MiB under a 6 GiB address-space cap')
        assert peak < 1.5 * 2**30
        assert 'inference_error' not in graph.text('node')
    finally:
        probe.close()
        graph.stop()
