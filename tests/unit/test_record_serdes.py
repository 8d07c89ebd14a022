import math
import struct

import confluent_kafka
import pytest

from kstreams import Record, RecordMetadata, serdes
from kstreams._core import murmur2, murmur2_partition


def test_record_is_immutable_and_copies():
    r = Record("k", "v", 5, {"h": b"1"})
    assert r.headers == (("h", b"1"),)
    with pytest.raises(AttributeError):
        r.key = "x"
    r2 = r.with_value(10)
    assert (r2.key, r2.value, r2.timestamp, r2.headers) == ("k", 10, 5, (("h", b"1"),))
    assert r.value == "v"
    assert r.with_key("z").key == "z"
    assert r.with_timestamp(9).timestamp == 9
    assert r.with_headers([("a", "x")]).headers == (("a", b"x"),)
    assert r == Record("k", "v", 5, [("h", b"1")])
    assert r != r2


def test_negative_timestamp_rejected():
    with pytest.raises(ValueError, match="Timestamp may not be negative. Got: -1"):
        Record("k", "v", -1)
    with pytest.raises(ValueError):
        Record("k", "v", 0).with_timestamp(-5)


def test_bad_headers_rejected():
    with pytest.raises(TypeError):
        Record(None, None, 0, [(1, b"x")])
    with pytest.raises(TypeError):
        Record(None, None, 0, [("a", 3)])


def test_record_metadata():
    m = RecordMetadata(None, -1, -1)
    assert (m.topic, m.partition, m.offset) == (None, -1, -1)


def test_int_serdes_are_java_compatible():
    assert serdes.INT64.serialize(1) == b"\x00\x00\x00\x00\x00\x00\x00\x01"
    assert serdes.INT64.serialize(-2) == struct.pack(">q", -2)
    assert serdes.INT32.serialize(258) == b"\x00\x00\x01\x02"
    assert serdes.INT64.deserialize(serdes.INT64.serialize(-(2**63))) == -(2**63)
    with pytest.raises(ValueError, match="8 bytes"):
        serdes.INT64.deserialize(b"\x00")


@pytest.mark.parametrize("serde,fmt,values", [
    (serdes.INT32, ">i", (-(2**31), -258, -1, 0, 1, 258, 2**31 - 1)),
    (serdes.INT64, ">q", (-(2**63), -(2**40) - 3, -1, 0, 1, 2**40 + 3, 2**63 - 1)),
])
def test_int_deserializers_read_what_java_writes(serde, fmt, values):  # noqa: ANN001
    for v in values:
        data = struct.pack(fmt, v)
        assert serde.deserialize(data) == v
        assert serde.deserialize(bytearray(data)) == v  # not only bytes
        assert serde.serialize(v) == data
    with pytest.raises(ValueError, match=f"{struct.calcsize(fmt)} bytes, got {struct.calcsize(fmt) + 1}"):
        serde.deserialize(b"\x00" * (struct.calcsize(fmt) + 1))


def test_other_serdes_round_trip():
    for serde, value in [(serdes.MSGPACK, {"a": [1, 2], 3: None}), (serdes.STRING, "héllo"), (serdes.BYTES, b"\x00"),
                         (serdes.JSON, {"x": [1, "y"]}), (serdes.ORDERED_INT64, -7), (serdes.ORDERED_STRING, "é")]:
        assert serde.deserialize(serde.serialize(value)) == value


def test_json_serde_is_compact_utf8_and_handles_what_orjson_refuses():
    j = serdes.JSON
    assert j.serialize({"a": 1.5, "b": None, "é": [True]}) == '{"a":1.5,"b":null,"é":[true]}'.encode()
    assert j.serialize({1: "x"}) == b'{"1":"x"}'
    assert j.serialize(2**70) == b"1180591620717411303424"  # beyond orjson: the json module writes it
    assert j.serialize(float("nan")) == b"null"
    assert math.isnan(j.deserialize(b"NaN"))  # orjson refuses the literal, the json module reads it
    with pytest.raises(ValueError, match="Expecting property name"):
        j.deserialize(b"{bad")
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        j.serialize({1, 2})


def test_ordered_int64_byte_order_is_numeric_order():
    values = [-(2**63), -1000, -1, 0, 1, 255, 256, 2**63 - 1]
    encoded = [serdes.ORDERED_INT64.serialize(v) for v in values]
    assert encoded == sorted(encoded)


def test_serde_from_config():
    assert serdes.serde_from_config("string", "k") is serdes.STRING
    with pytest.raises(ValueError, match="k: unknown serde"):
        serdes.serde_from_config("nope", "k")


@pytest.mark.parametrize("data,expected", [
    (b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829), (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_matches_java(data, expected):
    # values from Java's org.apache.kafka.common.utils.Utils.murmur2
    assert murmur2(data) == expected


def test_murmur2_partition_matches_librdkafka():
    for i in range(500):
        key = f"key-{i}".encode() * (i % 5 + 1)
        for n in (2, 3, 4, 12):
            assert murmur2_partition(key, n) == confluent_kafka.murmur2(key, n)
