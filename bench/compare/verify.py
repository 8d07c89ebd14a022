"""Check a run's output against what its workload must produce from the data set.

A system's figure counts only if its output is complete and correct, so no system wins by
dropping, duplicating or botching work:

* ``passthrough``: exactly the input values (parsed JSON equal), each under its own key;
* ``filter-map``: exactly the transformed values of the "buy" records, none of the others;
* ``count``: for every input record ``i`` one ``{id: i, count: n}`` where ``n`` is how many
  records of its key the input holds up to ``i`` (so the last one per key is the key's total);
* ``window``: for every window that closes one ``{start, end, sum}`` with the key's sum of
  ``amount`` in that window, and nothing for windows that stay open.

Every output record is matched to the input record (or window) it stands for. A record that
matches nothing is *unexpected*, one that matches with the wrong content *wrong*, an expected
record never seen *missing*, one seen more than once a *duplicate*. Under ``exactly_once_v2``
any duplicate fails the run; under ``at_least_once`` duplicates are allowed (and counted) but
the output must still be complete and correct.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.compare import workloads
from bench.compare.dataset import Dataset, canonical

MAX_EXAMPLES = 5


@dataclass
class Verdict:
    """Outcome of a verification; ``ok`` tells whether the run counts."""

    workload: str
    exactly_once: bool
    expected: int
    received: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    wrong: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Complete and correct (and free of duplicates under exactly-once)."""
        clean = self.missing == 0 and self.unexpected == 0 and self.wrong == 0
        return clean and (self.duplicates == 0 or not self.exactly_once)

    def reason(self) -> str:
        """One line saying why the run failed ("" if it did not)."""
        if self.ok:
            return ""
        parts = []
        for name in ("missing", "wrong", "unexpected", "duplicates"):
            n = getattr(self, name)
            if n:
                parts.append(f"{n} {name}")
        return f"output check failed: {', '.join(parts)} (expected {self.expected}, received {self.received})"

    def example(self, text: str) -> None:
        """Keep the first few problems as examples."""
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON-able dict."""
        return {
            "ok": self.ok,
            "workload": self.workload,
            "exactly_once": self.exactly_once,
            "expected": self.expected,
            "received": self.received,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "unexpected": self.unexpected,
            "wrong": self.wrong,
            "examples": list(self.examples),
        }


class Verifier:
    """Verifies outputs of any workload on one data set (expectations are computed once)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._ordinals: array | None = None
        self._windows: dict[tuple[int, int], int] | None = None
        self._key_numbers: dict[str, int] | None = None

    def expected_outputs(self, workload: str) -> int:
        """How many records a complete run writes (what the runner waits for)."""
        if workload == "window":
            return len(self.windows())
        return self.dataset.expected_outputs(workload)

    def ordinals(self) -> array:
        """See :meth:`Dataset.ordinals` (cached)."""
        if self._ordinals is None:
            self._ordinals = self.dataset.ordinals()
        return self._ordinals

    def windows(self) -> dict[tuple[int, int], int]:
        """See :meth:`Dataset.closed_windows` (cached)."""
        if self._windows is None:
            self._windows = self.dataset.closed_windows()
        return self._windows

    def verify(self, workload: str, records: Iterable[tuple[bytes | None, bytes | None]],
               exactly_once: bool) -> Verdict:
        """Check the ``(key, value)`` pairs of an output topic (any order) for ``workload``."""
        if workload == "window":
            return self._verify_windows(records, exactly_once)
        if workload not in workloads.WORKLOADS:
            raise ValueError(f"unknown workload {workload!r}")
        return self._verify_by_id(workload, records, exactly_once)

    def _verify_by_id(self, workload: str, records: Iterable[tuple[bytes | None, bytes | None]],
                      exactly_once: bool) -> Verdict:
        data = self.dataset
        n = len(data)
        ordinals = self.ordinals() if workload == "count" else None
        verdict = Verdict(workload, exactly_once, self.expected_outputs(workload))
        seen = bytearray(n)
        for key, value in records:
            verdict.received += 1
            parsed = _parse(value)
            record_id = parsed.get("id") if isinstance(parsed, dict) else None
            if not isinstance(record_id, int) or isinstance(record_id, bool) or not 0 <= record_id < n:
                verdict.unexpected += 1
                verdict.example(f"unexpected record: key={key!r} value={value[:120] if value else value!r}")
                continue
            if workload == "filter-map" and not data.kind[record_id]:
                verdict.unexpected += 1
                verdict.example(f"record {record_id} should have been filtered out")
                continue
            want_key = data.key(record_id)
            if workload == "passthrough":
                want: dict[str, Any] = data.value_dict(record_id)
            elif workload == "filter-map":
                want = workloads.transform(data.value_dict(record_id))
            else:
                assert ordinals is not None
                want = {"id": record_id, "count": ordinals[record_id]}
            if parsed != want or _text(key) != want_key:
                verdict.wrong += 1
                verdict.example(f"record {record_id}: got key={_text(key)!r} value={canonical(parsed)}, "
                                f"want key={want_key!r} value={canonical(want)}")
                continue
            if seen[record_id]:
                verdict.duplicates += 1
                if exactly_once:
                    verdict.example(f"record {record_id} (key {want_key!r}) written more than once")
            else:
                seen[record_id] = 1
        if workload == "filter-map":
            for i in data.buy_ids():
                if not seen[i]:
                    verdict.missing += 1
                    verdict.example(f"record {i} missing")
        else:
            verdict.missing = n - sum(seen)
            if verdict.missing:
                first = seen.index(0)
                verdict.example(f"{verdict.missing} records missing, the first is record {first}")
        return verdict

    def _verify_windows(self, records: Iterable[tuple[bytes | None, bytes | None]], exactly_once: bool) -> Verdict:
        data = self.dataset
        size = data.spec.window_ms
        expected = self.windows()
        if self._key_numbers is None:
            self._key_numbers = {name: k for k, name in enumerate(data.key_names)}
        numbers = self._key_numbers
        verdict = Verdict("window", exactly_once, len(expected))
        seen: set[tuple[int, int]] = set()
        for key, value in records:
            verdict.received += 1
            parsed = _parse(value)
            k = numbers.get(_text(key) or "")
            start = parsed.get("start") if isinstance(parsed, dict) else None
            if k is None or not isinstance(start, int) or (k, start) not in expected:
                verdict.unexpected += 1
                verdict.example(f"unexpected window: key={_text(key)!r} value={canonical(parsed)}")
                continue
            want = workloads.window_value(start, size, expected[(k, start)])
            if parsed != want:
                verdict.wrong += 1
                verdict.example(f"window {_text(key)}@{start}: got {canonical(parsed)}, want {canonical(want)}")
                continue
            if (k, start) in seen:
                verdict.duplicates += 1
                if exactly_once:
                    verdict.example(f"window {_text(key)}@{start} written more than once")
            else:
                seen.add((k, start))
        verdict.missing = len(expected) - len(seen)
        if verdict.missing:
            for k, start in expected:
                if (k, start) not in seen:
                    verdict.example(f"{verdict.missing} windows missing, e.g. {data.key_names[k]}@{start}")
                    break
        return verdict


def _parse(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return repr(key)
