"""Test-suite wide checks: the compiled record loop must be in use."""

import kstreams


def pytest_sessionstart(session):  # noqa: D103
    if not kstreams.COMPILED:
        raise RuntimeError("kstreams._core is not compiled: build it (pip install -e .) before running the tests")
