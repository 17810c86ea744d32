"""Newest-frame-wins slot, worker pool and stamp ordering (the diagnostics helpers: test_diagnostics.py)."""
import collections
import threading

import pytest

from depth_anything_ros.core.worker_pool import ArrivalOrder, LatestSlot, WorkerPool

from helpers.threads import run_in_threads, wait_until

WAIT = 5.0   # generous bound for joins and gates that must open; never a speed assertion


# ---------------------------------------------------------------- LatestSlot

def test_slot_put_returns_displaced():
    slot = LatestSlot()
    assert slot.put('a') is None
    assert slot.put('b') == 'a'
    assert slot.put('c') == 'b'
    assert slot.take() == 'c'
    assert slot.put('d') is None          # empty again after take


def _taker(slot, results):
    thread = threading.Thread(target=lambda: results.append(slot.take()), daemon=True)
    thread.start()
    return thread


def test_slot_take_blocks_until_put():
    slot = LatestSlot()
    results = []
    thread = _taker(slot, results)
    thread.join(0.1)
    assert thread.is_alive() and results == []   # still waiting: nothing was put
    slot.put(42)
    thread.join(WAIT)
    assert not thread.is_alive()
    assert results == [42]


def test_slot_close_wakes_every_taker():
    slot = LatestSlot()
    results = []
    threads = [_taker(slot, results) for _ in range(3)]
    threads[0].join(0.05)
    slot.close()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert results == [None, None, None]


def test_slot_close_still_hands_out_the_waiting_item():
    slot = LatestSlot()
    slot.put('last')
    slot.close()
    assert slot.take() == 'last'
    assert slot.take() is None             # closed and empty: no blocking


# ---------------------------------------------------------------- WorkerPool

def test_pool_processes_items():
    done = []
    all_done = threading.Event()

    def process(item):
        done.append(item)
        if len(done) == 5:
            all_done.set()

    pool = WorkerPool(process, workers=1, on_error=pytest.fail)
    for i in range(5):
        assert pool.submit(i) is None
        # wait for the worker to pick it up, so nothing is superseded
        assert wait_until(lambda: len(done) > i)
    assert all_done.wait(WAIT)
    assert done == [0, 1, 2, 3, 4]
    assert pool.stop(WAIT) is True


def test_pool_survives_exceptions():
    processed, errors = [], []
    gate = threading.Event()

    def process(item):
        if item == 'bad':
            raise RuntimeError('broken frame')
        processed.append(item)
        if item == 'after':
            gate.set()

    def on_error(exc):
        errors.append(exc)

    pool = WorkerPool(process, workers=2, on_error=on_error)
    pool.submit('bad')
    assert wait_until(lambda: errors)      # let a worker raise on it first
    pool.submit('after')
    assert gate.wait(WAIT)
    assert processed == ['after']
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert str(errors[0]) == 'broken frame'
    assert pool.stop(WAIT) is True


def test_pool_stop_joins_idle_workers():
    pool = WorkerPool(lambda item: None, workers=4, on_error=pytest.fail, name='idle')
    assert pool.stop(WAIT) is True
    assert all(not t.is_alive() for t in pool._threads)
    assert {t.name for t in pool._threads} == {f'idle-worker-{i}' for i in range(4)}


def test_pool_stop_reports_a_stuck_worker():
    release = threading.Event()
    started = threading.Event()

    def process(item):
        started.set()
        release.wait(WAIT)

    pool = WorkerPool(process, workers=1, on_error=pytest.fail)
    pool.submit(1)
    assert started.wait(WAIT)
    assert pool.stop(0.05) is False        # inside process(): cannot be joined yet
    release.set()
    assert pool.stop(WAIT) is True


@pytest.mark.parametrize('workers', [1, 2])
def test_pool_flood_newest_wins(workers):
    """1000 submits while every worker is busy: all but the newest are superseded."""
    started = threading.Semaphore(0)
    release = threading.Event()
    processed = []
    lock = threading.Lock()

    def process(item):
        with lock:
            processed.append(item)
        started.release()
        release.wait(WAIT)                 # stands in for a slow inference

    pool = WorkerPool(process, workers=workers, on_error=pytest.fail)
    superseded = 0
    submitted = 0
    # occupy every worker first
    for i in range(workers):
        superseded += pool.submit(i) is not None
        submitted += 1
        assert started.acquire(timeout=WAIT)
    for i in range(workers, 1000):
        superseded += pool.submit(i) is not None
        submitted += 1
    assert submitted == 1000
    release.set()
    assert pool.stop(WAIT) is True         # the last waiting item is still processed
    # processed + superseded + left == submitted; stop() drains the slot (close() hands
    # the waiting item out before None), so nothing is left here.
    left = submitted - len(processed) - superseded
    assert left == 0
    assert superseded == 1000 - workers - 1
    assert len(processed) == workers + 1
    assert processed[-1] == 999            # the newest frame won
    assert sorted(processed[:workers]) == list(range(workers))


