"""This run's block of DDS domains.

Two runs on one domain see each other's frames (a second copy of the suite, a developer's run beside
CI). conftest's pytest_configure claims a block of DOMAINS_PER_RUN domains no other run on this
machine holds, with an exclusive lock held for the run's whole life (it goes with the process,
however it ends), and sets the package's ROS environment (ros/environment.py) on it."""
import fcntl
import os
import tempfile

DOMAINS_PER_RUN = 16
BLOCKS = 96 // DOMAINS_PER_RUN      # domains 1-96, all valid on every RMW
_claimed = {}                       # 'first' domain and the 'lock' file, once claimed


def claim_domains() -> int:
    """The first domain of this run's block (claimed once per process)."""
    if 'first' not in _claimed:
        for block in range(BLOCKS):
            handle = open(os.path.join(tempfile.gettempdir(), f'depth_anything_ros-domains-{block}.lock'), 'w')
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            _claimed.update(first=1 + block * DOMAINS_PER_RUN, lock=handle)
            break
        else:
            raise RuntimeError(f'all {BLOCKS} blocks of DDS domains are held by other test runs')
    return _claimed['first']


def domain_for(offset: int) -> int:
    """A DDS domain of this run's own (offset 0 is the in-process tests' default)."""
    assert 0 <= offset < DOMAINS_PER_RUN, offset
    assert 'first' in _claimed, 'conftest claims the domains (pytest_configure) before any test runs'
    return _claimed['first'] + offset
