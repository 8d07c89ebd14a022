"""Runtime behaviours on a real broker: back-pressure, topic-name extractors, headers, production
errors and their handler, application-wide shutdown, and what becomes of timestamp 0.

Every wait is on a condition, bounded; the module runs in well under two minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apps import consume_all, produce, stateless_topology
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from kstreams import (
    HandlerResponse,
    KafkaStreams,
    Processor,
    State,
    StreamThreadExceptionResponse,
    Topology,
    serdes,
)
from kstreams._core.collector import murmur2_partition

pytestmark = pytest.mark.timeout(120)

S = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}


def config(kafka: Any, app_id: str, state_dir: Path, **extra: Any) -> dict[str, Any]:
    conf = {"application.id": app_id, "bootstrap.servers": kafka.bootstrap, "state.dir": str(state_dir),
            "commit.interval.ms": 200, "main.consumer.heartbeat.interval.ms": 500,
            "main.consumer.session.timeout.ms": 6000}
    conf.update(extra)
    return conf


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0, app: KafkaStreams | None = None,
               detail: Callable[[], Any] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (and ``detail()``)
    after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if app is not None and app.state is State.ERROR:
            raise AssertionError(f"application failed while waiting for {what}: {app.fatal_error!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 + ("" if detail is None else f": {detail()}"))
        time.sleep(0.05)


def read_records(kafka: Any, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """The first ``expected`` records of ``topic`` (all partitions) as confluent-kafka messages."""
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": kafka.unique_name("verify"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out.extend(m for m in c.consume(500, 0.2) if m.error() is None)
    finally:
        c.close()
    return out


def wait_for_value(kafka: Any, topic: str, value: bytes, app: KafkaStreams, timeout: float = 30.0) -> None:
    """Read ``topic`` until a record with ``value`` appears (fails if ``app`` fails first)."""
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": kafka.unique_name("verify"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    try:
        wait_until(lambda: any(m.error() is None and m.value() == value for m in c.consume(500, 0.2)),
                   f"{value!r} in {topic}", timeout, app=app)
    finally:
        c.close()


def committed_offset(kafka: Any, group: str, topic: str, partition: int = 0) -> int:
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return c.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
    finally:
        c.close()


def task_count(app: KafkaStreams) -> int:
    return sum(1 for name in app.metrics() if "/" in name)


class Forward(Processor):
    """Forwards every record unchanged."""

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Any) -> None:
        self.context.forward(record)


# -- 1. back-pressure -------------------------------------------------------------------------------


def paused_over(app: KafkaStreams, tp: tuple[str, int], limit: int) -> Any:
    """The partition's buffer state if it is paused with more than ``limit`` records buffered."""
    state = app.partition_buffers().get(tp)
    return state if state is not None and state.paused and state.buffered > limit else None


