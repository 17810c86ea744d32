"""The diagnostics helpers of core/diagnostics.py: counters, rates, latency percentiles, rate-limited logs."""
import threading
import types

import numpy as np
import pytest

from depth_anything_ros.core import diagnostics
from depth_anything_ros.core.diagnostics import Counters, LatencyWindow, RateLimitedLog, RateMeter, RecentGrowth

from helpers.threads import WAIT


def test_counters():
    c = Counters('superseded', 'errors')
    assert c.snapshot() == {'superseded': 0, 'errors': 0}
    c.add('errors')
    c.add('superseded', 5)
    c.add('late')
    assert c.snapshot() == {'superseded': 5, 'errors': 1, 'late': 1}

    def add_many():
        for _ in range(10000):
            c.add('errors')

    threads = [threading.Thread(target=add_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert c.snapshot()['errors'] == 40001
    snap = c.snapshot()
    snap['errors'] = -1                    # a copy, not the live counts
    assert c.snapshot()['errors'] == 40001


def test_recent_growth_covers_the_last_window_only():
    counts = Counters('a', 'b')
    recent = RecentGrowth(counts, window_s=10.0)
    start = recent._history[0][0]
    counts.add('a', 3)
    assert recent.grown(start + 1) == {'a': 3}           # since start-up, within the first window
    counts.add('b')
    assert recent.grown(start + 5) == {'a': 3, 'b': 1}
    assert recent.grown(start + 12) == {'b': 1}          # a's growth is older than 10 s; b's is not
    assert recent.grown(start + 16) == {}                # nothing grew in the last 10 s: no problem left
    counts.add('a')
    assert recent.grown(start + 17) == {'a': 1}


def test_rate_meter():
    m = RateMeter(window_s=5.0)
    assert m.rate(now=0.0) == 0.0
    m.tick(now=0.0)
    assert m.rate(now=0.0) == 0.0          # one event: no rate yet
    for i in range(1, 11):
        m.tick(now=i * 0.1)                # 10 Hz
    assert m.rate(now=1.0) == pytest.approx(10.0)
    # the rate decays while nothing arrives (span runs to `now`)
    assert m.rate(now=2.0) == pytest.approx(5.0)
    # everything older than the window is dropped
    assert m.rate(now=10.0) == 0.0


def test_rate_meter_window():
    m = RateMeter(window_s=5.0)
    for t in range(10):
        m.tick(now=float(t))               # 1 Hz for 10 s
    # ticks 4..9 are within 5 s of t=9: 5 intervals over 5 s
    assert m.rate(now=9.0) == pytest.approx(1.0)
    m2 = RateMeter(window_s=1.0)
    for i in range(100):
        m2.tick(now=i * 0.02)              # 50 Hz
    assert m2.rate(now=99 * 0.02) == pytest.approx(50.0, rel=0.03)


def test_latency_window():
    w = LatencyWindow(size=200)
    p50, p90 = w.percentiles_ms(50, 90)
    assert np.isnan(p50) and np.isnan(p90)
    for ms in range(1, 101):
        w.add(ms / 1000)
    p50, p90, p100 = w.percentiles_ms(50, 90, 100)
    assert p50 == pytest.approx(50.5)
    assert p90 == pytest.approx(90.1)
    assert p100 == pytest.approx(100.0)


def test_latency_window_keeps_the_last_values():
    w = LatencyWindow(size=10)
    for ms in range(1, 101):
        w.add(ms / 1000)
    lo, hi = w.percentiles_ms(0, 100)
    assert lo == pytest.approx(91.0) and hi == pytest.approx(100.0)


def test_rate_limited_log(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(diagnostics, 'time', types.SimpleNamespace(monotonic=lambda: clock[0]))
    logged = []
    log = RateLimitedLog(logged.append, period_s=5.0)

    def at(t, key, msg):
        clock[0] = t
        log(key, msg)

    at(0.0, 'decode', 'bad frame 1')
    at(1.0, 'decode', 'bad frame 2')
    at(2.0, 'decode', 'bad frame 3')
    at(1.5, 'engine', 'engine failed')     # another key has its own period
    assert logged == ['bad frame 1', 'engine failed']
    at(5.5, 'decode', 'bad frame 4')
    assert logged[-1] == 'bad frame 4 (2 similar messages suppressed)'
    at(6.0, 'decode', 'bad frame 5')
    at(10.6, 'decode', 'bad frame 6')
    assert logged[-1] == 'bad frame 6 (1 similar messages suppressed)'
    at(20.0, 'decode', 'bad frame 7')
    assert logged[-1] == 'bad frame 7'     # nothing held back: no suffix
    assert len(logged) == 5
