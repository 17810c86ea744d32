"""pytest's hooks and the shared fixtures (test models built once per run, sample frames). What tests
import lives in helpers/; nothing here runs at import time."""
import os

import pytest

from helpers import dds, models

# Fixtures that build or load a test model: a test that uses one is in the slow tier.
MODEL_FIXTURES = ('model_dir', 'tiny_torch_model', 'official_torch_model')


def pytest_configure(config):
    """Before collection imports any test module: this run's DDS domains, and the package's ROS
    environment (Fast DDS profile, Humble's message field checks, the domain) for this process and every
    one a test starts, before any message import or participant."""
    from depth_anything_ros.ros.environment import use_ros_environment
    use_ros_environment(dds.claim_domains())


def pytest_collection_modifyitems(items):
    """Tiers (setup.cfg lists them): a module marks itself graph or slow, a test that uses a test model is
    slow; the rest is unit, which needs no PyTorch (dev_tools tests are never unit)."""
    for item in items:
        if any(name in item.fixturenames for name in MODEL_FIXTURES):
            item.add_marker(pytest.mark.slow)
        if not any(item.get_closest_marker(m) for m in ('graph', 'slow', 'dev_tools')):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope='module')
def image():
    """The package's sample camera frame, 1280x720 BGR (one copy per test module)."""
    import cv2
    from depth_anything_ros.core.paths import SAMPLE_IMAGE
    bgr = cv2.imread(SAMPLE_IMAGE)
    assert bgr is not None and bgr.shape == (720, 1280, 3)
    return bgr


@pytest.fixture(scope='session')
def sequence_video(tmp_path_factory) -> str:
    """An MP4 of the 5-frame camera sequence in test/data, written at test time (MPEG-4 part 2,
    which every OpenCV build with FFmpeg writes and reads)."""
    import cv2

    from helpers.data import SEQUENCE
    path = str(tmp_path_factory.mktemp('video') / 'redwood_sequence.mp4')
    frames = [cv2.imread(f) for f in SEQUENCE]
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10.0, (w, h))
    assert writer.isOpened(), 'OpenCV cannot write MP4 here'
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
    """Where test models are built; DEPTH_TEST_MODELS keeps them across runs and hands them to
    an environment without PyTorch (the board job in .ci/run)."""
    kept = os.environ.get('DEPTH_TEST_MODELS')
    return models.kept_model_dir(kept) if kept else str(tmp_path_factory.mktemp('models'))


@pytest.fixture(scope='session')
def tiny_dynamic_model(model_dir):
    """Tiny DA-V2 architecture, dynamic H/W, seed 0."""
    return models.tiny_model(model_dir, 'tiny_dynamic.onnx', None)


@pytest.fixture(scope='session')
def tiny_fixed_model(model_dir):
    """Tiny DA-V2 architecture, fixed 1x3x518x686 like the S100 model, seed 0."""
    return models.tiny_model(model_dir, 'tiny_518x686.onnx', (518, 686))


@pytest.fixture(scope='session')
def tiny_small_model(model_dir):
    """Tiny DA-V2, fixed 140x182 (multiples of 14, even): cheap for tests that run it many times."""
    return models.tiny_model(model_dir, 'tiny_140x182.onnx', (140, 182))


@pytest.fixture(scope='session')
def tiny_seed1_model(model_dir):
    """tiny_fixed_model's twin with other weights (seed 1)."""
    return models.tiny_model(model_dir, 'tiny_518x686_seed1.onnx', (518, 686), seed=1)


@pytest.fixture(scope='session')
def tiny_metric_model(model_dir):
    """Tiny DA-V2 with the metric head (20 m), fixed 518x686; named like the indoor metric model."""
    return models.tiny_model(model_dir, 'tiny_metric_hypersim_518x686.onnx', (518, 686), metric_max_depth=20.0)


@pytest.fixture(scope='session')
def da3_metric_model(model_dir):
    """Tiny DA3Metric-Large (the official network, random weights, seed 6), fixed 378x504 (the official
    input of 4:3 cameras), named as models.yaml knows it: depth (canonical) and sky outputs."""
    return models.da3_model(model_dir, 'da3metric-large', (378, 504), 6)


@pytest.fixture(scope='session')
def da3_small_model(model_dir):
    """Tiny DA3-Small (seed 0), fixed 378x504: depth and depth_conf outputs."""
    return models.da3_model(model_dir, 'da3-small', (378, 504), 0)


@pytest.fixture(scope='session')
def tiny_torch_model():
    """The PyTorch model whose weights the tiny ONNX models carry (same seed)."""
    from depth_anything_ros.torch_models.build import build_torch_model
    return build_torch_model(tiny=True, seed=0)


@pytest.fixture(scope='session')
def official_torch_model():
    """The tiny network as the official DA-V2 code computes it (helpers.models.official_dinov2_pos_encoding)."""
    return models.tiny_model_with(models.official_dinov2_pos_encoding)
