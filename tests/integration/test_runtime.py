"""KafkaStreams on a real Apache Kafka broker: topologies, guarantees, restarts, kill -9, scale-out."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from apps import (
    CountProcessor,
    assert_exact_counts,
    consume_all,
    count_topology,
    counts_by_key,
    expected_counts,
    produce,
    repartition_topology,
    stateless_topology,
)

from kstreams import KafkaStreams, Processor, State
from kstreams.runtime.topics import MissingSourceTopicError

APPS = Path(__file__).with_name("apps.py")


def config(kafka, app_id: str, state_dir: Path, guarantee: str = "at_least_once", **extra):
    conf = {"application.id": app_id, "bootstrap.servers": kafka.bootstrap, "state.dir": str(state_dir),
            "processing.guarantee": guarantee, "commit.interval.ms": 200}
    conf.update(extra)
    return conf


def pairs(n: int, keys: int, prefix: str = "v", start: int = 0) -> list[tuple[str, str]]:
    return [(f"k{(i * 7) % keys}", f"{prefix}{i}") for i in range(start, start + n)]


def run_until(app: KafkaStreams, check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.state is State.ERROR:
            raise AssertionError(f"application failed: {app.fatal_error!r}")
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_stateless_topology(kafka, tmp_path):
    src, out = kafka.create_topic(kafka.unique_name("in"), 2), kafka.create_topic(kafka.unique_name("out"), 2)
    data = [(f"k{i % 13}", f"drop{i}" if i % 4 == 0 else f"v{i}") for i in range(2000)]
    produce(kafka.bootstrap, src, data)
    with KafkaStreams(stateless_topology(src, out), config(kafka, kafka.unique_name("app"), tmp_path)) as app:
        app.start()
        got = consume_all(kafka.bootstrap, out, 1500, quiet=1.0)
    assert Counter(v.decode() for _, v, _ in got) == Counter(v.upper() for _, v in data if not v.startswith("drop"))
    assert app.state is State.NOT_RUNNING


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_count_clean_run(kafka, tmp_path, guarantee):
    src, out = kafka.create_topic(kafka.unique_name("in"), 3), kafka.create_topic(kafka.unique_name("out"), 3)
    data = pairs(3000, 50)
    produce(kafka.bootstrap, src, data)
    with KafkaStreams(count_topology(src, out), config(kafka, kafka.unique_name("app"), tmp_path, guarantee)) as app:
        app.start()
        got = consume_all(kafka.bootstrap, out, len(data), quiet=1.0)
        metrics = app.metrics()
    assert_exact_counts(counts_by_key(got), expected_counts(data))
    # output partitioned by murmur2 of the key, as Java's producer would
    from kstreams._core import murmur2_partition
    assert all(p == murmur2_partition(k, 3) for k, _, p in got)
    thread = next(v for k, v in metrics.items() if "/" not in k)
    assert thread["process-total"] == len(data) and thread["commit-total"] >= 1


def test_repartition_through_intermediate_topic(kafka, tmp_path):
    src = kafka.create_topic(kafka.unique_name("in"), 2)
    mid = kafka.create_topic(kafka.unique_name("mid"), 3)
    out = kafka.create_topic(kafka.unique_name("out"), 3)
    data = [(f"user{i}", f"word{i % 17}") for i in range(1700)]
    produce(kafka.bootstrap, src, data)
    app_conf = config(kafka, kafka.unique_name("app"), tmp_path, "exactly_once_v2")
    with KafkaStreams(repartition_topology(src, mid, out), app_conf) as app:
        app.start()
        got = consume_all(kafka.bootstrap, out, len(data), quiet=1.0)
    assert_exact_counts(counts_by_key(got), Counter(v for _, v in data))


class RecordingListener:
    def __init__(self):
        self.starts, self.ends = [], []

    def on_restore_start(self, tp, store, start, end):
        self.starts.append((tp, store, start, end))

    def on_batch_restored(self, tp, store, batch_end, n):
        pass

    def on_restore_end(self, tp, store, total):
        self.ends.append((tp, store, total))


def test_restart_restores_only_the_tail_and_an_empty_state_dir_restores_fully(kafka, tmp_path, capfd):
    src, out = kafka.create_topic(kafka.unique_name("in"), 2), kafka.create_topic(kafka.unique_name("out"), 2)
    app_id = kafka.unique_name("app")
    first, second, third = pairs(1000, 20), pairs(500, 20, start=1000), pairs(300, 20, start=1500)
    produce(kafka.bootstrap, src, first)
    with KafkaStreams(count_topology(src, out), config(kafka, app_id, tmp_path / "a")) as app:
        app.start()
        consume_all(kafka.bootstrap, out, 1000, quiet=0.5)

    produce(kafka.bootstrap, src, second)
    listener = RecordingListener()
    app = KafkaStreams(count_topology(src, out), config(kafka, app_id, tmp_path / "a"))
    app.set_global_state_restore_listener(listener)
    with app:
        app.start()
        consume_all(kafka.bootstrap, out, 1500, quiet=0.5)
    assert listener.starts == []  # clean close: LevelDB already holds everything the changelog has

    produce(kafka.bootstrap, src, third)
    listener = RecordingListener()
    app = KafkaStreams(count_topology(src, out), config(kafka, app_id, tmp_path / "empty"))
    app.set_global_state_restore_listener(listener)
    with app:
        app.start()
        got = consume_all(kafka.bootstrap, out, 1800, quiet=1.0)
    assert {s[2] for s in listener.starts} == {0}  # full restore from the changelog start
    assert sum(e[2] for e in listener.ends) > 0
    # closing the tasks left the restore consumer's assignment alone: their restores had ended and
    # unassigned their changelogs (librdkafka logs a second unassign to stderr)
    assert "Can't subtract from empty assignment" not in capfd.readouterr().err
    final = {k: v[-1] for k, v in counts_by_key(got).items()}
    assert final == dict(expected_counts(first + second + third))


def test_client_log_lines_go_to_the_kstreams_librdkafka_logger(kafka, tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="kstreams.librdkafka")
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    data = pairs(200, 10)
    produce(kafka.bootstrap, src, data)
    debug = {"consumer.debug": "broker", "producer.debug": "broker", "admin.debug": "broker"}
    with KafkaStreams(count_topology(src, out), config(kafka, kafka.unique_name("app"), tmp_path, **debug)) as app:
        app.start()
        consume_all(kafka.bootstrap, out, len(data), quiet=0.5)
        # while running, not only when the clients close: the stream thread serves them all
        names = " ".join(r.getMessage() for r in caplog.records if r.name == "kstreams.librdkafka")
    for client in ("-consumer#consumer", "-restore-consumer#consumer", "-producer#producer", "-admin#producer"):
        assert client in names, f"no log line of a {client} client"
    assert "|BROKER|" not in capfd.readouterr().err  # librdkafka printed none itself


class PausingListener(RecordingListener):
    """Records the calls; the batch that brings the total to ``pause_at`` or more waits on the
    stream thread until ``release`` is set."""

    def __init__(self, pause_at: int | None = None) -> None:
        super().__init__()
        self.pause_at = pause_at
        self.restored = 0
        self.reached = threading.Event()
        self.release = threading.Event()

    def on_batch_restored(self, tp, store, batch_end, n):
        self.restored += n
        if self.pause_at is not None and self.restored >= self.pause_at and not self.reached.is_set():
            self.reached.set()
            self.release.wait(30)


def test_a_restore_cut_short_by_close_resumes_where_it_stopped(kafka, tmp_path, capfd):
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    app_id = kafka.unique_name("app")
    changelog = kafka.create_topic(f"{app_id}-counts-changelog", 1, config={"cleanup.policy": "compact"})
    n = 200_000
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 20, "queue.buffering.max.messages": n})
    for i in range(n):  # the changelog of a count store: k<i> counted i + 1 times
        p.produce(changelog, (i + 1).to_bytes(8, "big"), f"k{i}".encode(), 0)
        if i % 20_000 == 0:
            p.poll(0)
    assert p.flush(30) == 0

    first = PausingListener(pause_at=30_000)
    app = KafkaStreams(count_topology(src, out), config(kafka, app_id, tmp_path))
    app.set_global_state_restore_listener(first)
    app.start()
    assert first.reached.wait(60), "the restore never reached its pause"
    closer = threading.Thread(target=app.close)
    closer.start()
    deadline = time.monotonic() + 10
    while app.state is not State.PENDING_SHUTDOWN and time.monotonic() < deadline:
        time.sleep(0.01)
    first.release.set()  # the stream thread finishes its step and sees the shutdown mid-restore
    closer.join(60)
    assert app.state is State.NOT_RUNNING
    assert first.restored < n and first.ends == []

    second = PausingListener()
    with KafkaStreams(count_topology(src, out), config(kafka, app_id, tmp_path)) as app:
        app.set_global_state_restore_listener(second)
        app.start()
        produce(kafka.bootstrap, src, [("k7", "x"), (f"k{n - 1}", "x"), ("new", "x")])
        got = consume_all(kafka.bootstrap, out, 3, quiet=0.5)
    (_, _, start, end), = second.starts
    assert start == first.restored and end == n  # the batches the first run wrote are not read again
    assert [total for _, _, total in second.ends] == [n - first.restored]
    assert {k.decode(): int.from_bytes(v, "big") for k, v, _ in got} == {"k7": 9, f"k{n - 1}": n + 1, "new": 1}
    assert "Can't subtract" not in capfd.readouterr().err


def test_missing_source_topic_fails_clearly(kafka, tmp_path):
    app = KafkaStreams(count_topology("no-such-topic", "out"), config(kafka, kafka.unique_name("app"), tmp_path))
    with pytest.raises(MissingSourceTopicError, match="no-such-topic"):
        app.start()


def start_app(kafka, app_id, src, out, state_dir, guarantee):
    """The count app in its own process; its log goes to ``<state_dir>.log`` (kept with the test's files)."""
    with open(f"{state_dir}.log", "ab") as log_file:
        return subprocess.Popen([sys.executable, str(APPS), "count", kafka.bootstrap, app_id, src, out,
                                 str(state_dir), guarantee], stdout=subprocess.PIPE, stderr=log_file, text=True,
                                env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))