def test_backpressure_pauses_a_full_partition_and_resumes_it_when_drained_also_across_a_rebalance(kafka, tmp_path):
    """A task with two co-partitioned inputs cannot process while one of them is empty
    (``max.task.idle.ms``): the other's queue fills up to the limit plus one consumed batch, its
    partition is paused and stays so (fetching stops) while the thread keeps polling; a
    rebalance (an instance joins and leaves) hands the task back with its partition fetching
    again; once the empty input gets data the queues drain, the partition is resumed, and every
    record is processed once, in order."""
    limit, batch, n = 20, 10, 300
    left, right = kafka.create_topic(kafka.unique_name("left"), 1), kafka.create_topic(kafka.unique_name("right"), 1)
    out = kafka.create_topic(kafka.unique_name("out"), 1)
    topology = (Topology().add_source("left", [left], **S).add_source("right", [right], **S)
                .add_processor("p", Forward, "left", "right").add_sink("sink", out, "p", **S))
    app_id = kafka.unique_name("app")
    conf = {"buffered.records.per.partition": limit, "max.poll.records": batch, "max.task.idle.ms": 600_000}
    # each input ends with a record far in the future: every other record can be picked before it
    produce(kafka.bootstrap, left, [(f"k{i}", f"L{i}") for i in range(n)])
    produce(kafka.bootstrap, left, [("end", "end")], start_ts=10**12)
    tp = (left, 0)
    transitions: list[tuple[str, str]] = []
    a = KafkaStreams(topology, config(kafka, app_id, tmp_path / "a", **conf))
    a.set_state_listener(lambda new, old: transitions.append((old.value, new.value)))

    def thread_metric(app: KafkaStreams, name: str) -> float:
        return sum(v[name] for k, v in app.metrics().items() if "/" not in k)

    with a:
        a.start()
        first = wait_until(lambda: paused_over(a, tp, limit), "the left partition to be paused", app=a)
        assert limit < first.buffered <= limit + batch and first.pauses == 1
        polls, since = thread_metric(a, "poll-total"), time.monotonic()
        wait_until(lambda: thread_metric(a, "poll-total") >= polls + 50, "50 more polls while paused", app=a)
        # nothing to process: each poll waits its poll.ms (100) instead of spinning a core
        assert time.monotonic() - since >= 50 * 0.1 * 0.5, "the thread polls without waiting (a busy loop)"
        still = a.partition_buffers()[tp]
        assert still.paused and still.buffered == first.buffered, "records were fetched from a paused partition"
        assert thread_metric(a, "process-total") == 0

        # a rebalance: B joins (one of the two gets the task), then leaves (A gets it back)
        b = KafkaStreams(topology, config(kafka, app_id, tmp_path / "b", **conf))
        with b:
            b.start()
            wait_until(lambda: a.state is State.RUNNING and b.state is State.RUNNING
                       and task_count(a) + task_count(b) == 1 and transitions.count(("RUNNING", "REBALANCING")) >= 1,
                       "both instances to run with the one task between them", app=a,
                       detail=lambda: (a.state, task_count(a), b.state, task_count(b), transitions))
        assert b.state is State.NOT_RUNNING
        wait_until(lambda: task_count(a) == 1 and a.state is State.RUNNING, "A to get the task back", app=a)
        again = wait_until(lambda: paused_over(a, tp, limit), "the reassigned left partition to fill up again",
                           app=a)
        assert again.buffered <= limit + batch

        produce(kafka.bootstrap, right, [(f"k{i}", f"R{i}") for i in range(n)])
        produce(kafka.bootstrap, right, [("end", "end")], start_ts=10**12)
        got = consume_all(kafka.bootstrap, out, 2 * n, timeout=60)
        final = a.partition_buffers()[tp]
        assert a.state is State.RUNNING
    values = [v.decode() for _, v, _ in got]
    assert [v for v in values if v.startswith("L")] == [f"L{i}" for i in range(n)]
    assert [v for v in values if v.startswith("R")] == [f"R{i}" for i in range(n)]
    assert final.pauses >= 3 and final.resumes >= 2, final  # paused before and after the rebalance, then cycles
    assert limit < final.peak <= limit + batch, final


# -- 2. topic-name extractor sinks ------------------------------------------------------------------


def test_topic_extractor_routes_each_record_to_its_topic_and_murmur2_partition(kafka, tmp_path):
    src = kafka.create_topic(kafka.unique_name("in"), 2)
    sizes = {"a": 1, "b": 3, "c": 5}
    outs = {name: kafka.create_topic(kafka.unique_name(f"out-{name}"), n) for name, n in sizes.items()}
    contexts: list[Any] = []

    def extractor(key: str, value: str, ctx: Any) -> str:
        contexts.append((ctx.topic, ctx.partition, ctx.offset))
        return outs[value[0]]

    topology = (Topology().add_source("src", [src], **S).add_processor("p", Forward, "src")
                .add_sink("sink", extractor, "p", **S))
    data = [(f"key-{i}", f"{'abc'[i % 3]}{i}") for i in range(300)]
    produce(kafka.bootstrap, src, data)
    with KafkaStreams(topology, config(kafka, kafka.unique_name("app"), tmp_path)) as app:
        app.start()
        got = {name: read_records(kafka, topic, 100) for name, topic in outs.items()}
        assert app.state is State.RUNNING
    for name, topic in outs.items():
        n = sizes[name]
        records = got[name]
        assert sorted(m.value().decode() for m in records) == sorted(v for _, v in data if v[0] == name)
        for m in records:
            assert m.topic() == topic and m.partition() == murmur2_partition(m.key(), n), (m.key(), m.partition())
    assert len(contexts) == 300 and {t for t, _, _ in contexts} == {src}
    for p in (0, 1):
        assert sorted(o for _, q, o in contexts if q == p) == list(range(sum(1 for _, q, _ in contexts if q == p)))


