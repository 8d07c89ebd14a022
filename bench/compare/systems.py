"""The systems under comparison and how each one is prepared and started.

A :class:`System` turns one run's :class:`RunContext` into the command lines of its processes.
Every runner takes the same options (``--bootstrap --workload --guarantee --threads --app-id
--input --output --state-dir --commit-interval-ms --window-ms [--config K=V ...]``), prints
``BENCH settings=<json>`` at start and ``BENCH first_record_ms=<ms>`` on its first record, and
stops cleanly on SIGTERM:

* ``kstreams`` / ``kstreams-2p``: :mod:`bench.compare.kstreams_runner` in the project's venv,
  1 process x 1 thread, or 2 processes x 1 thread in one consumer group;
* ``java`` / ``java-2t``: the Java Kafka Streams reference (``bench/java``), 1 or 2 stream threads;
* ``quixstreams`` (and ``quixstreams-2p``, not run by default): :mod:`bench.compare.quix_runner`
  in ``bench/.venvs/quixstreams``.

:func:`make_systems` builds the registry; tests add their own systems (any object with the
same attributes and methods).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.compare import venvs, workloads

log = logging.getLogger("bench.compare")

REPO = Path(__file__).resolve().parents[2]
JAVA_DIR = REPO / "bench" / "java"
JAVA_JAR = JAVA_DIR / "target" / "kstreams-bench.jar"
JAVA_CLASSPATH = JAVA_DIR / "target" / "classpath.txt"
JAVA_MAIN = "kstreams.bench.Main"
MAVEN_TIMEOUT = 900.0

SYSTEM_NAMES = ("kstreams", "kstreams-2p", "java", "java-2t", "quixstreams", "quixstreams-2p")
DEFAULT_SYSTEMS = ("kstreams", "kstreams-2p", "java", "java-2t", "quixstreams")


class SystemUnavailable(RuntimeError):
    """The system cannot run here (not built, not installed, not written yet); the message says why."""


@dataclass(frozen=True)
class RunContext:
    """What one run of one system needs to know."""

    bootstrap: str
    workload: str
    guarantee: str
    app_id: str
    input_topic: str
    output_topic: str
    state_dir: Path
    commit_interval_ms: int | None
    window_ms: int


@dataclass
class ProcessSpec:
    """One process to start: its command line, environment additions and working directory."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO


def runner_args(ctx: RunContext, threads: int, state_dir: Path, extra_config: Sequence[str] = ()) -> list[str]:
    """The options every runner takes, for ``ctx``."""
    args = [
        "--bootstrap", ctx.bootstrap,
        "--workload", ctx.workload,
        "--guarantee", ctx.guarantee,
        "--threads", str(threads),
        "--app-id", ctx.app_id,
        "--input", ctx.input_topic,
        "--output", ctx.output_topic,
        "--state-dir", str(state_dir),
        "--window-ms", str(ctx.window_ms),
    ]
    if ctx.commit_interval_ms is not None:
        args += ["--commit-interval-ms", str(ctx.commit_interval_ms)]
    for pair in extra_config:
        args += ["--config", pair]
    return args


class System:
    """Base of the systems: a name, how many processes and threads, and how to start them."""

    name: str = ""
    family: str = ""
    processes: int = 1
    threads: int = 1

    def describe(self) -> str:
        """One line for the results file."""
        return f"{self.family}, {self.processes} process(es) x {self.threads} thread(s)"

    def prepare(self) -> None:
        """Build or install what the system needs; raise :class:`SystemUnavailable` if it cannot run."""

    def supports(self, workload: str, guarantee: str) -> bool:
        """Whether the system can run ``workload`` under ``guarantee``."""
        return workload in workloads.WORKLOADS and guarantee in workloads.GUARANTEES

    def commands(self, ctx: RunContext) -> list[ProcessSpec]:
        """The processes of one run."""
        raise NotImplementedError