def stop_app(proc, sig=signal.SIGTERM) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out


def committed_total(kafka, app_id: str, topic: str, partitions: int) -> int:
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": app_id})
    try:
        for _ in range(50):
            try:
                tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
                return sum(max(tp.offset, 0) for tp in tps)
            except KafkaException as exc:  # e.g. NOT_COORDINATOR while the group coordinator moves
                err = exc.args[0]
                # librdkafka does not flag the coordinator errors retriable; on a fresh broker the
                # offsets topic is still being created when the first group asks
                moving = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                          KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
                if not (err.retriable() or err.code() in moving):
                    raise
                time.sleep(0.2)
        raise AssertionError("committed offsets unavailable")
    finally:
        c.close()


def wait_for_output(kafka, topic, n, timeout=60.0, read_committed=False):
    got = consume_all(kafka.bootstrap, topic, n, timeout=timeout, read_committed=read_committed)
    assert len(got) >= n, f"only {len(got)} of {n} outputs"


def produce_slowly(bootstrap: str, topic: str, data: list[tuple[str, str]], per_second: int) -> threading.Thread:
    """Produce ``data`` in the background at about ``per_second`` records per second."""

    def run() -> None:
        step = max(1, per_second // 20)
        for i in range(0, len(data), step):
            produce(bootstrap, topic, data[i:i + step], start_ts=1_000 + i)
            time.sleep(0.05)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("guarantee", ["exactly_once_v2", "at_least_once"])
def test_sigkill_mid_stream_then_restart(kafka, tmp_path, guarantee):
    src, out = kafka.create_topic(kafka.unique_name("in"), 2), kafka.create_topic(kafka.unique_name("out"), 2)
    app_id = kafka.unique_name("app")
    data = pairs(30_000, 100)
    proc = start_app(kafka, app_id, src, out, tmp_path, guarantee)
    try:
        assert proc.stdout.readline().strip() == "started"
        producer = produce_slowly(kafka.bootstrap, src, data, per_second=10_000)
        deadline = time.monotonic() + 60
        while committed_total(kafka, app_id, src, 2) < 5_000 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop_app(proc, signal.SIGKILL)
    done_before_kill = committed_total(kafka, app_id, src, 2)
    assert 0 < done_before_kill < len(data), done_before_kill
    proc = start_app(kafka, app_id, src, out, tmp_path, guarantee)
    try:
        producer.join(60)
        got = consume_all(kafka.bootstrap, out, len(data), timeout=120, quiet=2.0)
    finally:
        log = stop_app(proc)
    updates = counts_by_key(got)
    expected = expected_counts(data)
    if guarantee == "exactly_once_v2":
        assert_exact_counts(updates, expected)
    else:  # at least once: nothing lost (duplicates allowed)
        assert set(updates) == set(expected)
        assert all(max(updates[k]) >= n and set(range(1, n + 1)) <= set(updates[k]) for k, n in expected.items())
    starts = [line.split() for line in log.splitlines() if line.startswith("restore-start")]
    # the restarted instance replays only the tail of each changelog, never from offset 0
    assert all(int(s[3]) > 0 for s in starts), starts


def test_scale_out_failover_moves_tasks_with_state(kafka, tmp_path):
    src, out = kafka.create_topic(kafka.unique_name("in"), 4), kafka.create_topic(kafka.unique_name("out"), 4)
    app_id = kafka.unique_name("app")
    first, second = pairs(8_000, 64), pairs(8_000, 64, start=8_000)
    a = start_app(kafka, app_id, src, out, tmp_path / "a", "exactly_once_v2")
    b = start_app(kafka, app_id, src, out, tmp_path / "b", "exactly_once_v2")
    try:
        assert a.stdout.readline().strip() == "started" and b.stdout.readline().strip() == "started"
        time.sleep(3)  # both instances joined: the tasks are shared
        produce(kafka.bootstrap, src, first)
        wait_for_output(kafka, out, len(first), read_committed=True)
        stop_app(a, signal.SIGKILL)
        produce(kafka.bootstrap, src, second)
        got = consume_all(kafka.bootstrap, out, len(first) + len(second), timeout=120, quiet=2.0)
    finally:
        stop_app(a, signal.SIGKILL)
        stop_app(b)
    assert_exact_counts(counts_by_key(got), expected_counts(first + second))
    assert any(os.listdir(tmp_path / "a" / app_id)), "instance a never had tasks"


class FailOnce:
    failed = False


class PoisonOnce(CountProcessor):
    """Counts, but raises once on the value 'poison'."""

    def process(self, record):
        if record.value == "poison" and not FailOnce.failed:
            FailOnce.failed = True
            raise RuntimeError("poison pill")
        super().process(record)


def poison_topology(src, out):
    from kstreams import Stores, Topology, serdes

    return (Topology().add_source("src", [src], key_serde=serdes.STRING, value_serde=serdes.STRING)
            .add_processor("count", PoisonOnce, "src")
            .add_state_store(Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"),
                                                            serdes.STRING, serdes.INT64), "count")
            .add_sink("sink", out, "count", key_serde=serdes.STRING, value_serde=serdes.INT64))


