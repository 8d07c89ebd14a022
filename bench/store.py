"""Benchmarks of the LevelDB key-value store (``python -m bench store [--json]``) and the
``count-leveldb`` workload of ``python -m bench inprocess``.

``store``: rates of typed ``get`` / ``put`` / ``range`` on a LevelDB store, median of 5 runs, in
three set-ups:

* ``direct``: every operation goes to LevelDB (what a store without a write buffer pays: a
  serialize + a LevelDB get per read, a serialize + a one-entry WriteBatch per write);
* ``buffered``: the store as built by ``Stores`` (caching disabled): writes land in the write
  buffer and are flushed in one WriteBatch at commit (every 10,000 writes here), reads of keys
  not written since the last commit go to LevelDB;
* ``cached``: caching enabled: hot keys are served from the read cache.

Keys are ``ORDERED_INT64`` (range scans in numeric order), values ``INT64``.

``count-leveldb``: source (INT64 keys, values not read) -> count per key in a persistent store
with caching enabled -> no sink; keys follow a Zipf(1.0) distribution over K keys (the 10
hottest take ~24% of the records); the harness commits every 100,000 records.
"""

from __future__ import annotations

import gc
import itertools
import json
import random
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from typing import Any

RUNS = 5
N_KEYS = 100_000
N_OPS = 200_000
COMMIT_EVERY = 10_000
RANGE_LEN = 100


# -- the count-leveldb workload ----------------------------------------------------------------------

def _count_processor(forward: bool) -> Any:
    from kstreams import Processor

    class CountLevelDB(Processor):
        """Counts records per key in the ``counts`` store."""

        def init(self, context: Any) -> None:
            self.context = context
            self.store = context.get_state_store("counts")

        def process(self, record: Any) -> None:
            store = self.store
            key = record.key
            n = store.get(key)
            store.put(key, 1 if n is None else n + 1)

    class CountLevelDBForward(CountLevelDB):
        """Counts, and forwards every new count."""

        def process(self, record: Any) -> None:
            store = self.store
            key = record.key
            n = store.get(key)
            n = 1 if n is None else n + 1
            store.put(key, n)
            self.context.forward(record.with_value(n))

    return CountLevelDBForward if forward else CountLevelDB


def count_leveldb_topology(forward: bool = False, caching: bool = True) -> Any:
    """Source ``input`` (INT64 keys; values not deserialized: the count does not read them) ->
    ``count`` (a persistent LevelDB store ``counts``, INT64 keys and counts, logged, caching
    enabled) [-> sink ``output`` with ``forward=True``]."""
    from kstreams import Stores, Topology, serdes

    builder = Stores.key_value_store_builder(Stores.persistent_key_value_store("counts"), serdes.INT64,
                                             serdes.INT64)
    if caching:
        builder.with_caching_enabled()
    topology = (Topology()
                .add_source("source", ["input"], key_serde=serdes.INT64, value_serde=serdes.BYTES)
                .add_processor("count", _count_processor(forward), "source")
                .add_state_store(builder, "count"))
    if forward:
        topology.add_sink("sink", "output", "count", key_serde=serdes.INT64, value_serde=serdes.INT64)
    return topology


def zipf_key_ids(n: int, keys: int, s: float = 1.0, seed: int = 7) -> list[int]:
    """``n`` key ids in ``[0, keys)`` drawn from Zipf(``s``): id ``r`` has weight ``1/(r+1)**s``."""
    cum = list(itertools.accumulate(1.0 / (r ** s) for r in range(1, keys + 1)))
    return random.Random(seed).choices(range(keys), cum_weights=cum, k=n)


def count_leveldb_records(n: int, keys: int, seed: int = 7) -> list[tuple]:
    """Raw records ``(key, value, timestamp, offset, headers)`` for ``count-leveldb``: INT64 keys
    with a Zipf(1.0) distribution over ``keys`` keys, INT64 values (an amount), timestamps =
    offsets."""
    pack = struct.Struct(">q").pack
    key_bytes = [pack(i) for i in range(keys)]
    values = [pack(v) for v in range(1000)]
    ids = zipf_key_ids(n, keys, 1.0, seed)
    return [(key_bytes[k], values[i % 1000], i, i, None) for i, k in enumerate(ids)]


# -- store micro-benchmarks --------------------------------------------------------------------------

class _Context:
    """The little a store needs from a processor context outside a task."""

    record_timestamp = 0
    commit_requested = False


