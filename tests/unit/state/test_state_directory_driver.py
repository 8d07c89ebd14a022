"""The state directory (lock, process id, clean-up) and persistent stores in the TopologyTestDriver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kstreams import Processor, Stores, Topology, serdes
from kstreams.state import StateDirectory, StateDirectoryLockedError, ValueAndTimestamp
from kstreams.testing import TopologyTestDriver

S = {"key_serde": serdes.STRING, "value_serde": serdes.STRING}
LOCKED = ("Unable to initialize state, this can happen if multiple instances of Kafka Streams are running in the "
          "same state directory")


class Count(Processor):
    def init(self, context: Any) -> None:
        self.context = context
        self.store = context.get_state_store("counts")

    def process(self, record: Any) -> None:
        n = (self.store.get(record.key) or 0) + 1
        self.store.put(record.key, n)
        self.context.forward(record.with_value(n))


def count_topology(caching: bool = False) -> Topology:
    builder = Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"), serdes.STRING,
                                             serdes.INT64)
    if caching:
        builder.with_caching_enabled()
    return (Topology().add_source("src", ["in"], **S).add_processor("count", Count, "src")
            .add_state_store(builder, "count")
            .add_sink("out", "out", "count", key_serde=serdes.STRING, value_serde=serdes.INT64))


def config(state_dir: Path, app: str = "app", **extra: Any) -> dict[str, Any]:
    return {"application.id": app, "state.dir": str(state_dir), **extra}


# -- StateDirectory ----------------------------------------------------------------------------------

def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    a = StateDirectory(tmp_path, "app")
    b = StateDirectory(tmp_path, "app")
    a.lock()
    assert a.locked and (tmp_path / "app" / ".lock").exists()
    with pytest.raises(StateDirectoryLockedError, match=LOCKED):
        b.lock()
    StateDirectory(tmp_path, "other-app").lock()  # another application is another directory
    a.unlock()
    b.lock()
    assert b.locked
    b.unlock()


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    code = ("import sys, time; from kstreams.state import StateDirectory; d = StateDirectory(sys.argv[1], 'app'); "
            "d.lock(); print('locked', flush=True); time.sleep(60)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(StateDirectoryLockedError, match=LOCKED):
            StateDirectory(tmp_path, "app").lock()
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while True:  # the lock dies with its process (kill -9 included)
        try:
            StateDirectory(tmp_path, "app").lock()
            break
        except StateDirectoryLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_process_id_is_stable(tmp_path: Path) -> None:
    first = StateDirectory(tmp_path, "app").process_id()
    assert StateDirectory(tmp_path, "app").process_id() == first
    data = json.loads((tmp_path / "app" / "kafka-streams-process-metadata").read_text())
    assert data == {"processId": str(first)}
    assert StateDirectory(tmp_path, "other").process_id() != first


def test_task_dirs_and_clean_up(tmp_path: Path) -> None:
    d = StateDirectory(tmp_path, "app")
    assert d.task_dir("0_1") == tmp_path / "app" / "0_1" and (tmp_path / "app" / "0_1").is_dir()
    d.task_dir("1_0")
    (tmp_path / "app" / "not-a-task").mkdir()
    assert d.task_ids() == ["0_1", "1_0"]
    assert d.store_dir("0_1", "counts") == tmp_path / "app" / "0_1" / "counts"
    pid = d.process_id()
    owner = StateDirectory(tmp_path, "app")
    owner.lock()
    with pytest.raises(StateDirectoryLockedError):
        d.clean_up()  # not while another owner runs
    assert d.task_ids() == ["0_1", "1_0"]
    owner.clean_up()  # the owner may
    assert d.task_ids() == [] and not (tmp_path / "app" / "not-a-task").exists()
    assert d.process_id() != pid
    owner.unlock()


# -- the driver ----------------------------------------------------------------------------------------

def test_two_drivers_on_one_application_directory_fail_clearly(tmp_path: Path) -> None:
    first = TopologyTestDriver(count_topology(), config(tmp_path))
    with pytest.raises(StateDirectoryLockedError, match=LOCKED):
        TopologyTestDriver(count_topology(), config(tmp_path))
    with TopologyTestDriver(count_topology(), config(tmp_path, "another-app")):
        pass  # another application id: another directory
    first.close()
    with TopologyTestDriver(count_topology(), config(tmp_path)):
        pass  # released on close


@pytest.mark.parametrize("caching", [False, True])
def test_driver_changelog_and_offsets(tmp_path: Path, caching: bool) -> None:
    with TopologyTestDriver(count_topology(caching), config(tmp_path)) as d:
        inp = d.create_input_topic("in", **S)
        for i, w in enumerate("a b a c a".split()):
            inp.pipe_input(w, "x", 10 + i)
        assert "app-counts-changelog" in d.produced_topic_names()
        changelog = d.create_output_topic("app-counts-changelog", key_serde=serdes.STRING, value_serde=serdes.INT64)
        records = changelog.read_records_to_list()
        assert [(r.key, r.value, r.timestamp) for r in records] == [
            ("a", 1, 10), ("b", 1, 11), ("a", 2, 12), ("c", 1, 13), ("a", 3, 14)]
        store = d.get_key_value_store("counts")
        assert store.persistent and store.committed_offset() == 5  # the changelog's end offset
        assert store.dirty_count == 0 and store.pending_count == 0  # committed after every record
    # the data is in LevelDB, under <state.dir>/<application.id>/<task>/<store>
    assert (tmp_path / "app" / "0_0" / "counts" / "CURRENT").exists()
    with TopologyTestDriver(count_topology(caching), config(tmp_path)) as d:
        assert d.get_key_value_store("counts").get("a") == 3  # an explicit state.dir is kept
        d.create_input_topic("in", **S).pipe_input("a", "x", 20)
        assert d.create_output_topic("out", key_serde=serdes.STRING, value_serde=serdes.INT64) \
            .read_key_values_to_list() == [("a", 4)]


def test_driver_changelog_partition_is_the_task_partition(tmp_path: Path) -> None:
    with TopologyTestDriver(count_topology(), config(tmp_path)) as d:
        inp = d.create_input_topic("in", **S, partitions=3)
        words = [f"w{i}" for i in range(12)]
        for w in words:
            inp.pipe_input(w, "x", 1)
        by_partition = {}
        for p in range(3):
            store = d.get_key_value_store("counts", partition=p)
            keys = [k for k, _ in store.all()]
            by_partition[p] = keys
            assert store.committed_offset() == (len(keys) or None)
        assert sorted(k for keys in by_partition.values() for k in keys) == sorted(words)
        topic = d._topics["app-counts-changelog"]
        assert topic.next_offset == [len(by_partition[p]) for p in range(3)]
        assert sorted(p for p, *_ in topic.unread) == sorted(p for p, keys in by_partition.items() for _ in keys)


def fanout_topology(requested: list[bool]) -> Topology:
    """Each record puts 50 keys into the store ``counts``; ``requested`` collects whether the task
    had asked for a commit by then (before the driver commits it)."""

    class Fanout(Processor):
        def init(self, context: Any) -> None:
            self.store = context.get_state_store("counts")
            self.context = context

        def process(self, record: Any) -> None:
            for i in range(50):
                self.store.put(f"{record.key}-{i}", i)
            requested.append(self.context.commit_requested)

    builder = Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"), serdes.STRING, serdes.INT64)
    return Topology().add_source("src", ["in"], **S).add_processor("p", Fanout, "src").add_state_store(builder, "p")


def test_driver_early_commit_request_past_the_bound(tmp_path: Path) -> None:
    seen: list[bool] = []
    t = fanout_topology(seen)
    with TopologyTestDriver(t, config(tmp_path, **{"statestore.cache.max.bytes": 1000})) as d:
        inp = d.create_input_topic("in", **S)
        inp.pipe_input("a", "x", 1)
        inp.pipe_input("b", "x", 2)
        store = d.get_key_value_store("counts")
        assert seen == [True, True]
        assert store.early_commit_requests == 2
        assert store.get("b-49") == 49 and store.committed_offset() == 100
    with TopologyTestDriver(t, config(tmp_path, "big", **{"statestore.cache.max.bytes": 1_000_000})) as d:
        d.create_input_topic("in", **S).pipe_input("a", "x", 1)
        assert seen[-1] is False


def test_driver_shares_the_cache_bound_among_its_tasks_stores(tmp_path: Path) -> None:
    """statestore.cache.max.bytes bounds all the stores together: four tasks get a quarter each,
    so 50 buffered entries (~5.4 kB) outgrow a task's share of 12,000 bytes but not the whole."""
    requested: list[bool] = []
    t = fanout_topology(requested)
    bound = {"statestore.cache.max.bytes": 12_000}
    with TopologyTestDriver(t, config(tmp_path, "four", **bound)) as d:
        inp = d.create_input_topic("in", partitions=4, **S)
        assert [d.get_key_value_store("counts", p).cache_max_bytes for p in range(4)] == [3_000] * 4
        inp.pipe_input("a", "x", 1)
    with TopologyTestDriver(t, config(tmp_path, "one", **bound)) as d:
        d.create_input_topic("in", **S).pipe_input("a", "x", 1)
        assert d.get_key_value_store("counts").cache_max_bytes == 12_000
    assert requested == [True, False]