@pytest.mark.parametrize("response", ["SHUTDOWN_CLIENT", "REPLACE_THREAD"])
def test_uncaught_exception_handler_and_state_listener(kafka, tmp_path, response):
    from kstreams import StreamThreadExceptionResponse
    from kstreams.errors import ProcessingError

    FailOnce.failed = False
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    data = [("a", "x")] * 50 + [("a", "poison")] + [("a", "y")] * 49
    produce(kafka.bootstrap, src, data)
    transitions, errors = [], []
    app = KafkaStreams(poison_topology(src, out), config(kafka, kafka.unique_name("app"), tmp_path))
    app.set_state_listener(lambda new, old: transitions.append((old.value, new.value)))

    def handler(exc):
        errors.append(exc)
        return getattr(StreamThreadExceptionResponse, response)

    app.set_uncaught_exception_handler(handler)
    with app:
        app.start()
        if response == "SHUTDOWN_CLIENT":
            assert app.wait_for_state(State.ERROR, timeout=60)
        else:
            got = consume_all(kafka.bootstrap, out, 100, quiet=1.0)
            assert app.state in (State.RUNNING, State.REBALANCING)
    assert len(errors) == 1 and isinstance(errors[0], ProcessingError) and "poison pill" in str(errors[0])
    assert transitions[:2] == [("CREATED", "REBALANCING"), ("REBALANCING", "RUNNING")]
    if response == "SHUTDOWN_CLIENT":
        assert transitions[-2:] == [("RUNNING", "PENDING_ERROR"), ("PENDING_ERROR", "ERROR")] or \
            transitions[-2:] == [("REBALANCING", "PENDING_ERROR"), ("PENDING_ERROR", "ERROR")]
    else:  # the replacement thread re-reads from the last commit: nothing lost
        counts = counts_by_key(got)["a"]
        assert max(counts) >= 100 and set(range(1, 101)) <= set(counts)
        assert transitions[-1][1] == "NOT_RUNNING"


