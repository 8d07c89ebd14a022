"""Kafka client configuration for stream threads, and the committed-offset metadata format.

Every client hands librdkafka's log lines to the ``kstreams.librdkafka`` logger (as the client
serves its callbacks) rather than letting librdkafka print them to stderr.

Offsets are committed with Kafka Streams' metadata so a task's partition time (hence stream
time) survives restarts and migrations: ``base64(magic 1 | partition time, 8 bytes big-endian)``,
which Java's ``TopicPartitionMetadata`` also reads.
"""

from __future__ import annotations

import base64
import logging
import struct
from typing import Any

from kstreams.config import EXACTLY_ONCE_V2, StreamsConfig

_MAGIC_V1 = 1
_MAGIC_V2 = 2
_TIME = struct.Struct(">q")

CLIENT_LOGGER = logging.getLogger("kstreams.librdkafka")
"""The logger of the clients' librdkafka log lines."""


def encode_partition_time(partition_time: int) -> str:
    """Offset metadata carrying ``partition_time``."""
    return base64.b64encode(bytes([_MAGIC_V1]) + _TIME.pack(partition_time)).decode("ascii")


def decode_partition_time(metadata: str | None) -> int:
    """The partition time in committed offset metadata (-1 if absent or unreadable)."""
    if not metadata:
        return -1
    try:
        raw = base64.b64decode(metadata)
    except ValueError:
        return -1
    if len(raw) >= 9 and raw[0] in (_MAGIC_V1, _MAGIC_V2):
        return _TIME.unpack_from(raw, 1)[0]
    return -1


def consumer_config(config: StreamsConfig, client_id: str) -> dict[str, Any]:
    """The main consumer of a stream thread: a member of the group ``application.id``.

    ``range`` assignment gives partition p of every topic to the same member when the topics
    have equal partition counts: co-partitioned sources land in one task on one thread.
    """
    out: dict[str, Any] = {
        "bootstrap.servers": config["bootstrap.servers"],
        "group.id": config["application.id"],
        "client.id": client_id,
        "logger": CLIENT_LOGGER,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "fetch.queue.backoff.ms": 20,
        "isolation.level": "read_committed" if config["processing.guarantee"] == EXACTLY_ONCE_V2
        else "read_uncommitted",
    }
    out.update(config.client_config("main.consumer"))
    return out


def restore_consumer_config(config: StreamsConfig, client_id: str) -> dict[str, Any]:
    """The restore consumer: no group, assigned changelog partitions, committed data only."""
    out: dict[str, Any] = {
        "bootstrap.servers": config["bootstrap.servers"],
        "group.id": f"{config['application.id']}-restore-unused",
        "client.id": client_id,
        "logger": CLIENT_LOGGER,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.queue.backoff.ms": 20,
        "isolation.level": "read_committed",
    }
    out.update(config.client_config("restore.consumer"))
    return out


def producer_config(config: StreamsConfig, client_id: str, transactional_id: str | None) -> dict[str, Any]:
    """The producer of a stream thread (transactional under exactly_once_v2).

    Java's partitioner (murmur2) for keys; delivery reports only for errors, which go to the
    production exception handling (a Python callback per record would halve throughput).
    """
    out: dict[str, Any] = {
        "bootstrap.servers": config["bootstrap.servers"],
        "client.id": client_id,
        "logger": CLIENT_LOGGER,
        "partitioner": "murmur2_random",
        "linger.ms": 100,
        "delivery.report.only.error": True,
    }
    if transactional_id is not None:
        out.update({"transactional.id": transactional_id, "enable.idempotence": True,
                    "transaction.timeout.ms": 10_000})
    out.update(config.client_config("producer"))
    return out


def admin_config(config: StreamsConfig, client_id: str) -> dict[str, Any]:
    """The admin client (internal topics)."""
    out: dict[str, Any] = {"bootstrap.servers": config["bootstrap.servers"], "client.id": client_id,
                           "logger": CLIENT_LOGGER}
    out.update(config.client_config("admin"))
    return out
