"""One kstreams instance of the Kafka->Kafka comparison, run as a plain process.

Command line (the same options as the Java reference, ``bench/java``)::

    python -m bench.compare.kstreams_runner --bootstrap B --workload W \\
        --guarantee at_least_once|exactly_once_v2 --threads T --app-id A --input IN --output OUT \\
        [--state-dir D] [--commit-interval-ms MS] [--window-ms MS] [--config KEY=VALUE ...] \\
        [--runtime MODULE:ATTR]
    python -m bench.compare.kstreams_runner --check [--runtime MODULE:ATTR]

The runtime is pluggable: ``--runtime`` (or ``$KSTREAMS_BENCH_RUNTIME``, default
``kstreams:KafkaStreams``) names the class, used as ``app = cls(topology, config)``,
``app.start()`` (returns once the threads run), ``app.close()``. ``config`` holds
``application.id``, ``bootstrap.servers``, ``processing.guarantee``, ``num.stream.threads``,
``state.dir``, ``commit.interval.ms`` and every ``--config`` pair. If the object has
``set_uncaught_exception_handler`` the runner installs a handler that stops the client; if it
has ``state`` (an attribute or a method) a state named ``ERROR`` or ``PENDING_ERROR`` ends the
process with exit code 2.

Prints ``BENCH settings=<json>`` at start and ``BENCH first_record_ms=<epoch ms>`` when the
first input record reaches a processor. Runs until SIGTERM/SIGINT, then closes the client and
exits 0. ``--check`` exits 0 if the runtime can be imported, 3 (with the reason) if not.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from bench.compare import workloads

RUNTIME_ENV = "KSTREAMS_BENCH_RUNTIME"
DEFAULT_RUNTIME = "kstreams:KafkaStreams"
EXIT_FAILED = 2
EXIT_UNAVAILABLE = 3
_FAILED_STATES = {"ERROR", "PENDING_ERROR"}

log = logging.getLogger("bench.compare.kstreams_runner")


def load_runtime(spec: str) -> Any:
    """The class named by ``MODULE:ATTR``; raises ``ImportError`` if it is not there."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr or "KafkaStreams")
    except AttributeError:
        raise ImportError(f"{module_name} has no {attr or 'KafkaStreams'} (yet)") from None


def streams_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ``KafkaStreams`` config of this instance."""
    config: dict[str, Any] = {
        "application.id": args.app_id,
        "bootstrap.servers": args.bootstrap,
        "processing.guarantee": args.guarantee,
        "num.stream.threads": args.threads,
    }
    if args.state_dir:
        config["state.dir"] = args.state_dir
    if args.commit_interval_ms is not None:
        config["commit.interval.ms"] = args.commit_interval_ms
    for pair in args.config:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--config wants KEY=VALUE, got {pair!r}")
        config[key] = value
    return config


def _state_name(app: Any) -> str | None:
    state = getattr(app, "state", None)
    try:
        if callable(state):
            state = state()
    except Exception:  # a runtime still being written may not have it right yet
        return None
    if state is None:
        return None
    return str(getattr(state, "name", state))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.compare.kstreams_runner", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="only check that the runtime can be imported")
    p.add_argument("--runtime", default=os.environ.get(RUNTIME_ENV, DEFAULT_RUNTIME), help="MODULE:ATTR")
    p.add_argument("--bootstrap")
    p.add_argument("--workload", choices=workloads.WORKLOADS)
    p.add_argument("--guarantee", choices=workloads.GUARANTEES)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--app-id")
    p.add_argument("--input")
    p.add_argument("--output")
    p.add_argument("--state-dir")
    p.add_argument("--commit-interval-ms", type=int)
    p.add_argument("--window-ms", type=int, default=workloads.DEFAULT_WINDOW_MS)
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        runtime = load_runtime(args.runtime)
    except ImportError as exc:
        print(f"kstreams runtime {args.runtime} not available: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.check:
        return 0
    missing = [name for name in ("bootstrap", "workload", "guarantee", "app_id", "input", "output")
               if getattr(args, name) is None]
    if missing:
        parser.error("missing " + ", ".join("--" + name.replace("_", "-") for name in missing))

    import kstreams
    from bench.compare.kstreams_topology import build_topology

    topology = build_topology(args.workload, args.input, args.output, args.window_ms)
    config = streams_config(args)
    settings = {
        "system": "kstreams",
        "runtime": args.runtime,
        "kstreams_version": getattr(kstreams, "__version__", "unknown"),
        "compiled": bool(getattr(kstreams, "COMPILED", False)),
        "python": platform.python_version(),
        "workload": args.workload,
        "window_ms": args.window_ms,
        "config": config,
    }
    print(workloads.SETTINGS_MARK + json.dumps(settings, default=str), flush=True)

    stop = threading.Event()
    failed = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    app = runtime(topology, config)
    if hasattr(app, "set_state_listener"):
        app.set_state_listener(lambda new, old: print(f"BENCH state={getattr(new, 'name', new)}", flush=True))
    if hasattr(app, "set_uncaught_exception_handler"):
        from kstreams import StreamThreadExceptionResponse

        def on_error(exc: BaseException) -> Any:
            print(f"BENCH error={exc!r}", flush=True)
            failed.set()
            stop.set()
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT

        app.set_uncaught_exception_handler(on_error)
    app.start()
    try:
        while not stop.wait(0.5):
            state = _state_name(app)
            if state in _FAILED_STATES:
                print(f"BENCH state={state}", flush=True)
                failed.set()
                break
    finally:
        app.close()
    return EXIT_FAILED if failed.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