def test_sink_partitions_like_a_java_producer(kafka, tmp_path):
    """A Java producer's default partitioner and our sinks put every key in the same partition."""
    import shutil

    java_dir = Path(__file__).with_name("java")
    libs = Path(__file__).resolve().parents[1] / "kafka" / "target" / "libs"
    java_topic = kafka.create_topic(kafka.unique_name("java"), 7)
    keys = [f"user-{i}" for i in range(60)] + ["", "ü-ñ", "a" * 100]
    result = subprocess.run([shutil.which("java"), "-cp", f"{libs}/*", str(java_dir / "JavaKeyedProducer.java"),
                             kafka.bootstrap, java_topic, *keys], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    java_partition = {}
    for line in result.stdout.splitlines():
        key, _, p = line.rpartition(" ")
        java_partition[key] = int(p)
    assert set(java_partition) == set(keys)

    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 7)
    produce(kafka.bootstrap, src, [(k, "v") for k in keys])
    with KafkaStreams(stateless_topology(src, out), config(kafka, kafka.unique_name("app"), tmp_path)) as app:
        app.start()
        got = consume_all(kafka.bootstrap, out, len(keys), quiet=0.5)
    ours = {k.decode(): p for k, _, p in got}
    assert ours == java_partition


class TaskOfKey(Processor):
    """Forwards ``key -> '<topic>@<task id>@<thread>'``."""

    def init(self, context):
        self.context = context

    def process(self, record):
        import threading as _threading

        topic = self.context.record_metadata().topic
        self.context.forward(record.with_value(f"{topic}@{self.context.task_id}@{_threading.current_thread().name}"))


