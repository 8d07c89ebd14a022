"""The Topology builder: sources, processors, state stores and sinks, validated as they are added.

Validation follows Kafka Streams and raises :class:`~kstreams.errors.TopologyError` with its
messages ("Invalid topology: ..."), naming the node, topic or store at fault. Sub-topologies are
the connected components over parent/child edges and shared stores, numbered in node insertion
order; a sink writing a topic that another source reads does not join them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kstreams.description import NodeDescription, TopologyDescription, describe_subtopology, java_hashset_order
from kstreams.errors import TopologyError
from kstreams.state.stores import StoreBuilder

__all__ = ["Topology", "SourceDef", "ProcessorDef", "SinkDef", "Subtopology"]

OFFSET_RESETS = ("earliest", "latest", "none")


@dataclass
class SourceDef:
    """A source node: topics read, serdes, timestamp extractor and offset reset."""

    name: str
    topics: list[str]
    key_serde: Any = None
    value_serde: Any = None
    timestamp_extractor: Any = None
    offset_reset: str | None = None
    parents: tuple[str, ...] = ()


@dataclass
class ProcessorDef:
    """A processor node: its supplier, parents (in the order given) and connected stores."""

    name: str
    supplier: Callable[[], Any]
    parents: tuple[str, ...]
    stores: list[str] = field(default_factory=list)


@dataclass
class SinkDef:
    """A sink node: a static topic or a topic-name extractor, serdes and partitioner."""

    name: str
    topic: str | None
    topic_extractor: Callable[..., str] | None
    parents: tuple[str, ...]
    key_serde: Any = None
    value_serde: Any = None
    partitioner: Callable[..., Any] | None = None


NodeDef = SourceDef | ProcessorDef | SinkDef


@dataclass
class Subtopology:
    """A connected part of the topology; one task per partition runs it."""

    id: int
    node_names: list[str]
    source_topics: list[str]
    sink_topics: list[str]
    store_names: list[str]


class Topology:
    """Builds a processing graph; every method returns the topology for chaining."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeDef] = {}
        self._stores: dict[str, StoreBuilder] = {}
        self._topic_to_source: dict[str, str] = {}

    # -- building -------------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: object, what: str = "name") -> None:
        if not isinstance(name, str):
            raise TypeError(f"{what} must be a str, got {name!r}")
        if not name:
            raise TopologyError(f"{what} must not be empty")

    def _check_new(self, name: str) -> None:
        self._check_name(name)
        if name in self._nodes:
            raise TopologyError(f"Processor {name} is already added.")

    def add_source(self, name: str, topics: Sequence[str] | str, *, key_serde: Any = None, value_serde: Any = None,
                   timestamp_extractor: Any = None, offset_reset: str | None = None) -> Topology:
        """Add a source reading ``topics`` (a list, or one topic name).

        ``None`` serdes and extractor take the config defaults; ``offset_reset`` is
        ``"earliest"``, ``"latest"`` or ``"none"`` (``None``: the consumer's ``auto.offset.reset``).
        """
        self._check_new(name)
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics)
        if not topics:
            raise TopologyError("topics cannot be empty")
        for t in topics:
            self._check_name(t, "topic")
        seen: set[str] = set()
        for t in topics:
            if t in self._topic_to_source or t in seen:
                raise TopologyError(f"Topic {t} has already been registered by another source.")
            seen.add(t)
        if offset_reset is not None and offset_reset not in OFFSET_RESETS:
            raise TopologyError(f"Unrecognized offset reset {offset_reset!r} for source {name}: expected one of "
                                f"{OFFSET_RESETS}")
        if timestamp_extractor is not None:
            from kstreams.timestamps import resolve_extractor

            try:
                resolve_extractor(timestamp_extractor, f"source {name}")
            except (TypeError, ValueError) as exc:
                raise TopologyError(str(exc)) from None
        for t in topics:
            self._topic_to_source[t] = name
        self._nodes[name] = SourceDef(name, topics, key_serde, value_serde, timestamp_extractor, offset_reset)
        return self

    def _check_parents(self, name: str, parents: Sequence[str], kind: str) -> tuple[str, ...]:
        if not parents:
            raise TopologyError("predecessorNames cannot be empty")
        for p in parents:
            self._check_name(p, "parent name")
            if p == name:
                raise TopologyError(f"Parent node {p} is unknown (self-reference).")
            if p not in self._nodes:
                raise TopologyError(f"Parent node {p} is unknown.")
            if isinstance(self._nodes[p], SinkDef):
                raise TopologyError(f"Sink {p} cannot be used a parent.")
        return tuple(parents)

    def add_processor(self, name: str, supplier: Callable[[], Any], *parent_names: str) -> Topology:
        """Add a processor made by ``supplier`` (a zero-argument callable returning a new
        Processor for every task, e.g. the class) as a child of ``parent_names``."""
        self._check_new(name)
        if not callable(supplier):
            raise TypeError(f"supplier of processor {name} must be callable, got {supplier!r}")
        parents = self._check_parents(name, parent_names, "Processor")
        self._nodes[name] = ProcessorDef(name, supplier, parents)
        return self

    def add_sink(self, name: str, topic_or_extractor: str | Callable[..., str], *parent_names: str,
                 key_serde: Any = None, value_serde: Any = None,
                 partitioner: Callable[..., Any] | None = None) -> Topology:
        """Add a sink writing to a topic, or to ``extractor(key, value, record_context)``'s topic.

        ``partitioner(topic, key, value, num_partitions)`` may return ``None`` (murmur2 of the
        serialized key, as Java), a partition, or several partitions (empty: drop the record).
        """
        self._check_new(name)
        if isinstance(topic_or_extractor, str):
            self._check_name(topic_or_extractor, "topic")
            topic, extractor = topic_or_extractor, None
        elif callable(topic_or_extractor):
            topic, extractor = None, topic_or_extractor
        else:
            raise TypeError(f"sink {name}: expected a topic name or a topic-name extractor, got {topic_or_extractor!r}")
        if partitioner is not None and not callable(partitioner):
            raise TypeError(f"sink {name}: partitioner must be callable, got {partitioner!r}")
        parents = self._check_parents(name, parent_names, "Sink")
        self._nodes[name] = SinkDef(name, topic, extractor, parents, key_serde, value_serde, partitioner)
        return self

    def add_state_store(self, store_builder: StoreBuilder, *processor_names: str) -> Topology:
        """Add a store (built once per task) and connect it to ``processor_names``."""
        if not isinstance(store_builder, StoreBuilder):
            raise TypeError(f"expected a StoreBuilder (e.g. Stores.key_value_store_builder(...)), "
                            f"got {store_builder!r}")
        name = store_builder.name
        existing = self._stores.get(name)
        if existing is not None and existing is not store_builder:
            raise TopologyError(f"A different StateStore has already been added with the name {name}")
        self._stores[name] = store_builder
        for p in processor_names:
            self._connect(p, name)
        return self

    def connect_processor_and_state_stores(self, processor_name: str, *store_names: str) -> Topology:
        """Give ``processor_name`` access to stores already added."""
        if not store_names:
            raise TopologyError("Must provide at least one state store name.")
        for s in store_names:
            self._connect(processor_name, s)
        return self

    def _connect(self, processor_name: str, store_name: str) -> None:
        self._check_name(processor_name, "processor name")
        self._check_name(store_name, "store name")
        if store_name not in self._stores:
            raise TopologyError(f"StateStore {store_name} is not added yet.")
        node = self._nodes.get(processor_name)
        if node is None:
            raise TopologyError(f"Processor {processor_name} is not added yet.")
        if not isinstance(node, ProcessorDef):
            raise TopologyError("State stores cannot be connect to sources or sinks.")
        if store_name not in node.stores:
            node.stores.append(store_name)

    # -- reading --------------------------------------------------------------------------------

    @property
    def nodes(self) -> dict[str, NodeDef]:
        """Node definitions in insertion order."""
        return dict(self._nodes)

    @property
    def store_builders(self) -> dict[str, StoreBuilder]:
        """Store builders by name."""
        return dict(self._stores)

    def source_topics(self) -> list[str]:
        """Every topic read by a source, in insertion order."""
        return list(self._topic_to_source)

    def source_for_topic(self, topic: str) -> SourceDef | None:
        """The source reading ``topic``."""
        name = self._topic_to_source.get(topic)
        return None if name is None else self._nodes[name]  # type: ignore[return-value]

    def validate_runnable(self) -> None:
        """Fail unless the topology has at least one source (checked when a driver or runtime starts)."""
        if not self._topic_to_source:
            raise TopologyError("Topology has no stream threads and no global threads, must subscribe to at least "
                                "one source topic or global table.")

    def subtopologies(self) -> list[Subtopology]:
        """The sub-topologies, ids in node insertion order."""
        parent_of: dict[str, str] = {n: n for n in self._nodes}

        def root(n: str) -> str:
            while parent_of[n] != n:
                parent_of[n] = parent_of[parent_of[n]]
                n = parent_of[n]
            return n

        def union(a: str, b: str) -> None:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent_of[rb] = ra

        store_user: dict[str, str] = {}
        for node in self._nodes.values():
            for p in node.parents:
                union(p, node.name)
            if isinstance(node, ProcessorDef):
                for s in node.stores:
                    if s in store_user:
                        union(store_user[s], node.name)
                    else:
                        store_user[s] = node.name
        groups: dict[str, list[str]] = {}
        for name in self._nodes:
            groups.setdefault(root(name), []).append(name)
        out = []
        for i, names in enumerate(groups.values()):
            sources: list[str] = []
            sinks: list[str] = []
            stores: list[str] = []
            for n in names:
                node = self._nodes[n]
                if isinstance(node, SourceDef):
                    sources.extend(node.topics)
                elif isinstance(node, SinkDef):
                    if node.topic is not None and node.topic not in sinks:
                        sinks.append(node.topic)
                else:
                    stores.extend(s for s in node.stores if s not in stores)
            out.append(Subtopology(i, names, sources, sinks, stores))
        return out

    def describe(self) -> TopologyDescription:
        """The description; ``str()`` of it is Kafka Streams' TopologyDescription text."""

        def make_node(name: str) -> NodeDescription:
            node = self._nodes[name]
            if isinstance(node, SourceDef):
                return NodeDescription(name, "source", topics=java_hashset_order(node.topics, copy=True))
            if isinstance(node, ProcessorDef):
                stores = java_hashset_order(java_hashset_order(node.stores), copy=True)
                return NodeDescription(name, "processor", stores=stores)
            return NodeDescription(name, "sink", topic=node.topic, extractor=node.topic_extractor)

        def parents_of(name: str) -> tuple[str, ...]:
            return self._nodes[name].parents

        return TopologyDescription([describe_subtopology(s.id, s.node_names, make_node, parents_of)
                                    for s in self.subtopologies()])

    def __repr__(self) -> str:
        return f"Topology({len(self._nodes)} nodes, {len(self._stores)} stores)"
