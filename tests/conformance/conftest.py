"""Session fixture of the conformance suite: run the Java harness once for all scenarios."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from . import java_harness
from .scenarios import scenario_paths


@dataclass
class JavaResults:
    """Parsed Java documents by scenario name, or the reason the Java harness could not run."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    def get(self, name: str) -> dict[str, Any]:
        """Return the Java document of scenario ``name``, failing the calling test if there is none."""
        if self.error is not None:
            pytest.fail(f"Java harness failed:\n{self.error}", pytrace=False)
        if name not in self.documents:
            pytest.fail(f"Java harness printed no result for scenario {name!r}", pytrace=False)
        document = self.documents[name]
        if "harness_error" in document:
            pytest.fail(f"Java harness could not run {name!r}:\n{document['harness_error']}", pytrace=False)
        return document


@pytest.fixture(scope="session")
def java_results() -> JavaResults:
    """Build the Java harness if stale, run every scenario through Kafka Streams once, cache the results.

    A failure is kept and reported by each test that needs the results (they fail, never skip).
    """
    try:
        return JavaResults(documents=java_harness.run(scenario_paths()))
    except java_harness.JavaHarnessError as exc:
        return JavaResults(error=str(exc))
