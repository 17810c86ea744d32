"""The reference store: which reference each frame pairs with (issue 18, points 3 and 4).

Stamps are in milliseconds here (times 1e6 in the calls). The old store kept the 8 newest stamps:
every case below lost frames with it."""
import threading

import pytest

from depth_anything_ros.core.image_codec import ImageFormatError
from depth_anything_ros.core.reference_pairing import CAPACITY, StampedReferences

MS = 1_000_000


def store(tolerance_ms=20, **kwargs):
    return StampedReferences(tolerance_s=tolerance_ms / 1000, **kwargs)


def add(refs, *stamps_ms):
    """Each reference is its own stamp in ms: pair() says which one a frame got."""
    return [refs.add(stamp * MS, stamp) for stamp in stamps_ms]


def test_a_frame_pairs_with_the_nearest_stamp_within_the_tolerance():
    refs = store(capacity=3)
    add(refs, 100, 200, 300, 400)
    assert refs.pair(310 * MS) == 300 and refs.pair(395 * MS) == 400
    assert refs.pair(250 * MS) is None              # 50 ms from both neighbours
    assert refs.pair(100 * MS) is None              # evicted: the oldest of 4, capacity 3


def test_frames_in_flight_keep_their_reference_whatever_the_rate_and_the_inference_time():
    """Issue 18.3: references at 30 Hz, camera at 3 Hz, inference up to 4 s: each frame's own
    reference arrived just before the frame, then 120 more before the frame was finished."""
    refs = store(tolerance_ms=10)
    frames = []
    for second in range(4):
        frame = second * 1000 + 500
        add(refs, *range(second * 1000, (second + 1) * 1000, 33), frame)   # 30 Hz, then the frame's own
        refs.expect(frame * MS)
        frames.append(frame)
    add(refs, *range(4000, 8000, 33))                                    # 120 more while all 4 are in flight
    assert len(refs) == CAPACITY
    assert [refs.pair(f * MS) for f in frames] == frames
    for f in frames:
        refs.forget(f * MS)
    add(refs, 9000)
    assert refs.pair(frames[0] * MS) is None                             # released: evicted as the oldest


def test_stamps_far_ahead_then_normal_ones_restart_the_store():
    """Issue 18.3: 8 references stamped 1e6 s ahead, then normal pairs: every later frame paired."""
    refs = store()
    far = 1_000_000_000
    assert add(refs, *range(far, far + 800, 100)) == [False] * 8
    assert add(refs, 1000) == [True] and refs.restarts == 1 and len(refs) == 1
    for stamp in range(1100, 3000, 100):
        add(refs, stamp)
        assert refs.pair(stamp * MS) == stamp
    assert refs.restarts == 1


def test_a_looping_bag_restarts_the_store_and_the_second_loop_pairs():
    """Issue 18.3: the same 20 stamps again (a 2 s bag on loop)."""
    refs = store()
    stamps = list(range(5000, 7000, 100))
    loops = []
    for loop in range(2):
        paired = []
        for stamp in stamps:
            add(refs, stamp)
            paired.append(refs.pair(stamp * MS))
        loops.append(paired)
    assert loops == [stamps, stamps] and refs.restarts == 1


def test_a_restart_keeps_the_references_of_frames_in_flight():
    refs = store()
    add(refs, 5000, 5100)
    refs.expect(5100 * MS)
    add(refs, 1000)                                   # back 4 s: restart
    assert refs.restarts == 1 and refs.pair(5100 * MS) == 5100 and refs.pair(5000 * MS) is None


@pytest.mark.parametrize('stamps, refused', [((0,), 0), ((7, 7), 1), ((7, 8, 8, 9), 2)])
def test_zero_and_repeated_reference_stamps_are_refused(stamps, refused):
    """Issue 18.4: a stamp that cannot say when the reference was taken never pairs."""
    refs = store()
    for i, stamp in enumerate(stamps):
        if i == refused:
            with pytest.raises(ImageFormatError, match='stamp'):
                refs.check_stamp(stamp * MS)
        else:
            refs.check_stamp(stamp * MS)


def test_a_late_reference_is_waited_for_until_the_deadline(monkeypatch):
    """The frame's reference is not there yet, the stream is live and has not passed the
    frame's stamp: pair() waits, and returns it as soon as it arrives."""
    refs = store()
    add(refs, 900)                                    # live: one arrived just now
    got = []
    waiter = threading.Thread(target=lambda: got.append(refs.pair(1000 * MS, deadline=refs._clock() + 60)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()                          # still waiting: nothing within 20 ms of 1000 yet
    add(refs, 1000)
    waiter.join(10)
    assert got == [1000]


def test_no_wait_once_the_stream_passed_the_frame_or_when_it_is_not_live():
    refs = store()
    add(refs, 900, 1100)                              # the stream is past 1000 + 20 ms: nothing nearer can come
    done = threading.Event()
    threading.Thread(target=lambda: (refs.pair(1000 * MS, deadline=refs._clock() + 60), done.set())).start()
    assert done.wait(10)
    now = [100.0]
    idle = store(clock=lambda: now[0])
    add(idle, 900)
    now[0] += 5.0                                     # no reference for 5 s: not live, no wait
    assert idle.pair(1000 * MS, deadline=now[0] + 60) is None