def test_pool_flood_with_free_running_worker():
    """Without a gate: whatever the timing, every item is processed or superseded once."""
    processed = []
    tick = threading.Event()

    def process(item):
        processed.append(item)
        tick.wait(0.001)

    pool = WorkerPool(process, workers=1, on_error=pytest.fail)
    superseded = [pool.submit(i) for i in range(1000)]
    assert pool.stop(WAIT) is True
    dropped = [s for s in superseded if s is not None]
    assert len(processed) + len(dropped) == 1000
    assert sorted(processed + dropped) == list(range(1000))
    assert processed == sorted(processed)          # never out of order
    assert processed[-1] == 999


# ---------------------------------------------------------------- engine permits and stalls

class BlockingCalls:
    """process(item): one engine call that blocks until its item is released; records how
    many calls were inside the engine at once."""

    def __init__(self):
        self.pool = None
        self.lock = threading.Lock()
        self.inside = self.most_inside = 0
        self.entered, self.finished = [], []
        self.gates = collections.defaultdict(threading.Event)

    def __call__(self, item):
        with self.pool.engine_call():
            with self.lock:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
                self.entered.append(item)
            self.gates[item].wait(WAIT)
            with self.lock:
                self.inside -= 1
                self.finished.append(item)


@pytest.mark.parametrize('workers', [1, 2, 4])
def test_replacements_never_add_engine_calls_in_flight(workers):
    """Issue 11: stalled workers were replaced by ones that started new calls beside the
    stuck ones (workers: 4 doubled the calls, RSS 10.5 GB)."""
    calls = BlockingCalls()
    pool = WorkerPool(calls, workers=workers, on_error=pytest.fail, on_take=lambda item: None)
    calls.pool = pool
    pool.submit('warm-up')
    calls.gates['warm-up'].set()
    assert wait_until(lambda: calls.finished == ['warm-up'])   # arms the stall clock
    for i in range(workers):                                    # every worker stuck in a call
        pool.submit(i)
        assert wait_until(lambda: len(calls.entered) == 2 + i)
    stalled = []
    assert wait_until(lambda: stalled.extend(pool.reap_stalled(0.01)) or len(stalled) == workers)
    assert sorted(stalled) == list(range(workers))
    pool.submit('after')
    assert wait_until(lambda: pool.threads_alive() == 2 * workers)  # the replacements run
    assert not wait_until(lambda: 'after' in calls.entered, timeout=0.3)  # but wait for a permit
    assert calls.most_inside == workers
    calls.gates[0].set()                                        # one stuck call returns
    assert wait_until(lambda: 'after' in calls.entered)
    assert calls.most_inside == workers
    for gate in list(calls.gates.values()):
        gate.set()
    assert pool.stop(WAIT) is True


def test_stall_limit_is_not_armed_before_a_call_finished_and_follows_slow_calls():
    """Issue 9: a 16 s call on a loaded machine was abandoned every time with a fixed 5 s
    timeout, so nothing was ever published."""
    calls = BlockingCalls()
    pool = WorkerPool(calls, workers=1, on_error=pytest.fail)
    calls.pool = pool
    assert pool.stall_limit(5.0) is None
    pool.submit('first')                       # a first call (model compile, warm-up)
    assert wait_until(lambda: calls.entered == ['first'])
    assert pool.reap_stalled(0.0) == []        # never abandoned, however long it runs
    calls.gates['first'].set()
    assert wait_until(lambda: pool.stall_limit(5.0) is not None)
    assert pool.stall_limit(5.0) == 5.0        # fast calls: the configured timeout
    pool._recent.append(16.0)                  # one 16 s call (late or not) was measured
    assert pool.stall_limit(5.0) == 48.0
    assert pool.stop(WAIT) is True


