"""``python -m bench compare``: kstreams vs Java Kafka Streams vs quixstreams, Kafka to Kafka.

Starts a local broker (``tests/kafka/cluster.py``) unless ``--bootstrap-servers`` is given,
loads the data set once, then for every workload and guarantee runs each system ``--runs``
times, alternating the systems (the order rotates from one round to the next), each run with a
fresh application id and output topic. Progress goes to stderr; the table to stdout (to stderr
with ``--json``, which prints the results object instead). The raw results are written to
``bench/results/compare-<time>.json`` and a chart next to them (``.png``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import logging
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.compare import systems, venvs, workloads

if TYPE_CHECKING:
    from bench.compare.harness import RunPlan, RunResult

log = logging.getLogger("bench.compare")

RESULTS_DIR = systems.REPO / "bench" / "results"
CLUSTER_DIR = systems.REPO / "tests" / "kafka"


@dataclasses.dataclass(frozen=True)
class Preset:
    """Defaults of a benchmark size (each can be overridden by its option)."""

    records: int
    keys: int
    runs: int
    startup_timeout: float
    idle_timeout: float


QUICK = Preset(records=100_000, keys=10_000, runs=1, startup_timeout=90.0, idle_timeout=15.0)
FULL = Preset(records=2_000_000, keys=100_000, runs=3, startup_timeout=180.0, idle_timeout=30.0)
DEFAULT_COMMIT_INTERVAL_MS = {"at_least_once": 30_000, "exactly_once_v2": 100}
"""Kafka Streams' defaults per guarantee, applied to every system so all commit at the same pace."""
_SHORT = {"at_least_once": "alos", "exactly_once_v2": "eos"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m bench compare``."""
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK.records:,} records, {QUICK.keys:,} keys, 1 run (under 10 minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON object (results, summary, ratios) on stdout")
    p.add_argument("--workloads", nargs="+", choices=workloads.WORKLOADS, default=list(workloads.WORKLOADS))
    p.add_argument("--systems", nargs="+", choices=systems.SYSTEM_NAMES, default=list(systems.DEFAULT_SYSTEMS))
    p.add_argument("--guarantees", nargs="+", choices=workloads.GUARANTEES, default=list(workloads.GUARANTEES))
    p.add_argument("--bootstrap-servers", help="use this broker instead of starting a local one")
    data = p.add_argument_group("data set")
    data.add_argument("--records", type=int, help=f"input records (default {FULL.records:,})")
    data.add_argument("--keys", type=int, help=f"distinct keys (default {FULL.keys:,})")
    data.add_argument("--partitions", type=int, default=4)
    data.add_argument("--value-bytes", type=int, default=100, help="approximate JSON value size")
    data.add_argument("--skew", type=float, default=0.99, help="Zipf exponent of the key distribution (0 = uniform)")
    data.add_argument("--seed", type=int, default=42)
    data.add_argument("--interval-ms", type=int, default=1, help="event-time step between records")
    data.add_argument("--window-ms", type=int, default=workloads.DEFAULT_WINDOW_MS)
    runs = p.add_argument_group("runs")
    runs.add_argument("--runs", type=int, help="runs per system, workload and guarantee; the median counts (3)")
    runs.add_argument("--warmup-runs", type=int,
                      help="unrecorded runs first: each workload and guarantee by the first system, so the broker "
                           "(its JIT compiler above all) is warm before anything is measured (1; quick 0)")
    runs.add_argument("--commit-interval-ms", type=int,
                      help="commit interval of every system (default: Kafka Streams' 30000 ALOS / 100 EOS)")
    runs.add_argument("--java-heap", default="1g", help="-Xmx of the Java reference")
    runs.add_argument("--broker-heap", default="1g", help="-Xmx of the local broker")
    runs.add_argument("--kstreams-runtime", help="MODULE:ATTR of the kstreams runtime (default kstreams:KafkaStreams)")
    runs.add_argument("--kstreams-config", action="append", default=[], metavar="K=V", help="extra kstreams config")
    runs.add_argument("--java-config", action="append", default=[], metavar="K=V", help="extra Kafka Streams config")
    runs.add_argument("--quix-config", action="append", default=[], metavar="K=V",
                      help="extra Kafka client config for quixstreams (consumer./producer. prefixes)")
    runs.add_argument("--startup-timeout", type=float, help="seconds to the first output (180; quick 90)")
    runs.add_argument("--idle-timeout", type=float, help="seconds without new output = stalled (30; quick 15)")
    runs.add_argument("--run-timeout", type=float, help="seconds per run (default 120 + records/2000)")
    out = p.add_argument_group("output")
    out.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where the JSON and PNG go")
    out.add_argument("--no-chart", action="store_true", help="skip the PNG (and its matplotlib venv)")
    out.add_argument("--keep-topics", action="store_true", help="keep output and internal topics and state dirs")
    out.add_argument("--work-dir", type=Path, help="logs, state dirs and the broker (default: a temp dir)")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    """Run the comparison; exit code 0 if every run passed, 1 if some failed, 2 if it could not run."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("kstreams.tests.kafka",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)
    from bench.compare import report
    from bench.compare.dataset import DatasetSpec, generate
    from bench.compare.harness import Limits, RunPlan
    from bench.compare.verify import Verifier

    preset = QUICK if args.quick else FULL
    records = args.records or preset.records
    keys = args.keys or preset.keys
    runs = args.runs or preset.runs
    warmup = args.warmup_runs if args.warmup_runs is not None else (0 if args.quick else 1)
    run_timeout = args.run_timeout or 120.0 + records / 2000.0
    startup_timeout = args.startup_timeout or preset.startup_timeout
    idle_timeout = args.idle_timeout or preset.idle_timeout
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="kstreams-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(3)
    started = time.time()
    try:
        registry = systems.make_systems(args.java_heap, args.kstreams_runtime, args.kstreams_config,
                                        args.java_config, args.quix_config)
        chosen = list(dict.fromkeys(args.systems))
        unavailable: dict[str, str] = {}
        for name in chosen:
            log.info("preparing %s", name)
            try:
                registry[name].prepare()
            except systems.SystemUnavailable as exc:
                unavailable[name] = str(exc).splitlines()[0]
                log.warning("%s is not available: %s", name, unavailable[name])
        runnable = [name for name in chosen if name not in unavailable]

        with broker_for(args, work_dir) as (bootstrap, broker_pids):
            from confluent_kafka.admin import AdminClient

            from bench.compare.kafka_io import NO_RETENTION, create_topic, delete_topics_matching, load_input

            span = records * args.interval_ms + 3 * args.window_ms
            base_ts = (int(time.time() * 1000) - span - 3_600_000) // 1_000_000 * 1_000_000
            spec = DatasetSpec(records, keys, args.partitions, args.value_bytes, args.skew, args.seed,
                               args.interval_ms, args.window_ms, base_ts)
            log.info("generating %s records over %s keys", f"{records:,}", f"{keys:,}")
            dataset = generate(spec)
            verifier = Verifier(dataset)
            for workload in args.workloads:
                verifier.expected_outputs(workload)
            input_topic = f"kstreams-bench-input-{token}"
            commit = {g: args.commit_interval_ms or DEFAULT_COMMIT_INTERVAL_MS[g] for g in workloads.GUARANTEES}
            limits = Limits(startup_s=startup_timeout, idle_s=idle_timeout, run_s=run_timeout)
            admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})  # no notices on deletes
            plan = RunPlan(bootstrap, admin, verifier, input_topic, args.partitions, work_dir / "runs", limits,
                           broker_pids, commit, args.keep_topics)
            try:
                create_topic(admin, input_topic, args.partitions, NO_RETENTION)
                seconds = load_input(bootstrap, input_topic, dataset)
                log.info("loaded %s into %s in %.1f s", f"{len(dataset):,} records", input_topic, seconds)
                results = _run_all(plan, registry, runnable, args.workloads, args.guarantees, runs, token, warmup)
            finally:
                if not args.keep_topics:
                    delete_topics_matching(admin, [input_topic])
                plan.admin = None
                del admin  # destroy the client while the broker is up (no reconnect errors at its stop);
                gc.collect()  # the admin futures hold it in reference cycles
        cells = report.summarize(results, args.workloads, args.guarantees, chosen, unavailable)
        document = {
            "kind": "kstreams-bench-compare",
            "version": 1,
            "started": _iso(started),
            "finished": _iso(time.time()),
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                        if k not in ("command", "func")},
            "quick": args.quick,
            "runs_per_cell": runs,
            "warmup_runs": warmup,
            "machine": _machine(),
            "broker": {"bootstrap": bootstrap, "started_here": args.bootstrap_servers is None,
                       "heap": args.broker_heap if args.bootstrap_servers is None else None},
            "dataset": dataset.summary(),
            "settings": {"commit_interval_ms": commit, "java_heap": args.java_heap,
                         "limits": dataclasses.asdict(limits)},
            "systems": {name: {"description": registry[name].describe(), "available": name not in unavailable,
                               "reason": unavailable.get(name, "")} for name in chosen},
            "summary": cells,
            "ratios": report.ratios(cells),
            "runs": [r.to_json() for r in results],
        }
        loads = sorted(v for r in results for v in r.load_average)
        if loads:
            document["load_average"] = {"min": loads[0], "median": loads[len(loads) // 2], "max": loads[-1],
                                        "cpus": os.cpu_count()}
        paths = _write(document, args.out_dir, not args.no_chart)
        document["files"] = paths
        text = report.table(cells)
        if loads:
            text += (f"\n\nmachine load average (1 min) around the runs: {loads[0]:.1f} to {loads[-1]:.1f} "
                     f"on {os.cpu_count()} CPUs (other work on the machine makes the figures noisier)")
        if args.json:
            print(text, file=sys.stderr)
            print(json.dumps(document, indent=1))
        else:
            print(text)
            print("\nresults: " + ", ".join(paths.values()))
        return 1 if any(not r.ok for r in results) else 0
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        if args.work_dir is None and not args.keep_topics:
            shutil.rmtree(work_dir, ignore_errors=True)


def _run_all(plan: RunPlan, registry: dict[str, systems.System], names: list[str], workload_names: list[str],
             guarantees: list[str], runs: int, token: str, warmup: int = 0) -> list[RunResult]:
    from bench.compare.harness import run_once

    # a fresh broker spends the first runs compiling itself (its C2 JIT thread was its largest
    # CPU user in the first exactly-once runs): warm it up with runs that are not recorded
    for w in range(warmup if names else 0):
        for workload in workload_names:
            for guarantee in guarantees:
                if not registry[names[0]].supports(workload, guarantee):
                    continue
                app_id = f"kb-{names[0]}-{workload}-{_SHORT[guarantee]}-w{w + 1}-{token}"
                log.info("warm-up: %s %s %s ...", names[0], workload, guarantee)
                warm = run_once(registry[names[0]], workload, guarantee, 0, plan, app_id)
                log.info("warm-up: %s %s %s: %s (not recorded)", names[0], workload, guarantee,
                         f"{warm.records_per_s:,.0f} records/s" if warm.ok else f"failed: {warm.reason}")

    jobs = []
    # runs of a workload alternate between guarantees and between systems (the first system
    # rotates), so a slow spell of the shared machine does not land on one cell
    for workload in workload_names:
        for run_index in range(runs):
            for guarantee in guarantees:
                order = names[run_index % len(names):] + names[:run_index % len(names)] if names else []
                for name in order:
                    if registry[name].supports(workload, guarantee):
                        jobs.append((workload, guarantee, run_index, name))
    results: list[RunResult] = []
    for n, (workload, guarantee, run_index, name) in enumerate(jobs, 1):
        app_id = f"kb-{name}-{workload}-{_SHORT[guarantee]}-r{run_index + 1}-{token}"
        log.info("[%d/%d] %s %s %s run %d ...", n, len(jobs), name, workload, guarantee, run_index + 1)
        result = run_once(registry[name], workload, guarantee, run_index + 1, plan, app_id)
        results.append(result)
        if result.ok:
            log.info("[%d/%d] %s %s %s: %s records/s, %.1f CPU s/M, peak RSS %.0f MB (%.1f s, output ok)",
                     n, len(jobs), name, workload, guarantee, f"{result.records_per_s:,.0f}",
                     result.cpu_s_per_million or 0.0, result.peak_rss_mb or 0.0, result.seconds or 0.0)
        else:
            log.warning("[%d/%d] %s %s %s: FAILED: %s", n, len(jobs), name, workload, guarantee, result.reason)
    return results


@contextlib.contextmanager
def broker_for(args: argparse.Namespace, work_dir: Path) -> Iterator[tuple[str, list[int]]]:
    """``(bootstrap, broker pids)`` of ``args.bootstrap_servers``, or of a local broker started
    in ``work_dir`` (``-Xmx`` ``args.broker_heap``) and stopped on exit."""
    if args.bootstrap_servers:
        yield args.bootstrap_servers, []
        return
    sys.path.insert(0, str(CLUSTER_DIR))
    import cluster  # tests/kafka/cluster.py

    log.info("starting a local Kafka broker (tests/kafka/cluster.py)")
    kafka = cluster.start_cluster(work_dir / "kafka", 1, heap=args.broker_heap, owner_pid=os.getpid())
    try:
        log.info("broker ready at %s", kafka.bootstrap)
        yield kafka.bootstrap, [node.pid for node in kafka.nodes if node.pid]
    finally:
        log.info("stopping the broker")
        kafka.stop()


def _write(document: dict[str, Any], out_dir: Path, chart: bool) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "compare-" + time.strftime("%Y%m%d-%H%M%S", time.localtime())
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(document, indent=1) + "\n")
    paths = {"json": str(json_path)}
    if chart:
        png_path = out_dir / f"{stem}.png"
        try:
            python = venvs.ensure_venv("plot", venvs.PLOT_REQUIREMENTS)
            done = subprocess.run([str(python), "-m", "bench.compare.chart", str(json_path), str(png_path)],
                                  cwd=systems.REPO, env={**os.environ, "PYTHONPATH": str(systems.REPO)},
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180, check=False)
            if done.returncode == 0:
                paths["png"] = str(png_path)
            else:
                log.warning("chart failed: %s", (done.stderr or done.stdout).strip()[-500:])
        except (venvs.VenvError, subprocess.TimeoutExpired) as exc:
            log.warning("no chart: %s", exc)
    return paths


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
        model = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        info["cpu_model"] = model[0].split(":", 1)[1].strip()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
        info["java"] = done.stderr.strip().splitlines()[0] if done.stderr else ""
    with contextlib.suppress(ImportError):
        import confluent_kafka

        info["confluent_kafka"] = getattr(confluent_kafka, "__version__", None) or str(confluent_kafka.version())
        info["librdkafka"] = confluent_kafka.libversion()[0]
    return info


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
