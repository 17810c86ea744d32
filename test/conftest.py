"""Shared fixtures: test models built once per run, the real images in test/data."""
import os

import pytest

from depth_anything_ros.ros.environment import use_ros_environment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOMAINS_PER_RUN = 16


def _claim_domains() -> int:
    """The first of DOMAINS_PER_RUN DDS domains no other test run on this machine holds.

    Two runs on one domain see each other's frames (a second copy of the suite, a developer's
    run beside CI). Each run holds an exclusive lock on its block for its whole life; the lock
    goes with the process, however it ends."""
    import fcntl
    import tempfile
    for block in range(96 // DOMAINS_PER_RUN):           # domains 1-96, all valid on every RMW
        handle = open(os.path.join(tempfile.gettempdir(), f'depth_anything_ros-domains-{block}.lock'), 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _claim_domains.handle = handle                    # held until the process exits
        return 1 + block * DOMAINS_PER_RUN
    raise RuntimeError(f'all {96 // DOMAINS_PER_RUN} blocks of DDS domains are held by other test runs')


FIRST_DOMAIN = _claim_domains()
# The package's ROS environment (Fast DDS profile, Humble's message field checks, this run's domain) for
# this process and every one a test starts: before any test imports a message or creates a participant.
use_ros_environment(FIRST_DOMAIN)


def domain_for(offset: int) -> int:
    """A DDS domain of this run's own (offset 0 is the in-process tests' default)."""
    assert 0 <= offset < DOMAINS_PER_RUN, offset
    return FIRST_DOMAIN + offset
TEST_DATA = os.path.join(REPO, 'test', 'data')  # real images and depth maps: see its PROVENANCE.md
SEQUENCE = [os.path.join(TEST_DATA, 'redwood_synthetic', 'color', f'{i:05d}.jpg') for i in range(5)]


def data_file(relpath: str) -> str:
    """A file of test/data (part of the repository: tests need nothing beside it)."""
    path = os.path.join(TEST_DATA, relpath)
    if not os.path.exists(path):
        pytest.fail(f'test data {path} is missing from the checkout')
    return path


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
    path = str(tmp_path_factory.mktemp('video') / 'redwood_sequence.mp4')
    frames = [cv2.imread(f) for f in SEQUENCE]
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10.0, (w, h))
    assert writer.isOpened(), 'OpenCV cannot write MP4 here'
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def pytest_collection_modifyitems(items):
    """Tiers (setup.cfg lists them): a module marks itself graph or slow; the rest is unit."""
    for item in items:
        if not any(item.get_closest_marker(m) for m in ('graph', 'slow')):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
    """Where test models are built; DEPTH_TEST_MODELS keeps them across runs and hands them to
    an environment without PyTorch (the board job in .ci/run)."""
    kept = os.environ.get('DEPTH_TEST_MODELS')
    if kept:  # one subfolder per version of the builder: a changed builder never reuses old models
        import hashlib
        with open(os.path.join(REPO, 'depth_anything_ros', 'torch_models', 'build.py'), 'rb') as f:
            kept = os.path.join(kept, hashlib.sha256(f.read()).hexdigest()[:12])
        os.makedirs(kept, exist_ok=True)
        return kept
    return str(tmp_path_factory.mktemp('models'))


def cached_model(model_dir: str, name: str, build) -> str:
    """model_dir/name, made by build(path) unless already there. Building needs PyTorch or onnx,
    which the board job's Python lacks: it gets the files the main job built (DEPTH_TEST_MODELS)."""
    path = os.path.join(model_dir, name)
    if not os.path.exists(path):
        try:
            build(path + '.part')
        except ImportError as exc:
            pytest.fail(f'test model {path} is missing and cannot be built here ({exc}): build it in an '
                        'environment with PyTorch and onnx, with DEPTH_TEST_MODELS set to the same folder')
        os.replace(path + '.part', path)
    return path


def _build(model_dir, name, size_hw, tiny, metric_max_depth=None, seed=0):
    def build(path):
        from depth_anything_ros.torch_models.build import make_test_model
        make_test_model(path, size_hw=size_hw, tiny=tiny, seed=seed, metric_max_depth=metric_max_depth)
    return cached_model(model_dir, name, build)


@pytest.fixture(scope='session')
def tiny_dynamic_model(model_dir):
    """Tiny DA-V2 architecture, dynamic H/W, seed 0."""
    return _build(model_dir, 'tiny_dynamic.onnx', None, True)


@pytest.fixture(scope='session')
def tiny_fixed_model(model_dir):
    """Tiny DA-V2 architecture, fixed 1x3x518x686 like the S100 model, seed 0."""
    return _build(model_dir, 'tiny_518x686.onnx', (518, 686), True)


@pytest.fixture(scope='session')
def tiny_small_model(model_dir):
    """Tiny DA-V2, fixed 140x182 (multiples of 14, even): cheap for tests that run it many times."""
    return _build(model_dir, 'tiny_140x182.onnx', (140, 182), True)


@pytest.fixture(scope='session')
def tiny_seed1_model(model_dir):
    """tiny_fixed_model's twin with other weights (seed 1)."""
    return _build(model_dir, 'tiny_518x686_seed1.onnx', (518, 686), True, seed=1)


@pytest.fixture(scope='session')
def tiny_torch_model():
    """The PyTorch model whose weights the tiny ONNX models carry (same seed)."""
    from depth_anything_ros.torch_models.build import build_torch_model
    return build_torch_model(tiny=True, seed=0)


def official_dinov2_pos_encoding(module, _embeddings, height, width):
    """The position-embedding interpolation of the DINOv2 code DA-V2 ships, re-written here
    independently of the package: bicubic with scale_factor (h0 + 0.1) / 37, antialias off,
    the grid unchanged at the trained square size."""
    import torch
    pos = module.position_embeddings
    side, dim = 37, pos.shape[2]
    h0, w0 = height // 14, width // 14
    if h0 == side and w0 == side and height == width:
        return pos
    grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, scale_factor=((h0 + 0.1) / side, (w0 + 0.1) / side),
                                           mode='bicubic', antialias=False)
    assert grid.shape[2:] == (h0, w0)
    return torch.cat((pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


def tiny_model_with(pos_encoding):
    """The tiny test network (seed 0, the weights of the tiny ONNX models) with `pos_encoding`
    as its position-embedding interpolation."""
    import functools

    from depth_anything_ros.torch_models.build import build_torch_model
    model = build_torch_model(tiny=True, seed=0)
    module = model.backbone.embeddings
    module.interpolate_pos_encoding = functools.partial(pos_encoding, module)
    return model


@pytest.fixture(scope='session')
def official_torch_model():
    """The tiny network as the official DA-V2 code computes it (see official_dinov2_pos_encoding)."""
    return tiny_model_with(official_dinov2_pos_encoding)


@pytest.fixture(scope='session')
def tiny_metric_model(model_dir):
    """Tiny DA-V2 with the metric head (20 m), fixed 518x686; named like the indoor metric model."""
    return _build(model_dir, 'tiny_metric_hypersim_518x686.onnx', (518, 686), True, metric_max_depth=20.0)


def run_in_threads(work, n: int = 4) -> list:
    """Run work(i) on n threads released together; return the exceptions they raised."""
    import threading
    errors, start = [], threading.Barrier(n)

    def guarded(i):
        try:
            start.wait()
            work(i)
        except Exception as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
