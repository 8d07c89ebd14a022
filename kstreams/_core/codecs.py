"""The functions of the built-in serdes (:mod:`kstreams.serdes`), compiled.

The record loop calls a serde's functions for every key and value it reads or writes; compiled,
these calls run no Python frame. The semantics are those documented in :mod:`kstreams.serdes`.
"""

from __future__ import annotations

import json
import struct

import cython
import orjson

_json_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError
_json_loads = json.loads
_ORDERED_BIAS = 1 << 63
_U64 = struct.Struct(">Q")


def identity(data: object) -> object:
    """Bytes read as they are (the BYTES serde's deserializer)."""
    return data


def bytes_serialize(obj: object) -> bytes:
    """``bytes`` unchanged; ``bytearray``/``memoryview`` copied to ``bytes``."""
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"BYTES serde expects bytes, got {type(obj).__name__}")


def string_serialize(obj: object) -> bytes:
    """UTF-8 of a ``str``."""
    if not isinstance(obj, str):
        raise TypeError(f"STRING serde expects str, got {type(obj).__name__}")
    text: str = obj
    return text.encode("utf-8")


def string_deserialize(data: object) -> str:
    """The ``str`` of UTF-8 bytes."""
    if type(data) is bytes:
        raw: bytes = data
        return raw.decode("utf-8")
    return data.decode("utf-8")


def json_serialize(obj: object) -> bytes:
    """Compact UTF-8 JSON by orjson; what orjson refuses (non-string map keys, integers beyond 64
    bits, sets) is left to the ``json`` module, which writes int keys as strings."""
    try:
        return _orjson_dumps(obj)
    except TypeError:  # orjson.JSONEncodeError
        return _json_encoder.encode(obj).encode("utf-8")


def json_deserialize(data: object) -> object:
    """JSON read by orjson; input only the ``json`` module accepts (``NaN`` literals) is read by it."""
    try:
        return _orjson_loads(data)
    except _OrjsonError:
        return _json_loads(data)


def ordered_int64_serialize(obj: object) -> bytes:
    """8 bytes whose unsigned order is the numeric order."""
    if not isinstance(obj, int):
        raise TypeError(f"ORDERED_INT64 serde expects int, got {type(obj).__name__}")
    return _U64.pack(obj + _ORDERED_BIAS)


def ordered_int64_deserialize(data: object) -> object:
    """The int of :func:`ordered_int64_serialize`'s bytes."""
    n: cython.Py_ssize_t = len(data)
    if n != 8:
        raise ValueError(f"ORDERED_INT64 serde expects 8 bytes, got {n}")
    return _U64.unpack(data)[0] - _ORDERED_BIAS


@cython.cfunc
def _signed_big_endian(data: object, size: cython.int, name: str) -> object:
    """The int of ``size`` big-endian two's complement bytes."""
    n: cython.Py_ssize_t = len(data)
    if n != size:
        raise ValueError(f"{name} serde expects {size} bytes, got {n}")
    if cython.compiled and type(data) is bytes:
        raw: bytes = data
        p: cython.p_uchar = raw
        v: cython.ulonglong = 0
        i: cython.int
        for i in range(size):
            v = (v << 8) | p[i]
        if size < 8 and v >> (size * 8 - 1):
            v |= ~cython.cast(cython.ulonglong, 0) << (size * 8)  # sign-extend
        return cython.cast(cython.longlong, v)
    return int.from_bytes(data, "big", signed=True)


def int64_deserialize(data: object) -> object:
    """The int of 8 big-endian two's complement bytes (Kafka's ``LongDeserializer``)."""
    return _signed_big_endian(data, 8, "INT64")


def int32_deserialize(data: object) -> object:
    """The int of 4 big-endian two's complement bytes (Kafka's ``IntegerDeserializer``)."""
    return _signed_big_endian(data, 4, "INT32")
