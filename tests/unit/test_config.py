"""Configuration mistakes fail when KafkaStreams is constructed, naming the key."""

import pytest

from kstreams import KafkaStreams, Processor, Topology
from kstreams.errors import ConfigError, TopologyError


class Noop(Processor):
    def process(self, record):
        pass


def topology():
    return Topology().add_source("src", ["in"]).add_processor("p", Noop, "src")


BASE = {"application.id": "app", "bootstrap.servers": "127.0.0.1:9"}


@pytest.mark.parametrize("props,key", [
    ({"bootstrap.servers": "127.0.0.1:9"}, "application.id"),
    ({"application.id": "app"}, "bootstrap.servers"),
    ({**BASE, "num.stream.threads": "x"}, "num.stream.threads"),
    ({**BASE, "num.stream.threads": 0}, "num.stream.threads"),
    ({**BASE, "commit.interval.ms": 1.5}, "commit.interval.ms"),
    ({**BASE, "processing.guarantee": "exactly_once"}, "processing.guarantee"),
    ({**BASE, "state.dir": 3}, "state.dir"),
    ({**BASE, "max.task.idle.ms": -2}, "max.task.idle.ms"),
    ({**BASE, "default.key.serde": "nope"}, "default.key.serde"),
    ({**BASE, "deserialization.exception.handler": "maybe"}, "deserialization.exception.handler"),
    ({**BASE, "no.such.streams.key": 1}, "no.such.streams.key"),
    ({**BASE, "typo": 1}, "typo"),
    ({**BASE, "application.id": "my app/1"}, "application.id"),
    ({**BASE, "retry.backoff.ms": -1}, "retry.backoff.ms"),
])
def test_config_mistakes_name_the_key(props, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        KafkaStreams(topology(), props)


def test_eos_transaction_timeout_below_commit_interval():
    props = {**BASE, "processing.guarantee": "exactly_once_v2", "commit.interval.ms": 20_000,
             "producer.transaction.timeout.ms": 10_000}
    with pytest.raises(ConfigError, match="Transaction timeout 10000 was set lower than streams commit interval"):
        KafkaStreams(topology(), props)


def test_client_keys_pass_through_and_eos_defaults():
    app = KafkaStreams(topology(), {**BASE, "processing.guarantee": "exactly_once_v2", "linger.ms": 5,
                                    "consumer.fetch.min.bytes": 10, "main.consumer.session.timeout.ms": 6000})
    assert app.config["commit.interval.ms"] == 100  # the EOS default when not set
    consumer = app.config.client_config("main.consumer")
    assert consumer == {"linger.ms": 5, "fetch.min.bytes": 10, "session.timeout.ms": 6000}
    assert app.config.client_config("producer") == {"linger.ms": 5}


def test_topology_without_sources_is_rejected():
    with pytest.raises(TopologyError, match="must subscribe to at least one source topic"):
        KafkaStreams(Topology(), BASE)


def test_listeners_only_before_start():
    app = KafkaStreams(topology(), BASE)
    app.set_state_listener(lambda new, old: None)
    assert app.state.value == "CREATED"
    assert app.close() is True
    with pytest.raises(Exception, match="CREATED"):
        app.set_state_listener(lambda new, old: None)


def test_deprecated_key_names_still_work(caplog):
    from kstreams.errors import HandlerResponse

    app = KafkaStreams(topology(), {**BASE, "default.production.exception.handler": "continue",
                                    "default.deserialization.exception.handler": "LogAndContinueExceptionHandler",
                                    "cache.max.bytes.buffering": 1234})
    assert app.config.production_handler() is HandlerResponse.CONTINUE
    assert app.config.deserialization_handler() is HandlerResponse.CONTINUE
    assert app.config["statestore.cache.max.bytes"] == 1234
    assert "'cache.max.bytes.buffering' is deprecated; use 'statestore.cache.max.bytes'" in caplog.text


def test_new_key_name_wins_over_deprecated_one(caplog):
    app = KafkaStreams(topology(), {**BASE, "default.production.exception.handler": "continue",
                                    "production.exception.handler": "fail"})
    assert app.config.production_handler is None  # "fail" is the built-in handler
    assert "'default.production.exception.handler' is ignored" in caplog.text


def test_retry_backoff_is_a_streams_key_that_reaches_the_clients_when_set():
    app = KafkaStreams(topology(), {**BASE, "retry.backoff.ms": 250, "producer.retry.backoff.ms": 50})
    assert app.config["retry.backoff.ms"] == 250 and app.config["retry.backoff.max.ms"] == 1000
    assert app.config.client_config("main.consumer") == {"retry.backoff.ms": 250}
    assert app.config.client_config("producer") == {"retry.backoff.ms": 50}  # the prefixed one wins
    assert KafkaStreams(topology(), BASE).config.client_config("admin") == {}  # librdkafka's defaults
