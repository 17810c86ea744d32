"""Waiting for what other threads do, and starting threads together."""
import threading
import time

WAIT = 20.0   # a generous bound for events that must happen; never a speed assertion


def wait_until(predicate, timeout: float = WAIT) -> bool:
    """Whether `predicate()` became true within `timeout` seconds (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


def run_in_threads(work, n: int = 4) -> list:
    """Run work(i) on n threads released together; return the exceptions they raised."""
    errors, start = [], threading.Barrier(n)

    def guarded(i):
        try:
            start.wait()
            work(i)
        except Exception as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
