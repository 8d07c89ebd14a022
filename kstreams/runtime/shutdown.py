"""Application-wide shutdown: ``StreamThreadExceptionResponse.SHUTDOWN_APPLICATION``.

Kafka Streams carries a shutdown request in the consumer group protocol: the requesting
member's subscription holds an error code, the group leader's assignor hands every member the
``SHUTDOWN_REQUESTED`` assignment error, and each instance, the requesting one included, closes
to ``ERROR``. librdkafka does not let a member write assignment user data, so kstreams carries the
request in a control topic instead:

* ``<application.id>-shutdown`` is an internal topic, created with the changelog topics: one
  partition, compacted (requests all have the key ``<application.id>``, so only the latest is
  kept);
* an instance whose uncaught-exception handler answers ``SHUTDOWN_APPLICATION`` writes one
  request record to partition 0 (a JSON value naming the process, the thread and the error),
  then shuts itself down to ``ERROR``;
* every instance watches partition 0 with one small group-less consumer on its own thread
  (:class:`ShutdownWatcher`), from the end offset it read at ``start()``; on a request from any
  instance it shuts down to ``ERROR``, as every Java instance does.

Reading from the end offset found at start means that a request stops the instances running
when it was made, and that an instance started afterwards (the application restarted once the
cause is fixed) ignores it. If the request cannot be written (the cluster unreachable), the
requesting instance still shuts down and logs that the other instances were not told.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from kstreams.config import StreamsConfig
from kstreams.errors import StreamsError
from kstreams.runtime.clients import CLIENT_LOGGER

log = logging.getLogger("kstreams.runtime")

_POLL_S = 0.2
_NOT_READY = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
              KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC, KafkaError._TIMED_OUT)


def shutdown_topic(application_id: str) -> str:
    """The control topic that carries shutdown requests of ``application_id``."""
    return f"{application_id}-shutdown"


def request_shutdown(config: StreamsConfig, process_id: str, thread: str, error: BaseException,
                     timeout: float = 10.0) -> bool:
    """Write a shutdown request for the whole application; True once the broker has it."""
    app = config["application.id"]
    conf: dict[str, Any] = {"bootstrap.servers": config["bootstrap.servers"],
                            "client.id": f"{app}-{process_id}-shutdown-producer", "logger": CLIENT_LOGGER}
    conf.update(config.client_config("producer"))
    conf.pop("transactional.id", None)
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    request = {"process": process_id, "thread": thread, "error": repr(error)[:1000], "time": int(time.time() * 1000)}
    try:
        producer = Producer(conf)
        producer.produce(shutdown_topic(app), json.dumps(request).encode(), app.encode(), 0, on_delivery=on_delivery)
        remaining = producer.flush(timeout)
    except (KafkaException, BufferError) as exc:
        failures.append(repr(exc))
        remaining = 0
    if remaining or failures:
        log.error("Could not write the shutdown request of application %s to %s (%s): the other instances keep "
                  "running", app, shutdown_topic(app), "; ".join(failures) or "not delivered in time")
        return False
    return True


class ShutdownWatcher(threading.Thread):
    """Reads the shutdown topic from the end offset found by :meth:`seek_to_end` and, once
    started, calls ``on_request(request)`` (the record's decoded JSON) for every request after it."""

    def __init__(self, config: StreamsConfig, process_id: str, on_request: Callable[[dict[str, Any]], None]) -> None:
        app = config["application.id"]
        super().__init__(name=f"{app}-shutdown-watcher", daemon=True)
        self.topic = shutdown_topic(app)
        self._on_request = on_request
        self._stop_requested = threading.Event()
        conf: dict[str, Any] = {"bootstrap.servers": config["bootstrap.servers"],
                                "group.id": f"{app}-shutdown-watch-unused",  # never joined: assign() only
                                "client.id": f"{app}-{process_id}-shutdown-watcher", "logger": CLIENT_LOGGER,
                                "enable.auto.commit": False, "enable.auto.offset.store": False,
                                "fetch.wait.max.ms": 100}
        conf.update(config.client_config("consumer"))
        self._consumer: Consumer | None = Consumer(conf)

    def seek_to_end(self, timeout: float = 30.0) -> None:
        """Find the end offset of the topic now: requests written from then on are seen, even
        those written before :meth:`start`."""
        assert self._consumer is not None
        tp = TopicPartition(self.topic, 0)
        deadline = time.monotonic() + timeout
        while True:  # a topic created a moment ago may not have its leader known everywhere yet
            try:
                _, end = self._consumer.get_watermark_offsets(tp, timeout=max(1.0, deadline - time.monotonic()),
                                                               cached=False)
                break
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if not isinstance(err, KafkaError) or time.monotonic() >= deadline or \
                        not (err.retriable() or err.code() in _NOT_READY):
                    raise StreamsError(f"Could not read the end offset of {self.topic}: {exc}") from exc
                time.sleep(0.1)
        self._consumer.assign([TopicPartition(self.topic, 0, end)])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and close the consumer (from any thread but this one)."""
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout)
        elif self._consumer is not None:  # never started
            self._consumer.close()
            self._consumer = None

    def run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._stop_requested.is_set():
                for msg in consumer.consume(10, _POLL_S):
                    if msg.error() is not None:
                        log.debug("%s: %s", self.name, msg.error())
                        continue
                    try:
                        request = json.loads(msg.value() or b"{}")
                    except ValueError:
                        request = {"error": f"unreadable request {msg.value()!r}"}
                    self._on_request(request if isinstance(request, dict) else {"error": repr(request)})
        except Exception as exc:  # a watcher failure must not take the instance down
            log.error("%s stopped watching %s: %r", self.name, self.topic, exc)
        finally:
            self._consumer = None
            try:
                consumer.close()
            except Exception as exc:
                log.debug("%s: closing its consumer: %r", self.name, exc)
