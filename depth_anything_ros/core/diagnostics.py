"""What the node measures about itself for /diagnostics and its log, without ROS: thread-safe
counters by reason, their recent growth, rates, latency percentiles, rate-limited log lines."""
from __future__ import annotations

import collections
import threading
import time

import numpy as np


class Counters:
    """Named monotonic counters (drops by reason, errors)."""

    def __init__(self, *names):
        self._lock = threading.Lock()
        self._counts = collections.Counter({n: 0 for n in names})

    def add(self, name: str, n: int = 1):
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._counts)


class RecentGrowth:
    """How much each of some Counters grew over about the last `window_s` seconds: `grown()`
    compares the counts now with the newest ones it was asked about at least `window_s` ago
    (at start: zero). Meant to be asked periodically (diagnostics)."""

    def __init__(self, counters: Counters, window_s: float):
        self._counters = counters
        self._window = window_s
        self._history = collections.deque([(time.monotonic(), {})])   # (time, counts), oldest first

    def grown(self, now: float | None = None) -> dict:
        now = time.monotonic() if now is None else now
        counts = self._counters.snapshot()
        self._history.append((now, counts))
        while len(self._history) > 1 and now - self._history[1][0] >= self._window:
            self._history.popleft()
        base = self._history[0][1]
        return {k: n - base.get(k, 0) for k, n in counts.items() if n - base.get(k, 0)}


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 5.0):
        self._lock = threading.Lock()
        self._times = collections.deque()
        self._window = window_s

    def tick(self, now: float | None = None):
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = now - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now):
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()


class LatencyWindow:
    """The last `size` durations (seconds), with percentiles in milliseconds."""

    def __init__(self, size: int = 200):
        self._lock = threading.Lock()
        self._values = collections.deque(maxlen=size)

    def add(self, seconds: float):
        with self._lock:
            self._values.append(seconds)

    def percentiles_ms(self, *qs) -> tuple:
        with self._lock:
            values = np.array(self._values, float)
        if values.size == 0:
            return tuple(float('nan') for _ in qs)
        return tuple(float(v) * 1e3 for v in np.percentile(values, qs))


class RateLimitedLog:
    """Calls `log(msg)` at most once per `period_s` per key; counts what it held back."""

    def __init__(self, log, period_s: float = 5.0):
        self._log = log
        self._period = period_s
        self._lock = threading.Lock()
        self._last = {}
        self._held = collections.Counter()

    def __call__(self, key: str, msg: str):
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                self._held[key] += 1
                return
            self._last[key] = now
            held, self._held[key] = self._held[key], 0
        self._log(msg + (f' ({held} similar messages suppressed)' if held else ''))
