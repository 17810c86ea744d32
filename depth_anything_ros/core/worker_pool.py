"""Worker threads fed through a one-frame slot: the newest frame wins.

Nothing queues: a frame that arrives while the slot is full replaces the one
waiting there (counted as superseded). Results leave in arrival order through
a bounded reorder step (`ArrivalOrder`): a finished result waits for older
frames still in flight, and only one older than a result already published is
dropped. At most `workers` engine calls run at once, replacements of stalled
workers included (`WorkerPool.engine_call`).
"""
from __future__ import annotations

import collections
import contextlib
import threading
import time
from typing import Callable


class LatestSlot:
    """Holds at most one item; put() replaces and returns the item it displaced."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item):
        with self._cond:
            displaced, self._item = self._item, item
            self._cond.notify()
            return displaced

    def take(self, taken: Callable = None):
        """Block until an item arrives (returned) or the slot closes (None).
        `taken(item)` runs under the slot's lock: takers are recorded in take order."""
        with self._cond:
            while self._item is None and not self._closed:
                self._cond.wait()
            item, self._item = self._item, None
            if item is not None and taken is not None:
                taken(item)
            return item

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class ArrivalOrder:
    """Lets results out in the order their frames were taken (thread-safe).

    Frames are numbered on arrival (`seq`). A finished result waits, at most
    `wait_s`, for frames taken before it that are still in flight, so a
    sibling that finishes first no longer costs an older result. After the
    wait only a result older than one already published is refused. Ordering
    by arrival, not by stamp, serves drivers whose stamps are zero, constant,
    repeated or from two clocks: the node only reports those.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._publishing = threading.Lock()
        self._running = set()
        self._last = -1
        self._closed = False

    def started(self, seq: int):
        with self._cond:
            self._running.add(seq)

    def forget(self, seq: int):
        """A frame that will publish nothing (failed, abandoned): stop waiting for it."""
        with self._cond:
            self._running.discard(seq)
            self._cond.notify_all()

    def release(self, seq: int, publish: Callable, wait_s: float) -> bool:
        """Wait for older frames in flight, then call `publish()` unless a newer result
        went out already (False). After close(), nothing waits and nothing is published.
        One publish runs at a time, outside the order's lock (frames start, fail and close
        meanwhile); it may be long work (the node finishes frames in it)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or not any(s < seq for s in self._running), wait_s)
        try:
            with self._publishing:  # in order even when a wait ran out
                with self._cond:
                    if self._closed:
                        return True
                    if seq < self._last:
                        return False
                    self._last = seq
                publish()
                return True
        finally:
            self.forget(seq)

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class PoolClosed(Exception):
    """The pool stopped while a worker waited for an engine permit."""


class WorkerPool:
    """`workers` threads each taking the newest item and calling `process(item)`.

    Exceptions escaping `process` go to `on_error`, so one bad frame never
    kills a worker. `process` wraps its engine call in `engine_call()`: a
    semaphore of `workers` permits, so never more calls run than `workers`.
    A worker stuck in a call (a hung driver) cannot be interrupted from Python;
    `reap_stalled` abandons it (its result is dropped) and starts a replacement,
    which waits for a permit like any worker: the stuck call keeps its own. At
    most `workers` abandoned threads are replaced at a time.
    `on_take(item)` runs as a worker takes an item, in take order.
    """

    def __init__(self, process: Callable, workers: int, on_error: Callable, name: str = 'depth',
                 on_take: Callable = None):
        self._process = process
        self._on_error = on_error
        self._on_take = on_take
        self._name = name
        self._slot = LatestSlot()
        self._lock = threading.Lock()
        self._permits = threading.BoundedSemaphore(workers)
        self._closed = threading.Event()
        self._busy_since = {}     # thread -> start of its engine call
        self._items = {}          # thread -> the item it works on
        self._recent = collections.deque(maxlen=20)  # durations of finished calls, late ones too
        self._abandoned = set()
        self._threads = []
        self._size = workers
        for _ in range(workers):
            self._start_worker()

    def _start_worker(self):
        thread = threading.Thread(target=self._loop, name=f'{self._name}-worker-{len(self._threads)}',
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def submit(self, item):
        """Hand `item` to the workers; returns the waiting item it superseded, if any."""
        return self._slot.put(item)

    def _loop(self):
        me = threading.current_thread()
        while True:
            item = self._slot.take(self._on_take)
            if item is None:
                return
            with self._lock:
                self._items[me] = item
            try:
                self._process(item)
            except PoolClosed:
                return
            except Exception as exc:  # noqa: BLE001 - a worker must survive any frame
                self._on_error(exc)
            finally:
                with self._lock:
                    del self._items[me]
                    if me in self._abandoned:  # its replacement carries on
                        self._abandoned.discard(me)
                        return

    @contextlib.contextmanager
    def engine_call(self):
        """Hold one of the `workers` permits for an engine call; the stall clock runs inside."""
        while not self._permits.acquire(timeout=0.1):
            if self._closed.is_set():
                raise PoolClosed()
        me = threading.current_thread()
        with self._lock:
            self._busy_since[me] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._recent.append(time.monotonic() - self._busy_since.pop(me))
            self._permits.release()

    def stall_limit(self, timeout_s: float) -> float | None:
        """Seconds after which a call counts as stalled: None before any call has finished
        (a first call may also compile or warm up), then `timeout_s` or 3x the slowest of
        the last 20 calls (late ones included), whichever is longer. A machine that is
        merely slow thus never has every call abandoned: one late call raises the limit."""
        with self._lock:
            if not self._recent:
                return None
            return max(timeout_s, 3.0 * max(self._recent))

    def reap_stalled(self, timeout_s: float) -> list:
        """Abandon workers whose call passed `stall_limit(timeout_s)` and replace them;
        return their items."""
        limit = self.stall_limit(timeout_s)
        if limit is None:
            return []
        now = time.monotonic()
        with self._lock:
            stalled = [t for t, since in self._busy_since.items()
                       if now - since > limit and t not in self._abandoned]
            for thread in stalled:
                self._abandoned.add(thread)
                if len(self._abandoned) <= self._size:
                    self._start_worker()
            return [self._items[t] for t in stalled]

    def abandoned(self) -> bool:
        """True on a worker thread whose call ran past the timeout: drop its result."""
        with self._lock:
            return threading.current_thread() in self._abandoned

    def threads_alive(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 3.0) -> bool:
        """Stop taking work and join; True if every worker finished in time.

        A worker inside an inference call cannot be interrupted; it is a daemon
        thread, so a stuck call never blocks process exit.
        """
        self._slot.close()
        self._closed.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            working = [t for t in self._threads if t not in self._abandoned]
        for thread in working:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in working)
