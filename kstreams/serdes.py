"""Serializers and deserializers ("serdes") for keys and values.

A serde turns Python objects into ``bytes`` and back. ``None`` is never passed to a serde: a
``None`` key or value is written as a Kafka null and read back as ``None``, as in Kafka.

Built-ins:

* :data:`MSGPACK` (the default for keys and values): any msgpack-able value; maps may have
  non-string keys; lists come back as lists.
* :data:`BYTES`: ``bytes`` unchanged (the fastest: the record loop skips the call entirely).
* :data:`STRING`: UTF-8 text.
* :data:`INT32` / :data:`INT64`: big-endian two's complement, byte-compatible with Kafka's
  ``IntegerSerializer`` / ``LongSerializer``.
* :data:`JSON`: UTF-8 JSON text, compact separators, written and read by ``orjson``. Maps may
  have non-string keys (written as strings). As JSON has no such numbers, ``NaN`` and infinities
  are written as ``null``; integers beyond 64 bits are written exactly but read back as floats.
  Input ``orjson`` rejects but the standard ``json`` module accepts (``NaN`` literals) is read
  by the latter.
* :data:`ORDERED_INT64`: 8 bytes whose unsigned byte order is the numeric order (sign bit flipped),
  so range scans over integer keys in a store follow numeric order.
* :data:`ORDERED_STRING`: UTF-8 without any length prefix, whose byte order is code-point order.

User serdes implement the :class:`SerdeProtocol` (``serialize`` and ``deserialize``) or are built
with :class:`Serde` from two functions.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, runtime_checkable

import msgpack
import orjson

__all__ = [
    "SerdeProtocol",
    "Serde",
    "MSGPACK",
    "BYTES",
    "STRING",
    "INT32",
    "INT64",
    "JSON",
    "ORDERED_INT64",
    "ORDERED_STRING",
    "serde_from_config",
]


@runtime_checkable
class SerdeProtocol(Protocol):
    """What a serde must provide: two functions between objects and bytes."""

    def serialize(self, obj: Any) -> bytes:
        """Return the bytes of ``obj`` (never called with ``None``)."""
        ...

    def deserialize(self, data: bytes) -> Any:
        """Return the object encoded in ``data`` (never called with ``None``)."""
        ...


class Serde:
    """A serde made of two functions.

    ``name`` appears in error messages and in ``repr``. The two functions are stored as the
    instance attributes ``serialize`` and ``deserialize``, so the record loop calls them with no
    method binding.
    """

    __slots__ = ("name", "serialize", "deserialize")

    def __init__(self, name: str, serialize: Callable[[Any], bytes], deserialize: Callable[[bytes], Any]) -> None:
        self.name = name
        self.serialize = serialize
        self.deserialize = deserialize

    def __repr__(self) -> str:
        return f"Serde({self.name})"


def _identity(data: bytes) -> bytes:
    return data


def _bytes_serialize(obj: Any) -> bytes:
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"BYTES serde expects bytes, got {type(obj).__name__}")


def _string_serialize(obj: Any) -> bytes:
    if not isinstance(obj, str):
        raise TypeError(f"STRING serde expects str, got {type(obj).__name__}")
    return obj.encode("utf-8")


def _string_deserialize(data: bytes) -> str:
    return data.decode("utf-8")


def _fixed_int(name: str, fmt: str) -> Serde:
    codec = struct.Struct(fmt)
    pack = codec.pack
    unpack = codec.unpack
    size = codec.size

    def deserialize(data: bytes) -> int:
        if len(data) != size:
            raise ValueError(f"{name} serde expects {size} bytes, got {len(data)}")
        return unpack(data)[0]

    return Serde(name, pack, deserialize)


_ORDERED_BIAS = 1 << 63
_U64 = struct.Struct(">Q")


def _ordered_int64_serialize(obj: Any) -> bytes:
    if not isinstance(obj, int):
        raise TypeError(f"ORDERED_INT64 serde expects int, got {type(obj).__name__}")
    return _U64.pack(obj + _ORDERED_BIAS)


def _ordered_int64_deserialize(data: bytes) -> int:
    if len(data) != 8:
        raise ValueError(f"ORDERED_INT64 serde expects 8 bytes, got {len(data)}")
    return _U64.unpack(data)[0] - _ORDERED_BIAS


_json_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError


def _json_serialize(obj: Any) -> bytes:
    try:
        return _orjson_dumps(obj)
    except TypeError:  # orjson.JSONEncodeError (non-string map keys, an int beyond 64 bits, a set):
        # the json module decides, as before orjson (it writes int keys as strings)
        return _json_encoder.encode(obj).encode("utf-8")


def _json_deserialize(data: bytes) -> Any:
    try:
        return _orjson_loads(data)
    except _OrjsonError:  # NaN or Infinity literals; errors are the json module's
        return json.loads(data)


_packer = msgpack.Packer(use_bin_type=True, autoreset=True)

MSGPACK = Serde("msgpack", _packer.pack, partial(msgpack.unpackb, raw=False, strict_map_key=False))
BYTES = Serde("bytes", _bytes_serialize, _identity)
STRING = Serde("string", _string_serialize, _string_deserialize)
INT32 = _fixed_int("INT32", ">i")
INT64 = _fixed_int("INT64", ">q")
JSON = Serde("json", _json_serialize, _json_deserialize)
ORDERED_INT64 = Serde("ordered_int64", _ordered_int64_serialize, _ordered_int64_deserialize)
ORDERED_STRING = Serde("ordered_string", _string_serialize, _string_deserialize)

_BY_NAME: dict[str, SerdeProtocol] = {
    "msgpack": MSGPACK,
    "bytes": BYTES,
    "string": STRING,
    "int32": INT32,
    "int64": INT64,
    "json": JSON,
    "ordered_int64": ORDERED_INT64,
    "ordered_string": ORDERED_STRING,
}


def serde_from_config(value: Any, key: str) -> SerdeProtocol:
    """Resolve a config value (a serde object or a built-in name such as ``"string"``) to a serde.

    ``key`` is the config key, named in the error when the value is neither.
    """
    if isinstance(value, str):
        found = _BY_NAME.get(value.lower())
        if found is None:
            raise ValueError(f"{key}: unknown serde {value!r}; built-ins are {sorted(_BY_NAME)}")
        return found
    if isinstance(value, SerdeProtocol):
        return value
    raise TypeError(f"{key}: expected a serde (with serialize/deserialize) or a built-in name, got {value!r}")
