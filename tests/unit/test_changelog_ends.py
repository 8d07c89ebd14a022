"""ChangelogEnds: one ListOffsets request in flight, its answer handed to the next commit
(a stand-in admin client returns futures the test completes)."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

from kstreams.runtime import changelog_ends
from kstreams.runtime.changelog_ends import ChangelogEnds


class _Admin:
    def __init__(self) -> None:
        self.requests: list[dict] = []

    def list_offsets(self, specs, isolation_level, request_timeout):  # noqa: ANN001, ANN201
        futures = {tp: Future() for tp in specs}
        self.requests.append(futures)
        return futures


def _answer(futures: dict, offsets: dict) -> None:
    for tp, f in futures.items():
        f.set_result(SimpleNamespace(offset=offsets[(tp.topic, tp.partition)]))


def test_the_answer_comes_at_the_next_take_and_only_once():
    admin = _Admin()
    ends = ChangelogEnds(admin, "t")
    ends.request([("c", 0), ("c", 1)])
    ends.request([("c", 0)])  # one request in flight at a time
    assert len(admin.requests) == 1
    assert ends.take() == {}  # not answered yet
    _answer(admin.requests[0], {("c", 0): 10, ("c", 1): 7})
    assert ends.take() == {("c", 0): 10, ("c", 1): 7}
    assert ends.take() == {}
    ends.request([("c", 0)])
    assert len(admin.requests) == 2


def test_a_failed_or_forgotten_request_gives_nothing():
    admin = _Admin()
    ends = ChangelogEnds(admin, "t")
    ends.request([("c", 0)])
    next(iter(admin.requests[0].values())).set_exception(RuntimeError("leader moving"))
    assert ends.take() == {}
    ends.request([("c", 0)])
    ends.forget()  # tasks closed: the answer must not reach the stores opened later
    _answer(admin.requests[1], {("c", 0): 3})
    assert ends.take() == {}


def test_a_request_never_answered_is_given_up(monkeypatch):
    admin = _Admin()
    ends = ChangelogEnds(admin, "t")
    clock = [100.0]
    monkeypatch.setattr(changelog_ends.time, "monotonic", lambda: clock[0])
    ends.request([("c", 0)])
    clock[0] += changelog_ends._REQUEST_TIMEOUT_S + 1
    assert ends.take() == {}
    ends.request([("c", 0)])
    assert len(admin.requests) == 2


def test_answer_now_waits_for_the_answer():
    admin = _Admin()
    ends = ChangelogEnds(admin, "t")
    ends.request([("c", 0)])
    _answer(admin.requests[0], {("c", 0): 5})
    assert ends.answer_now([("c", 0)], timeout=1.0) == {("c", 0): 5}
    assert ends.answer_now([("c", 1)], timeout=0.01) == {}  # asked, not answered in time
    assert len(admin.requests) == 2
