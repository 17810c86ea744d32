"""The repository and its test data (test/data: real images and depth maps, see its PROVENANCE.md).
Tests read nothing outside the repository: a fresh clone passes."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_DATA = os.path.join(REPO, 'test', 'data')
SEQUENCE = [os.path.join(TEST_DATA, 'redwood_synthetic', 'color', f'{i:05d}.jpg') for i in range(5)]


def data_file(relpath: str) -> str:
    """A file of test/data (part of the repository: tests need nothing beside it)."""
    path = os.path.join(TEST_DATA, relpath)
    if not os.path.exists(path):
        pytest.fail(f'test data {path} is missing from the checkout')
    return path
