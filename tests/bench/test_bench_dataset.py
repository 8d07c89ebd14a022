"""The benchmark's data set and the shared workload helpers (no broker)."""

from __future__ import annotations

import json

import confluent_kafka
import pytest

from bench.compare import workloads
from bench.compare.dataset import DatasetSpec, generate


@pytest.mark.parametrize("data,expected", [
    (b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829), (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_matches_java(data: bytes, expected: int) -> None:
    # values of Java's org.apache.kafka.common.utils.Utils.murmur2
    assert workloads.murmur2(data) == expected


def test_partition_for_matches_librdkafka_murmur2() -> None:
    for i in range(300):
        key = f"k{i:06d}".encode() * (i % 3 + 1)
        for n in (1, 3, 4, 12):
            assert workloads.partition_for(key, n) == confluent_kafka.murmur2(key, n)


def test_window_store_keys_sort_by_window_then_key() -> None:
    keys = [workloads.window_store_key(s, k) for s in (0, 10_000, 1_700_000_000_000) for k in ("k000002", "k000010")]
    assert keys == sorted(keys)
    for start in (0, 10_000, 1_700_000_000_000):
        assert workloads.window_store_floor(start) < workloads.window_store_key(start, "k000000")
        assert workloads.window_store_key(start, "k999999") < workloads.window_store_bound(start)
        assert workloads.window_store_bound(start) < workloads.window_store_floor(start + 1)
    assert workloads.split_window_store_key(workloads.window_store_key(20_000, "k000007")) == (20_000, "k000007")
    assert workloads.last_closed_start(30_000, 10_000) == 20_000  # [20000, 30000) closes at 30000
    assert workloads.last_closed_start(29_999, 10_000) == 10_000


def test_generation_is_deterministic_and_well_formed() -> None:
    spec = DatasetSpec(records=5000, keys=300, partitions=4, base_ts=1_700_000_000_000)
    a, b = generate(spec), generate(spec)
    assert list(a.records()) == list(b.records())
    assert generate(DatasetSpec(records=5000, keys=300, seed=7)).key_index != a.key_index
    rows = list(a.records())
    assert len(rows) == 5000 and a.sentinels == 4
    timestamps = [ts for *_, ts in rows]
    assert timestamps == sorted(timestamps)
    sizes = [len(value) for _, _, value, _ in rows]
    assert 90 <= sum(sizes) / len(sizes) <= 110
    for i, (partition, key, value, ts) in enumerate(rows):
        parsed = json.loads(value)
        assert parsed == a.value_dict(i)
        assert parsed["id"] == i and parsed["user"] == key.decode() and parsed["ts"] == ts
        assert partition == workloads.partition_for(key, 4)
    # one sentinel per partition, each after the last real window
    sentinel_partitions = {rows[i][0] for i in range(5000 - 4, 5000)}
    assert sentinel_partitions == {0, 1, 2, 3}
    kinds = sum(a.kind[: len(a) - a.sentinels])
    assert 0.4 < kinds / (len(a) - a.sentinels) < 0.6


def test_keys_are_skewed() -> None:
    skewed = generate(DatasetSpec(records=20_000, keys=1000)).summary()
    uniform = generate(DatasetSpec(records=20_000, keys=1000, skew=0.0)).summary()
    assert skewed["hottest_key_share"] > 5 * uniform["hottest_key_share"]


def test_expected_outputs() -> None:
    data = generate(DatasetSpec(records=4000, keys=100, window_ms=1000))
    assert data.expected_outputs("passthrough") == data.expected_outputs("count") == 4000
    assert data.expected_outputs("filter-map") == sum(data.kind)
    ordinals = data.ordinals()
    last_per_key: dict[int, int] = {}
    for i, k in enumerate(data.key_index):
        last_per_key[k] = ordinals[i]
    assert sum(last_per_key.values()) == 4000
    windows = data.closed_windows()
    assert sum(windows.values()) == sum(data.amount[: len(data) - data.sentinels])


def test_invalid_specs_are_rejected() -> None:
    with pytest.raises(ValueError):
        generate(DatasetSpec(records=0))
    with pytest.raises(ValueError):
        generate(DatasetSpec(records=10, keys=2_000_000))