class KStreamsSystem(System):
    """kstreams through :mod:`bench.compare.kstreams_runner` (project venv)."""

    family = "kstreams"

    def __init__(self, name: str, processes: int = 1, threads: int = 1, runtime: str | None = None,
                 python: str = sys.executable, extra_config: Sequence[str] = ()) -> None:
        self.name = name
        self.processes = processes
        self.threads = threads
        self.runtime = runtime
        self.python = python
        self.extra_config = list(extra_config)

    def _base(self) -> list[str]:
        argv = [self.python, "-m", "bench.compare.kstreams_runner"]
        if self.runtime:
            argv += ["--runtime", self.runtime]
        return argv

    def prepare(self) -> None:
        try:
            done = subprocess.run([*self._base(), "--check"], cwd=REPO, env=_env(), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise SystemUnavailable("the kstreams runtime check did not finish in 120 s") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise SystemUnavailable(lines[-1] if lines else f"runtime check exited {done.returncode}")

    def commands(self, ctx: RunContext) -> list[ProcessSpec]:
        return [ProcessSpec([*self._base(), *runner_args(ctx, self.threads, ctx.state_dir / f"p{i}",
                                                          self.extra_config)], _pythonpath())
                for i in range(self.processes)]


class JavaSystem(System):
    """The Java Kafka Streams reference (``bench/java``), one JVM."""

    family = "java-kafka-streams"

    def __init__(self, name: str, threads: int = 1, heap: str = "1g", jvm_options: Sequence[str] = (),
                 extra_config: Sequence[str] = ()) -> None:
        self.name = name
        self.threads = threads
        self.heap = heap
        self.jvm_options = list(jvm_options)
        self.extra_config = list(extra_config)
        self._classpath = ""

    def describe(self) -> str:
        return f"{super().describe()}, -Xmx{self.heap}"

    def prepare(self) -> None:
        if shutil.which("java") is None:
            raise SystemUnavailable("'java' is not on PATH (Java 17+ needed)")
        self._classpath = ensure_java_built()

    def java_command(self, main_class: str, args: Sequence[str]) -> list[str]:
        """``java`` with this system's heap, JVM options and class path, running ``main_class`` with ``args``."""
        if not self._classpath:
            self._classpath = ensure_java_built()
        return ["java", f"-Xmx{self.heap}", *self.jvm_options, "-cp", self._classpath, main_class, *args]

    def commands(self, ctx: RunContext) -> list[ProcessSpec]:
        return [ProcessSpec(self.java_command(JAVA_MAIN, runner_args(ctx, self.threads, ctx.state_dir / "p0",
                                                                      self.extra_config)))]


class QuixSystem(System):
    """quixstreams from PyPI through :mod:`bench.compare.quix_runner`, in its own venv."""

    family = "quixstreams"

    def __init__(self, name: str, processes: int = 1, requirements: Sequence[str] = venvs.QUIXSTREAMS_REQUIREMENTS,
                 extra_config: Sequence[str] = ()) -> None:
        self.name = name
        self.processes = processes
        self.requirements = list(requirements)
        self.extra_config = list(extra_config)
        self._python: Path | None = None

    def describe(self) -> str:
        return f"{super().describe()}, {' '.join(self.requirements)}"

    def prepare(self) -> None:
        try:
            self._python = venvs.ensure_venv("quixstreams", self.requirements)
        except venvs.VenvError as exc:
            raise SystemUnavailable(f"cannot install quixstreams: {exc}") from None

    def commands(self, ctx: RunContext) -> list[ProcessSpec]:
        python = self._python or venvs.venv_python("quixstreams")
        return [ProcessSpec([str(python), "-m", "bench.compare.quix_runner",
                             *runner_args(ctx, 1, ctx.state_dir / f"p{i}", self.extra_config)], _pythonpath())
                for i in range(self.processes)]


def make_systems(java_heap: str = "1g", kstreams_runtime: str | None = None,
                 kstreams_config: Sequence[str] = (), java_config: Sequence[str] = (),
                 quix_config: Sequence[str] = ()) -> dict[str, System]:
    """Every known system by name (see :data:`SYSTEM_NAMES`)."""
    return {
        "kstreams": KStreamsSystem("kstreams", 1, 1, kstreams_runtime, extra_config=kstreams_config),
        "kstreams-2p": KStreamsSystem("kstreams-2p", 2, 1, kstreams_runtime, extra_config=kstreams_config),
        "java": JavaSystem("java", 1, java_heap, extra_config=java_config),
        "java-2t": JavaSystem("java-2t", 2, java_heap, extra_config=java_config),
        "quixstreams": QuixSystem("quixstreams", 1, extra_config=quix_config),
        "quixstreams-2p": QuixSystem("quixstreams-2p", 2, extra_config=quix_config),
    }


# --------------------------------------------------------------------------- Java build


def _java_sources() -> list[Path]:
    return [JAVA_DIR / "pom.xml", *sorted(p for p in (JAVA_DIR / "src").rglob("*") if p.is_file())]


def java_build_needed() -> bool:
    """True unless the jar and its class path exist and the jar is newer than every source."""
    if not JAVA_JAR.is_file() or not JAVA_CLASSPATH.is_file():
        return True
    built = JAVA_JAR.stat().st_mtime
    return any(source.stat().st_mtime > built for source in _java_sources())


def ensure_java_built(timeout: float = MAVEN_TIMEOUT) -> str:
    """Build ``bench/java`` unless the jar is up to date; return the ``java -cp`` class path."""
    (JAVA_DIR / "target").mkdir(parents=True, exist_ok=True)
    with open(JAVA_DIR / "target" / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if java_build_needed():
            if shutil.which("mvn") is None:
                raise SystemUnavailable("bench/java is not built and 'mvn' is not on PATH")
            command = ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(JAVA_DIR / "pom.xml"), "package"]
            log.info("building the Java reference: %s", " ".join(command))
            try:
                done = subprocess.run(command, cwd=JAVA_DIR, stdin=subprocess.DEVNULL, capture_output=True,
                                      text=True, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise SystemUnavailable(f"mvn package did not finish within {timeout:.0f} s") from None
            if done.returncode != 0 or not JAVA_JAR.is_file():
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
                raise SystemUnavailable(f"mvn package failed (exit {done.returncode}):\n{tail}")
    return f"{JAVA_JAR}{os.pathsep}{JAVA_CLASSPATH.read_text().strip()}"


def _pythonpath() -> dict[str, str]:
    return {"PYTHONPATH": str(REPO)}


def _env() -> dict[str, str]:
    return {**os.environ, **_pythonpath()}
