"""The key-value store API on every store type, before and after commits."""

from __future__ import annotations

import logging

import pytest
from state_helpers import KINDS, Harness

from kstreams import Stores, serdes
from kstreams.errors import SerializationError, StateStoreError
from kstreams.state import KeyValueStore, ValueAndTimestamp


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=[False, True], ids=["buffered", "committed"])
def committed(request: pytest.FixtureRequest) -> bool:
    """Run the reads on data still in the write buffer, or after a commit."""
    return request.param


def _fill(h, committed: bool, pairs) -> None:  # noqa: ANN001
    for k, v in pairs:
        h.store.put(k, v)
    if committed:
        h.commit()


def test_get_put_delete_put_if_absent(harness_factory, kind, committed) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    s: KeyValueStore = h.store
    assert s.get("a") is None
    _fill(h, committed, [("a", 1), ("b", {"x": [1, 2]}), ("c", "three")])
    assert s.get("a") == 1
    assert s.get("b") == {"x": [1, 2]}
    assert s.get("c") == "three"
    assert s.put_if_absent("a", 99) == 1 and s.get("a") == 1
    assert s.put_if_absent("d", 4) is None and s.get("d") == 4
    assert s.put_if_absent("e", None) is None and s.get("e") is None
    assert s.delete("c") == "three" and s.get("c") is None
    assert s.delete("nope") is None
    s.put("a", None)  # None deletes
    assert s.get("a") is None
    s.put_all([("x", 1), ("y", 2), ("x", None)])
    assert (s.get("x"), s.get("y")) == (None, 2)
    h.commit()
    assert [k for k, _ in s.all()] == ["b", "d", "y"]


