"""One quixstreams instance of the Kafka->Kafka comparison, run in quixstreams' own venv.

Command line (the options of the other runners; ``--threads`` must be 1, Quix has one loop)::

    bench/.venvs/quixstreams/bin/python -m bench.compare.quix_runner --bootstrap B --workload W \\
        --guarantee at_least_once|exactly_once_v2 --app-id A --input IN --output OUT \\
        [--state-dir D] [--commit-interval-ms MS] [--window-ms MS] [--config KEY=VALUE ...]

The workloads in Quix's DSL (``StreamingDataFrame``), with the record logic of
:mod:`bench.compare.workloads` (this module imports nothing else of the project, and nothing of
kstreams: it runs with quixstreams' own dependency pins):

* ``passthrough``: ``sdf.apply(forward).to_topic(out)`` (JSON parsed and written by the topic serdes);
* ``filter-map``: ``sdf.filter(keep).apply(transform)``;
* ``count``: ``sdf.apply(count, stateful=True)`` (RocksDB state with a changelog topic);
* ``window``: ``sdf.apply(amount).tumbling_window(window_ms).sum().final(closing_strategy="partition")``,
  which closes windows on the partition's event time as Kafka Streams' stream time does.

The consumer group is ``--app-id``; ``--config consumer.K=V`` / ``producer.K=V`` go to the Kafka
clients. Prints ``BENCH settings=<json>`` at start and ``BENCH first_record_ms=<epoch ms>`` on
the first record; stops on SIGTERM (Quix's own handler) and exits 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from typing import Any

from bench.compare import workloads

_GUARANTEES = {"at_least_once": "at-least-once", "exactly_once_v2": "exactly-once"}


def build(app: Any, workload: str, input_name: str, output_name: str, window_ms: int) -> None:
    """Add ``workload`` from ``input_name`` to ``output_name`` to the Quix application ``app``."""
    input_topic = app.topic(input_name, key_deserializer="str", value_deserializer="json")
    output_topic = app.topic(output_name, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(input_topic)
    mark = workloads.FirstRecordMark().mark

    if workload == "passthrough":
        def forward(value: Any) -> Any:
            mark()
            return value

        sdf = sdf.apply(forward)
    elif workload == "filter-map":
        def keep(value: Any) -> bool:
            mark()
            return workloads.keep(value)

        sdf = sdf.filter(keep).apply(workloads.transform)
    elif workload == "count":
        def count(value: Any, state: Any) -> Any:
            mark()
            n = state.get("count", 0) + 1
            state.set("count", n)
            return workloads.count_value(value, n)

        sdf = sdf.apply(count, stateful=True)
    elif workload == "window":
        def amount(value: Any) -> Any:
            mark()
            return value["amount"]

        def as_output(window: dict[str, Any]) -> dict[str, Any]:
            return workloads.window_value(window["start"], window_ms, window["value"])

        sdf = (sdf.apply(amount)
               .tumbling_window(duration_ms=window_ms, grace_ms=0, name=workloads.WINDOW_STORE)
               .sum()
               .final(closing_strategy="partition")
               .apply(as_output))
    else:
        raise ValueError(f"unknown workload {workload!r}")
    sdf.to_topic(output_topic)


def _client_configs(pairs: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    consumer: dict[str, str] = {}
    producer: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--config wants KEY=VALUE, got {pair!r}")
        if key.startswith("consumer."):
            consumer[key.removeprefix("consumer.")] = value
        elif key.startswith("producer."):
            producer[key.removeprefix("producer.")] = value
        else:
            consumer[key] = value
            producer[key] = value
    return consumer, producer


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare.quix_runner", description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--workload", required=True, choices=workloads.WORKLOADS)
    p.add_argument("--guarantee", required=True, choices=workloads.GUARANTEES)
    p.add_argument("--threads", type=int, default=1, choices=[1])
    p.add_argument("--app-id", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--state-dir")
    p.add_argument("--commit-interval-ms", type=int, default=5000)
    p.add_argument("--window-ms", type=int, default=workloads.DEFAULT_WINDOW_MS)
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)

    import quixstreams
    from quixstreams import Application

    consumer_config, producer_config = _client_configs(args.config)
    options: dict[str, Any] = {
        "broker_address": args.bootstrap,
        "consumer_group": args.app_id,
        "auto_offset_reset": "earliest",
        "commit_interval": args.commit_interval_ms / 1000.0,
        "processing_guarantee": _GUARANTEES[args.guarantee],
        "loglevel": "WARNING",
        "consumer_extra_config": consumer_config,
        "producer_extra_config": producer_config,
    }
    if args.state_dir:
        options["state_dir"] = args.state_dir
    app = Application(**options)
    build(app, args.workload, args.input, args.output, args.window_ms)
    settings = {
        "system": "quixstreams",
        "quixstreams_version": quixstreams.__version__,
        "python": platform.python_version(),
        "workload": args.workload,
        "window_ms": args.window_ms,
        "config": options,
    }
    print(workloads.SETTINGS_MARK + json.dumps(settings, default=str), flush=True)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
