"""In-process throughput of the record loop: pre-built raw records through a task, no broker.

Workloads:

* ``passthrough``: source -> two Python processors forwarding -> sink, bytes serdes;
* ``msgpack``: the same with msgpack keys and values (deserialize and serialize every record);
* ``count``: count per key in an in-memory key-value store (logging to the changelog), msgpack.
* ``count-leveldb``: count per key in a persistent (LevelDB) store with caching, INT64 keys with a
  Zipf(1.0) distribution, no sink (see ``bench/store.py``).

Records are fed in batches of 1000 (as a consumer poll would deliver them), the collector's
output is drained per batch, and every 100,000 records the task commits (stores flush). The
figure is records/s over the processing loop only (input built beforehand), median of the runs.
``compiled_speedup`` runs the same loop with ``KSTREAMS_PURE_PYTHON=1`` (the same sources,
uncompiled) in a child process of the same invocation.
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

BATCH = 1000
COMMIT_EVERY = 100_000


def _forward_processor() -> Any:
    from kstreams import Processor

    class Forward(Processor):
        def init(self, context: Any) -> None:
            self.context = context

        def process(self, record: Any) -> None:
            self.context.forward(record)

    return Forward


def count_processor(store: str = "counts") -> Any:
    """A processor class that counts records per key in the key-value store ``store`` and
    forwards each record with its key's count as the value."""
    from kstreams import Processor

    class Count(Processor):
        def init(self, context: Any) -> None:
            self.context = context
            self.store = context.get_state_store(store)

        def process(self, record: Any) -> None:
            n = (self.store.get(record.key) or 0) + 1
            self.store.put(record.key, n)
            self.context.forward(record.with_value(n))

    return Count


def passthrough_topology(serde: Any) -> Any:
    from kstreams import Topology

    fwd = _forward_processor()
    return (Topology()
            .add_source("source", ["input"], key_serde=serde, value_serde=serde)
            .add_processor("forward-1", fwd, "source")
            .add_processor("forward-2", fwd, "forward-1")
            .add_sink("sink", "output", "forward-2", key_serde=serde, value_serde=serde))


def count_topology(supplier_factory: str = "in_memory_key_value_store", key_serde: Any = None,
                   value_serde: Any = None) -> Any:
    from kstreams import Stores, Topology, serdes

    key_serde = key_serde or serdes.MSGPACK
    value_serde = value_serde or serdes.MSGPACK
    supplier = getattr(Stores, supplier_factory)("counts")
    return (Topology()
            .add_source("source", ["input"], key_serde=key_serde, value_serde=serdes.BYTES)
            .add_processor("count", count_processor(), "source")
            .add_state_store(Stores.key_value_store_builder(supplier, key_serde, value_serde), "count")
            .add_sink("sink", "output", "count", key_serde=key_serde, value_serde=value_serde))


def skewed_keys(n: int, keys: int, seed: int = 7) -> list[int]:
    """Key ids with a skewed distribution: 20% of the records on 10 hot keys, the rest uniform."""
    rng = random.Random(seed)
    hot = max(1, min(10, keys))
    return [rng.randrange(hot) if rng.random() < 0.2 else rng.randrange(keys) for _ in range(n)]


def raw_records(workload: str, n: int, keys: int) -> list[tuple]:
    """Pre-built raw records ``(key, value, timestamp, offset, headers)`` for a workload."""
    import msgpack

    ids = skewed_keys(n, keys)
    value = b"x" * 100
    if workload == "passthrough":
        key_bytes = [f"key-{i}".encode() for i in range(keys)]
        return [(key_bytes[k], value, i, i, None) for i, k in enumerate(ids)]
    if workload == "msgpack":
        key_bytes = [msgpack.packb(f"key-{i}") for i in range(keys)]
        packed = msgpack.packb({"id": 1, "name": "x" * 80, "amount": 12.5})
        return [(key_bytes[k], packed, i, i, None) for i, k in enumerate(ids)]
    if workload == "count":
        from kstreams import serdes

        key_bytes = [serdes.MSGPACK.serialize(i) for i in range(keys)]
        return [(key_bytes[k], value, i, i, None) for i, k in enumerate(ids)]
    if workload == "count-leveldb":
        from bench.store import count_leveldb_records

        return count_leveldb_records(n, keys)
    raise ValueError(f"unknown workload {workload!r}")


