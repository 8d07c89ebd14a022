"""``python -m bench <command>``: the benchmark entry point.

Commands:

* ``inprocess --workload W --records N [--keys K] [--runs R] [--json]``: the record loop alone.
* ``store [--json]``: rates of the LevelDB store with and without its write buffer.
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

    args = parser.parse_args(argv)
    if args.command == "inprocess":
        from bench.inprocess import run

        run(args.workload, args.records, args.keys, args.runs, args.json, speedup=not args.no_speedup)
    elif args.command == "store":
        from bench.store import run as run_store

        run_store(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