def test_topic_extractor_naming_a_missing_topic_fails_the_thread_naming_it(kafka, tmp_path):
    src = kafka.create_topic(kafka.unique_name("in"), 1)
    missing = kafka.unique_name("no-such-topic")
    topology = (Topology().add_source("src", [src], **S).add_processor("p", Forward, "src")
                .add_sink("sink", lambda k, v, ctx: missing, "p", **S))
    produce(kafka.bootstrap, src, [("k", "v")])
    with KafkaStreams(topology, config(kafka, kafka.unique_name("app"), tmp_path)) as app:
        app.start()
        assert app.wait_for_state(State.ERROR, timeout=30)
    assert missing in str(app.fatal_error)


# -- 3. headers -------------------------------------------------------------------------------------


class EditHeaders(Processor):
    """Records the headers it sees; drops ``trace``, adds ``added`` and a third ``dup``."""

    seen: list[tuple] = []

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Any) -> None:
        EditHeaders.seen.append(record.headers)
        headers = [h for h in record.headers if h[0] != "trace"] + [("added", "by-processor"), ("dup", b"3")]
        self.context.forward(record.with_headers(headers))


def test_headers_reach_the_processor_and_the_processors_headers_reach_the_output(kafka, tmp_path):
    EditHeaders.seen = []
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    for i in range(5):
        p.produce(src, f"v{i}".encode(), f"k{i}".encode(),
                  headers=[("trace", f"t{i}".encode()), ("dup", b"1"), ("dup", b"2"), ("empty", None)])
    p.produce(src, b"plain", b"k5")
    assert p.flush(30) == 0
    topology = (Topology().add_source("src", [src], **S).add_processor("p", EditHeaders, "src")
                .add_sink("sink", out, "p", **S))
    with KafkaStreams(topology, config(kafka, kafka.unique_name("app"), tmp_path)) as app:
        app.start()
        got = read_records(kafka, out, 6)
    assert EditHeaders.seen == [(("trace", f"t{i}".encode()), ("dup", b"1"), ("dup", b"2"), ("empty", None))
                                for i in range(5)] + [()]
    assert [m.headers() for m in got] == [[("dup", b"1"), ("dup", b"2"), ("empty", None), ("added", b"by-processor"),
                                           ("dup", b"3")]] * 5 + [[("added", b"by-processor"), ("dup", b"3")]]


# -- 4. production errors ---------------------------------------------------------------------------


class Inflate(Processor):
    """``big`` -> a 200 kB value (over the output topic's max.message.bytes: the broker refuses it);
    ``huge`` -> 1.1 MB (over the producer's message.max.bytes: produce() refuses it); others as is."""

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Any) -> None:
        size = {"big": 200_000, "huge": 1_100_000}.get(record.value)
        self.context.forward(record if size is None else record.with_value("x" * size))


def inflate_app(kafka: Any) -> tuple[str, str, Topology]:
    src = kafka.create_topic(kafka.unique_name("in"), 1)
    out = kafka.create_topic(kafka.unique_name("out"), 1, config={"max.message.bytes": "100000"})
    topology = (Topology().add_source("src", [src], **S).add_processor("p", Inflate, "src")
                .add_sink("sink", out, "p", **S))
    return src, out, topology


def test_production_handler_continue_drops_refused_records_and_the_application_keeps_going(kafka, tmp_path):
    """Both ways a record can be refused go to the handler: by the broker (a delivery error)
    and by the client at produce() time. Each phase waits for the previous one, so the
    too-large record is alone in its producer batch (librdkafka fails a whole batch the broker
    refuses; see the README's limitations)."""
    src, out, topology = inflate_app(kafka)
    calls: list[tuple[Any, Any, Exception]] = []

    def handler(ctx: Any, record: Any, exc: Exception) -> HandlerResponse:
        calls.append((ctx, record, exc))
        return HandlerResponse.CONTINUE

    app_id = kafka.unique_name("app")
    with KafkaStreams(topology, config(kafka, app_id, tmp_path, **{"production.exception.handler": handler})) as app:
        app.start()
        produce(kafka.bootstrap, src, [(f"k{i}", f"g{i}") for i in range(50)])
        assert len(consume_all(kafka.bootstrap, out, 50)) == 50
        produce(kafka.bootstrap, src, [("k-big", "big")], start_ts=5_000)
        wait_until(lambda: len(calls) == 1, "the handler to hear of the record the broker refused", app=app)
        produce(kafka.bootstrap, src, [("k-huge", "huge")] + [(f"k{i}", f"g{i}") for i in range(50, 100)],
                start_ts=6_000)
        got = consume_all(kafka.bootstrap, out, 100)
        wait_until(lambda: committed_offset(kafka, app_id, src) == 102, "the offsets to be committed past both",
                   app=app)
        assert app.state is State.RUNNING
    assert sorted(v.decode() for _, v, _ in got) == sorted(f"g{i}" for i in range(100))
    assert len(calls) == 2
    for (ctx, record, exc), key in zip(calls, (b"k-big", b"k-huge"), strict=True):
        assert ctx.topic == out and record.topic() == out and record.key() == key
        assert exc.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert len(calls[0][1].value()) == 200_000 and len(calls[1][1].value()) == 1_100_000


