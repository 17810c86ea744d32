"""Worker threads fed through a one-frame slot: the newest frame wins.

Nothing queues: a frame that arrives while the slot is full replaces the one
waiting there (counted as superseded). Results leave in stamp order: a result
older than one already published is dropped instead of going out late.
"""
from __future__ import annotations

import threading
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
    """Admits results only in increasing stamp order (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = None

    def admit(self, stamp_ns: int) -> bool:
        with self._lock:
            if self._last is not None and stamp_ns <= self._last:
                return False
            self._last = stamp_ns
            return True


class WorkerPool:
    """`workers` threads each taking the newest item and calling `process(item)`.

    `process` must not raise; exceptions escaping it are passed to `on_error`
    so that one bad frame never kills a worker.
    """

    def __init__(self, process: Callable, workers: int, on_error: Callable, name: str = 'depth'):
        self._process = process
        self._on_error = on_error
        self._slot = LatestSlot()
        self._threads = [threading.Thread(target=self._loop, name=f'{name}-worker-{i}', daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, item):
        """Hand `item` to the workers; returns the waiting item it superseded, if any."""
        return self._slot.put(item)

    def _loop(self):
        while True:
            item = self._slot.take()
            if item is None:
                return
            try:
                self._process(item)
            except Exception as exc:  # noqa: BLE001 - a worker must survive any frame
                self._on_error(exc)

    def stop(self, timeout: float = 3.0) -> bool:
        """Stop taking work and join; True if every worker finished in time.

        A worker inside an inference call cannot be interrupted; it is a daemon
        thread, so a stuck call never blocks process exit.
        """
        self._slot.close()
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)
