"""The output check of ``python -m bench compare``: correct output passes, broken output fails.

The expected outputs here come from a small reference implementation written in the test (plain
loops over the input records), not from the verifier's own expectations, and every kind of
breakage a system could hide behind (lost records, wrong counts, duplicates under exactly-once,
leaked or invented records, windows emitted too early) must turn the run into a failure.
No broker needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bench.compare.dataset import Dataset, DatasetSpec, generate
from bench.compare.verify import Verifier

Pairs = list[tuple[bytes | None, bytes | None]]
SPEC = DatasetSpec(records=3000, keys=200, partitions=4, window_ms=1000, base_ts=1_700_000_000_000)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture(scope="module")
def verifier(dataset: Dataset) -> Verifier:
    return Verifier(dataset)


def _inputs(dataset: Dataset) -> list[tuple[str, dict, int]]:
    return [(key.decode(), json.loads(value), ts) for _, key, value, ts in dataset.records()]


def _dump(obj: object) -> bytes:
    return json.dumps(obj).encode()


def reference(dataset: Dataset, workload: str) -> Pairs:
    """What a correct system writes, computed the plain way."""
    out: Pairs = []
    if workload == "passthrough":
        return [(key.encode(), _dump(value)) for key, value, _ in _inputs(dataset)]
    if workload == "filter-map":
        return [(key.encode(), _dump({"id": v["id"], "user": v["user"], "cents": v["amount"] * 100}))
                for key, v, _ in _inputs(dataset) if v["kind"] == "buy"]
    if workload == "count":
        counts: dict[str, int] = {}
        for key, value, _ in _inputs(dataset):
            counts[key] = counts.get(key, 0) + 1
            out.append((key.encode(), _dump({"id": value["id"], "count": counts[key]})))
        return out
    assert workload == "window"
    size = dataset.spec.window_ms
    stream_time: dict[int, int] = {}
    sums: dict[tuple[str, int], int] = {}
    for i, (key, value, ts) in enumerate(_inputs(dataset)):
        p = dataset.partition(i)
        stream_time[p] = max(stream_time.get(p, 0), ts)
        start = ts - ts % size
        sums[(key, start)] = sums.get((key, start), 0) + value["amount"]
    partition_of = {dataset.key(i): dataset.partition(i) for i in range(len(dataset))}
    for (key, start), total in sums.items():
        if start + size <= stream_time[partition_of[key]]:
            out.append((key.encode(), _dump({"start": start, "end": start + size, "sum": total})))
    return out


WORKLOADS = ("passthrough", "filter-map", "count", "window")


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("exactly_once", [False, True])
def test_correct_output_passes(verifier: Verifier, dataset: Dataset, workload: str, exactly_once: bool) -> None:
    pairs = reference(dataset, workload)
    verdict = verifier.verify(workload, reversed(pairs), exactly_once)  # order does not matter
    assert verdict.ok, verdict.to_json()
    assert verdict.received == verdict.expected == len(pairs) == verifier.expected_outputs(workload)
    assert verdict.reason() == ""


def test_window_reference_closes_every_real_window(dataset: Dataset) -> None:
    # the sentinels push every partition's stream time past every real window
    windows = {((k or b"").decode(), json.loads(v or b"{}")["start"]) for k, v in reference(dataset, "window")}
    size = dataset.spec.window_ms
    real = {(dataset.key(i), dataset.timestamp[i] - dataset.timestamp[i] % size)
            for i in range(len(dataset) - dataset.sentinels)}
    assert windows == real
    assert dataset.sentinels == SPEC.partitions


def _check_fails(verifier: Verifier, workload: str, pairs: Pairs, exactly_once: bool = True, **counts: int) -> None:
    verdict = verifier.verify(workload, pairs, exactly_once)
    assert not verdict.ok, "a broken output passed the check"
    assert verdict.reason().startswith("output check failed")
    for name, n in counts.items():
        assert getattr(verdict, name) == n, (name, verdict.to_json())
    assert verdict.examples


def _edit(pairs: Pairs, index: int, change: Callable[[dict], dict]) -> Pairs:
    key, value = pairs[index]
    assert value is not None
    return pairs[:index] + [(key, _dump(change(json.loads(value))))] + pairs[index + 1:]


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("exactly_once", [False, True])
def test_missing_records_fail(verifier: Verifier, dataset: Dataset, workload: str, exactly_once: bool) -> None:
    pairs = reference(dataset, workload)
    _check_fails(verifier, workload, pairs[:-7], exactly_once, missing=7)
    _check_fails(verifier, workload, pairs[1:], exactly_once, missing=1)
    _check_fails(verifier, workload, [], exactly_once, missing=len(pairs))


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duplicates_fail_under_exactly_once_only(verifier: Verifier, dataset: Dataset, workload: str) -> None:
    pairs = reference(dataset, workload)
    duplicated = pairs + pairs[100:110]
    _check_fails(verifier, workload, duplicated, exactly_once=True, duplicates=10, missing=0)
    at_least_once = verifier.verify(workload, duplicated, exactly_once=False)
    assert at_least_once.ok and at_least_once.duplicates == 10


def test_duplicates_do_not_hide_missing_records_under_at_least_once(verifier: Verifier, dataset: Dataset) -> None:
    pairs = reference(dataset, "count")
    # same number of records as expected: 5 lost, 5 others written twice
    _check_fails(verifier, "count", pairs[:-5] + pairs[:5], exactly_once=False, missing=5, duplicates=5)


def test_wrong_counts_fail(verifier: Verifier, dataset: Dataset) -> None:
    pairs = reference(dataset, "count")
    _check_fails(verifier, "count", _edit(pairs, 500, lambda v: {**v, "count": v["count"] + 1}), wrong=1, missing=1)
    # a system that counts each key from 0: every count off by one
    parsed = [(k, json.loads(v or b"{}")) for k, v in pairs]
    off: Pairs = [(k, _dump({**v, "count": v["count"] - 1})) for k, v in parsed]
    _check_fails(verifier, "count", off, exactly_once=False, wrong=len(pairs))
    # re-counting after a replay (counts go on past the key's total) is wrong, not a duplicate
    replay = pairs + [(k, _dump({**json.loads(v or b"{}"), "count": 10_000})) for k, v in pairs[-3:]]
    _check_fails(verifier, "count", replay, exactly_once=False, wrong=3)


def test_count_under_the_wrong_key_fails(verifier: Verifier, dataset: Dataset) -> None:
    pairs = reference(dataset, "count")
    key, value = pairs[10]
    _check_fails(verifier, "count", pairs[:10] + [(b"k999999", value)] + pairs[11:], wrong=1)


def test_passthrough_altered_value_fails(verifier: Verifier, dataset: Dataset) -> None:
    pairs = reference(dataset, "passthrough")
    _check_fails(verifier, "passthrough", _edit(pairs, 42, lambda v: {**v, "amount": v["amount"] + 1}), wrong=1)
    _check_fails(verifier, "passthrough", _edit(pairs, 43, lambda v: {k: v[k] for k in v if k != "note"}), wrong=1)


def test_unexpected_records_fail(verifier: Verifier, dataset: Dataset) -> None:
    pairs = reference(dataset, "filter-map")
    view = next(i for i in range(len(dataset)) if not dataset.kind[i])
    leaked = (dataset.key(view).encode(), _dump({"id": view, "user": dataset.key(view), "cents": 100}))
    _check_fails(verifier, "filter-map", pairs + [leaked], unexpected=1)
    _check_fails(verifier, "filter-map", pairs + [(b"x", b"not json")], unexpected=1)
    _check_fails(verifier, "filter-map", pairs + [(b"x", None)], unexpected=1)
    _check_fails(verifier, "passthrough", reference(dataset, "passthrough") + [(b"x", _dump({"id": 10**9}))],
                 unexpected=1)


def test_window_breakage_fails(verifier: Verifier, dataset: Dataset) -> None:
    pairs = reference(dataset, "window")
    _check_fails(verifier, "window", _edit(pairs, 3, lambda v: {**v, "sum": v["sum"] - 1}), wrong=1)
    _check_fails(verifier, "window", _edit(pairs, 4, lambda v: {**v, "end": v["end"] + 1}), wrong=1)
    # a window that never closes (the sentinel's) must not be emitted
    last = len(dataset) - 1
    ts = dataset.timestamp[last]
    start = ts - ts % dataset.spec.window_ms
    still_open = (dataset.key(last).encode(),
                  _dump({"start": start, "end": start + dataset.spec.window_ms, "sum": dataset.amount[last]}))
    _check_fails(verifier, "window", pairs + [still_open], unexpected=1)
    # early emission (a partial sum followed by the full one) is a wrong record under any guarantee
    partial = _edit(pairs, 5, lambda v: {**v, "sum": v["sum"] // 2})[5]
    _check_fails(verifier, "window", pairs + [partial], exactly_once=False, wrong=1)


def test_verdict_json_is_serializable(verifier: Verifier, dataset: Dataset) -> None:
    verdict = verifier.verify("count", reference(dataset, "count")[:-1], True)
    document = json.loads(json.dumps(verdict.to_json()))
    assert document["ok"] is False and document["missing"] == 1
