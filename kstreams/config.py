"""StreamsConfig: the configuration keys of Kafka Streams, their defaults and validation.

Keys are Kafka Streams' own names. A mistake (unknown key, wrong type, bad value, missing
required key) raises :class:`~kstreams.errors.ConfigError` naming the key, when the config is
built, never mid-stream. Keys prefixed ``consumer.``, ``producer.``, ``admin.``,
``main.consumer.`` or ``restore.consumer.`` go to one client; other dotted keys that librdkafka
knows go to every client.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from kstreams import serdes as _serdes
from kstreams.errors import ConfigError, HandlerResponse
from kstreams.timestamps import FailOnInvalidTimestamp, resolve_extractor

log = logging.getLogger("kstreams.config")

_LEGAL_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")

AT_LEAST_ONCE = "at_least_once"
EXACTLY_ONCE_V2 = "exactly_once_v2"

CLIENT_PREFIXES = ("consumer.", "producer.", "admin.", "main.consumer.", "restore.consumer.", "topic.")

_INT = "int"
_STR = "str"
_ANY = "any"

# key: (type, default)
_DEFINITIONS: dict[str, tuple[str, Any]] = {
    "application.id": (_STR, None),
    "bootstrap.servers": (_STR, None),
    "client.id": (_STR, ""),
    "num.stream.threads": (_INT, 1),
    "processing.guarantee": (_STR, AT_LEAST_ONCE),
    "commit.interval.ms": (_INT, 30_000),
    "state.dir": (_STR, str(Path(tempfile.gettempdir()) / "kstreams")),
    "max.task.idle.ms": (_INT, 0),
    "buffered.records.per.partition": (_INT, 1000),
    "statestore.cache.max.bytes": (_INT, 10 * 1024 * 1024),
    "default.key.serde": (_ANY, _serdes.MSGPACK),
    "default.value.serde": (_ANY, _serdes.MSGPACK),
    "default.timestamp.extractor": (_ANY, FailOnInvalidTimestamp),
    "deserialization.exception.handler": (_ANY, "fail"),
    "processing.exception.handler": (_ANY, "fail"),
    "production.exception.handler": (_ANY, "fail"),
    "errors.dead.letter.queue.topic.name": (_STR, None),
    "replication.factor": (_INT, -1),
    "poll.ms": (_INT, 100),
    "num.standby.replicas": (_INT, 0),
    "task.timeout.ms": (_INT, 300_000),
    "state.cleanup.delay.ms": (_INT, 600_000),
    "metrics.recording.level": (_STR, "INFO"),
    "application.server": (_STR, ""),
    "max.poll.records": (_INT, 1000),
    "topology.optimization": (_STR, "none"),
    "retry.backoff.ms": (_INT, 100),
    "retry.backoff.max.ms": (_INT, 1000),
}

_SHARED_WITH_CLIENTS = ("retry.backoff.ms", "retry.backoff.max.ms")
"""Streams keys that, when set, also go to every Kafka client (as Java's StreamsConfig passes them on)."""

# Names Kafka Streams 4.x still accepts but deprecates (KIP-1056 dropped the "default." prefix of the
# exception-handler keys; KIP-770 renamed the cache size). When both spellings are set the new one
# wins and the old one is ignored with a warning, as in Java's StreamsConfig.
_DEPRECATED_ALIASES = {
    "default.deserialization.exception.handler": "deserialization.exception.handler",
    "default.production.exception.handler": "production.exception.handler",
    "cache.max.bytes.buffering": "statestore.cache.max.bytes",
}

_HANDLER_NAMES = {
    "fail": HandlerResponse.FAIL,
    "logandfailexceptionhandler": HandlerResponse.FAIL,
    "logandfailprocessingexceptionhandler": HandlerResponse.FAIL,
    "log_and_fail": HandlerResponse.FAIL,
    "continue": HandlerResponse.CONTINUE,
    "log_and_continue": HandlerResponse.CONTINUE,
    "logandcontinueexceptionhandler": HandlerResponse.CONTINUE,
    "logandcontinueprocessingexceptionhandler": HandlerResponse.CONTINUE,
}


@lru_cache(maxsize=256)
def _librdkafka_knows(key: str) -> bool:
    """Whether librdkafka accepts ``key`` as a configuration property."""
    import confluent_kafka

    try:
        confluent_kafka.Producer({key: "1", "client.id": "kstreams-config-probe"})
    except confluent_kafka.KafkaException as exc:
        return "No such configuration property" not in str(exc)
    except (TypeError, ValueError):
        return True
    return True


class StreamsConfig(Mapping[str, Any]):
    """A validated, read-only Streams configuration with Kafka Streams' defaults.

    ``require`` names keys that must be present (``KafkaStreams`` requires ``application.id`` and
    ``bootstrap.servers``; the test driver supplies its own).
    """

    def __init__(self, props: Mapping[str, Any] | None = None, *, require: tuple[str, ...] = ()) -> None:
        props = _resolve_deprecated(dict(props or {}))
        self._explicit = set(props)
        values: dict[str, Any] = {k: d for k, (_, d) in _DEFINITIONS.items()}
        self._client: dict[str, Any] = {}
        for key, value in props.items():
            if not isinstance(key, str):
                raise ConfigError(f"config keys must be str, got {key!r}")
            if key in _DEFINITIONS:
                values[key] = self._check_type(key, value)
            elif key.startswith(CLIENT_PREFIXES):
                self._client[key] = value
            elif "." in key and _librdkafka_knows(key):
                self._client[key] = value
            else:
                raise ConfigError(f"Unknown configuration key {key!r}: it is neither a Kafka Streams key nor a "
                                  f"Kafka client (librdkafka) property")
        for key in require:
            if not values.get(key):
                raise ConfigError(f"Missing required configuration {key!r} which has no default value.")
        self._values = values
        self._validate()

    @staticmethod
    def _check_type(key: str, value: Any) -> Any:
        kind, _ = _DEFINITIONS[key]
        if value is None:
            return None
        if kind == _INT:
            if isinstance(value, bool):
                raise ConfigError(f"Invalid value {value!r} for configuration {key!r}: expected an integer")
            if isinstance(value, int):
                return value
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    pass
            raise ConfigError(f"Invalid value {value!r} for configuration {key!r}: expected an integer")
        if kind == _STR and not isinstance(value, (str, Path)):
            raise ConfigError(f"Invalid value {value!r} for configuration {key!r}: expected a string")
        if kind == _STR:
            return str(value)
        return value

    def _validate(self) -> None:
        v = self._values
        app_id = v["application.id"]
        if app_id is not None and not _LEGAL_ID.fullmatch(app_id):
            raise ConfigError(f"Invalid value {app_id!r} for configuration 'application.id': it names the consumer "
                              f"group and the internal topics, so it may only contain ASCII letters, digits, "
                              f"'.', '_' and '-'")
        guarantee = v["processing.guarantee"]
        if guarantee not in (AT_LEAST_ONCE, EXACTLY_ONCE_V2):
            raise ConfigError(f"Invalid value {guarantee!r} for configuration 'processing.guarantee': "
                              f"expected {AT_LEAST_ONCE!r} or {EXACTLY_ONCE_V2!r}")
        if guarantee == EXACTLY_ONCE_V2 and "commit.interval.ms" not in self._explicit:
            v["commit.interval.ms"] = 100
        for key, low in (("num.stream.threads", 1), ("commit.interval.ms", 0), ("buffered.records.per.partition", 1),
                         ("statestore.cache.max.bytes", 0), ("poll.ms", 0), ("max.poll.records", 1),
                         ("retry.backoff.ms", 0), ("retry.backoff.max.ms", 0)):
            if v[key] < low:
                raise ConfigError(f"Invalid value {v[key]} for configuration {key!r}: must be at least {low}")
        if v["max.task.idle.ms"] < -1:
            raise ConfigError(f"Invalid value {v['max.task.idle.ms']} for configuration 'max.task.idle.ms': "
                              f"must be -1 (disabled) or at least 0")
        if v["num.standby.replicas"] != 0:
            raise ConfigError("num.standby.replicas: standby replicas are not supported yet; use 0")
        for key in ("default.key.serde", "default.value.serde"):
            try:
                v[key] = _serdes.serde_from_config(v[key], key)
            except (TypeError, ValueError) as exc:
                raise ConfigError(str(exc)) from None
        try:
            self.timestamp_extractor = resolve_extractor(v["default.timestamp.extractor"],
                                                         "default.timestamp.extractor")
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        self.deserialization_handler = self._handler("deserialization.exception.handler")
        self.processing_handler = self._handler("processing.exception.handler")
        self.production_handler = self._handler("production.exception.handler")
        if guarantee == EXACTLY_ONCE_V2:
            timeout = self._client.get("producer.transaction.timeout.ms", self._client.get("transaction.timeout.ms"))
            if timeout is not None and int(timeout) < v["commit.interval.ms"]:
                raise ConfigError(
                    f"Transaction timeout {timeout} was set lower than streams commit interval "
                    f"{v['commit.interval.ms']}. This will cause ongoing transaction always timeout due to "
                    f"inactivity caused by long commit interval. Consider reconfiguring commit interval to "
                    f"match transaction timeout by tuning 'commit.interval.ms' config, or "
                    f"'producer.transaction.timeout.ms' config.")

    def _handler(self, key: str) -> Callable[..., HandlerResponse] | None:
        """A handler callable, or None for the built-in "fail"."""
        value = self._values[key]
        if callable(value) and not isinstance(value, str):
            return value
        if isinstance(value, str):
            response = _HANDLER_NAMES.get(value.lower().rsplit(".", 1)[-1])
            if response is None:
                raise ConfigError(f"Invalid value {value!r} for configuration {key!r}: expected 'fail', 'continue' "
                                  f"or a callable handler")
            if response is HandlerResponse.FAIL:
                return None
            return _always(response)
        raise ConfigError(f"Invalid value {value!r} for configuration {key!r}: expected 'fail', 'continue' or a "
                          f"callable handler")

    # -- Mapping ----------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def is_explicit(self, key: str) -> bool:
        """Whether the user set ``key`` (rather than it taking its default)."""
        return key in self._explicit

    def client_config(self, client: str) -> dict[str, Any]:
        """librdkafka properties for one client: ``"consumer"``, ``"producer"``, ``"admin"``,
        ``"main.consumer"`` or ``"restore.consumer"`` (unprefixed dotted keys go to all)."""
        out: dict[str, Any] = {key: self._values[key] for key in _SHARED_WITH_CLIENTS if key in self._explicit}
        prefixes = [client + "."]
        if client in ("main.consumer", "restore.consumer"):
            prefixes.insert(0, "consumer.")
        for key, value in self._client.items():
            if not key.startswith(CLIENT_PREFIXES):
                out[key] = value
        for prefix in prefixes:
            for key, value in self._client.items():
                if key.startswith(prefix):
                    out[key[len(prefix):]] = value
        return out

    def topic_config(self) -> dict[str, str]:
        """Topic configs (``topic.`` prefix) for internal topics."""
        return {k[len("topic."):]: str(v) for k, v in self._client.items() if k.startswith("topic.")}

    def as_dict(self) -> dict[str, Any]:
        """All Streams values plus the client properties, as given."""
        out = dict(self._values)
        out.update(self._client)
        return out


def _resolve_deprecated(props: dict[Any, Any]) -> dict[Any, Any]:
    """Rename deprecated keys to their current names; the current name wins when both are set."""
    for old, new in _DEPRECATED_ALIASES.items():
        if old not in props:
            continue
        value = props.pop(old)
        if new in props:
            log.warning("Both the deprecated %r and its replacement %r are set; %r is ignored", old, new, old)
        else:
            log.warning("Configuration %r is deprecated; use %r", old, new)
            props[new] = value
    return props


def _always(response: HandlerResponse) -> Callable[..., HandlerResponse]:
    def handler(*_: Any) -> HandlerResponse:
        return response

    handler.__name__ = f"always_{response.value}"
    return handler
