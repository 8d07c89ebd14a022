"""Exactly-once processing through a broker failure (3 brokers, replication factor 3).

An ``exactly_once_v2`` count application runs while input is produced; a broker is SIGKILLed
mid-stream (the leader of an input partition, or the transaction and group coordinator of the
application) and restarted later. The output, read with ``read_committed``, must hold the effect
of every input exactly once: per key the counts ``1, 2, ..., n`` each once, ``n`` the number of
inputs of the key.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from apps import assert_exact_counts, consume_all, count_topology, counts_by_key
from confluent_kafka import Consumer, IsolationLevel, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from kstreams import KafkaStreams, State
from kstreams.state.directory import PROCESS_FILE

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(100, func_only=True)]

log = logging.getLogger("kstreams.tests.broker_failure")

PARTITIONS = 3
KEYS = 40
TXN_LOG_PARTITIONS = 10  # transaction.state.log.num.partitions of tests/kafka/cluster.py
OFFSETS_PARTITIONS = 10  # offsets.topic.num.partitions, likewise
REPLICATED = {"min.insync.replicas": "2"}


class InputProducer(threading.Thread):
    """Produces ``k<i*7 % KEYS> -> v<i>`` until stopped, about ``rate``/s.

    Idempotent with acks=all: a retry after a broker died cannot write a record twice (a plain
    producer can, and the count would then rightly see two inputs). Timestamps are the current
    time (records dated 1970 are deleted by a broker's time retention, which the test cluster
    turns off). ``delivered`` holds the acknowledged pairs; a failed delivery is kept in
    ``errors`` (the test then fails: the input must be known exactly).
    """

    MAX_IN_FLIGHT = 5_000
    """Unacknowledged records at most: while a partition has no leader, producing pauses."""

    def __init__(self, bootstrap: str, topic: str, rate: int) -> None:
        super().__init__(name="input-producer", daemon=True)
        self.topic = topic
        self.rate = rate
        self.produced = 0
        self.delivered: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.failure: BaseException | None = None
        self.remaining = -1
        self.stop = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                                  "partitioner": "murmur2_random", "linger.ms": 5})

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.errors.append(f"{msg.key()!r}={msg.value()!r}: {err}")
        else:
            self.delivered.append((msg.key().decode(), msg.value().decode()))

    def run(self) -> None:
        try:
            step = max(1, self.rate // 20)
            while not self.stop.is_set():
                if self.produced - len(self.delivered) - len(self.errors) < self.MAX_IN_FLIGHT:
                    for _ in range(step):
                        i = self.produced
                        self.producer.produce(self.topic, f"v{i}".encode(), f"k{(i * 7) % KEYS}".encode(),
                                              on_delivery=self._on_delivery)
                        self.produced += 1
                self.producer.poll(0)
                self.stop.wait(0.05)
            self.remaining = self.producer.flush(60)
        except BaseException as exc:
            self.failure = exc

    def __str__(self) -> str:
        return (f"input producer: {self.produced} produced, {len(self.delivered)} acknowledged, "
                f"{len(self.errors)} failed, alive={self.is_alive()}, failure={self.failure!r}")

    def finish(self) -> list[tuple[str, str]]:
        self.stop.set()
        self.join(90)
        assert not self.is_alive() and self.failure is None, str(self)
        assert self.remaining == 0 and not self.errors, (self.remaining, self.errors[:5])
        return self.delivered


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units, 32-bit overflow)."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_partition(key: str, partitions: int) -> int:
    """The partition of ``__consumer_offsets`` / ``__transaction_state`` that a group or
    transactional id maps to: the absolute value of its Java hash (0 for ``Integer.MIN_VALUE``)
    modulo the partition count."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def leader_of(kafka, topic: str, partition: int) -> int:
    return kafka.partition_leaders(topic)[partition]


