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

import struct
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, runtime_checkable

import msgpack

from kstreams._core import codecs

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


def _fixed_int(name: str, fmt: str, deserialize: Callable[[bytes], int]) -> Serde:
    return Serde(name, struct.Struct(fmt).pack, deserialize)


_packer = msgpack.Packer(use_bin_type=True, autoreset=True)

MSGPACK = Serde("msgpack", _packer.pack, partial(msgpack.unpackb, raw=False, strict_map_key=False))
BYTES = Serde("bytes", codecs.bytes_serialize, codecs.identity)
STRING = Serde("string", codecs.string_serialize, codecs.string_deserialize)
INT32 = _fixed_int("INT32", ">i", codecs.int32_deserialize)
INT64 = _fixed_int("INT64", ">q", codecs.int64_deserialize)
JSON = Serde("json", codecs.json_serialize, codecs.json_deserialize)
ORDERED_INT64 = Serde("ordered_int64", codecs.ordered_int64_serialize, codecs.ordered_int64_deserialize)
ORDERED_STRING = Serde("ordered_string", codecs.string_serialize, codecs.string_deserialize)

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
