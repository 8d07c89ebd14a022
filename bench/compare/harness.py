"""One measured run: start a system's processes, watch its output, stop it, verify, measure.

The measured interval runs from the first input record consumed (the earliest
``BENCH first_record_ms`` any of the system's processes prints) to the moment as many output
records as a complete run writes had been committed: readable by a ``read_committed`` consumer
(the observer samples the output's last stable offsets every 50 ms and reads the records once
they may be complete, see :class:`~bench.compare.kafka_io.OutputObserver`). Over that interval:

* ``records_per_s``: input records / interval;
* ``cpu_s``: user + system CPU time of the system's processes (all their threads) from
  ``/proc/PID/stat``, sampled every 100 ms and interpolated at both ends; per million records
  in ``cpu_s_per_million`` (the broker's CPU over the same interval is ``broker_cpu_s``);
* ``peak_rss_mb``: the processes' peak resident set size (``VmHWM`` of ``/proc/PID/status``, read
  with the CPU samples), summed over the processes of the run. Not ``ru_maxrss``: Linux carries
  it across ``execve``, so a child started by a large parent reports at least the parent's peak.

After the interval the run waits ``settle_s`` (late duplicates would show up), stops the system
with SIGTERM (SIGKILL after ``stop_timeout_s``), reads the output topic to its end and verifies
it (:mod:`bench.compare.verify`). A run whose output fails the check, that never completes, or
whose processes die, is ``failed`` and gets no figure.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.compare import workloads
from bench.compare.kafka_io import OutputObserver, create_topic, delete_group, delete_topics_matching
from bench.compare.systems import ProcessSpec, RunContext, System
from bench.compare.verify import Verifier

log = logging.getLogger("bench.compare")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CLEAN_EXIT = {0, 128 + signal.SIGTERM, -signal.SIGTERM}


@dataclass
class Limits:
    """Time bounds of a run (seconds)."""

    startup_s: float = 180.0
    """Longest wait for the first output record."""
    idle_s: float = 30.0
    """Longest pause in the output once it started (a stalled or lossy system)."""
    run_s: float = 1800.0
    """Longest run, start to complete output."""
    settle_s: float = 2.0
    """Wait after the output is complete, before stopping the system."""
    stop_s: float = 60.0
    """Wait for a graceful stop after SIGTERM, before SIGKILL."""
    drain_s: float = 90.0
    """Longest wait to read the output to its end after the stop."""


@dataclass
class RunResult:
    """Everything measured and checked in one run (one row of the results file)."""

    system: str
    workload: str
    guarantee: str
    run: int
    status: str  # "ok" | "failed"
    reason: str = ""
    app_id: str = ""
    records: int = 0
    expected_outputs: int = 0
    outputs: int = 0
    seconds: float | None = None
    records_per_s: float | None = None
    steady_records_per_s: float | None = None
    """Input records/s while the output went from 20 % to 80 % of its total: the rate without
    start-up (JIT warm-up, first rebalance) and tail effects."""
    cpu_s: float | None = None
    cpu_s_per_million: float | None = None
    broker_cpu_s: float | None = None
    peak_rss_mb: float | None = None
    process_peak_rss_mb: list[float] = field(default_factory=list)
    process_cpu_total_s: list[float] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)
    startup_s: float | None = None
    wall_s: float | None = None
    load_average: list[float] = field(default_factory=list)
    """1-minute load average before and after the run: other work on the machine shows here."""
    stop_clean: bool = True
    verdict: dict[str, Any] = field(default_factory=dict)
    output_timeline: list[tuple[float, int]] = field(default_factory=list)
    """``(seconds since the first input record, output records read)``, about every 0.1 s."""
    settings: list[dict[str, Any]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-able dict."""
        return asdict(self)


