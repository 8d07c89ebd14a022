"""End offsets of changelog partitions, fetched without blocking a commit.

A store commits its batch together with the changelog offset it reaches, so a restart restores
only the tail (DESIGN §5). That offset is the changelog partition's end offset after the
commit, which only the broker knows (delivery reports are on for errors only). Asking for it
at every commit costs a ListOffsets round trip inside the commit; instead the thread asks
*after* a commit and uses the answer at the next one.

Why an answer from an earlier commit is safe: it was requested after commit ``k`` succeeded,
so every changelog record below it reflects writes the store holds from commit ``k + 1`` on
(records the broker already has from the next batch are in that batch too). A store may record
an offset older than its data (a restore then replays a little more, which is idempotent for
key-value changelogs), never a newer one. The requests are forgotten when tasks close or a
transaction aborts, so an answer is only ever applied to the stores it was asked for.

A store that has no offset yet (its first commit) waits for the answer instead, bounded in
time, so even a process killed right after its first commit restores only the tail.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from typing import Any

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

log = logging.getLogger("kstreams.runtime")

_REQUEST_TIMEOUT_S = 10.0
"""A request not answered within this time (a leader moving, a broker down) is given up."""


class ChangelogEnds:
    """One ListOffsets request in flight at a time, its answer handed to the next commit."""

    def __init__(self, admin: AdminClient, name: str) -> None:
        self._admin = admin
        self._name = name
        self._futures: dict[TopicPartition, Future[Any]] = {}
        self._asked_at = 0.0

    def take(self) -> dict[tuple[str, int], int]:
        """The answer of the request in flight if it has come (then it is forgotten), else ``{}``."""
        futures = self._futures
        if not futures:
            return {}
        if not all(f.done() for f in futures.values()):
            if time.monotonic() - self._asked_at > _REQUEST_TIMEOUT_S:
                log.info("%s: changelog end offsets not answered in %.0f s; asking again later",
                         self._name, _REQUEST_TIMEOUT_S)
                self._futures = {}
            return {}
        self._futures = {}
        try:
            return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
        except Exception as exc:  # a leader moving: the stores keep their previous offsets
            log.info("%s: changelog end offsets unavailable (%s); stores keep their previous offsets",
                     self._name, exc)
            return {}

    def request(self, partitions: list[tuple[str, int]], stable: bool = False) -> None:
        """Ask for the end offsets of ``partitions`` (just committed) unless a request is in flight
        (``stable``: their last stable offsets, below any transaction not decided yet)."""
        if self._futures or not partitions:
            return
        isolation = IsolationLevel.READ_COMMITTED if stable else IsolationLevel.READ_UNCOMMITTED
        try:
            self._futures = self._admin.list_offsets(
                {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions},
                isolation_level=isolation, request_timeout=_REQUEST_TIMEOUT_S)
        except Exception as exc:  # never fail a commit over an optimisation
            log.info("%s: could not ask for changelog end offsets: %s", self._name, exc)
            self._futures = {}
            return
        self._asked_at = time.monotonic()

    def answer_now(self, partitions: list[tuple[str, int]], timeout: float,
                   stable: bool = False) -> dict[tuple[str, int], int]:
        """Ask (unless a request is in flight, whose answer is as safe) and wait up to ``timeout``
        seconds for the answer; ``{}`` if it does not come in time."""
        self.request(partitions, stable)
        deadline = time.monotonic() + timeout
        for f in list(self._futures.values()):
            try:
                f.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # late or failed: take() says which
                break
        return self.take()

    def forget(self) -> None:
        """Drop the request in flight (tasks closed or a transaction aborted)."""
        self._futures = {}
