"""Fixtures of the state-store tests (helpers in ``state_helpers``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from state_helpers import Harness, make_builder


@pytest.fixture
def harness_factory(tmp_path: Path) -> Any:
    """``harness_factory(kind, **builder_kwargs)`` -> an open :class:`Harness`; closed at the end."""
    made: list[Harness] = []

    def make(kind: str, cache_max_bytes: int = 10 * 1024 * 1024, **kwargs: Any) -> Harness:
        h = Harness(make_builder(kind, **kwargs), tmp_path, cache_max_bytes)
        made.append(h)
        return h

    yield make
    for h in made:
        if h.store.is_open:
            h.store.close()