class SystemProcess:
    """One process of a system: started in its own session, output teed to a log, reaped with wait4."""

    def __init__(self, spec: ProcessSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.first_record_ms: int | None = None
        self.settings: dict[str, Any] | None = None
        self.returncode: int | None = None
        self.rusage: Any = None
        self.killed = False
        self._log: IO[str] = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in reap)
        self._log.write("$ " + " ".join(spec.argv) + "\n")
        self._log.flush()
        self.popen = subprocess.Popen(
            spec.argv, cwd=spec.cwd, env={**os.environ, **spec.env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
            start_new_session=True,
        )
        self.started_at = time.time()
        self._reader = threading.Thread(target=self._read, name=f"out-{self.popen.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        import json

        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._log.write(line)
            if line.startswith(workloads.FIRST_RECORD_MARK) and self.first_record_ms is None:
                with contextlib.suppress(ValueError):
                    self.first_record_ms = int(line[len(workloads.FIRST_RECORD_MARK):].strip())
            elif line.startswith(workloads.SETTINGS_MARK) and self.settings is None:
                try:
                    self.settings = json.loads(line[len(workloads.SETTINGS_MARK):])
                except ValueError:
                    self.settings = {"unparsed": line.strip()}
        self._log.flush()

    def poll(self) -> int | None:
        """The exit code if the process has ended (reaping it), else None."""
        if self.returncode is None:
            pid, status, rusage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid != 0:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.rusage = rusage
                self.popen.returncode = self.returncode
        return self.returncode

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process (if it is still there)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signum)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the exit; the code, or None if it is still running."""
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.returncode

    def kill_and_reap(self) -> None:
        """SIGKILL the process and every process of its session, then reap it."""
        if self.poll() is None:
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.wait(30)

    def close(self) -> None:
        """Finish reading the output and close the log (after the process ended)."""
        self._reader.join(10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log.close()

    @property
    def cpu_total_s(self) -> float | None:
        return None if self.rusage is None else self.rusage.ru_utime + self.rusage.ru_stime


def proc_peak_rss_kb(pid: int) -> int | None:
    """Peak resident set size of process ``pid`` since its ``execve`` (``VmHWM``), or None if gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all threads) from /proc, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuSampler(threading.Thread):
    """Samples the CPU time of the system's processes (and the broker's) every ``interval`` s,
    and the system processes' peak RSS."""

    def __init__(self, pids: list[int], broker_pids: list[int], interval: float = 0.1) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.pids = pids
        self.broker_pids = broker_pids
        self.interval = interval
        self.times: list[float] = []
        self.system: list[float] = []
        self.broker: list[float] = []
        self._last: dict[int, float] = {}
        self.peak_rss_kb: dict[int, int] = {}
        self._stop_event = threading.Event()

    def _total(self, pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            value = proc_cpu_seconds(pid)
            if value is None:  # exited: keep its last reading
                value = self._last.get(pid, 0.0)
            self._last[pid] = value
            total += value
        return total

    def sample(self) -> None:
        """Take one sample now."""
        self.times.append(time.time())
        self.system.append(self._total(self.pids))
        for pid in self.pids:
            peak = proc_peak_rss_kb(pid)
            if peak is not None and peak > self.peak_rss_kb.get(pid, 0):
                self.peak_rss_kb[pid] = peak
        self.broker.append(self._total(self.broker_pids))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop_event.set()
        self.join(5)
        self.sample()

    def _at(self, series: list[float], t: float) -> float:
        times = self.times
        i = bisect.bisect_left(times, t)
        if i <= 0:
            return series[0]
        if i >= len(times):
            return series[-1]
        t0, t1 = times[i - 1], times[i]
        v0, v1 = series[i - 1], series[i]
        return v0 if t1 <= t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def between(self, start: float, end: float) -> tuple[float, float]:
        """``(system CPU s, broker CPU s)`` spent between wall-clock times ``start`` and ``end``."""
        if not self.times:
            return 0.0, 0.0
        return (self._at(self.system, end) - self._at(self.system, start),
                self._at(self.broker, end) - self._at(self.broker, start))


@dataclass
class RunPlan:
    """The fixed inputs of a run, apart from the system."""

    bootstrap: str
    admin: Any
    verifier: Verifier
    input_topic: str
    partitions: int
    work_dir: Path
    limits: Limits
    broker_pids: list[int] = field(default_factory=list)
    commit_interval_ms: dict[str, int | None] = field(default_factory=dict)
    keep_topics: bool = False


def run_once(system: System, workload: str, guarantee: str, run: int, plan: RunPlan, app_id: str) -> RunResult:
    """Run ``system`` once on ``workload`` under ``guarantee`` and return what was measured."""
    dataset = plan.verifier.dataset
    limits = plan.limits
    expected = plan.verifier.expected_outputs(workload)
    result = RunResult(system.name, workload, guarantee, run, "failed", app_id=app_id, records=len(dataset),
                       expected_outputs=expected)
    run_dir = plan.work_dir / app_id
    run_dir.mkdir(parents=True, exist_ok=True)
    output_topic = f"{app_id}-output"
    ctx = RunContext(plan.bootstrap, workload, guarantee, app_id, plan.input_topic, output_topic,
                     run_dir / "state", plan.commit_interval_ms.get(guarantee), dataset.spec.window_ms)
    processes: list[SystemProcess] = []
    observer: OutputObserver | None = None
    sampler: CpuSampler | None = None
    reason = ""
    wall_started = time.time()
    result.load_average = [round(os.getloadavg()[0], 2)]
    try:
        create_topic(plan.admin, output_topic, plan.partitions)
        observer = OutputObserver(plan.bootstrap, output_topic, plan.partitions, expected, f"{app_id}-observer")
        observer.start()
        observer.ready.wait(30)
        for i, spec in enumerate(system.commands(ctx)):
            processes.append(SystemProcess(spec, run_dir / f"process-{i}.log"))
        result.logs = [str(p.log_path) for p in processes]
        sampler = CpuSampler([p.pid for p in processes], plan.broker_pids)
        sampler.start()
        started = time.time()
        while True:
            time.sleep(0.1)
            now = time.time()
            if observer.error:
                reason = observer.error
                break
            if observer.done_at is not None:
                if now - observer.done_at >= limits.settle_s:
                    break
                continue
            dead = [p for p in processes if p.poll() is not None]
            if dead:
                reason = (f"process exited with code {dead[0].returncode} before the output was complete "
                          f"({observer.progress()} of {expected}); see {dead[0].log_path}")
                break
            if observer.last_at is None and now - started > limits.startup_s:
                reason = f"no output within {limits.startup_s:.0f} s"
                break
            if observer.last_at is not None and now - observer.last_at > limits.idle_s:
                reason = f"output stalled for {limits.idle_s:.0f} s at {observer.progress()} of {expected} records"
                break
            if now - started > limits.run_s:
                reason = f"run timeout ({limits.run_s:.0f} s) at {observer.progress()} of {expected} records"
                break
        sampler.stop()
        for process in processes:
            process.signal(signal.SIGTERM)
        for process in processes:
            if process.wait(limits.stop_s) is None:
                log.warning("%s pid %d did not stop within %.0f s of SIGTERM; killing it",
                            system.name, process.pid, limits.stop_s)
                process.kill_and_reap()
        if not observer.drain(limits.drain_s) and not reason:
            reason = f"could not read the output to its end within {limits.drain_s:.0f} s"
        observer.stop()
        if observer.error and not reason:
            reason = observer.error
        verdict = plan.verifier.verify(workload, observer.records(), guarantee == "exactly_once_v2")
        result.verdict = verdict.to_json()
        result.outputs = observer.count
        if not reason and not verdict.ok:
            reason = verdict.reason()
        _measure(result, processes, observer, sampler)
        if not reason:
            unclean = [p.returncode for p in processes if p.returncode not in _CLEAN_EXIT]
            if unclean:
                reason = f"process exit code(s) {unclean} after SIGTERM"
        if not reason and result.records_per_s is None:
            reason = "no first-record mark from the system (cannot time the run)"
        result.status = "failed" if reason else "ok"
        result.reason = reason
    except Exception as exc:  # a harness problem: report it as this run's failure, go on with the others
        log.exception("run %s failed in the harness", app_id)
        result.status = "failed"
        result.reason = f"harness error: {exc!r}"
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        for process in processes:
            process.kill_and_reap()
            process.close()
        if observer is not None and observer.is_alive():
            observer.stop()
        result.wall_s = round(time.time() - wall_started, 2)
        result.load_average.append(round(os.getloadavg()[0], 2))
        if not plan.keep_topics:
            _cleanup(plan, app_id, run_dir)
    return result


def _measure(result: RunResult, processes: list[SystemProcess], observer: OutputObserver,
             sampler: CpuSampler) -> None:
    result.exit_codes = [p.returncode for p in processes]
    result.stop_clean = not any(p.killed for p in processes)
    result.settings = [p.settings or {} for p in processes]
    peaks = [sampler.peak_rss_kb[p.pid] / 1024.0 if p.pid in sampler.peak_rss_kb else None for p in processes]
    result.process_peak_rss_mb = [round(v, 1) for v in peaks if v is not None]
    result.peak_rss_mb = round(sum(result.process_peak_rss_mb), 1) if result.process_peak_rss_mb else None
    result.process_cpu_total_s = [round(v, 2) for p in processes if (v := p.cpu_total_s) is not None]
    marks = [p.first_record_ms for p in processes if p.first_record_ms is not None]
    if marks:
        result.startup_s = round(min(marks) / 1000.0 - min(p.started_at for p in processes), 2)
    if not marks or observer.reached_at is None:
        return
    start = min(marks) / 1000.0
    result.output_timeline = [(round(t - start, 2), n) for t, n in observer.timeline]
    end = observer.reached_at
    seconds = max(end - start, 1e-3)
    cpu, broker_cpu = sampler.between(start, end)
    result.seconds = round(seconds, 3)
    result.records_per_s = round(result.records / seconds, 1)
    steady = steady_rate(observer.timeline, result.expected_outputs, result.records)
    result.steady_records_per_s = None if steady is None else round(steady, 1)
    result.cpu_s = round(cpu, 2)
    result.cpu_s_per_million = round(cpu / result.records * 1e6, 2)
    result.broker_cpu_s = round(broker_cpu, 2) if sampler.broker_pids else None


def steady_rate(timeline: list[tuple[float, int]], expected: int, records: int,
                low: float = 0.2, high: float = 0.8) -> float | None:
    """Input records/s between the times the output reached ``low`` and ``high`` of ``expected``.

    The output of every workload grows in proportion to the input consumed, so the input rate
    over that stretch is ``(high - low) * records`` over its duration. None if the timeline is
    too coarse to tell.
    """

    def crossing(level: float) -> float | None:
        previous: tuple[float, int] | None = None
        for t, n in timeline:
            if n >= level:
                if previous is None or n == previous[1]:
                    return t
                t0, n0 = previous
                return t0 + (t - t0) * (level - n0) / (n - n0)
            previous = (t, n)
        return None

    if expected <= 0:
        return None
    t_low, t_high = crossing(low * expected), crossing(high * expected)
    if t_low is None or t_high is None or t_high - t_low < 0.05:
        return None
    return (high - low) * records / (t_high - t_low)


def _cleanup(plan: RunPlan, app_id: str, run_dir: Path) -> None:
    try:
        delete_topics_matching(plan.admin, [app_id])
        delete_group(plan.admin, app_id)
        delete_group(plan.admin, f"{app_id}-observer")
    except Exception as exc:  # cleanup must not hide the result
        log.warning("cleanup of %s failed: %s", app_id, exc)
    shutil.rmtree(run_dir / "state", ignore_errors=True)
