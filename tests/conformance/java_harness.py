"""Build (when stale) and run the Java harness, which runs the scenarios through Kafka Streams.

The Maven project in ``java/`` depends on ``kafka-streams`` and ``kafka-streams-test-utils``
4.4.0. ``mvn -q -B package`` writes ``target/conformance.jar`` and ``target/classpath.txt``; the
build is skipped while the jar is newer than ``pom.xml`` and every file under ``src/``. One JVM
runs all scenario files and prints one JSON document per line.

Any failure (no ``java``/``mvn``, build error, crash, unparsable output) raises
:class:`JavaHarnessError`, which the tests turn into failures, never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

JAVA_DIR = Path(__file__).parent / "java"
TARGET_DIR = JAVA_DIR / "target"
JAR = TARGET_DIR / "conformance.jar"
CLASSPATH_FILE = TARGET_DIR / "classpath.txt"
MAIN_CLASS = "kstreams.conformance.ConformanceRunner"
BUILD_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 600


class JavaHarnessError(RuntimeError):
    """The Java harness could not be built or run; the message carries its output."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise JavaHarnessError(f"'{name}' is not on PATH: the conformance suite needs Java 17+ and Maven")
    return path


def _sources() -> list[Path]:
    return [JAVA_DIR / "pom.xml", *(p for p in (JAVA_DIR / "src").rglob("*") if p.is_file())]


def is_stale() -> bool:
    """True if the jar or class-path file is missing, or the jar is older than a Java source or the pom.

    (The jar is always rewritten by a build; the class-path file is rewritten only when it changes.)
    """
    if not JAR.exists() or not CLASSPATH_FILE.exists():
        return True
    built = JAR.stat().st_mtime
    return any(src.stat().st_mtime > built for src in _sources())


def build(force: bool = False) -> bool:
    """Run ``mvn -q -B package`` unless the jar is up to date; return True if it built."""
    if not force and not is_stale():
        return False
    command = [_tool("mvn"), "-q", "-B", "-f", str(JAVA_DIR / "pom.xml"), "package"]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise JavaHarnessError(f"Maven build timed out after {BUILD_TIMEOUT_S}s") from exc
    if proc.returncode != 0 or not JAR.exists() or not CLASSPATH_FILE.exists():
        raise JavaHarnessError(
            f"Maven build failed (exit {proc.returncode}): {' '.join(command)}\n{proc.stdout}\n{proc.stderr}"
        )
    return True


def run(scenario_files: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Run the given scenario files in one JVM and return the parsed documents by scenario name.

    A document with a ``harness_error`` key means the Java side could not run that scenario; it is
    returned as is (the JVM then exits with 1) so that only that scenario's test fails.
    """
    build()
    classpath = os.pathsep.join([str(JAR), CLASSPATH_FILE.read_text(encoding="utf-8").strip()])
    command = [_tool("java"), "-cp", classpath, MAIN_CLASS, *map(str, scenario_files)]
    try:
        proc = subprocess.run(command, capture_output=True, encoding="utf-8", timeout=RUN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise JavaHarnessError(f"Java harness timed out after {RUN_TIMEOUT_S}s") from exc
    results: dict[str, dict[str, Any]] = {}
    try:
        for line in proc.stdout.splitlines():
            if line.strip():
                document = json.loads(line)
                results[document["name"]] = document
    except (json.JSONDecodeError, KeyError) as exc:
        raise JavaHarnessError(f"unparsable Java harness output: {exc}\n{proc.stdout}\n{proc.stderr}") from exc
    has_harness_errors = any("harness_error" in doc for doc in results.values())
    if proc.returncode != 0 and not (proc.returncode == 1 and has_harness_errors):
        raise JavaHarnessError(f"Java harness failed (exit {proc.returncode}):\n{proc.stderr}")
    if len(results) != len(scenario_files):
        raise JavaHarnessError(
            f"Java harness printed {len(results)} documents for {len(scenario_files)} scenarios:\n{proc.stderr}"
        )
    return results