def test_co_partitioned_sources_meet_in_one_task_across_threads(kafka, tmp_path):
    from kstreams import Topology, serdes

    a, b = kafka.create_topic(kafka.unique_name("a"), 4), kafka.create_topic(kafka.unique_name("b"), 4)
    out = kafka.create_topic(kafka.unique_name("out"), 1)
    keys = [f"k{i}" for i in range(40)]
    s = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}
    topology = (Topology().add_source("sa", [a], **s).add_source("sb", [b], **s)
                .add_processor("where", TaskOfKey, "sa", "sb").add_sink("sink", out, "where", **s))
    with KafkaStreams(topology, config(kafka, kafka.unique_name("app"), tmp_path, **{"num.stream.threads": 2})) as app:
        app.start()
        # produce once both threads have tasks: the first thread to join could otherwise take
        # every task and process everything before the second one joins
        run_until(app, lambda: app.state is State.RUNNING
                  and len({name.split("/")[0] for name in app.metrics() if "/" in name}) == 2)
        produce(kafka.bootstrap, a, [(k, "x") for k in keys])
        produce(kafka.bootstrap, b, [(k, "y") for k in keys])
        got = consume_all(kafka.bootstrap, out, 80, quiet=0.5)
    seen: dict[str, set[str]] = {}
    topics_seen: dict[str, set[str]] = {}
    for k, v, _ in got:
        topic, task, thread = v.decode().split("@")
        seen.setdefault(k.decode(), set()).add(f"{task}@{thread}")
        topics_seen.setdefault(k.decode(), set()).add(topic)
    assert all(len(where) == 1 for where in seen.values()), seen  # both topics' key k: one task, one thread
    assert all(t == {a, b} for t in topics_seen.values())
    threads = {w.split("@")[1] for where in seen.values() for w in where}
    assert len(threads) == 2  # the four tasks are spread over both threads



