"""When a stream thread commits, and how (no broker: the producer and consumer are stand-ins that
record what they are asked).

Commits come every ``commit.interval.ms`` and in between when a task asks; asking does not move
the interval's clock. The exactly_once_v2 commit runs while the thread goes on processing: the
transaction commits on a helper thread, the output meanwhile waits in the tasks' collectors and
goes into the next transaction, and a failed commit drops it and rewinds."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from kstreams import Topology, serdes
from kstreams.config import StreamsConfig
from kstreams.errors import TaskMigratedError
from kstreams.runtime.stream_thread import StreamThread
from kstreams.runtime.topics import TopologyMetadata


class _Producer:
    def __init__(self, commit_error: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.release = threading.Event()
        self.committing = threading.Event()
        self.commit_error = commit_error

    def produce(self, topic: str, value: bytes, key: bytes, partition: int, *_: Any) -> None:
        self.calls.append(("produce", key))

    def begin_transaction(self) -> None:
        self.calls.append(("begin",))

    def send_offsets_to_transaction(self, offsets: list, _metadata: Any, _timeout: float) -> None:
        self.calls.append(("offsets", [(tp.topic, tp.partition, tp.offset) for tp in offsets]))

    def commit_transaction(self, _timeout: float) -> None:
        self.committing.set()
        assert self.release.wait(10)
        if self.commit_error is not None:
            raise self.commit_error
        self.calls.append(("commit",))

    def abort_transaction(self, _timeout: float) -> None:
        self.calls.append(("abort",))

    def poll(self, _timeout: float) -> int:
        return 0


class _Consumer:
    def consumer_group_metadata(self) -> bytes:
        return b"group"

    def get_watermark_offsets(self, _tp: Any, cached: bool = False) -> tuple[int, int]:
        return 0, 10


class _IdleClient:
    """An admin client or a restore consumer with nothing to serve."""

    def poll(self, timeout: float) -> int:
        return 0

    def consume(self, num_messages: int, timeout: float) -> list:
        return []


def _running_thread(producer: _Producer) -> tuple[StreamThread, Any]:
    topology = (Topology().add_source("src", ["in"], key_serde=serdes.STRING, value_serde=serdes.STRING)
                .add_sink("sink", "out", "src", key_serde=serdes.STRING, value_serde=serdes.STRING))
    config = StreamsConfig({"application.id": "app", "bootstrap.servers": "127.0.0.1:1",
                            "processing.guarantee": "exactly_once_v2"})
    thread = StreamThread(0, topology, config, TopologyMetadata({"in": 1, "out": 1}, {0: 1}, {}), "pid", "/tmp",
                          None, lambda *_: None, lambda *_: None)
    thread.producer = producer  # type: ignore[assignment]
    thread.consumer = _Consumer()  # type: ignore[assignment]
    thread.restore_consumer = _IdleClient()  # type: ignore[assignment]
    thread.admin = _IdleClient()  # type: ignore[assignment]
    entry = thread._create_task((0, 0), [("in", 0)], {})
    thread._start_task(entry)
    thread._txn_open = True
    return thread, entry.task


def _process(task: Any, offset: int) -> None:
    task.add_records("in", 0, [(f"k{offset}".encode(), b"v", 1_000 + offset, offset, None)], False)
    assert task.process(10, 0) == 1


def test_records_processed_while_the_transaction_commits_go_into_the_next_one():
    producer = _Producer()
    thread, task = _running_thread(producer)
    _process(task, 0)
    thread._commit(force=False)
    assert producer.committing.wait(10)  # the helper thread is committing; this thread goes on
    _process(task, 1)
    assert task.collector.buffered() and ("produce", b"k1") not in producer.calls
    thread._finish_commit(wait=False)  # not done yet: nothing changes
    assert thread._inflight is not None
    producer.release.set()
    thread._finish_commit(wait=True)
    assert producer.calls == [("produce", b"k0"), ("offsets", [("in", 0, 1)]), ("commit",), ("begin",),
                              ("produce", b"k1")]
    assert thread._txn_open and not task.collector.buffered()
    _process(task, 2)  # straight to the producer again
    assert producer.calls[-1] == ("produce", b"k2")


def test_a_forced_commit_waits_for_the_transaction():
    producer = _Producer()
    producer.release.set()
    thread, task = _running_thread(producer)
    _process(task, 0)
    thread._commit(force=True)
    assert thread._inflight is None and not thread._txn_open
    assert producer.calls[-1] == ("commit",)
    _process(task, 1)
    assert producer.calls[-1] == ("produce", b"k1")


def test_a_failed_commit_drops_what_was_buffered_and_rewinds():
    producer = _Producer(KafkaException(KafkaError(KafkaError._STATE, "boom", txn_requires_abort=True)))
    thread, task = _running_thread(producer)
    _process(task, 0)
    thread._commit(force=False)
    assert producer.committing.wait(10)
    _process(task, 1)
    producer.release.set()
    with pytest.raises(TaskMigratedError):
        thread._finish_commit(wait=True)
    assert not task.collector.buffered() and not thread._buffering
    thread._abort_transaction()
    assert producer.calls == [("produce", b"k0"), ("offsets", [("in", 0, 1)]), ("abort",)]


def test_closing_leaves_a_producer_still_blocked_in_a_commit_to_its_helper():
    producer = _Producer()
    producer.flush = lambda *_: producer.calls.append(("flush",))  # type: ignore[attr-defined]
    thread, task = _running_thread(producer)
    thread._txn_timeout = 0.05  # the helper stays blocked past it
    _process(task, 0)
    thread._commit(force=False)
    assert producer.committing.wait(10)
    thread._close_producer()
    # neither aborted nor flushed (nor destroyed) under the helper's call: just let go of
    assert thread.producer is None and thread._inflight is None
    assert ("flush",) not in producer.calls and ("abort",) not in producer.calls
    producer.release.set()


def test_rewinding_past_a_blocked_commit_replaces_the_producer_and_leaves_the_old_one_alone():
    producer = _Producer()
    thread, task = _running_thread(producer)
    thread._txn_timeout = 0.05
    replacement = _Producer()
    thread._create_producer = lambda: setattr(thread, "producer", replacement)  # type: ignore[method-assign]
    _process(task, 0)
    thread._commit(force=False)
    assert producer.committing.wait(10)
    thread._abort_transaction()  # e.g. partitions lost while the commit hangs
    assert thread.producer is replacement and not thread._txn_open
    assert ("abort",) not in producer.calls and not replacement.calls and thread._inflight is None
    producer.release.set()


def test_commits_share_one_helper_thread_and_a_blocked_one_keeps_it():
    producer = _Producer()
    thread, task = _running_thread(producer)
    thread._txn_timeout = 0.05
    _process(task, 0)
    thread._commit(force=False)
    assert producer.committing.wait(10)
    producer.release.set()
    thread._finish_commit(wait=True)
    first = thread._commit_helper
    _process(task, 1)
    thread._commit(force=False)
    thread._finish_commit(wait=True)
    assert thread._commit_helper is first  # the second commit ran on the same thread
    assert producer.calls.count(("commit",)) == 2

    blocked = _Producer()
    replacement = _Producer()
    replacement.release.set()
    thread.producer = blocked  # type: ignore[assignment]
    thread._create_producer = lambda: setattr(thread, "producer", replacement)  # type: ignore[method-assign]
    _process(task, 2)
    thread._commit(force=False)
    assert blocked.committing.wait(10)
    thread._abort_transaction()  # the commit hangs: its helper stays with it
    assert thread._commit_helper is None and thread.producer is replacement
    thread._txn_call(replacement.begin_transaction)
    thread._txn_open = True
    _process(task, 3)
    thread._commit(force=False)  # not queued behind the blocked commit: a new helper runs it
    thread._finish_commit(wait=True)
    assert thread._commit_helper is not first and ("commit",) in replacement.calls
    blocked.release.set()


def test_a_requested_commit_leaves_the_commit_interval_clock_alone(monkeypatch):
    import kstreams.runtime.stream_thread as stream_thread

    thread, task = _running_thread(_Producer())
    clock = [0.0]
    monkeypatch.setattr(stream_thread.time, "monotonic", lambda: clock[0])
    commits: list[float] = []

    def commit(force: bool) -> None:
        commits.append(now)
        clock[0] += 0.125  # a commit takes an eighth of a second

    thread._commit = commit  # type: ignore[method-assign]
    # binary-exact times: with the monotonic clock's reading, (start + interval) - start fell
    # short of interval by a rounding error now and then
    thread._commit_interval = interval = 0.5
    thread._last_commit = start = 1024.0
    now = start + interval / 2
    thread._maybe_commit(now)
    assert commits == []  # neither due nor asked for
    task.context.commit_requested = True  # as context.commit() or a full cache does
    thread._maybe_commit(now)
    assert commits == [now] and thread._last_commit == start
    task.context.commit_requested = False  # the commit resets it
    now = start + interval  # the interval is counted from the last interval commit, not the request
    thread._maybe_commit(now)
    # ... and from its end, as Kafka Streams' lastCommitMs
    assert commits == [start + interval / 2, now] and thread._last_commit == now + 0.125
    now += interval
    thread._maybe_commit(now)
    assert len(commits) == 2
    now += 0.125
    thread._maybe_commit(now)
    assert len(commits) == 3


def test_commit_latency_counts_the_thread_s_time_not_the_records_processed_meanwhile(monkeypatch):
    import kstreams.runtime.stream_thread as stream_thread

    clock = [100.0]

    def perf_counter() -> float:  # every reading takes a millisecond
        clock[0] += 0.001
        return clock[0]

    monkeypatch.setattr(stream_thread.time, "perf_counter", perf_counter)
    producer = _Producer()
    thread, task = _running_thread(producer)
    _process(task, 0)
    thread._commit(force=False)
    assert producer.committing.wait(10)
    clock[0] += 5.0  # records processed while the transaction commits
    _process(task, 1)
    producer.release.set()
    thread._finish_commit(wait=True)
    overlapped = thread.sensors["commit"].avg()
    assert 0 < overlapped < 0.1
    _process(task, 2)
    thread._commit(force=True)
    assert 0 < thread.sensors["commit"].avg() < 0.1


class _Refused:
    def topic(self) -> str:
        return "out"

    def partition(self) -> int:
        return 0


def _commit_failing_abortably(code: int, delivery_error: int) -> BaseException:
    """What finishing a commit raises when ``send_offsets_to_transaction`` fails with an abortable
    ``code`` before the producer serves a delivery report with ``delivery_error``."""
    class _Producer2(_Producer):
        def send_offsets_to_transaction(self, offsets: list, _metadata: Any, _timeout: float) -> None:
            raise KafkaException(KafkaError(code, "failed", txn_requires_abort=True))

        def poll(self, _timeout: float) -> int:
            thread._on_delivery_error(KafkaError(delivery_error), _Refused())
            return 1

    producer = _Producer2()
    producer.release.set()
    thread, task = _running_thread(producer)
    _process(task, 0)
    thread._commit(force=False)
    with pytest.raises(Exception) as failed:
        thread._finish_commit(wait=True)
    return failed.value


def test_an_abortable_error_met_before_the_failed_records_delivery_report_still_stops_the_thread():
    """librdkafka fails ``send_offsets_to_transaction`` (``_STATE``) a moment before it serves the
    delivery report of the record the broker refused: the thread waits for the report, then stops
    as for that record, instead of rewinding to fail on it again and again."""
    from kstreams.errors import StreamsError

    failed = _commit_failing_abortably(KafkaError._STATE, KafkaError.MSG_SIZE_TOO_LARGE)
    assert isinstance(failed, StreamsError) and not isinstance(failed, TaskMigratedError)
    assert "could not be delivered" in str(failed)


@pytest.mark.parametrize("purged", [KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT])
def test_records_the_client_purged_rewind_the_tasks_instead_of_stopping_the_thread(purged):
    """Records time out while a broker is down; librdkafka fails the transaction and purges the
    records it still queued. No broker refused those: the tasks are rewound and process them
    again (a fresh-clone CI run's broker-kill test stopped the thread on such a record)."""
    failed = _commit_failing_abortably(KafkaError._TIMED_OUT, purged)
    assert isinstance(failed, TaskMigratedError), failed


def test_a_task_stops_processing_at_its_deadline_after_at_least_one_record():
    from kstreams._core.task import monotonic_ms

    _thread, task = _running_thread(_Producer())
    task.add_records("in", 0, [(f"k{i}".encode(), b"v", 1_000 + i, i, None) for i in range(5)], False)
    assert task.process(10, 0, monotonic_ms() - 1) == 1  # past: one record, then the check
    assert task.process(10, 0, monotonic_ms() + 60_000) == 4  # far: as many as there are
    assert monotonic_ms() - 20 <= int(time.monotonic() * 1000) <= monotonic_ms() + 20  # one clock


def test_processing_stops_soon_after_the_next_commit_or_when_a_wall_clock_punctuation_is_due():
    from kstreams import PunctuationType
    from kstreams._core.task import monotonic_ms

    thread, task = _running_thread(_Producer())
    entries = list(thread.tasks.values())
    now_wall = 1_000_000
    thread._last_commit = time.monotonic()
    # half an interval after the commit is due (a round of fast records ends on its budget first)
    commit_due = int((thread._last_commit + 1.5 * thread._commit_interval) * 1000)
    assert abs(thread._process_deadline(entries, now_wall) - commit_due) <= 1
    task.context.wall_clock = now_wall
    task.context.current_node = task.nodes[0]  # as if from a processor's init()
    task.context.schedule(50, PunctuationType.WALL_CLOCK_TIME, lambda ts: None)  # due at now_wall + 50
    task.context.current_node = None
    assert abs(thread._process_deadline(entries, now_wall) - (monotonic_ms() + 50)) <= 20
    thread._last_commit -= 3600  # an interval commit overdue: stop after the next record
    assert thread._process_deadline(entries, now_wall) < monotonic_ms()
