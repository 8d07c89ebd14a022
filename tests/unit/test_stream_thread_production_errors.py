"""How a stream thread answers a record that could not be delivered, as Kafka Streams does:
a retriable error rewinds the tasks, a refused record fails the thread unless the handler says
CONTINUE, and under exactly_once_v2 a transaction holding a failed record is never retried
forever (no broker: the delivery reports and the producer's errors are built by hand)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from kstreams import Topology, serdes
from kstreams.config import StreamsConfig
from kstreams.errors import HandlerResponse, StreamsError, TaskMigratedError
from kstreams.runtime.stream_thread import StreamThread
from kstreams.runtime.topics import TopologyMetadata


def _thread(guarantee: str, **props: Any) -> StreamThread:
    topology = Topology().add_source("src", ["in"], key_serde=serdes.STRING, value_serde=serdes.STRING)
    config = StreamsConfig({"application.id": "app", "bootstrap.servers": "127.0.0.1:1",
                            "processing.guarantee": guarantee, **props})
    return StreamThread(0, topology, config, TopologyMetadata({"in": 1}, {0: 1}, {}), "pid", "/tmp", None,
                        lambda *_: None, lambda *_: None)


def _report(thread: StreamThread, code: int) -> None:
    err = KafkaError(code)
    thread._on_delivery_error(err, Message(topic="out", partition=0, key=b"k", value=b"v", error=err))


def _abortable_commit() -> None:
    raise KafkaException(KafkaError(KafkaError._STATE, "failed to produce", txn_requires_abort=True))


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_a_timed_out_record_rewinds_the_tasks_with_the_default_handler(guarantee):
    thread = _thread(guarantee)
    _report(thread, KafkaError._MSG_TIMED_OUT)
    failure = thread._production_failure()
    assert isinstance(failure, TaskMigratedError) and "topic out partition 0" in str(failure)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_a_refused_record_fails_the_thread_with_the_default_handler(guarantee):
    thread = _thread(guarantee)
    _report(thread, KafkaError.MSG_SIZE_TOO_LARGE)
    failure = thread._production_failure()
    assert type(failure) is StreamsError and "topic out partition 0" in str(failure)


def test_a_fatal_producer_error_fails_an_at_least_once_thread():
    thread = _thread("at_least_once")
    _report(thread, KafkaError._MSG_TIMED_OUT)
    thread._on_client_error(KafkaError(KafkaError._FATAL, "boom", fatal=True))
    assert type(thread._production_failure()) is StreamsError


def test_exactly_once_commit_of_a_transaction_with_a_dropped_record_fails_the_thread():
    """The handler said CONTINUE, but librdkafka can only abort the transaction: rewinding would
    refuse the same record again forever. Kafka Streams' thread dies at the commit too."""
    thread = _thread("exactly_once_v2", **{"production.exception.handler": lambda *_: HandlerResponse.CONTINUE})
    _report(thread, KafkaError.MSG_SIZE_TOO_LARGE)
    assert not thread._production_errors  # dropped: processing goes on until the commit
    with pytest.raises(StreamsError, match="can only be aborted") as info:
        thread._txn_call(_abortable_commit)
    assert not isinstance(info.value, TaskMigratedError)
    assert "topic out partition 0" in str(info.value)


def test_exactly_once_abortable_commit_without_a_failed_record_rewinds():
    thread = _thread("exactly_once_v2")
    with pytest.raises(TaskMigratedError):
        thread._txn_call(_abortable_commit)
    _report(thread, KafkaError._MSG_TIMED_OUT)  # retried by rewinding, not a failed record
    with pytest.raises(TaskMigratedError):
        thread._txn_call(_abortable_commit)


class _AbortingProducer:
    """Reports its purged record as failed while aborting, as librdkafka does."""

    def __init__(self, thread: StreamThread) -> None:
        self.thread = thread

    def abort_transaction(self, _timeout: float) -> None:
        _report(self.thread, KafkaError._PURGE_QUEUE)


def test_records_purged_by_an_abort_do_not_fail_the_next_transaction():
    thread = _thread("exactly_once_v2")
    thread.producer = _AbortingProducer(thread)
    thread._txn_open = True
    thread._abort_transaction()
    assert not thread._production_errors and thread._txn_record_error is None
    _report(thread, KafkaError._MSG_TIMED_OUT)
    assert isinstance(thread._production_failure(), TaskMigratedError)
