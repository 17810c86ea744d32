"""Worker threads fed through a one-frame slot: the newest frame wins.

Nothing queues: a frame that arrives while the slot is full replaces the one
waiting there (counted as superseded). Results leave in stamp order: a result
older than one already published is dropped instead of going out late.
"""
from __future__ import annotations

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

    def take(self):
        """Block until an item arrives (returned) or the slot closes (None)."""
        with self._cond:
            while self._item is None and not self._closed:
                self._cond.wait()
            item, self._item = self._item, None
            return item

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class StampOrder:
    """Admits results only in increasing stamp order (thread-safe).

    A stamp more than `reset_after_ns` older than the last one is a jump back
    in time (a looping bag, a restarted simulation), not a late result: it
    restarts the ordering instead of silencing the output for good.
    """

    def __init__(self, reset_after_ns: int = 1_000_000_000):
        self._lock = threading.Lock()
        self._last = None
        self._reset_after = reset_after_ns
        self.resets = 0

    def admit(self, stamp_ns: int) -> bool:
        with self._lock:
            if self._last is not None and stamp_ns <= self._last:
                if self._last - stamp_ns <= self._reset_after:
                    return False
                self.resets += 1
            self._last = stamp_ns
            return True


class WorkerPool:
    """`workers` threads each taking the newest item and calling `process(item)`.

    Exceptions escaping `process` go to `on_error`, so one bad frame never
    kills a worker. A worker stuck in a call (a hung driver) cannot be
    interrupted from Python; `reap_stalled` abandons it and starts a
    replacement, so the pool keeps serving. At most `workers` abandoned threads
    are replaced at a time, which bounds the threads a misbehaving engine costs.
    """

    def __init__(self, process: Callable, workers: int, on_error: Callable, name: str = 'depth'):
        self._process = process
        self._on_error = on_error
        self._name = name
        self._slot = LatestSlot()
        self._lock = threading.Lock()
        self._busy_since = {}
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
            item = self._slot.take()
            if item is None:
                return
            with self._lock:
                self._busy_since[me] = time.monotonic()
            try:
                self._process(item)
            except Exception as exc:  # noqa: BLE001 - a worker must survive any frame
                self._on_error(exc)
            finally:
                with self._lock:
                    del self._busy_since[me]
                    if me in self._abandoned:  # its replacement carries on
                        self._abandoned.discard(me)
                        return

    def reap_stalled(self, timeout_s: float) -> int:
        """Abandon workers busy longer than `timeout_s` and replace them; return how many."""
        now = time.monotonic()
        with self._lock:
            stalled = [t for t, since in self._busy_since.items()
                       if now - since > timeout_s and t not in self._abandoned]
            for thread in stalled:
                self._abandoned.add(thread)
                if len(self._abandoned) <= self._size:
                    self._start_worker()
        return len(stalled)

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
        deadline = time.monotonic() + timeout
        with self._lock:
            working = [t for t in self._threads if t not in self._abandoned]
        for thread in working:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in working)