def build_topology(workload: str) -> Any:
    from kstreams import serdes

    if workload == "passthrough":
        return passthrough_topology(serdes.BYTES)
    if workload == "msgpack":
        return passthrough_topology(serdes.MSGPACK)
    if workload == "count":
        return count_topology()
    if workload == "count-leveldb":
        from bench.store import count_leveldb_topology

        return count_leveldb_topology()
    raise ValueError(f"unknown workload {workload!r}")


WORKLOADS = ("passthrough", "msgpack", "count", "count-leveldb")


def run_once(workload: str, records: list[tuple], state_dir: str) -> float:
    """Process ``records`` through one fresh task; returns records/s."""
    from kstreams._core import RecordCollector
    from kstreams.config import StreamsConfig
    from kstreams.tasks import build_task

    topology = build_topology(workload)
    config = StreamsConfig({"application.id": "bench", "state.dir": state_dir})
    collector = RecordCollector(lambda topic: 1)
    sub = topology.subtopologies()[0]
    task = build_task(topology, sub, 0, config, collector, application_id="bench", state_dir=config["state.dir"])
    task.init_topology(0)
    stores = list(task.stores.values())
    add, process, drain = task.add_records, task.process, collector.drain
    n = len(records)
    gc.collect()
    start = time.perf_counter()
    next_commit = COMMIT_EVERY
    for i in range(0, n, BATCH):
        add("input", 0, records[i:i + BATCH])
        process(BATCH, 0)
        drain()
        if i + BATCH >= next_commit:
            for s in stores:
                s.flush()
            drain()
            next_commit += COMMIT_EVERY
    for s in stores:
        s.flush()
        wait = getattr(s, "wait_applied", None)
        if wait is not None:
            wait()  # LevelDB batches may be written on a background thread
    drain()
    elapsed = time.perf_counter() - start
    if task.processed_total != n:
        raise RuntimeError(f"processed {task.processed_total} of {n} records")
    for s in stores:
        s.close()
    return n / elapsed


def measure(workload: str, n: int, keys: int, runs: int) -> list[float]:
    """Records/s of ``runs`` runs (input built once)."""
    import tempfile

    records = raw_records(workload, n, keys)
    gc.collect()
    gc.freeze()
    rates = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="kstreams-bench-") as state_dir:
            rates.append(run_once(workload, records, state_dir))
    return rates


def _pure_python_rates(workload: str, n: int, keys: int, runs: int) -> list[float]:
    env = dict(os.environ, KSTREAMS_PURE_PYTHON="1")
    code = ("import json, sys; from bench.inprocess import measure; import kstreams; "
            "assert not kstreams.COMPILED; "
            f"print(json.dumps(measure({workload!r}, {n}, {keys}, {runs})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(workload: str, records: int, keys: int, runs: int, as_json: bool, speedup: bool = True,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one workload and report (printed, or one JSON object with ``--json``)."""
    import platform

    import kstreams

    if not kstreams.COMPILED:
        raise SystemExit("kstreams is not compiled; build it first (pip install -e .)")
    rates = measure(workload, records, keys, runs)
    result: dict[str, Any] = {
        "workload": workload, "records": records, "keys": keys, "runs": runs,
        "records_per_s": round(statistics.median(rates)), "records_per_s_all": [round(r) for r in rates],
        "compiled": True, "python": platform.python_version(), "cpus": os.cpu_count(),
    }
    if speedup:
        pure_n = max(BATCH, records // 10)
        pure = _pure_python_rates(workload, pure_n, keys, max(3, runs // 2 + 1))
        result["pure_python_records_per_s"] = round(statistics.median(pure))
        result["pure_python_records"] = pure_n
        result["compiled_speedup"] = round(statistics.median(rates) / statistics.median(pure), 2)
    if as_json:
        echo(json.dumps(result))
    else:
        line = (f"{workload}: {result['records_per_s']:,} records/s (median of {runs} runs, {records:,} records, "
                f"{keys:,} keys)")
        if speedup:
            line += (f"; pure Python {result['pure_python_records_per_s']:,} records/s; "
                     f"compiled speed-up x{result['compiled_speedup']}")
        echo(line)
    return result