def test_stop_wakes_a_worker_waiting_for_a_permit():
    calls = BlockingCalls()
    pool = WorkerPool(calls, workers=1, on_error=pytest.fail)
    calls.pool = pool
    pool.submit('w')
    calls.gates['w'].set()
    assert wait_until(lambda: calls.finished == ['w'])
    pool.submit('stuck')
    assert wait_until(lambda: calls.entered == ['w', 'stuck'])
    assert wait_until(lambda: pool.reap_stalled(0.0) == ['stuck'])
    pool.submit('waits')
    assert wait_until(lambda: pool.threads_alive() == 2)
    assert pool.stop(WAIT) is True             # the replacement waiting for its permit left
    assert not pool._threads[-1].is_alive()
    assert pool._threads[0].is_alive()         # (the abandoned stuck call is not waited for)
    calls.gates['stuck'].set()


# ---------------------------------------------------------------- ArrivalOrder

def test_arrival_order_publishes_in_order_and_refuses_only_late_results():
    order, out = ArrivalOrder(), []
    for seq in (1, 2, 3):
        order.started(seq)
    assert order.release(2, lambda: out.append(2), wait_s=0.0) is True   # nobody waits: 1 is late
    assert order.release(1, lambda: out.append(1), wait_s=0.0) is False  # older than a published one
    order.forget(3)
    assert order.release(4, lambda: out.append(4), wait_s=WAIT) is True
    assert out == [2, 4]


def test_a_result_waits_for_an_older_frame_in_flight():
    """Issue 11: with 2 workers, 30-40 finished results a minute were thrown away because
    a sibling finished first."""
    order, out = ArrivalOrder(), []
    order.started(1)
    order.started(2)
    newer = threading.Thread(target=lambda: out.append(('2', order.release(2, lambda: out.append(2), WAIT))))
    newer.start()
    newer.join(0.1)
    assert newer.is_alive() and out == []       # holds back for frame 1
    assert order.release(1, lambda: out.append(1), WAIT) is True
    newer.join(WAIT)
    assert out == [1, 2, ('2', True)]


def test_a_failed_older_frame_releases_the_waiting_one():
    order, out = ArrivalOrder(), []
    order.started(1)
    order.started(2)
    newer = threading.Thread(target=lambda: order.release(2, lambda: out.append(2), WAIT))
    newer.start()
    newer.join(0.1)
    assert newer.is_alive()
    order.forget(1)                             # frame 1 failed: nothing to wait for
    newer.join(WAIT)
    assert not newer.is_alive() and out == [2]


def test_close_releases_a_waiting_result_without_publishing():
    order, out = ArrivalOrder(), []
    order.started(1)
    order.started(2)
    newer = threading.Thread(target=lambda: order.release(2, lambda: out.append(2), 60.0))
    newer.start()
    newer.join(0.1)
    assert newer.is_alive()
    order.close()                               # shutdown: frame 1 may never come back
    newer.join(WAIT)
    assert not newer.is_alive() and out == []


def test_arrival_order_concurrent_releases_publish_increasing():
    order, out = ArrivalOrder(), []
    for seq in range(400):
        order.started(seq)
    admitted = []
    assert run_in_threads(lambda i: admitted.extend(
        seq for seq in range(i, 400, 4) if order.release(seq, lambda s=seq: out.append(s), 0.0))) == []
    assert out == sorted(out) and sorted(admitted) == out
    assert out[-1] == 399


def test_a_publish_runs_outside_the_order_lock_and_one_at_a_time():
    """The node finishes frames inside publish: meanwhile other frames start and fail without
    waiting for it, and a newer frame whose wait ran out publishes only after it, never beside it."""
    order, out = ArrivalOrder(), []
    inside, leave = threading.Event(), threading.Event()

    def slow_publish():
        inside.set()
        assert leave.wait(WAIT)
        out.append(1)
    order.started(1)
    order.started(2)
    older = threading.Thread(target=lambda: order.release(1, slow_publish, WAIT))
    older.start()
    assert inside.wait(WAIT)
    newer = threading.Thread(target=lambda: order.release(2, lambda: out.append(2), 0.0))  # no waiting
    newer.start()
    order.started(3)                            # none of these waits for the publish in progress
    order.forget(3)
    newer.join(0.1)
    assert newer.is_alive() and out == []       # frame 2 waits for frame 1's publish to end
    leave.set()
    older.join(WAIT)
    newer.join(WAIT)
    assert out == [1, 2]
