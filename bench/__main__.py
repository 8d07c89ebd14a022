"""``python -m bench <command>``: the benchmark entry point.

Commands:

* ``inprocess --workload W --records N [--keys K] [--runs R] [--json]``: the record loop alone.
* ``store [--json]``: rates of the LevelDB store with and without its write buffer.
* ``kafka --workload {passthrough,count} --guarantee G --records N --partitions P [--bootstrap-servers B]
  [--kstreams-config K=V ...] [--warmup-runs W] [--json]``: kstreams alone on a real broker: pre-loaded input, records/s
  from the first record consumed to the last output committed, output verified (the ``compare``
  harness, one system).
* ``restore [--records N] [--partitions P] [--runs R] [--systems kstreams java] [--bootstrap-servers B]
  [--json]``: records/s of a store restored from its changelog into an empty state directory, by
  kstreams and, with ``--systems ... java``, by Java Kafka Streams 4.4.0.
* ``compare [--quick] [--json] [--workloads ...] [--systems ...] [--bootstrap-servers B]``:
  Kafka->Kafka against Java Kafka Streams and quixstreams on a real broker (``bench/compare``).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="kstreams benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inprocess", help="records through the compiled loop, no broker")
    from bench.inprocess import WORKLOADS

    p.add_argument("--workload", choices=WORKLOADS, default="passthrough")
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-speedup", action="store_true", help="skip the uncompiled comparison run")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    s = sub.add_parser("store", help="LevelDB store get/put/range rates")
    s.add_argument("--json", action="store_true")

    k = sub.add_parser("kafka", help="kstreams alone on a real broker (pre-loaded input, verified output)")
    k.add_argument("--workload", choices=("passthrough", "count", "filter-map", "window"), default="passthrough")
    k.add_argument("--guarantee", choices=("at_least_once", "exactly_once_v2"), default="at_least_once")
    k.add_argument("--records", type=int, default=2_000_000)
    k.add_argument("--partitions", type=int, default=4)
    k.add_argument("--runs", type=int, default=3)
    k.add_argument("--warmup-runs", type=int, help="unrecorded runs before the measured ones (default 1)")
    k.add_argument("--bootstrap-servers", help="use this broker instead of starting a local one")
    k.add_argument("--kstreams-config", action="append", default=[], metavar="K=V",
                   help="extra kstreams config, e.g. producer.linger.ms=5 (repeatable)")
    k.add_argument("--json", action="store_true", help="print one JSON object")

    r = sub.add_parser("restore", help="a store restored from its changelog (records/s)")
    from bench.restore import add_arguments as add_restore_arguments

    add_restore_arguments(r)

    c = sub.add_parser("compare", help="Kafka->Kafka: kstreams vs Java Kafka Streams vs quixstreams")
    from bench.compare.cli import add_arguments as add_compare_arguments

    add_compare_arguments(c)

    args = parser.parse_args(argv)
    if args.command == "inprocess":
        from bench.inprocess import run

        run(args.workload, args.records, args.keys, args.runs, args.json, speedup=not args.no_speedup)
    elif args.command == "store":
        from bench.store import run as run_store

        run_store(args.json)
    elif args.command == "kafka":
        from bench.compare.cli import add_arguments as add_compare_arguments
        from bench.compare.cli import run as run_compare

        compare = argparse.ArgumentParser(prog="python -m bench kafka")
        add_compare_arguments(compare)
        argv2 = ["--systems", "kstreams", "--workloads", args.workload, "--guarantees", args.guarantee,
                 "--records", str(args.records), "--partitions", str(args.partitions), "--runs", str(args.runs),
                 "--no-chart"]
        if args.bootstrap_servers:
            argv2 += ["--bootstrap-servers", args.bootstrap_servers]
        if args.warmup_runs is not None:
            argv2 += ["--warmup-runs", str(args.warmup_runs)]
        for pair in args.kstreams_config:
            argv2 += ["--kstreams-config", pair]
        if args.json:
            argv2.append("--json")
        return run_compare(compare.parse_args(argv2))
    elif args.command == "restore":
        from bench.restore import run as run_restore

        return run_restore(args)
    elif args.command == "compare":
        from bench.compare.cli import run as run_compare

        return run_compare(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