@pytest.mark.parametrize(("value", "guarantee"), [("big", "at_least_once"), ("huge", "at_least_once"),
                                                  ("big", "exactly_once_v2"), ("huge", "exactly_once_v2")])
def test_production_handler_fail_stops_the_thread_naming_the_topic_without_committing_past_it(kafka, tmp_path,
                                                                                                value, guarantee):
    src, out, topology = inflate_app(kafka)
    app_id = kafka.unique_name("app")
    produce(kafka.bootstrap, src, [(f"k{i}", f"g{i}") for i in range(20)] + [("k-bad", value)]
            + [(f"k{i}", f"g{i}") for i in range(20, 40)])
    with KafkaStreams(topology, config(kafka, app_id, tmp_path, **{"processing.guarantee": guarantee})) as app:
        app.start()
        assert app.wait_for_state(State.ERROR, timeout=30)
    assert out in str(app.fatal_error) and "too large" in str(app.fatal_error).lower()
    # at least once: the refused record is processed again by the next run
    assert committed_offset(kafka, app_id, src) <= 20


def test_exactly_once_a_record_the_broker_refuses_stops_the_thread_even_if_the_handler_continues(kafka, tmp_path):
    """librdkafka makes the transaction abortable; rewinding would refuse the record again
    forever. As in Kafka Streams, the thread stops at the commit and nothing of the transaction
    becomes visible."""
    src, out, topology = inflate_app(kafka)
    app_id = kafka.unique_name("app")
    produce(kafka.bootstrap, src, [("k-bad", "big")] + [(f"k{i}", f"g{i}") for i in range(20)])
    props = {"processing.guarantee": "exactly_once_v2", "production.exception.handler": "continue"}
    with KafkaStreams(topology, config(kafka, app_id, tmp_path, **props)) as app:
        app.start()
        assert app.wait_for_state(State.ERROR, timeout=30)
    assert "can only be aborted" in str(app.fatal_error) and out in str(app.fatal_error)
    assert committed_offset(kafka, app_id, src) <= 0
    assert consume_all(kafka.bootstrap, out, 0, quiet=3.0) == []


def test_a_full_producer_queue_waits_for_room_instead_of_failing(kafka, tmp_path):
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    data = [(f"k{i}", f"v{i}") for i in range(500)]
    produce(kafka.bootstrap, src, data)
    conf = config(kafka, kafka.unique_name("app"), tmp_path, **{"producer.queue.buffering.max.messages": 5})
    with KafkaStreams(stateless_topology(src, out), conf) as app:
        app.start()
        got = consume_all(kafka.bootstrap, out, len(data))
        assert app.state is State.RUNNING, app.fatal_error
    assert sorted(v.decode() for _, v, _ in got) == sorted(v.upper() for _, v in data)


# -- 5. SHUTDOWN_APPLICATION ------------------------------------------------------------------------


class PoisonOnce(Processor):
    """Fails on the first ``poison`` value in this process; forwards everything else."""

    failed = False

    def init(self, context: Any) -> None:
        self.context = context

    def process(self, record: Any) -> None:
        if record.value == "poison" and not PoisonOnce.failed:
            PoisonOnce.failed = True
            raise RuntimeError("poison pill")
        self.context.forward(record)