class CacheShare(Processor):
    """Forwards ``key -> '<task id>@<thread>@<its store's cache bound>'``."""

    def init(self, context):
        self.context = context
        self.store = context.get_state_store("seen")

    def process(self, record):
        import threading as _threading

        self.store.put(record.key, record.value)
        share = self.store.cache_max_bytes
        self.context.forward(record.with_value(f"{self.context.task_id}@{_threading.current_thread().name}@{share}"))


def test_the_cache_bound_is_shared_by_the_threads_and_their_stores(kafka, tmp_path):
    """statestore.cache.max.bytes bounds the whole instance, as in Kafka Streams: each of two
    threads gets half, and splits it between the stores of its two tasks."""
    from kstreams import Stores, Topology, serdes

    src, out = kafka.create_topic(kafka.unique_name("in"), 4), kafka.create_topic(kafka.unique_name("out"), 1)
    s = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}
    topology = (Topology().add_source("src", [src], **s).add_processor("share", CacheShare, "src")
                .add_state_store(Stores.key_value_store_builder(Stores.persistent_key_value_store("seen"),
                                                                serdes.STRING, serdes.STRING), "share")
                .add_sink("sink", out, "share", **s))
    total = 4_000_000
    conf = config(kafka, kafka.unique_name("app"), tmp_path,
                  **{"num.stream.threads": 2, "statestore.cache.max.bytes": total})
    with KafkaStreams(topology, conf) as app:
        app.start()
        run_until(app, lambda: app.state is State.RUNNING
                  and len({name.split("/")[0] for name in app.metrics() if "/" in name}) == 2)
        produce(kafka.bootstrap, src, [(f"k{i}", "x") for i in range(40)])
        got = consume_all(kafka.bootstrap, out, 40, quiet=0.5)
    where = {tuple(v.decode().split("@")) for _, v, _ in got}
    assert {task for task, _, _ in where} == {"0_0", "0_1", "0_2", "0_3"}
    assert len({thread for _, thread, _ in where}) == 2
    assert {int(share) for _, _, share in where} == {total // 2 // 2}


class StreamTimeProbe(Processor):
    """Forwards ``key -> stream time seen when the record arrives``; ticks on the wall clock."""

    def init(self, context):
        from kstreams import PunctuationType, Record

        self.context = context
        self.record_cls = Record
        context.schedule(200, PunctuationType.WALL_CLOCK_TIME,
                         lambda ts: context.forward(Record("tick", str(ts), ts)))

    def process(self, record):
        self.context.forward(record.with_value(str(self.context.current_stream_time_ms())))


def test_stream_time_survives_a_restart_and_wall_clock_punctuation_runs(kafka, tmp_path):
    from kstreams import Topology, serdes

    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    s = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}

    def topology():
        return Topology().add_source("src", [src], **s).add_processor("probe", StreamTimeProbe, "src") \
            .add_sink("sink", out, "probe", **s)

    app_id = kafka.unique_name("app")
    produce(kafka.bootstrap, src, [("a", "x")] * 10, start_ts=5_000)  # timestamps 5000..5009
    with KafkaStreams(topology(), config(kafka, app_id, tmp_path)) as app:
        app.start()
        first = consume_all(kafka.bootstrap, out, 10, quiet=1.5)
    data = [(k.decode(), v.decode()) for k, v, _ in first]
    assert [v for k, v in data if k == "a"] == [str(5_000 + i) for i in range(10)]
    assert sum(1 for k, _ in data if k == "tick") >= 3  # wall-clock punctuation fires without input

    produce(kafka.bootstrap, src, [("a", "late")], start_ts=10)  # older than the stream time
    with KafkaStreams(topology(), config(kafka, app_id, tmp_path / "fresh")) as app:
        app.start()
        got = consume_all(kafka.bootstrap, out, len(first) + 1, quiet=1.0)
    late = [v.decode() for k, v, _ in got[len(first):] if k.decode() == "a"]
    # stream time came back from the committed offset metadata (a fresh state dir: not from local state)
    assert late == ["5009"]


