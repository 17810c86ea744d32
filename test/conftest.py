"""Shared fixtures: test models built once per run, real data from ../shared/data."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Fast DDS reads its profile once per process, when the first participant starts: set it before
# any test creates one, or large images between processes get lost (see README, Development).
os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = os.path.join(REPO, 'config', 'fastdds_local.xml')
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
SHARED_DATA = os.environ.get('DEPTH_TEST_DATA', os.path.join(REPO, '..', 'shared', 'data'))


def shared_data(relpath: str) -> str:
    path = os.path.join(SHARED_DATA, relpath)
    if not os.path.exists(path):
        pytest.fail(f'test data {path} is missing (set DEPTH_TEST_DATA to the shared/data folder)')
    return path


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('models')


def _build(model_dir, name, size_hw, tiny, metric_max_depth=None):
    from depth_anything_ros.test_models import make_test_model
    path = os.path.join(model_dir, name)
    if not os.path.exists(path):
        make_test_model(path, size_hw=size_hw, tiny=tiny, seed=0, metric_max_depth=metric_max_depth)
    return path


@pytest.fixture(scope='session')
def tiny_dynamic_model(model_dir):
    """Tiny DA-V2 architecture, dynamic H/W, seed 0."""
    return _build(model_dir, 'tiny_dynamic.onnx', None, True)


@pytest.fixture(scope='session')
def tiny_fixed_model(model_dir):
    """Tiny DA-V2 architecture, fixed 1x3x518x686 like the S100 model, seed 0."""
    return _build(model_dir, 'tiny_518x686.onnx', (518, 686), True)


@pytest.fixture(scope='session')
def tiny_torch_model():
    """The PyTorch model whose weights the tiny ONNX models carry (same seed)."""
    from depth_anything_ros.test_models import build_torch_model
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

    from depth_anything_ros.test_models import build_torch_model
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