def _open_store(state_dir: str, mode: str) -> Any:
    from kstreams import Stores, serdes
    from kstreams._core import RecordCollector
    from kstreams.state.context import StateStoreContext

    builder = Stores.key_value_store_builder(Stores.persistent_key_value_store("bench"), serdes.ORDERED_INT64,
                                             serdes.INT64)
    if mode == "cached":
        builder.with_caching_enabled()
    store = builder.build()
    collector = RecordCollector(lambda topic: 1)
    store.init(StateStoreContext(
        application_id="bench", task_id="0_0", partition=0, state_dir=state_dir,
        app_configs={"statestore.cache.max.bytes": 64 * 1024 * 1024}, collector=collector,
        processor_context=_Context(), changelog_topic="bench-bench-changelog"))
    return store, collector


def _direct_ops(store: Any) -> tuple[Callable[[Any], Any], Callable[[Any, Any], None]]:
    """get/put that bypass the buffer: straight to LevelDB with serdes, one batch per put."""
    from kstreams import serdes

    inner = store.inner
    kser, vser, vde = serdes.ORDERED_INT64.serialize, serdes.INT64.serialize, serdes.INT64.deserialize
    write = inner.write_batch

    def get(key: Any) -> Any:
        vb = inner.get(kser(key))
        return None if vb is None else vde(vb)

    def put(key: Any, value: Any) -> None:
        write([(kser(key), vser(value))], None)

    return get, put


def _one_run(mode: str, keys: list[int], ops: list[int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kstreams-bench-store-") as state_dir:
        store, collector = _open_store(state_dir, mode)
        try:
            for i in range(0, len(keys), 10_000):  # pre-load every key, committed
                store.put_all((k, k) for k in keys[i:i + 10_000])
                store.flush()
                collector.drain()
            if mode == "direct":
                get, put = _direct_ops(store)
            else:
                get, put = store.get, store.put
            flush, drain = store.flush, collector.drain
            gc.collect()

            t0 = time.perf_counter()
            for i in range(0, len(ops), COMMIT_EVERY):
                for k in ops[i:i + COMMIT_EVERY]:
                    put(k, k + 1)
                flush()
                drain()
            put_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            for k in ops:
                get(k)
            get_s = time.perf_counter() - t0

            scans = max(1, len(ops) // (RANGE_LEN * 20))
            rng = random.Random(3)
            starts = [rng.randrange(len(keys) - RANGE_LEN) for _ in range(scans)]
            for k in starts[: scans // 2]:  # half of the scans see buffered writes
                put(k, 0)
            t0 = time.perf_counter()
            read = 0
            for k in starts:
                with store.range(k, k + RANGE_LEN - 1) as it:
                    for _ in it:
                        read += 1
            range_s = time.perf_counter() - t0
            flush()
            drain()
        finally:
            store.close()
    return {"put_per_s": len(ops) / put_s, "get_per_s": len(ops) / get_s, "range_entries_per_s": read / range_s}


def measure_store(mode: str, runs: int = RUNS, n_keys: int = N_KEYS, n_ops: int = N_OPS) -> dict[str, float]:
    """Median rates of ``runs`` runs of one set-up (``direct``, ``buffered`` or ``cached``)."""
    keys = list(range(n_keys))
    ops = zipf_key_ids(n_ops, n_keys, 1.0, seed=11)
    results = [_one_run(mode, keys, ops) for _ in range(runs)]
    return {name: round(statistics.median(r[name] for r in results)) for name in results[0]}


def run(json_out: bool) -> dict[str, Any]:
    """``python -m bench store``: get/put/range rates of the LevelDB store, with and without the buffer."""
    import platform

    import kstreams

    result: dict[str, Any] = {
        "benchmark": "store", "keys": N_KEYS, "ops": N_OPS, "runs": RUNS, "commit_every": COMMIT_EVERY,
        "range_len": RANGE_LEN, "distribution": "zipf(1.0)", "compiled": kstreams.COMPILED,
        "python": platform.python_version(),
    }
    for mode in ("direct", "buffered", "cached"):
        result[mode] = measure_store(mode)
    if json_out:
        print(json.dumps(result))
    else:
        print(f"LevelDB store, {N_KEYS:,} keys, {N_OPS:,} zipf(1.0) operations, median of {RUNS} runs "
              f"(compiled={kstreams.COMPILED}):")
        for mode in ("direct", "buffered", "cached"):
            r = result[mode]
            print(f"  {mode:9s} get {r['get_per_s']:>12,}/s   put {r['put_per_s']:>12,}/s   "
                  f"range {r['range_entries_per_s']:>12,} entries/s")
    return result