def group_coordinator_of(kafka, group: str) -> int:
    """The group coordinator as the broker reports it.

    A throwaway admin client: librdkafka (2.16) can abort the whole process in an admin client
    whose coordinator request lost its connection (``eonce->refcnt > 0``, confluentinc/librdkafka
    #4605), and the shared one lives on through the broker kills.
    """
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    try:
        return admin.describe_consumer_groups([group])[group].result(30).coordinator.id
    finally:
        del admin


def ensure_internal_topics(kafka) -> None:
    """Make the broker create ``__consumer_offsets`` and ``__transaction_state`` (on first use)."""
    committed_total(kafka, kafka.unique_name("probe"), "probe")  # FindCoordinator(group)
    probe = Producer({"bootstrap.servers": kafka.bootstrap, "transactional.id": kafka.unique_name("probe")})
    probe.init_transactions(30)  # FindCoordinator(transaction)
    for topic, partitions in (("__consumer_offsets", OFFSETS_PARTITIONS), ("__transaction_state", TXN_LOG_PARTITIONS)):
        deadline = time.monotonic() + 30
        while True:
            leaders = kafka.partition_leaders(topic) if topic in kafka.admin.list_topics(timeout=10).topics else {}
            if len(leaders) == partitions and min(leaders.values()) >= 0:
                break
            assert time.monotonic() < deadline, f"{topic}: no leader for every partition: {leaders}"
            time.sleep(0.2)


def arrange_coordinators(kafka, state_dir: Path, want: Callable[[int, int], bool]) -> tuple[str, int, int]:
    """An application id and a process id (written into ``state_dir`` as KafkaStreams stores it)
    whose group coordinator and transaction coordinator (of stream thread 1) satisfy
    ``want(group_coordinator, transaction_coordinator)``; returns (application id, both)."""
    ensure_internal_topics(kafka)
    group_leaders = kafka.partition_leaders("__consumer_offsets")
    txn_leaders = kafka.partition_leaders("__transaction_state")
    for _ in range(1_000):
        app_id, process_id = kafka.unique_name("app"), uuid.uuid4()
        group = group_leaders[coordinator_partition(app_id, OFFSETS_PARTITIONS)]
        txn = txn_leaders[coordinator_partition(f"{app_id}-{process_id}-1", TXN_LOG_PARTITIONS)]
        if want(group, txn):
            app_dir = state_dir / app_id
            app_dir.mkdir(parents=True)
            (app_dir / PROCESS_FILE).write_text(json.dumps({"processId": str(process_id)}))
            return app_id, group, txn
    raise AssertionError("no application id / process id found with the wanted coordinators")


def committed_total(kafka, group: str, topic: str, timeout: float = 30.0) -> int:
    """Input records the application has committed (stable offsets: no pending transaction).

    Asks again while the group coordinator moves (e.g. NOT_COORDINATOR), for up to ``timeout``.
    """
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group, "isolation.level": "read_committed"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
                return sum(max(tp.offset, 0) for tp in tps)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        c.close()


def wait_for(what: str, check: Callable[[], bool], app: KafkaStreams, producer: InputProducer,
             timeout: float) -> None:
    """Poll ``check`` until true; fail at once if the application died, or after ``timeout`` with
    what the stream threads are doing."""
    started = time.monotonic()
    deadline = started + timeout
    next_log = started + 5
    while True:
        if app.state in (State.ERROR, State.PENDING_ERROR):
            raise AssertionError(f"the application failed while waiting for {what}: {app.fatal_error!r}")
        if check():
            log.info("%s: reached after %.1f s", what, time.monotonic() - started)
            return
        if time.monotonic() > next_log:
            log.info("waiting for %s (%.0f s): application %s; %s", what, time.monotonic() - started,
                     app.state.value, producer)
            next_log += 5
        if time.monotonic() > deadline:
            frames = sys._current_frames()
            stacks = "\n".join(f"{t.name}:\n{''.join(traceback.format_stack(frames[t.ident]))}"
                               for t in threading.enumerate() if "StreamThread" in t.name and t.ident in frames)
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s; application {app.state.value}; "
                                 f"{producer}\n{stacks}")
        time.sleep(0.2)


