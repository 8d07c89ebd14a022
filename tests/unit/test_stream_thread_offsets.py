"""StreamThread's reading of committed offsets survives a moving group coordinator (no broker:
a stand-in consumer raises the errors librdkafka reports while a broker restarts)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kstreams import Topology, serdes
from kstreams.config import StreamsConfig
from kstreams.runtime.stream_thread import StreamThread
from kstreams.runtime.topics import TopologyMetadata


class _FlakyConsumer:
    def __init__(self, failures: list[int]) -> None:
        self.failures = list(failures)
        self.calls = 0

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.calls += 1
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0), "coordinator moving"))
        return [TopicPartition(tp.topic, tp.partition, 42) for tp in partitions]


def _thread() -> StreamThread:
    topology = Topology().add_source("src", ["in"], key_serde=serdes.STRING, value_serde=serdes.STRING)
    config = StreamsConfig({"application.id": "app", "bootstrap.servers": "127.0.0.1:1"})
    return StreamThread(0, topology, config, TopologyMetadata({"in": 1}, {0: 1}, {}), "pid", "/tmp", None,
                        lambda *_: None, lambda *_: None)


def test_committed_offsets_are_retried_while_the_coordinator_moves(monkeypatch):
    monkeypatch.setattr("kstreams.runtime.stream_thread.time.sleep", lambda _s: None)
    consumer = _FlakyConsumer([KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS])
    got = _thread()._committed_offsets(consumer, [TopicPartition("in", 0)])
    assert consumer.calls == 3
    assert [(tp.topic, tp.partition, tp.offset) for tp in got] == [("in", 0, 42)]


def test_other_errors_reading_committed_offsets_are_raised():
    consumer = _FlakyConsumer([KafkaError.GROUP_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException, match="coordinator moving"):
        _thread()._committed_offsets(consumer, [TopicPartition("in", 0)])
    assert consumer.calls == 1
