"""Shared fixtures: test models built once per run, real data from ../shared/data."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get('DEPTH_TEST_DATA', os.path.join(REPO, '..', 'shared', 'data'))


def shared_data(relpath: str) -> str:
    path = os.path.join(SHARED_DATA, relpath)
    if not os.path.exists(path):
        pytest.fail(f'test data {path} is missing (set DEPTH_TEST_DATA to the shared/data folder)')
    return path


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('models')


def _build(model_dir, name, size_hw, tiny):
    from depth_anything_ros.test_models import make_test_model
    path = os.path.join(model_dir, name)
    if not os.path.exists(path):
        make_test_model(path, size_hw=size_hw, tiny=tiny, seed=0)
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
