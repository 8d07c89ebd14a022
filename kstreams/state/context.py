"""What a state store is given when its task opens it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StateStoreContext:
    """The task-side facts a store needs.

    ``changelog_topic`` is ``None`` when logging is disabled; ``collector`` is the task's
    :class:`~kstreams._core.RecordCollector`; ``processor_context`` gives the timestamp of the
    record being processed (the changelog record's timestamp).
    """

    application_id: str
    task_id: str
    partition: int
    state_dir: Path | None
    app_configs: dict[str, Any]
    collector: Any
    processor_context: Any
    changelog_topic: str | None = None
    default_key_serde: Any = None
    default_value_serde: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