def test_shutdown_application_stops_every_instance_to_error(kafka, tmp_path):
    """Java closes every instance to ERROR, the requesting one included; an instance started
    afterwards is not stopped by the old request."""
    PoisonOnce.failed = False
    src, out = kafka.create_topic(kafka.unique_name("in"), 2), kafka.create_topic(kafka.unique_name("out"), 2)
    topology = (Topology().add_source("src", [src], **S).add_processor("p", PoisonOnce, "src")
                .add_sink("sink", out, "p", **S))
    app_id = kafka.unique_name("app")
    handled: dict[str, list[BaseException]] = {"a": [], "b": []}
    transitions: dict[str, list[tuple[str, str]]] = {"a": [], "b": []}
    apps = {}
    for name in ("a", "b"):
        app = KafkaStreams(topology, config(kafka, app_id, tmp_path / name))
        app.set_uncaught_exception_handler(
            lambda exc, name=name: handled[name].append(exc) or StreamThreadExceptionResponse.SHUTDOWN_APPLICATION)
        app.set_state_listener(lambda new, old, name=name: transitions[name].append((old.value, new.value)))
        apps[name] = app
    try:
        for app in apps.values():
            app.start()
        wait_until(lambda: all(a.state is State.RUNNING and task_count(a) == 1 for a in apps.values()),
                   "each instance to run one task")
        # the poison lands in partition 0 (and normal records in both): whoever owns it fails
        keys = [k for k in (f"k{i}" for i in range(50)) if murmur2_partition(k.encode(), 2) == 0]
        produce(kafka.bootstrap, src, [(keys[0], "poison")] + [(f"k{i}", f"v{i}") for i in range(20)])
        for app in apps.values():
            assert app.wait_for_state(State.ERROR, timeout=30), app.state
    finally:
        for app in apps.values():
            app.close(30)
    failed = [n for n in apps if handled[n]]
    assert len(failed) == 1 and "poison pill" in str(handled[failed[0]][0])
    other = "b" if failed == ["a"] else "a"
    assert "requested by process" in str(apps[other].fatal_error)
    for name in apps:  # the requester and the other instance alike
        assert transitions[name][-1] == ("PENDING_ERROR", "ERROR"), transitions[name]

    # the application restarted after the fix: the old request does not stop it
    restarted = KafkaStreams(topology, config(kafka, app_id, tmp_path / "c"))
    with restarted:
        restarted.start()
        produce(kafka.bootstrap, src, [("k-after", "after")])
        wait_for_value(kafka, out, b"after", restarted)
        assert restarted.state is State.RUNNING


def test_a_shutdown_request_from_another_process_stops_a_running_instance(kafka, tmp_path):
    """The request topic is created with the internal topics; a request written by another
    process (here: by hand) stops a running instance."""
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    app_id = kafka.unique_name("app")
    with KafkaStreams(stateless_topology(src, out), config(kafka, app_id, tmp_path)) as app:
        app.start()
        assert app.wait_for_state(State.RUNNING, timeout=30)
        md = kafka.admin.list_topics(f"{app_id}-shutdown", timeout=10).topics[f"{app_id}-shutdown"]
        assert md.error is None and len(md.partitions) == 1
        p = Producer({"bootstrap.servers": kafka.bootstrap})
        p.produce(f"{app_id}-shutdown", b'{"process": "elsewhere", "thread": "t", "error": "boom"}',
                  app_id.encode(), 0)
        assert p.flush(10) == 0
        assert app.wait_for_state(State.ERROR, timeout=30)
    assert "requested by process elsewhere" in str(app.fatal_error)


# -- 6. timestamp 0 ---------------------------------------------------------------------------------


def test_an_output_timestamp_of_0_becomes_the_produce_time(kafka, tmp_path):
    """librdkafka (confluent-kafka 2.16) takes a produce timestamp of 0 as "not set" and stamps
    the record with the current time; Java would write 0. Documented in the README's
    limitations: if this test fails, librdkafka changed and the README must too."""
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    produce(kafka.bootstrap, src, [("zero", "0"), ("one", "1"), ("big", "1700000000000")])
    seen: list[int] = []

    class Seen(Processor):
        def init(self, context: Any) -> None:
            self.context = context

        def process(self, record: Any) -> None:
            seen.append(record.timestamp)
            self.context.forward(record)

    class FromValue:
        def extract(self, record: Any, partition_time: int) -> int:
            return int(record.value)

    topology = (Topology().add_source("src", [src], timestamp_extractor=FromValue(), **S)
                .add_processor("p", Seen, "src").add_sink("sink", out, "p", **S))
    before = int(time.time() * 1000)
    with KafkaStreams(topology, config(kafka, kafka.unique_name("app"), tmp_path)) as app:
        app.start()
        got = read_records(kafka, out, 3)
    after = int(time.time() * 1000)
    assert seen == [0, 1, 1_700_000_000_000]  # the processor sees 0
    stamps = {m.key(): m.timestamp()[1] for m in got}
    assert stamps[b"one"] == 1 and stamps[b"big"] == 1_700_000_000_000
    assert before <= stamps[b"zero"] <= after  # ... but the output record carries the produce time