def test_driver_timestamped_store(tmp_path: Path) -> None:
    class Latest(Processor):
        def init(self, context: Any) -> None:
            self.store = context.get_state_store("latest")

        def process(self, record: Any) -> None:
            self.store.put(record.key, ValueAndTimestamp(record.value, record.timestamp))

    builder = Stores.timestamped_key_value_store_builder(Stores.persistent_timestamped_key_value_store("latest"),
                                                         serdes.STRING, serdes.STRING)
    t = Topology().add_source("src", ["in"], **S).add_processor("p", Latest, "src").add_state_store(builder, "p")
    with TopologyTestDriver(t, {"application.id": "ts"}) as d:  # a temporary state directory
        inp = d.create_input_topic("in", **S)
        inp.pipe_input("k", "v1", 100)
        inp.pipe_input("k", "v2", 50)
        assert d.get_key_value_store("latest").get("k") == ValueAndTimestamp("v2", 50)
        changelog = d.create_output_topic("ts-latest-changelog", **S).read_records_to_list()
        assert [(r.key, r.value, r.timestamp) for r in changelog] == [("k", "v1", 100), ("k", "v2", 50)]


def test_driver_with_logging_disabled_has_no_changelog(tmp_path: Path) -> None:
    builder = Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"), serdes.STRING,
                                             serdes.INT64).with_logging_disabled()
    t = (Topology().add_source("src", ["in"], **S).add_processor("count", Count, "src")
         .add_state_store(builder, "count"))
    with TopologyTestDriver(t, config(tmp_path)) as d:
        d.create_input_topic("in", **S).pipe_input("a", "x", 1)
        store = d.get_key_value_store("counts")
        assert store.get("a") == 1 and store.committed_offset() is None
        assert "app-counts-changelog" not in d.produced_topic_names()