def test_mutable_values_are_copies(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    value = {"n": [1]}
    h.store.put("k", value)
    value["n"].append(2)  # mutating after put does not change the stored value
    got = h.store.get("k")
    assert got == {"n": [1]}
    got["n"].append(3)  # nor does mutating what get returned
    assert h.store.get("k") == {"n": [1]}


def test_scans_merge_buffer_and_store_in_key_order(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    s = h.store
    for k in ["b", "d", "f", "h"]:
        s.put(k, k.upper())
    h.commit()
    # buffered: a new key, an update, a delete, a key past the end
    s.put("a", "A2")
    s.put("d", "D2")
    s.delete("f")
    s.put("z", "Z")
    expected = [("a", "A2"), ("b", "B"), ("d", "D2"), ("h", "H"), ("z", "Z")]
    assert list(s.all()) == expected
    assert list(s.reverse_all()) == expected[::-1]
    assert list(s.range("b", "h")) == expected[1:4]  # inclusive at both ends
    assert list(s.reverse_range("b", "h")) == expected[1:4][::-1]
    assert list(s.range(None, "d")) == expected[:3]
    assert list(s.range("c", None)) == expected[2:]
    assert list(s.range("e", "e")) == []
    h.commit()
    assert list(s.all()) == expected  # same answer once committed


def test_iterator_protocol(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    _fill(h, True, [("a", 1), ("b", 2)])
    h.store.put("c", 3)
    with h.store.all() as it:
        assert it.peek_next_key() == "a"
        assert it.has_next()
        assert next(it) == ("a", 1)
        assert it.peek_next_key() == "b"
        assert next(it) == ("b", 2)
        assert next(it) == ("c", 3)
        assert not it.has_next()
        with pytest.raises(StopIteration):
            it.peek_next_key()
    it = h.store.all()
    it.close()
    assert list(it) == []


def test_iterator_survives_writes_during_iteration(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    _fill(h, True, [(f"k{i}", i) for i in range(5)])
    seen = []
    for k, v in h.store.all():
        seen.append(k)
        h.store.put(k, v + 100)
        h.store.put("k9" + k, 0)  # new keys during the scan: no error
    assert seen[:5] == [f"k{i}" for i in range(5)]
    assert h.store.get("k3") == 103


def test_invalid_range_is_empty_with_warning(harness_factory, kind, caplog) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    _fill(h, False, [("a", 1), ("z", 2)])
    with caplog.at_level(logging.WARNING, logger="kstreams.state"):
        assert list(h.store.range("z", "a")) == []
        assert list(h.store.reverse_range("z", "a")) == []
    assert sum("invalid key range: from > to" in r.getMessage() for r in caplog.records) == 2


def test_ordered_int64_range_follows_numeric_order(harness_factory, kind, committed) -> None:  # noqa: ANN001
    h = harness_factory(kind, key_serde=serdes.ORDERED_INT64, value_serde=serdes.INT64)
    numbers = [5, -3, 0, 1 << 40, -(1 << 40), 7, -1, 2]
    _fill(h, committed, [(n, n * 10) for n in numbers])
    assert [k for k, _ in h.store.all()] == sorted(numbers)
    assert list(h.store.range(-3, 5)) == [(n, n * 10) for n in sorted(numbers) if -3 <= n <= 5]
    assert [k for k, _ in h.store.reverse_range(-(1 << 41), 0)] == sorted((n for n in numbers if n <= 0),
                                                                         reverse=True)


def test_plain_int64_keys_scan_in_byte_order_not_numeric(harness_factory) -> None:  # noqa: ANN001
    h = harness_factory("leveldb", key_serde=serdes.INT64, value_serde=serdes.INT64)
    _fill(h, True, [(n, n) for n in (-1, 1)])
    assert [k for k, _ in h.store.all()] == [1, -1]  # 0x00.. < 0xff..


def test_prefix_scan(harness_factory, kind, committed) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    _fill(h, committed, [("app", 1), ("apple", 2), ("apricot", 3), ("b", 4), ("ap", 5)])
    h.store.put("apz", 6)
    h.store.delete("apple")
    assert list(h.store.prefix_scan("ap")) == [("ap", 5), ("app", 1), ("apricot", 3), ("apz", 6)]
    assert list(h.store.prefix_scan("app")) == [("app", 1)]
    assert list(h.store.prefix_scan("q")) == []
    # the prefix serializer decides the bytes: msgpack's "ap" is not a byte prefix of "app"
    assert list(h.store.prefix_scan("ap", serdes.MSGPACK)) == []


def test_approximate_num_entries_and_metadata(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    s = h.store
    assert s.name == "s"
    assert s.persistent is kind.startswith("leveldb")
    assert s.is_open
    _fill(h, True, [(f"k{i}", i) for i in range(10)])
    assert s.approximate_num_entries() == 10
    s.put("new", 1)
    assert s.approximate_num_entries() >= 11
    s.close()
    assert not s.is_open
    with pytest.raises(StateStoreError, match="currently closed"):
        s.get("k1")
    with pytest.raises(StateStoreError, match="currently closed"):
        s.put("k1", 2)


def test_none_key_is_rejected(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind)
    with pytest.raises(StateStoreError):
        h.store.put(None, 1)
    with pytest.raises(StateStoreError):
        h.store.get(None)


def test_serde_type_errors_surface_at_put(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind, value_serde=serdes.INT64)
    h.store.put("a", 1)
    with pytest.raises(Exception):  # noqa: B017 - struct.error from the INT64 serde
        h.store.put("b", "not an int")
    assert h.store.get("b") is None
    h.store.put("c", 1 << 70)  # right type, out of range: found when flushed
    with pytest.raises(SerializationError, match="store 's'"):
        h.store.prepare_commit()


def test_keys_equal_in_python_but_not_in_bytes_stay_apart(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind, key_serde=serdes.MSGPACK)
    h.store.put(1, "int")
    h.store.put(True, "bool")
    h.store.put(1.0, "float")
    assert (h.store.get(1), h.store.get(True), h.store.get(1.0)) == ("int", "bool", "float")
    h.commit()
    assert sorted(v for _, v in h.store.all()) == ["bool", "float", "int"]


@pytest.mark.parametrize("kind", ["leveldb", "leveldb-cached", "in-memory"])
def test_timestamped_store(harness_factory, kind) -> None:  # noqa: ANN001
    h = harness_factory(kind, timestamped=True, value_serde=serdes.STRING)
    s = h.store
    s.put("a", ValueAndTimestamp("x", 42))
    s.put("b", ValueAndTimestamp.make("y", 7))
    assert s.get("a") == ValueAndTimestamp("x", 42)
    value, ts = s.get("a")
    assert (value, ts) == ("x", 42) and str(s.get("a")) == "<x,42>"
    assert ValueAndTimestamp.make(None, 1) is None
    assert ValueAndTimestamp.get_value_or_null(s.get("b")) == "y"
    with pytest.raises(TypeError, match="ValueAndTimestamp"):
        s.put("c", "plain")
    h.commit()
    assert list(s.all()) == [("a", ValueAndTimestamp("x", 42)), ("b", ValueAndTimestamp("y", 7))]
    # changelog: plain value bytes, record timestamp = stored timestamp
    assert h.changelog.records == [(b"a", b"x", 42), (b"b", b"y", 7)]
    if kind.startswith("leveldb"):  # on disk: 8-byte big-endian timestamp + value bytes
        s.wait_applied()
        assert s.inner.get(b"a") == (42).to_bytes(8, "big") + b"x"
    assert s.delete("a") == ValueAndTimestamp("x", 42)


def test_lru_map_evicts_and_logs_tombstones(tmp_path) -> None:  # noqa: ANN001
    h = Harness(Stores.key_value_store_builder(Stores.lru_map("lru", 2), serdes.STRING, serdes.INT64), tmp_path)
    s = h.store
    s.put("a", 1)
    s.put("b", 2)
    h.commit()
    assert s.get("a") == 1  # a is now more recent than b
    s.put("c", 3)
    h.commit()
    assert [k for k, _ in s.all()] == ["a", "c"]
    assert (b"b", None) in [(k, v) for k, v, _ in h.changelog.records]
    # a restore of the changelog gives the same content
    h2 = Harness(Stores.key_value_store_builder(Stores.lru_map("lru", 2), serdes.STRING, serdes.INT64), tmp_path)
    h2.store.restore_batch(h.changelog.records, h.changelog.end_offset)
    assert list(h2.store.all()) == list(s.all())