def end_offsets(kafka, topic: str) -> dict[int, tuple[int, int]]:
    """Partition -> (last stable offset, high watermark): where they differ, a transaction is open."""
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    out = {}
    for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        futures = kafka.admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, isolation_level=level)
        for tp, f in futures.items():
            out.setdefault(tp.partition, []).append(f.result(30).offset)
    return {p: (lso, hw) for p, (lso, hw) in sorted(out.items())}


def app_config(kafka, app_id: str, state_dir) -> dict:
    return {"application.id": app_id, "bootstrap.servers": kafka.bootstrap, "state.dir": str(state_dir),
            "processing.guarantee": "exactly_once_v2", "commit.interval.ms": 100, "replication.factor": 3,
            "topic.min.insync.replicas": "2"}


@pytest.mark.parametrize("victim", ["input-leader", "coordinators"])
def test_exactly_once_through_a_broker_kill(kafka3, tmp_path, victim):
    """``input-leader``: the broker leading input partition 0, neither coordinator of the
    application; ``coordinators``: the broker that is both its group coordinator and the
    transaction coordinator of its stream thread (application and process id chosen so)."""
    kafka3.ensure_running()
    src = kafka3.create_topic(kafka3.unique_name("in"), PARTITIONS, replication=3, config=REPLICATED)
    out = kafka3.create_topic(kafka3.unique_name("out"), PARTITIONS, replication=3, config=REPLICATED)
    if victim == "input-leader":
        broker = leader_of(kafka3, src, 0)
        app_id, group_coordinator, txn_coordinator = arrange_coordinators(
            kafka3, tmp_path, lambda group, txn: broker not in (group, txn))
    else:
        app_id, group_coordinator, txn_coordinator = arrange_coordinators(
            kafka3, tmp_path, lambda group, txn: group == txn)
        broker = group_coordinator
    app = KafkaStreams(count_topology(src, out), app_config(kafka3, app_id, tmp_path))
    producer = InputProducer(kafka3.bootstrap, src, rate=1_000)
    try:
        app.start()
        producer.start()
        done = lambda: committed_total(kafka3, app_id, src)  # noqa: E731
        wait_for("processing before the kill", lambda: done() >= 1_000, app, producer, 45)
        assert group_coordinator_of(kafka3, app_id) == group_coordinator
        assert all(len(isr) == 3 for isr in kafka3.partition_isrs(f"{app_id}-counts-changelog").values())

        at_kill = done()
        kafka3.kill(broker)
        log.info("killed broker %d (%s) with %d inputs done", broker, victim, at_kill)
        wait_for(f"processing with broker {broker} down", lambda: done() >= at_kill + 2_000, app, producer, 45)
        kafka3.restart(broker)
        at_restart = done()
        log.info("restarted broker %d with %d inputs done", broker, at_restart)
        wait_for(f"processing after broker {broker} restarted", lambda: done() >= at_restart + 1_000, app, producer, 30)

        data = producer.finish()
        wait_for("every input processed", lambda: done() >= len(data), app, producer, 30)
    finally:
        producer.stop.set()
        closed = app.close(60)
    assert closed and app.state is State.NOT_RUNNING, f"the application did not stop in time ({app.state})"

    inputs = consume_all(kafka3.bootstrap, src, len(data), timeout=30, quiet=0.5)
    assert Counter(v for _, v, _ in inputs) == Counter(v.encode() for _, v in data)  # each input once
    got = consume_all(kafka3.bootstrap, out, len(data), timeout=30, quiet=1.0)
    print(f"victim {victim}: broker {broker} (transaction coordinator {txn_coordinator}, group coordinator "
          f"{group_coordinator}); {len(data)} inputs, {at_kill} done at the kill, {at_restart} at the restart")
    assert len(got) >= len(data), \
        f"{len(got)} outputs for {len(data)} inputs; (LSO, HW) per partition: {end_offsets(kafka3, out)}"
    assert_exact_counts(counts_by_key(got), Counter(k for k, _ in data))
