"""Frame-sized buffers are reused, not faulted in afresh every frame (FrameProcessor.from_config
calls keep_freed_memory): glibc's defaults return a 1080p frame's arrays to the system and the
next frame gets new pages, each faulted in and zeroed by the kernel (CPU time in every stage)."""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

# A 1080p frame's arrays, of several sizes, freed in another order than allocated; the page
# faults per frame after three warm-up frames, in a fresh process (malloc's settings are global).
FRAMES = '''
import resource, sys
import numpy as np
if sys.argv[1] == 'keep':
    from depth_anything_ros.core.frame_processor import keep_freed_memory
    assert keep_freed_memory()
def frame():
    a, b = np.ones((1080, 1920), np.float32), np.ones((518, 1920), np.float32)
    c = np.ones((1080, 1920, 3), np.uint8)
    del b
    d = np.ones((1080, 1920, 4), np.uint8)
    del a, c, d
for _ in range(3):
    frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    frame()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
'''


def faults_per_frame(mode: str) -> float:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, '-c', FRAMES, mode], capture_output=True, text=True, check=True, cwd=repo)
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc settings')
def test_freed_frame_buffers_are_reused():
    """Measured: 2420 faults per frame with glibc's defaults (10 MB of new pages), 0 after."""
    default, kept = faults_per_frame('default'), faults_per_frame('keep')
    print(f'page faults per frame: {default:.0f} with glibc defaults, {kept:.0f} with keep_freed_memory')
    assert kept < 50
