"""Which reference each frame pairs with: the store of references by stamp. No ROS here.

Rules (docs/metres.md states them for users):
- A frame pairs with the stored reference nearest its stamp within the tolerance.
- Up to `capacity` references are kept (64 x at most ~200 kB of samples). Frames in flight are
  announced (`expect`) when they arrive and released (`forget`) when done: the reference each of
  them would pair with now is never evicted, however long inference takes, however many frames are
  in flight, whatever the reference rate. Over capacity, the oldest other reference goes (frames
  still to come are newer).
- A reference stamped more than RESTART_S before the newest one kept (a looping bag, a clock
  reset, the normal stream after stamps far ahead) restarts the store: everything but what frames
  in flight pair with goes, counted (`restarts`).
- Unusable stamps never pair: a reference stamped zero or with the previous reference's stamp is
  refused (ImageFormatError, counted as a rejected reference); the aligner does the same for frames.
- `pair` may wait, until a deadline, for a reference that has not arrived yet: only while the
  references are live (one arrived within LIVE_S) and none stamped at or past the frame's stamp
  plus the tolerance has come (they arrive in stamp order: after that, nothing nearer can come).
"""
from __future__ import annotations

import bisect
import collections
import threading
import time

from .image_codec import ImageFormatError

RESTART_S = 1.0
LIVE_S = 2.0
CAPACITY = 64


class StampedReferences:
    """References by stamp (ns) for pairing camera frames within `tolerance_s` (thread-safe)."""

    def __init__(self, tolerance_s: float, capacity: int = CAPACITY, clock=time.monotonic):
        self._tolerance = int(tolerance_s * 1e9)
        self._capacity = capacity
        self._clock = clock
        self._stamps = []             # sorted
        self._references = []         # in the order of _stamps
        self._pending = collections.Counter()   # stamps of frames in flight
        self._last_offered = None     # stamp of the last reference offered, refused or not
        self._last_arrival = None     # clock() when the last reference was stored
        self._cond = threading.Condition()
        self.restarts = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._stamps)

    def check_stamp(self, stamp_ns: int) -> None:
        """ImageFormatError for a reference stamp that cannot pair: zero, or the previous one's again.
        Cheap: call it before decoding the reference."""
        with self._cond:
            previous, self._last_offered = self._last_offered, stamp_ns
        if stamp_ns <= 0 or stamp_ns == previous:
            fault = 'zero (a driver that never sets header.stamp)' if stamp_ns <= 0 else "the previous reference's"
            raise ImageFormatError(f'its stamp is {fault}: it cannot be paired with frames by time')

    def add(self, stamp_ns: int, reference) -> bool:
        """Store a reference; True if its stamp restarted the store (see the module docstring)."""
        with self._cond:
            restart = bool(self._stamps) and stamp_ns < self._stamps[-1] - int(RESTART_S * 1e9)
            if restart:
                self.restarts += 1
                self._keep(self._paired_indices())
            at = bisect.bisect_right(self._stamps, stamp_ns)
            self._stamps.insert(at, stamp_ns)
            self._references.insert(at, reference)
            self._last_arrival = self._clock()
            while len(self._stamps) > self._capacity:
                self._evict()
            self._cond.notify_all()
        return restart

    def expect(self, stamp_ns: int) -> None:
        """A frame stamped `stamp_ns` is in flight: keep what it pairs with until `forget`."""
        if stamp_ns <= 0:
            return
        with self._cond:
            self._pending[stamp_ns] += 1

    def forget(self, stamp_ns: int) -> None:
        with self._cond:
            if self._pending[stamp_ns] > 1:
                self._pending[stamp_ns] -= 1
            else:
                self._pending.pop(stamp_ns, None)

    def pair(self, stamp_ns: int, deadline: float | None = None):
        """The reference nearest `stamp_ns` within the tolerance, or None; with a `deadline`
        (clock time), waits for one still to come (module docstring)."""
        with self._cond:
            while True:
                at = self._nearest(stamp_ns)
                if at is not None:
                    return self._references[at]
                remaining = (deadline - self._clock()) if deadline is not None else 0.0
                if remaining <= 0 or not self._may_still_come(stamp_ns):
                    return None
                self._cond.wait(min(remaining, LIVE_S))

    # -- under the lock ------------------------------------------------------------------
    def _nearest(self, stamp_ns: int):
        at = bisect.bisect_left(self._stamps, stamp_ns)
        best = min((i for i in (at - 1, at) if 0 <= i < len(self._stamps)),
                   key=lambda i: abs(self._stamps[i] - stamp_ns), default=None)
        if best is None or abs(self._stamps[best] - stamp_ns) > self._tolerance:
            return None
        return best

    def _may_still_come(self, stamp_ns: int) -> bool:
        live = bool(self._stamps) and self._last_arrival is not None and self._clock() - self._last_arrival < LIVE_S
        return live and self._stamps[-1] < stamp_ns + self._tolerance

    def _paired_indices(self) -> set:
        return {at for at in map(self._nearest, self._pending) if at is not None}

    def _keep(self, indices) -> None:
        kept = sorted(indices)
        self._stamps = [self._stamps[i] for i in kept]
        self._references = [self._references[i] for i in kept]

    def _evict(self) -> None:
        """Drop the oldest reference no frame in flight pairs with (frames to come are newer)."""
        paired = self._paired_indices()
        victim = next((i for i in range(len(self._stamps)) if i not in paired), 0)
        del self._stamps[victim], self._references[victim]
