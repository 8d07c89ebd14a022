"""The processor vocabulary of the scenarios, on the kstreams side.

Each class is the twin of the same-named class in ``java/src/main/java/kstreams/conformance/
Vocabulary.java`` and must behave identically: keys and values are strings (String serdes on
both sides), counts are decimal strings, so the bytes written by both sides are comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kstreams import Processor, PunctuationType, Record


class _Base(Processor):
    """Keeps the context given to ``init``."""

    context: Any

    def init(self, context: Any) -> None:
        self.context = context


class ForwardProcessor(_Base):
    """``forward``: forwards every record unchanged to all children."""

    def process(self, record: Record) -> None:
        self.context.forward(record)


class MapValueProcessor(_Base):
    """``map_value``: forwards ``record.with_value(prefix + value)``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def process(self, record: Record) -> None:
        self.context.forward(record.with_value(self.prefix + record.value))


class FilterProcessor(_Base):
    """``filter``: forwards a record only if its value does not contain ``exclude``."""

    def __init__(self, exclude: str) -> None:
        self.exclude = exclude

    def process(self, record: Record) -> None:
        if record.value is None or self.exclude not in record.value:
            self.context.forward(record)


class RouteProcessor(_Base):
    """``route``: forwards to the direct child named by the record's value (or key)."""

    def __init__(self, by_key: bool) -> None:
        self.by_key = by_key

    def process(self, record: Record) -> None:
        self.context.forward(record, record.key if self.by_key else record.value)


class CountProcessor(_Base):
    """``count``: counts records per key in a key-value store and forwards key -> count."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name
        self.store: Any = None

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_state_store(self.store_name)

    def process(self, record: Record) -> None:
        old = self.store.get(record.key)
        count = str(1 if old is None else int(old) + 1)
        self.store.put(record.key, count)
        self.context.forward(record.with_value(count))


class MetadataProcessor(_Base):
    """``metadata``: forwards ``value|topic|partition|offset`` of the record being processed."""

    def process(self, record: Record) -> None:
        meta = self.context.record_metadata()
        if meta is None:
            suffix = "none"
        else:
            topic = "null" if meta.topic is None else meta.topic
            suffix = f"{topic}|{meta.partition}|{meta.offset}"
        self.context.forward(record.with_value(f"{record.value}|{suffix}"))


@dataclass(frozen=True)
class ScheduleSpec:
    """One ``schedules`` entry of a ``punctuate`` processor (see the README)."""

    interval_ms: int
    type: str
    cancel_after: int = 0
    cancel_on_value: str | None = None
    schedule_on_value: str | None = None


class PunctuateProcessor(_Base):
    """``punctuate``: schedules punctuations and annotates input records with stream time.

    Each punctuation forwards key=processor name, value=``punct:<TYPE>:<timestamp>`` with the
    punctuation timestamp. Input records are forwarded (if ``forward_input``) as
    ``<value>@<current stream time>``.
    """

    def __init__(self, name: str, specs: list[ScheduleSpec], forward_input: bool) -> None:
        self.name = name
        self.specs = specs
        self.forward_input = forward_input
        self.handles: list[Any] = [None] * len(specs)
        self.calls = [0] * len(specs)

    def init(self, context: Any) -> None:
        super().init(context)
        for i, spec in enumerate(self.specs):
            if spec.schedule_on_value is None:
                self._start(i)

    def _start(self, i: int) -> None:
        spec = self.specs[i]
        self.handles[i] = self.context.schedule(
            spec.interval_ms, getattr(PunctuationType, spec.type), lambda timestamp: self._punctuate(i, timestamp)
        )

    def _punctuate(self, i: int, timestamp: int) -> None:
        spec = self.specs[i]
        self.calls[i] += 1
        self.context.forward(Record(self.name, f"punct:{spec.type}:{timestamp}", timestamp))
        if spec.cancel_after > 0 and self.calls[i] == spec.cancel_after:
            self.handles[i].cancel()

    def process(self, record: Record) -> None:
        for i, spec in enumerate(self.specs):
            if self.handles[i] is not None and record.value is not None and record.value == spec.cancel_on_value:
                self.handles[i].cancel()
            if self.handles[i] is None and record.value is not None and record.value == spec.schedule_on_value:
                self._start(i)
        if self.forward_input:
            self.context.forward(record.with_value(f"{record.value}@{self.context.current_stream_time_ms()}"))


def supplier(name: str, kind: str, params: dict[str, Any]) -> Callable[[], Processor]:
    """Return a zero-argument supplier of new processors of ``kind`` configured by ``params``."""
    if kind == "forward":
        return ForwardProcessor
    if kind == "map_value":
        prefix = params.get("prefix", "")
        return lambda: MapValueProcessor(prefix)
    if kind == "filter":
        exclude = params["exclude"]
        return lambda: FilterProcessor(exclude)
    if kind == "route":
        by_key = params.get("by", "value") == "key"
        return lambda: RouteProcessor(by_key)
    if kind == "count":
        store = params["store"]
        return lambda: CountProcessor(store)
    if kind == "metadata":
        return MetadataProcessor
    if kind == "punctuate":
        specs = [ScheduleSpec(**s) for s in params.get("schedules", [])]
        forward_input = params.get("forward_input", True)
        return lambda: PunctuateProcessor(name, specs, forward_input)
    raise ValueError(f"unknown processor kind: {kind}")
