"""The Processor API: what users implement and what they are given.

* :class:`Processor`: subclass it; ``init(context)`` once per task before the first record,
  ``process(record)`` for every record, ``close()`` when the task closes.
* :class:`Record`, :class:`RecordMetadata`, :class:`PunctuationType` (from the compiled core).
* :class:`ProcessorContext`: the protocol of the ``context`` a processor receives.
* :class:`Cancellable`: what ``context.schedule`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kstreams._core import PunctuationType, Record, RecordMetadata

__all__ = ["Processor", "ProcessorContext", "Cancellable", "Record", "RecordMetadata", "PunctuationType"]


class Cancellable(Protocol):
    """A scheduled punctuation; ``cancel()`` stops it, also from inside its own callback."""

    def cancel(self) -> None:
        """Stop the punctuation."""
        ...


class ProcessorContext(Protocol):
    """What a processor can do and know while it runs (one context per task)."""

    @property
    def task_id(self) -> str:
        """The task, ``"<sub-topology>_<partition>"``."""
        ...

    @property
    def application_id(self) -> str:
        """The ``application.id``."""
        ...

    @property
    def state_dir(self) -> Path | None:
        """The task's state directory, ``<state.dir>/<application.id>/<task_id>``."""
        ...

    @property
    def app_configs(self) -> dict[str, Any]:
        """The application's configuration."""
        ...

    def forward(self, record: Record, child_name: str | None = None) -> None:
        """Send ``record`` to all children (depth-first, in connection order) or one named child."""
        ...

    def schedule(self, interval_ms: int, punctuation_type: PunctuationType,
                 callback: Callable[[int], None]) -> Cancellable:
        """Call ``callback(timestamp)`` periodically on stream time or wall-clock time."""
        ...

    def commit(self) -> None:
        """Request a commit as soon as possible."""
        ...

    def get_state_store(self, name: str) -> Any:
        """The state store ``name``; it must be connected to this processor."""
        ...

    def record_metadata(self) -> RecordMetadata:
        """Topic, partition, offset of the record being processed (``None``/-1/-1 in punctuations)."""
        ...

    def current_stream_time_ms(self) -> int:
        """The task's stream time."""
        ...

    def current_system_time_ms(self) -> int:
        """The loop's wall-clock time."""
        ...


class Processor:
    """Base class of user processors.

    A new instance is created for every task from the supplier given to
    :meth:`~kstreams.Topology.add_processor`, so instance attributes are per task.
    """

    def init(self, context: ProcessorContext) -> None:
        """Called once before the first record, after the task's stores are restored.

        Keep ``context`` to forward records, schedule punctuations and reach state stores.
        """

    def process(self, record: Record) -> None:
        """Process one record (forward results with ``context.forward``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement process(record)")

    def close(self) -> None:
        """Called when the task closes; stores are managed by the library, do not close them."""
