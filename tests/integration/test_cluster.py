"""The local Kafka harness against real brokers: clients, transactions, a killed broker."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cluster as kafka_cluster  # tests/kafka/cluster.py, put on sys.path by conftest.py
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

CONSUME_TIMEOUT = 45.0


def _consume(
    cluster: kafka_cluster.Cluster,
    topic: str,
    expected: int,
    extra: dict[str, Any] | None = None,
    settle: float = 0.0,
) -> list[Message]:
    """Read ``topic`` from the beginning with a fresh group until ``expected`` records.

    Then keeps polling for ``settle`` seconds to catch records that should not be there.
    """
    consumer = Consumer(
        cluster.client_config(
            {
                "group.id": cluster.unique_name("group"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **(extra or {}),
            }
        )
    )
    records: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CONSUME_TIMEOUT
        while len(records) < expected and time.monotonic() < deadline:
            _poll_into(consumer, records)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            _poll_into(consumer, records)
    finally:
        consumer.close()
    return records


def _poll_into(consumer: Consumer, records: list[Message]) -> None:
    message = consumer.poll(0.5)
    if message is None:
        return
    error = message.error()
    if error is None:
        records.append(message)
    elif error.code() != KafkaError._PARTITION_EOF and not error.retriable():
        raise AssertionError(f"consumer error: {error}")


def _delivery_recorder(errors: list[str]) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(f"{message.key()!r}: {error}")

    return on_delivery


def _values(records: list[Message]) -> list[str]:
    return [record.value().decode() for record in records]


def test_produce_consume_round_trip(kafka: kafka_cluster.Cluster) -> None:
    topic = kafka.create_topic(kafka.unique_name("round-trip"), partitions=3)
    producer = Producer(kafka.client_config({"acks": "all", "linger.ms": 5, "enable.idempotence": True}))
    errors: list[str] = []
    sent = [(f"key-{i % 7}", f"value-{i}") for i in range(300)]
    for key, value in sent:
        producer.produce(topic, value=value, key=key, on_delivery=_delivery_recorder(errors))
    assert producer.flush(30) == 0
    producer.close()
    assert errors == []

    records = _consume(kafka, topic, len(sent))

    assert sorted((r.key().decode(), r.value().decode()) for r in records) == sorted(sent)
    by_key: dict[str, list[int]] = {}
    for record in records:
        by_key.setdefault(record.key().decode(), []).append(int(record.value()[6:]))
    assert all(seq == sorted(seq) for seq in by_key.values()), "per-key order was not kept"
    assert {r.partition() for r in records} <= {0, 1, 2}


def test_transactions_are_visible_to_read_committed_only_when_committed(
    kafka: kafka_cluster.Cluster,
) -> None:
    topic = kafka.create_topic(kafka.unique_name("txn"), partitions=2)
    producer = Producer(kafka.client_config({"transactional.id": kafka.unique_name("txn-producer")}))
    producer.init_transactions(30)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key=b"aborted", value=f"aborted-{i}")
    producer.flush(30)
    producer.abort_transaction(30)

    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, key=f"k{i}", value=f"committed-{i}")
    producer.commit_transaction(30)
    producer.close()

    committed = _consume(kafka, topic, 10, {"isolation.level": "read_committed"}, settle=1.0)
    assert sorted(_values(committed)) == sorted(f"committed-{i}" for i in range(10))

    everything = _consume(kafka, topic, 15, {"isolation.level": "read_uncommitted"}, settle=1.0)
    assert sorted(_values(everything)) == sorted(
        [f"aborted-{i}" for i in range(5)] + [f"committed-{i}" for i in range(10)]
    )


def test_three_brokers_survive_a_killed_broker(kafka3: kafka_cluster.Cluster) -> None:
    kafka3.ensure_running()
    assert kafka3.broker_ids() == {0, 1, 2}
    topic = kafka3.create_topic(
        kafka3.unique_name("replicated"),
        partitions=3,
        replication=3,
        config={"min.insync.replicas": "2"},
    )
    assert all(len(isr) == 3 for isr in kafka3.partition_isrs(topic).values())
    producer = Producer(kafka3.client_config({"acks": "all", "enable.idempotence": True, "linger.ms": 5}))
    errors: list[str] = []
    on_delivery = _delivery_recorder(errors)

    def produce(start: int, stop: int) -> None:
        for i in range(start, stop):
            producer.produce(topic, key=f"k{i % 11}", value=f"v{i}", on_delivery=on_delivery)
            producer.poll(0)

    produce(0, 200)
    assert producer.flush(30) == 0

    victim = kafka3.partition_leaders(topic)[0]  # force a leader change for partition 0
    kafka3.kill(victim)
    produce(200, 400)  # acks=all keeps working with 2 of 3 replicas in sync
    assert producer.flush(60) == 0, kafka3.log_tail((victim + 1) % 3)
    assert errors == []
    assert victim not in kafka3.partition_leaders(topic).values()

    records = _consume(kafka3, topic, 400)
    values = _values(records)
    assert len(values) == 400, f"lost or duplicated records: got {len(values)}"
    assert set(values) == {f"v{i}" for i in range(400)}

    kafka3.restart(victim)
    assert kafka3.broker_ids() == {0, 1, 2}
    deadline = time.monotonic() + 30
    while not all(victim in isr for isr in kafka3.partition_isrs(topic).values()):
        assert time.monotonic() < deadline, f"broker {victim} never rejoined the ISR"
        time.sleep(0.2)
    produce(400, 450)
    assert producer.flush(30) == 0
    producer.close()
    assert errors == []
    assert len(_consume(kafka3, topic, 450)) == 450


def test_cli_start_prints_one_bootstrap_line_and_stop_leaves_no_jvm(tmp_path: Path) -> None:
    script = Path(kafka_cluster.__file__)
    cluster_dir = tmp_path / "cli"
    started = subprocess.run(
        [sys.executable, str(script), "start", "--dir", str(cluster_dir)],
        capture_output=True,
        text=True,
        timeout=kafka_cluster.DEFAULT_START_TIMEOUT + 60,
        check=False,
    )
    try:
        assert started.returncode == 0, started.stderr
        assert re.fullmatch(r"bootstrap=127\.0\.0\.1:\d+\n", started.stdout), started.stdout
        cluster = kafka_cluster.Cluster.load(cluster_dir)
        assert started.stdout.strip() == f"bootstrap={cluster.bootstrap}"
        assert cluster.running() == [0]
        pid = cluster.nodes[0].pid
    finally:
        stopped = subprocess.run(
            [sys.executable, str(script), "stop", "--dir", str(cluster_dir)],
            capture_output=True,
            text=True,
            timeout=kafka_cluster.DEFAULT_STOP_TIMEOUT + 30,
            check=False,
        )
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == ""
    assert pid is not None and not kafka_cluster.process_alive(pid)
