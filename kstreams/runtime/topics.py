"""Source-topic checks and changelog-topic creation before any processing starts.

* every source topic must exist (a missing one fails the start, naming it);
* the sources of one sub-topology must have equal partition counts (co-partitioning: task p
  reads partition p of each), since assignment is by partition ranges;
* each changelog topic ``<application.id>-<store>-changelog`` is created compacted with as many
  partitions as its sub-topology has tasks, or validated if it exists;
* the control topic ``<application.id>-shutdown`` (one partition, compacted) is created for
  application-wide shutdown requests (see :mod:`kstreams.runtime.shutdown`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from kstreams.config import StreamsConfig
from kstreams.errors import StreamsError
from kstreams.runtime.clients import CLIENT_LOGGER
from kstreams.runtime.shutdown import shutdown_topic
from kstreams.tasks import changelog_topic
from kstreams.topology import Topology

log = logging.getLogger("kstreams.runtime")


class MissingSourceTopicError(StreamsError):
    """A source topic does not exist on the cluster."""


@dataclass
class TopologyMetadata:
    """Partition counts resolved against the cluster."""

    partitions: dict[str, int]
    tasks_per_subtopology: dict[int, int]
    changelogs: dict[str, tuple[int, str]]  # store -> (sub-topology, changelog topic)


def _list_partitions(admin: AdminClient, topics: list[str], timeout: float) -> dict[str, int]:
    md = admin.list_topics(timeout=timeout)
    out: dict[str, int] = {}
    for t in topics:
        tm = md.topics.get(t)
        if tm is not None and tm.error is None and tm.partitions:
            out[t] = len(tm.partitions)
    return out


def prepare_topics(topology: Topology, config: StreamsConfig, admin: AdminClient,
                   timeout: float = 30.0) -> TopologyMetadata:
    """Check sources, create or validate changelogs, create the shutdown topic; returns the
    partition layout."""
    app = config["application.id"]
    subs = topology.subtopologies()
    sources = topology.source_topics()
    found = _list_partitions(admin, sources, timeout)
    missing = [t for t in sources if t not in found]
    if missing:
        raise MissingSourceTopicError(
            f"Source topic(s) {missing} of application {app!r} do not exist on {config['bootstrap.servers']}; "
            f"create them before starting (kstreams does not create source topics).")
    tasks: dict[int, int] = {}
    for sub in subs:
        counts = {t: found[t] for t in sub.source_topics}
        if len(set(counts.values())) > 1:
            raise StreamsError(
                f"The source topics of sub-topology {sub.id} are not co-partitioned: {counts}. Task p reads "
                f"partition p of every source topic of its sub-topology, so they need the same partition count.")
        tasks[sub.id] = max(counts.values())
    changelogs: dict[str, tuple[int, str]] = {}
    builders = topology.store_builders
    wanted: dict[str, tuple[int, dict[str, str]]] = {}
    for sub in subs:
        for store in sub.store_names:
            builder = builders[store]
            if not builder.logging_enabled:
                continue
            topic = changelog_topic(app, store)
            changelogs[store] = (sub.id, topic)
            topic_config = {"cleanup.policy": "compact"}
            topic_config.update(config.topic_config())
            topic_config.update(builder.log_config)
            wanted[topic] = (tasks[sub.id], topic_config)
    control = shutdown_topic(app)  # only its partition 0 is used: any partition count will do
    wanted[control] = (1, {"cleanup.policy": "compact", **config.topic_config()})
    existing = _list_partitions(admin, list(wanted), timeout)
    for topic, (n, _) in wanted.items():
        if topic in existing and existing[topic] != n and topic != control:
            raise StreamsError(f"Existing internal topic {topic} has {existing[topic]} partitions; expected {n} "
                               f"(one per task of its sub-topology). Delete it or fix the source topics.")
    to_create = [NewTopic(t, num_partitions=n, replication_factor=config["replication.factor"], config=c)
                 for t, (n, c) in wanted.items() if t not in existing]
    if to_create and not _has_controller(admin, timeout):
        # librdkafka's mock cluster names a controller that does not exist: CreateTopics can only
        # time out there, but the cluster auto-creates topics on first use
        for t in to_create:
            if not _auto_created(config, t.topic, None if t.topic == control else t.num_partitions, timeout):
                raise StreamsError(f"Could not create internal topic {t.topic}: the cluster has no controller and "
                                   f"did not auto-create it with {t.num_partitions} partitions")
        to_create = []
    if to_create:
        futures = admin.create_topics(to_create, operation_timeout=timeout, request_timeout=timeout)
        for topic, future in futures.items():
            try:
                future.result()
                log.info("Created internal topic %s", topic)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    continue
                if not _auto_created(config, topic, None if topic == control else wanted[topic][0], timeout):
                    raise StreamsError(f"Could not create internal topic {topic}: {exc}") from exc
                log.warning("CreateTopics failed (%s); the cluster auto-created %s with the expected partitions",
                            exc, topic)
        _wait_for_topics(admin, [t.topic for t in to_create], timeout)
    partitions = dict(found)
    partitions.update({t: n for t, (n, _) in wanted.items() if t != control})
    return TopologyMetadata(partitions, tasks, changelogs)


def _has_controller(admin: AdminClient, timeout: float) -> bool:
    md = admin.list_topics(timeout=timeout)
    return md.controller_id in md.brokers


def _auto_created(config: StreamsConfig, topic: str, partitions: int | None, timeout: float) -> bool:
    """For clusters without CreateTopics (librdkafka's mock cluster): ask for the topic's metadata
    with auto-creation allowed; True if it then exists with ``partitions`` partitions (any number
    if None)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": config["bootstrap.servers"], "logger": CLIENT_LOGGER})
    md = producer.list_topics(topic, timeout=timeout)
    producer.poll(0)  # its log lines
    tm = md.topics.get(topic)
    return tm is not None and tm.error is None and len(tm.partitions) > 0 and \
        (partitions is None or len(tm.partitions) == partitions)


def _wait_for_topics(admin: AdminClient, topics: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        have = _list_partitions(admin, topics, timeout)
        if all(t in have for t in topics):
            return
        if time.monotonic() > deadline:
            raise StreamsError(f"Internal topics {sorted(set(topics) - set(have))} did not appear within {timeout}s")
        time.sleep(0.1)


def describe_partitions(admin: AdminClient, topics: list[str], timeout: float = 10.0) -> dict[str, int]:
    """Partition counts of ``topics`` (absent ones omitted)."""
    return _list_partitions(admin, topics, timeout)

