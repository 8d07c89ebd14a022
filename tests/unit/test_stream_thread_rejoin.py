"""A stream thread whose assignment failed (a broker down while its tasks were created) rejoins
the group with a growing back-off, ``retry.backoff.ms`` doubled per consecutive failure up to
``retry.backoff.max.ms``, and starts over once an assignment succeeds (no broker: the consumer is
a stand-in; the thread's shutdown event records the waits)."""

from __future__ import annotations

from typing import Any

from kstreams import Topology, serdes
from kstreams.config import StreamsConfig
from kstreams.runtime.stream_thread import StreamThread
from kstreams.runtime.topics import TopologyMetadata


class _Consumer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def unsubscribe(self) -> None:
        self.calls.append("unsubscribe")

    def subscribe(self, topics: list[str], **_: Any) -> None:
        self.calls.append("subscribe")

    def assign(self, partitions: list[Any]) -> None:
        self.calls.append("assign")

    def resume(self, partitions: list[Any]) -> None:
        pass

    def committed(self, partitions: list[Any], timeout: float) -> list[Any]:
        return []


class _Waits:
    """Stands in for the shutdown event: records how long the thread waited."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.delays.append(timeout)
        return False

    def is_set(self) -> bool:
        return False


def _thread(**props: Any) -> tuple[StreamThread, _Consumer, _Waits]:
    topology = (Topology().add_source("src", ["in"], key_serde=serdes.STRING, value_serde=serdes.STRING)
                .add_sink("sink", "out", "src"))
    config = StreamsConfig({"application.id": "app", "bootstrap.servers": "127.0.0.1:1", **props})
    thread = StreamThread(0, topology, config, TopologyMetadata({"in": 1, "out": 1}, {0: 1}, {}), "pid", "/tmp",
                          None, lambda *_: None, lambda *_: None)
    consumer = _Consumer()
    waits = _Waits()
    thread.consumer = consumer  # type: ignore[assignment]
    thread._shutdown_requested = waits  # type: ignore[assignment]
    return thread, consumer, waits


def _failed_assignment(thread: StreamThread) -> None:
    thread._assign_failing_since = 1.0  # what _raise_callback_error notes before it raises TaskMigratedError
    thread._handle_migrated()


def test_rejoin_after_failed_assignments_backs_off_exponentially_up_to_the_cap() -> None:
    thread, consumer, waits = _thread()
    for _ in range(6):
        _failed_assignment(thread)
    assert waits.delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert consumer.calls == ["unsubscribe", "subscribe"] * 6  # the wait comes before the rejoin


def test_a_successful_assignment_resets_the_back_off() -> None:
    thread, consumer, waits = _thread(**{"retry.backoff.ms": 50, "retry.backoff.max.ms": 150})
    _failed_assignment(thread)
    _failed_assignment(thread)
    _failed_assignment(thread)
    thread._on_assign(consumer, [])  # type: ignore[arg-type]
    _failed_assignment(thread)
    assert waits.delays == [0.05, 0.1, 0.15, 0.05]


def test_a_migration_without_a_failed_assignment_rejoins_at_once() -> None:
    thread, consumer, waits = _thread()
    thread._handle_migrated()  # e.g. a retriable delivery error: the tasks are rewound, no back-off
    assert waits.delays == [] and consumer.calls == ["unsubscribe", "subscribe"]