def test_a_failing_task_assignment_fails_the_application_visibly(kafka, tmp_path):
    """When tasks cannot be created (here: their changelog topic was deleted), the thread rejoins the
    group until ``task.timeout.ms``, then dies and the application goes to ERROR. An exception
    raised by confluent-kafka's C code inside a rebalance callback used to come out of
    ``consume()`` as a bare ``KafkaError`` that no ``except`` clause matches: the thread died
    without a trace and the application stayed REBALANCING forever."""
    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    app_id = kafka.unique_name("app")
    now = int(time.time() * 1000)
    app = KafkaStreams(count_topology(src, out),
                       config(kafka, app_id, tmp_path, "exactly_once_v2", **{"task.timeout.ms": 3000}))
    with app:
        app.start()
        produce(kafka.bootstrap, src, [("k", "a")] * 10, start_ts=now)
        wait_for_output(kafka, out, 10, read_committed=True)
        kafka.delete_topic(f"{app_id}-counts-changelog")
        produce(kafka.bootstrap, src, [("k", "b")] * 10, start_ts=now)
        assert app.wait_for_state(State.ERROR, timeout=60), app.state
    assert app.fatal_error is not None


def test_restore_reads_past_an_open_transaction_below_committed_state(kafka, tmp_path):
    """A restore ends at the changelog's last record, not at its last stable offset.

    Whenever a transaction is still undecided below data a store already holds (most often the
    thread's own last commit, whose markers are written after ``commit_transaction`` returns;
    here, deterministically, a foreign transaction left open until it times out), the stable
    offset is below the store's offset: restoring to it wiped the store and rebuilt an older
    state, so after a rebalance the counts went back and their updates came out a second time.
    The restore now waits for that transaction to be decided. (A store closed cleanly now keeps
    the last stable offset, so here the restore starts below the open transaction and must read
    across it.)
    """
    from confluent_kafka import Consumer, Producer

    src, out = kafka.create_topic(kafka.unique_name("in"), 1), kafka.create_topic(kafka.unique_name("out"), 1)
    app_id = kafka.unique_name("app")
    now = int(time.time() * 1000)

    def batch(start):
        return [("k", f"v{i}") for i in range(start, start + 100)]

    listener = RecordingListener()
    app = KafkaStreams(count_topology(src, out), config(kafka, app_id, tmp_path, "exactly_once_v2"))
    app.set_global_state_restore_listener(listener)
    # the broker aborts the zombie's transaction after its timeout (it checks every 10 s): 20 s, so
    # it is still open when the task comes back even on a slow machine (with 2 s a full-suite run
    # once saw it aborted before that: nothing was left to restore and no restore ended)
    zombie = Producer({"bootstrap.servers": kafka.bootstrap, "transactional.id": kafka.unique_name("zombie"),
                       "transaction.timeout.ms": 20_000})
    zombie.init_transactions(30)
    with app:
        app.start()
        produce(kafka.bootstrap, src, batch(0), start_ts=now)
        wait_for_output(kafka, out, 100, read_committed=True)
        zombie.begin_transaction()
        zombie.produce(f"{app_id}-counts-changelog", b"", b"zombie", partition=0)
        assert zombie.flush(10) == 0  # left open: the changelog's stable offset stays below it
        produce(kafka.bootstrap, src, batch(100), start_ts=now)
        wait_for_output(kafka, out, 200, read_committed=True)

        member = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": app_id, "enable.auto.commit": False,
                           "partition.assignment.strategy": "range"})
        assigned = threading.Event()
        member.subscribe([src], on_assign=lambda *_: assigned.set())
        deadline = time.monotonic() + 30
        while not assigned.is_set():
            assert time.monotonic() < deadline, "the second member never joined"
            member.poll(0.1)
        member.close()  # the task comes back to the application, which restores its store
        run_until(app, lambda: listener.ends, timeout=75)  # after the zombie's transaction was aborted

        produce(kafka.bootstrap, src, batch(200), start_ts=now)
        got = consume_all(kafka.bootstrap, out, 300, quiet=1.0)
    assert_exact_counts(counts_by_key(got), Counter({"k": 300}))


