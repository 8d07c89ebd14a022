"""The compiled client paths on a real broker: :class:`~kstreams._core.fetcher.Fetcher` (records
straight from librdkafka into raw record tuples) and :class:`~kstreams._core.producer.RdKafkaProducer`
(the stream threads' producer). Each is checked against what confluent-kafka itself writes and
reads, since either may serve a stream thread.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from kstreams._core import RecordCollector, murmur2_partition, rdkafka
from kstreams._core.fetcher import Fetcher
from kstreams._core.producer import OutputBuffer, RdKafkaProducer

pytestmark = pytest.mark.timeout(120)


def test_the_function_table_is_filled_in_declaration_order() -> None:
    pxd = (Path(rdkafka.__file__).parent / "rdkafka.pxd").read_text()
    body = pxd[pxd.index("ctypedef struct Api:"):pxd.index("cdef Api *api()")]
    declared = re.findall(r"^    \S.*\(\*(\w+)\)\(", body, re.MULTILINE)
    assert list(rdkafka.API_FIELDS) == declared


def test_the_direct_binding_is_available_here() -> None:
    # the stream threads use the compiled paths only when this is None: CI must exercise them
    assert rdkafka.unavailable_reason() is None
    assert re.search(r"librdkafka", rdkafka.library_path() or "")


def _consumer(kafka: Any, group: str, client_id: str, **extra: Any) -> Consumer:
    return Consumer(kafka.client_config({"group.id": group, "client.id": client_id, "auto.offset.reset": "earliest",
                                         "enable.auto.commit": False, **extra}))


def _fetch_all(fetcher: Fetcher, consumer: Consumer, want: int, timeout: float = 30) -> dict:
    out: dict = {}
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in out.values()) < want and time.monotonic() < deadline:
        assert consumer.consume(100, 0) == []  # forwarded partitions never show up here
        records, errors = fetcher.fetch(0.2)
        assert errors == []
        for tp, batch in records.items():
            out.setdefault(tp, []).extend(batch)
    return out


def test_fetcher_reads_what_a_producer_wrote_grouped_by_partition_in_offset_order(kafka: Any) -> None:
    topic = kafka.unique_name("fetch")
    kafka.create_topic(topic, partitions=3)
    producer = Producer(kafka.client_config())
    for i in range(300):
        headers = [("h", b"x"), ("n", None)] if i % 100 == 0 else None
        producer.produce(topic, None if i == 7 else f"v{i}".encode(), None if i == 8 else f"k{i}".encode(),
                         i % 3, timestamp=1_000 + i, headers=headers)
    assert producer.flush(30) == 0
    consumer = _consumer(kafka, kafka.unique_name("g"), "fetch-test")
    fetcher = Fetcher(consumer, "fetch-test", 64)
    try:
        tps = [(topic, p) for p in range(3)]
        fetcher.forward(tps)
        consumer.assign([TopicPartition(t, p, 0) for t, p in tps])
        got = _fetch_all(fetcher, consumer, 300)
    finally:
        fetcher.close()
        consumer.close()
    assert sorted(got) == tps
    for (_, p), batch in got.items():
        assert [r[3] for r in batch] == list(range(100))  # offsets, in order
        for key, value, ts, _offset, headers in batch:
            i = ts - 1_000
            assert i % 3 == p
            assert value == (None if i == 7 else f"v{i}".encode())
            assert key == (None if i == 8 else f"k{i}".encode())
            assert headers == ((("h", b"x"), ("n", None)) if i % 100 == 0 else None)


def test_fetcher_leaves_partitions_it_was_not_given_to_consume(kafka: Any) -> None:
    topic = kafka.unique_name("fetch-split")
    kafka.create_topic(topic, partitions=2)
    producer = Producer(kafka.client_config())
    for i in range(20):
        producer.produce(topic, b"v", b"k", i % 2)
    assert producer.flush(30) == 0
    consumer = _consumer(kafka, kafka.unique_name("g"), "split-test")
    fetcher = Fetcher(consumer, "split-test", 16)
    try:
        fetcher.forward([(topic, 0)])
        consumer.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        via_fetcher: list = []
        via_consume: list = []
        deadline = time.monotonic() + 30
        while (len(via_fetcher) < 10 or len(via_consume) < 10) and time.monotonic() < deadline:
            via_consume += [(m.topic(), m.partition()) for m in consumer.consume(100, 0.1) if m.error() is None]
            records, _ = fetcher.fetch(0.1)
            via_fetcher += [tp for tp, batch in records.items() for _ in batch]
    finally:
        fetcher.close()
        consumer.close()
    assert via_fetcher == [(topic, 0)] * 10
    assert via_consume == [(topic, 1)] * 10


def test_fetcher_refuses_a_consumer_that_is_not_the_one_named(kafka: Any) -> None:
    consumer = _consumer(kafka, kafka.unique_name("g"), "right-id")
    try:
        with pytest.raises(ImportError, match="does not look like"):
            Fetcher(consumer, "wrong-id", 16)
        with pytest.raises(TypeError):
            Fetcher(Producer(kafka.client_config({"client.id": "right-id"})), "right-id", 16)
    finally:
        consumer.close()


def test_fetcher_outliving_its_consumer_refuses_to_fetch_and_frees_safely(kafka: Any) -> None:
    consumer = _consumer(kafka, kafka.unique_name("g"), "short-lived")
    fetcher = Fetcher(consumer, "short-lived", 16)
    consumer.close()  # destroys the librdkafka client the fetcher's queue belongs to
    with pytest.raises(ValueError, match="consumer of the fetcher is closed"):
        fetcher.fetch(0)
    fetcher.close()
    del fetcher  # and nothing touches the destroyed client (that could crash the test process)


def _read_all(kafka: Any, topic: str, want: int, isolation: str = "read_uncommitted") -> list:
    consumer = _consumer(kafka, kafka.unique_name("reader"), "reader", **{"isolation.level": isolation})
    consumer.subscribe([topic])
    out: list = []
    deadline = time.monotonic() + 30
    try:
        while len(out) < want and time.monotonic() < deadline:
            out += [m for m in consumer.consume(500, 0.2) if m.error() is None]
        out += [m for m in consumer.consume(500, 1.0) if m.error() is None]  # nothing more should come
    finally:
        consumer.close()
    return out


def test_producer_writes_keys_values_tombstones_headers_and_timestamps(kafka: Any) -> None:
    topic = kafka.unique_name("produce")
    kafka.create_topic(topic, partitions=2)
    failures: list = []
    producer = RdKafkaProducer(kafka.client_config({"client.id": "p", "linger.ms": 5}),
                               lambda err, msg: failures.append(err), None)
    for i in range(100):
        producer.produce(topic, f"v{i}".encode(), f"k{i}".encode(), i % 2, None, None, 5_000 + i,
                         [("trace", f"t{i}".encode()), ("empty", None)] if i == 3 else None)
    producer.produce(topic, None, b"gone", 1, None, None, 9_999, None)
    assert producer.flush(30) == 0
    producer.close()
    got = _read_all(kafka, topic, 101)
    assert failures == []
    assert len(got) == 101
    by_key = {m.key(): m for m in got}
    for i in range(100):
        m = by_key[f"k{i}".encode()]
        assert (m.value(), m.partition(), m.timestamp()[1]) == (f"v{i}".encode(), i % 2, 5_000 + i)
        assert m.headers() == ([("trace", f"t{i}".encode()), ("empty", None)] if i == 3 else None)
    assert by_key[b"gone"].value() is None


def test_producer_reports_a_failed_delivery_with_the_record(kafka: Any) -> None:
    failures: list = []
    errors: list = []
    producer = RdKafkaProducer(kafka.client_config({"client.id": "p", "message.timeout.ms": 1000}),
                               lambda err, msg: failures.append((err, msg)), errors.append)
    missing = kafka.unique_name("never-created")
    producer.produce(missing, b"value", b"key", 2, None, None, 1234, [("h", b"1")])
    assert producer.flush(30) == 0
    assert len(failures) == 1
    err, msg = failures[0]
    assert err.code() in (KafkaError._MSG_TIMED_OUT, KafkaError.UNKNOWN_TOPIC_OR_PART)
    assert (msg.topic(), msg.partition(), msg.key(), msg.value(), msg.headers()) == (missing, 2, b"key", b"value",
                                                                                     [("h", b"1")])
    assert msg.error() == err
    producer.close()


def test_producer_hands_librdkafka_log_lines_to_its_logger(kafka: Any, capfd: Any, caplog: Any) -> None:
    logger = logging.getLogger("kstreams.test.rdkafka-log")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    producer = RdKafkaProducer(kafka.client_config({"client.id": "log-probe", "debug": "broker",
                                                    "logger": logger}), None, None)
    producer.produce(kafka.create_topic(kafka.unique_name("log"), 1), b"v", b"k", 0, None, None, 1, None)
    assert producer.flush(30) == 0  # serves the log lines queued so far
    producer.close()
    lines = [r for r in caplog.records if r.name == logger.name]
    assert lines and all(r.levelno == logging.DEBUG for r in lines)  # librdkafka's level 7
    assert any("log-probe#producer" in r.getMessage() and "BROKER" in r.getMessage() for r in lines)
    assert "log-probe#producer" not in capfd.readouterr().err  # nothing printed by librdkafka itself
    with pytest.raises(TypeError, match="logging.Logger"):
        RdKafkaProducer({"bootstrap.servers": kafka.bootstrap, "logger": print}, None, None)


def test_producer_refuses_what_confluent_kafka_refuses(kafka: Any) -> None:
    topic = kafka.unique_name("refuse")
    kafka.create_topic(topic, partitions=1)
    producer = RdKafkaProducer(kafka.client_config({"client.id": "p", "queue.buffering.max.messages": 5,
                                                    "linger.ms": 10_000, "message.max.bytes": 2_000}), None, None)
    with pytest.raises(TypeError, match="value must be bytes"):
        producer.produce(topic, "text", None, 0)
    with pytest.raises(KafkaException) as too_big:
        producer.produce(topic, b"x" * 5_000, None, 0)
    assert too_big.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    for _ in range(5):
        producer.produce(topic, b"v", None, 0)
    with pytest.raises(BufferError):
        producer.produce(topic, b"v", None, 0)
    assert len(producer) == 5
    producer.close()
    with pytest.raises(RuntimeError, match="closed"):
        producer.produce(topic, b"v", None, 0)
    with pytest.raises(KafkaException) as bad:
        RdKafkaProducer({"bootstrap.servers": kafka.bootstrap, "no.such.property": "1"}, None, None)
    assert "no.such.property" in str(bad.value)


@pytest.mark.parametrize("route", ["direct", "python-call", "output-buffer"])
def test_collector_hands_records_to_the_producer_either_way_with_the_same_errors(kafka: Any, route: str) -> None:
    # use_producer() calls an RdKafkaProducer from C; a plain ``produce`` function gets the Python
    # call; use_output() fills an OutputBuffer that send_buffer() queues later: the records written
    # and the refusals handed to on_produce_error must not differ
    topic = kafka.unique_name(f"collect-{route}")
    kafka.create_topic(topic, partitions=2)
    producer = RdKafkaProducer(kafka.client_config({"client.id": "p", "linger.ms": 5, "message.max.bytes": 2_000}),
                               None, None)
    refused: list = []
    collector = RecordCollector(lambda t: 2, on_produce_error=lambda exc, *rec: refused.append((type(exc), rec)))
    out = OutputBuffer(producer)
    if route == "direct":
        collector.use_producer(producer)
    elif route == "output-buffer":
        collector.use_output(out)
    else:
        collector.produce = lambda *args: producer.produce(*args)
    for i in range(50):
        collector.send(topic, f"k{i}".encode(), f"v{i}".encode(), 7_000 + i, (("h", b"x"),) if i == 5 else (), -1)
    collector.send(topic, b"big", b"x" * 5_000, 1, (("h", b"y"),), 1)
    collector.send(topic, b"text", "not bytes", 2, (), 0)  # type: ignore[arg-type]
    if route == "output-buffer":
        assert len(out) == 51  # the refused type never got in; the oversized record is refused when sent
        assert producer.send_buffer(out.take(), collector.on_produce_error) == 50
        assert len(out) == 0
    assert producer.flush(30) == 0
    producer.close()
    # the buffer refuses a wrong type when the record is added, the producer a large one when sent
    refused.sort(key=lambda r: r[0] is TypeError)
    assert [(kind, rec[:3]) for kind, rec in refused] == [(KafkaException, (topic, b"x" * 5_000, b"big")),
                                                          (TypeError, (topic, "not bytes", b"text"))]
    assert refused[0][1][3:] == (1, 1, [("h", b"y")])  # partition, timestamp, headers as a list
    got = {m.key(): m for m in _read_all(kafka, topic, 50)}
    assert len(got) == 50
    for i in range(50):
        m = got[f"k{i}".encode()]
        assert (m.value(), m.timestamp()[1], m.partition()) == (f"v{i}".encode(), 7_000 + i,
                                                                 murmur2_partition(f"k{i}".encode(), 2))
        assert m.headers() == ([("h", b"x")] if i == 5 else None)


def test_producer_transactions_commit_offsets_with_metadata_and_abort(kafka: Any) -> None:
    topic = kafka.unique_name("txn")
    kafka.create_topic(topic, partitions=1)
    group = kafka.unique_name("txn-group")
    txn_id = kafka.unique_name("txn-id")
    producer = RdKafkaProducer(kafka.client_config({"client.id": "p", "transactional.id": txn_id}), None, None)
    producer.init_transactions(30)
    consumer = _consumer(kafka, group, "c")
    try:
        producer.begin_transaction()
        producer.produce(topic, b"committed", b"k", 0)
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 42, metadata="AQAAAAAAAAAH")],
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=30)[0]
        assert (committed.offset, committed.metadata) == (42, "AQAAAAAAAAAH")
        producer.begin_transaction()
        producer.produce(topic, b"aborted", b"k", 0)
        producer.abort_transaction(30)
        # a second producer with the same transactional.id fences the first
        newer = RdKafkaProducer(kafka.client_config({"client.id": "p2", "transactional.id": txn_id}), None, None)
        newer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(topic, b"fenced", b"k", 0)
        with pytest.raises(KafkaException) as fenced:
            producer.commit_transaction(30)
        assert fenced.value.args[0].fatal() or fenced.value.args[0].txn_requires_abort()
        newer.close()
    finally:
        consumer.close()
        producer.close()
    assert [m.value() for m in _read_all(kafka, topic, 1, "read_committed")] == [b"committed"]


def test_output_buffer_keeps_every_field_and_the_order_and_recycles_its_memory(kafka: Any) -> None:
    topic = kafka.unique_name("outbuf")
    kafka.create_topic(topic, partitions=2)
    producer = RdKafkaProducer(kafka.client_config({"client.id": "p", "linger.ms": 5}), None, None)
    other = RdKafkaProducer(kafka.client_config({"client.id": "p2"}), None, None)
    out = OutputBuffer(producer)
    assert out.producer is producer and len(out) == 0 and out.nbytes == 0
    out.add(topic, 0, b"k", b"v", 11, (("h", b"1"), (b"raw", "text"), ("none", None)))
    out.add(topic, 1, None, None, 12)  # a tombstone without a key
    out.add(topic, 1, b"", b"", 13)  # empty, not null
    first = out.take()
    assert (len(first), len(out), out.nbytes) == (3, 0, 0)
    for i in range(20_000):  # grows past the first block; the order within a partition holds
        out.add(topic, i % 2, f"k{i}".encode(), f"v{i}".encode() * 3, 1_000 + i)
    second = out.take()
    with pytest.raises(ValueError, match="another producer"):
        other.send_buffer(second)
    assert producer.send_buffer(first) == 3
    assert len(first) == 0 and first.nbytes == 0  # a sent buffer is empty
    assert producer.send_buffer(second) == 20_000
    out.add(topic, 0, b"last", b"x", 2)  # written into the memory a sent buffer gave back
    assert out.nbytes > 0
    out.clear()
    assert (len(out), out.nbytes) == (0, 0)
    out.add(topic, 0, b"last", b"x", 99)
    assert producer.send_buffer(out) == 1  # the buffer itself can be sent too
    assert producer.flush(30) == 0
    producer.close()
    other.close()
    got = _read_all(kafka, topic, 20_004)
    assert len(got) == 20_004
    head = {m.timestamp()[1]: m for m in got if m.timestamp()[1] in (11, 12, 13, 99)}
    assert (head[11].partition(), head[11].key(), head[11].value()) == (0, b"k", b"v")
    assert head[11].headers() == [("h", b"1"), ("raw", b"text"), ("none", None)]
    assert (head[12].partition(), head[12].key(), head[12].value(), head[12].headers()) == (1, None, None, None)
    assert (head[13].key(), head[13].value()) == (b"", b"")
    assert head[99].key() == b"last"
    for p in (0, 1):
        stamps = [m.timestamp()[1] for m in sorted(got, key=lambda m: m.offset()) if m.partition() == p
                  and m.timestamp()[1] >= 1_000]
        assert stamps == list(range(1_000 + p, 21_000, 2))


def test_output_buffer_waits_for_room_in_a_full_queue_then_gives_up_per_record(kafka: Any) -> None:
    topic = kafka.unique_name("outbuf-full")
    kafka.create_topic(topic, partitions=1)
    # room for 5 records: the rest wait until deliveries free it (linger 50 ms)
    producer = RdKafkaProducer(kafka.client_config({"client.id": "p", "queue.buffering.max.messages": 5,
                                                    "linger.ms": 50}), None, None)
    out = OutputBuffer(producer)
    for i in range(40):
        out.add(topic, 0, b"k", str(i).encode(), i)
    assert producer.send_buffer(out.take()) == 40
    assert producer.flush(30) == 0
    assert [m.value() for m in sorted(_read_all(kafka, topic, 40), key=lambda m: m.offset())] == \
        [str(i).encode() for i in range(40)]
    # a queue that stays full (nothing is sent for 10 s): each record left waits max_block, then
    # goes to on_error as a full-queue error, and the records after it are still tried
    stuck = RdKafkaProducer(kafka.client_config({"client.id": "stuck", "queue.buffering.max.messages": 2,
                                                 "linger.ms": 10_000}), None, None)
    out = OutputBuffer(stuck)
    for i in range(4):
        out.add(topic, 0, b"s", str(i).encode(), i)
    refused: list = []
    t0 = time.monotonic()
    assert stuck.send_buffer(out.take(), lambda exc, *rec: refused.append((exc, rec)), 0.2) == 2
    assert time.monotonic() - t0 >= 0.4
    assert [(exc.args[0].code(), rec[1]) for exc, rec in refused] == [(KafkaError._QUEUE_FULL, b"2"),
                                                                      (KafkaError._QUEUE_FULL, b"3")]
    out.add(topic, 0, b"s", b"x", 1)
    with pytest.raises(KafkaException, match="still full"):  # without on_error the refusal is raised
        stuck.send_buffer(out, None, 0.1)
    assert len(out) == 0  # and the buffer is emptied all the same
    stuck.close()
    producer.close()
