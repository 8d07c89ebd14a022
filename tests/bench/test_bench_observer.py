"""The output observer's arithmetic: committed records from stable-offset samples.

Transaction markers take offsets, so the observer counts the records below each sample's last
stable offsets from the record offsets it read, not the offsets themselves. No broker: the
consumer is created (it connects lazily) but never used.
"""

from __future__ import annotations

from bench.compare.kafka_io import OutputObserver


def observer_with(samples: list[tuple[float, list[int]]], offsets: list[list[int]], target: int) -> OutputObserver:
    observer = OutputObserver("127.0.0.1:9", "out", len(offsets), target, "g")
    observer._samples = samples
    for p, offs in enumerate(offsets):
        observer._offsets[p].extend(offs)
    observer.count = sum(len(o) for o in offsets)
    observer.done_at = 99.0
    return observer


def test_markers_are_not_counted_as_records() -> None:
    # partition 0: records at 0, 1, a marker at 2, records 3, 4, marker 5; partition 1: 0, marker 1
    offsets = [[0, 1, 3, 4], [0]]
    samples = [(1.0, [0, 0]), (2.0, [3, 2]), (3.0, [4, 2]), (4.0, [6, 2])]
    observer = observer_with(samples, offsets, target=5)
    assert observer.timeline == [(1.0, 0), (2.0, 3), (3.0, 4), (4.0, 5)]
    # 6 offsets were visible at 3.0, but two of them were markers: complete only at 4.0
    assert observer.reached_at == 4.0


def test_reached_at_is_the_first_sample_with_every_record() -> None:
    observer = observer_with([(1.0, [2]), (2.0, [4]), (3.0, [4])], [[0, 1, 2, 3]], target=4)
    assert observer.reached_at == 2.0


def test_nothing_reached_before_the_records_were_read() -> None:
    observer = observer_with([(1.0, [4])], [[0, 1, 2, 3]], target=4)
    observer.done_at = None
    assert observer.reached_at is None