class SlowUppercase(Processor):
    """Takes 5 ms per record (a call to a slow service, say)."""

    def init(self, context):
        self.context = context

    def process(self, record):
        time.sleep(0.005)
        self.context.forward(record.with_value(record.value.upper()))


def test_a_thread_with_many_slow_records_buffered_still_commits_on_the_interval(kafka, tmp_path):
    """600 records buffered at once take ~3 s to process: the commits (every 100 ms) come while
    they are processed, not once after all of them, as Kafka Streams commits between its rounds.
    (Before, an exactly_once_v2 transaction stayed open as long as the buffered records took, past
    ``transaction.timeout.ms`` for slow enough records.)"""
    from kstreams import Topology, serdes

    src, out = kafka.create_topic(kafka.unique_name("in"), 2), kafka.create_topic(kafka.unique_name("out"), 2)
    data = pairs(600, 50)
    produce(kafka.bootstrap, src, data)
    s = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}
    topology = Topology().add_source("src", [src], **s).add_processor("slow", SlowUppercase, "src") \
        .add_sink("sink", out, "slow", **s)
    app_id = kafka.unique_name("app")
    seen: set[int] = set()
    with KafkaStreams(topology, config(kafka, app_id, tmp_path, "exactly_once_v2", **{"commit.interval.ms": 100})) \
            as app:
        app.start()

        def all_committed() -> bool:
            seen.add(committed_total(kafka, app_id, src, 2))
            return max(seen) == len(data)

        run_until(app, all_committed)
        got = consume_all(kafka.bootstrap, out, len(data), quiet=0.5)
    assert Counter(v.decode() for _, v, _ in got) == Counter(v.upper() for _, v in data)
    partial = sorted(n for n in seen if 0 < n < len(data))
    assert len(partial) >= 4, f"committed totals seen while processing: {sorted(seen)}"
