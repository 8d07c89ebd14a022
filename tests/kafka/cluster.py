"""A real, local Apache Kafka cluster (KRaft mode) for tests, benchmarks and manual use.

Every node is a combined broker + controller (``process.roles=broker,controller``)
listening on free ``127.0.0.1`` ports; ``N`` nodes form an ``N``-voter static
controller quorum (``controller.quorum.voters``). Node ``i`` has ``node.id = i``
(0-based). The jars (``org.apache.kafka:kafka_2.13:4.4.0`` and its runtime
dependencies) come from Maven Central through ``pom.xml`` next to this file and are
cached in ``target/libs``; Maven runs only when that directory is incomplete::

    mvn -q -B -f tests/kafka/pom.xml package

Command line (run it with the project's virtualenv python)::

    python tests/kafka/cluster.py start   --dir DIR [--brokers N] [--heap 256m]
                                          [--timeout 90] [--config KEY=VALUE ...]
    python tests/kafka/cluster.py stop    --dir DIR [--timeout 30]
    python tests/kafka/cluster.py kill    --dir DIR --broker I
    python tests/kafka/cluster.py restart --dir DIR --broker I [--timeout 90]
    python tests/kafka/cluster.py status  --dir DIR
    python tests/kafka/cluster.py fetch

``start`` prints exactly one line on stdout, ``bootstrap=HOST:PORT[,HOST:PORT...]``
(also written to ``DIR/bootstrap``); progress (with ``-v``) and errors go to stderr
through :mod:`logging`. On failure the exit code is non-zero and the reason (with the
tail of the broker log) is on stderr. ``DIR`` holds ``cluster.json`` (cluster id,
ports, pids), ``log4j2.properties`` and per node ``broker-I/server.properties``,
``broker-I/data/``, ``broker-I/logs/server.log`` (broker log) and
``broker-I/stdout.log`` (JVM output). Extra JVM flags for the brokers can be given
in the ``KSTREAMS_KAFKA_JVM_OPTS`` environment variable.

Library use (the pytest fixtures and the benchmarks import it this way)::

    sys.path.insert(0, "tests/kafka")
    import cluster

    with cluster.start_cluster(tmp_dir, brokers=3) as kafka:
        topic = kafka.create_topic("input", partitions=3, replication=3)
        producer = confluent_kafka.Producer(kafka.client_config({"acks": "all"}))
        kafka.kill(1)
        kafka.restart(1)

Broker settings are chosen for tests and exactly-once processing: topics are never
auto-created (``auto.create.topics.enable=false``; create them with the admin
client, as a Kafka Streams deployment would); ``default.replication.factor`` and the
internal topics (``__consumer_offsets``, ``__transaction_state``, share-group state)
use replication factor ``min(N, 3)`` and min ISR ``min(N, 2)`` with 10 partitions;
the initial consumer-group rebalance delay is 0; a killed broker is fenced after 6 s;
nothing is deleted by time retention (tests date their records in 1970).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

LOG = logging.getLogger("kstreams.tests.kafka")

KAFKA_VERSION = "4.4.0"
HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LIBS_DIR = HERE / "target" / "libs"
_STAMP = LIBS_DIR / ".complete"
_FETCH_LOCK = HERE / "target" / ".fetch.lock"
CDS_DIR = HERE / "target" / "cds"
CDS_ENV = "KSTREAMS_KAFKA_CDS"
"""Set to ``0`` to start brokers without the class-data-sharing archive."""

HOST = "127.0.0.1"
STATE_FILE = "cluster.json"
BOOTSTRAP_FILE = "bootstrap"
LOG4J_FILE = "log4j2.properties"
LOG4J_TOOLS_FILE = "log4j2-tools.properties"

DEFAULT_HEAP = "256m"
"""Maximum heap per broker JVM (``-Xmx``); see :func:`jvm_options`."""
JVM_OPTS_ENV = "KSTREAMS_KAFKA_JVM_OPTS"
"""Extra JVM flags for every broker, whitespace-separated (appended last, so they win)."""
DEFAULT_START_TIMEOUT = 90.0
DEFAULT_STOP_TIMEOUT = 30.0
FETCH_TIMEOUT = 600.0
FORMAT_TIMEOUT = 60.0
KILL_TIMEOUT = 10.0
QUORUMLESS_STOP_TIMEOUT = 5.0
TOPIC_TIMEOUT = 30.0

_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"

_LOG4J2_PROPERTIES = """\
# Written by tests/kafka/cluster.py: broker logs go to ${sys:kafka.logs.dir}/server.log.
status = warn
name = kstreams-test-broker
# Kafka logs its own shutdown; Log4j's hook would close the file before that.
shutdownHook = disable

appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n

rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE

# One line per request at DEBUG; keep it quiet.
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


_LOG4J2_TOOLS_PROPERTIES = """\
# Written by tests/kafka/cluster.py: the storage tool logs warnings to its console.
status = warn
name = kstreams-test-tools

appender.console.type = Console
appender.console.name = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n

rootLogger.level = WARN
rootLogger.appenderRef.console.ref = CONSOLE
"""


class ClusterError(RuntimeError):
    """The cluster could not be fetched, started, stopped or reached in time."""


# --------------------------------------------------------------------------- jars


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _libs_complete() -> bool:
    """True if ``target/libs`` holds every jar the last successful fetch copied."""
    try:
        stamp = json.loads(_STAMP.read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("pom_sha256") != _pom_digest():
        return False
    jars = stamp.get("jars") or []
    return bool(jars) and all((LIBS_DIR / jar).is_file() for jar in jars)


def fetch_command() -> list[str]:
    """The Maven command that fills ``target/libs`` (run from any directory)."""
    return ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(POM), "package"]


def ensure_jars(timeout: float = FETCH_TIMEOUT) -> Path:
    """Return the directory of broker jars, running Maven first if it is incomplete.

    A stamp file records the pom digest and the copied jars, so a complete
    directory never starts Maven again. A file lock serialises concurrent fetches.
    """
    if _libs_complete():
        return LIBS_DIR
    _FETCH_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(_FETCH_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _libs_complete():
            return LIBS_DIR
        if shutil.which("mvn") is None:
            raise ClusterError(
                "Kafka jars are missing and 'mvn' is not on PATH; install Maven and run: " + " ".join(fetch_command())
            )
        LOG.info("fetching Kafka %s jars: %s", KAFKA_VERSION, " ".join(fetch_command()))
        started = time.monotonic()
        try:
            done = subprocess.run(
                fetch_command(),
                cwd=HERE,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"Maven did not finish within {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise ClusterError(f"Maven failed (exit {done.returncode}):\n{_tail_text(done.stdout + done.stderr)}")
        jars = sorted(path.name for path in LIBS_DIR.glob("*.jar"))
        if not any(jar.startswith(f"kafka_2.13-{KAFKA_VERSION}") for jar in jars):
            raise ClusterError(f"Maven succeeded but {LIBS_DIR} has no kafka_2.13 jar")
        _STAMP.write_text(json.dumps({"pom_sha256": _pom_digest(), "jars": jars}, indent=1))
        LOG.info("fetched %d jars in %.1f s", len(jars), time.monotonic() - started)
    return LIBS_DIR


# --------------------------------------------------------------------------- class-data sharing


def _cds_archive_path() -> Path:
    """Where the archive for the current jars and ``java`` lives (its name keys both).

    The jars' directory is part of the key: the JVM refuses an archive dumped with another
    class path, so a ``target`` directory copied from another checkout would otherwise keep an
    archive no broker can use.
    """
    java = Path(shutil.which("java") or "java").resolve()
    try:
        java_id = f"{java}:{java.stat().st_mtime_ns}"
    except OSError:
        java_id = str(java)
    key = hashlib.sha256(f"{_STAMP.read_text()}\n{LIBS_DIR.resolve()}\n{java_id}".encode()).hexdigest()[:16]
    return CDS_DIR / f"kafka-{KAFKA_VERSION}-{key}.jsa"


def ensure_cds_archive() -> Path | None:
    """Return a dynamic class-data-sharing archive of the broker's classes, building it once.

    The archive is dumped at exit by a broker that served a small workload (topic
    creation, produce, consume in a group, a transaction), so later brokers map
    those classes instead of loading and verifying them. Any failure only costs
    speed: it is logged and None returned. ``KSTREAMS_KAFKA_CDS=0`` turns it off.
    """
    if os.environ.get(CDS_ENV, "1") == "0":
        return None
    ensure_jars()
    archive = _cds_archive_path()
    failed = archive.with_suffix(".failed")
    if archive.is_file():
        return archive
    if failed.is_file():  # this java could not dump an archive for these jars before
        return None
    CDS_DIR.mkdir(parents=True, exist_ok=True)
    with open(CDS_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if archive.is_file():
            return archive
        for stale in CDS_DIR.glob("kafka-*"):
            stale.unlink()
        started = time.monotonic()
        dump = archive.with_name(f"{archive.name}.{os.getpid()}.tmp")
        try:
            with tempfile.TemporaryDirectory(prefix="kafka-cds-") as tmp:
                cluster = start_cluster(tmp, 1, cds=False, jvm_opts=[f"-XX:ArchiveClassesAtExit={dump}"])
                try:
                    _exercise(cluster)
                finally:
                    cluster.stop()
                if not dump.is_file():  # this JVM cannot dump one: remember, don't retry
                    failed.write_text(_tail_file(cluster.stdout_path(0)) + "\n")
                    raise ClusterError(f"the JVM wrote no archive:\n{failed.read_text()}")
            dump.replace(archive)
        except Exception as exc:  # any failure only costs start-up speed; the real start reports its own
            LOG.warning("no class-data-sharing archive, brokers will start slower: %s", exc)
            dump.unlink(missing_ok=True)
            return None
        LOG.info("built %s in %.1f s", archive, time.monotonic() - started)
    return archive


def _exercise(cluster: Cluster) -> None:
    """Drive the request paths that tests use, so that their classes are loaded."""
    topic = cluster.create_topic("cds-training", partitions=2)
    producer = Producer(cluster.client_config({"transactional.id": "cds-training", "logger": LOG}))
    producer.init_transactions(TOPIC_TIMEOUT)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, key=str(i), value=str(i))
    producer.commit_transaction(TOPIC_TIMEOUT)
    producer.close()
    consumer = Consumer(
        cluster.client_config({"group.id": "cds-training", "auto.offset.reset": "earliest", "logger": LOG})
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + TOPIC_TIMEOUT
    while seen < 10 and time.monotonic() < deadline:
        seen += len([message for message in consumer.consume(10, 0.5) if message.error() is None])
    consumer.close()


# --------------------------------------------------------------------------- helpers


def _tail_text(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _tail_file(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return _tail_text(data, lines)


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64 without padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like CLI flags
            return text


def _process_state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def process_alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie waiting to be reaped."""
    state = _process_state(pid)
    return state is not None and state not in "ZX"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _size_bytes(size: str) -> int:
    """Bytes in a JVM memory size such as ``256m``, ``1g`` or ``65536``."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = size.strip().lower()
    try:
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)
    except ValueError:
        raise ClusterError(f"not a JVM memory size: {size!r} (use e.g. 256m)") from None


def jvm_options(heap: str = DEFAULT_HEAP, extra: Sequence[str] = ()) -> list[str]:
    """JVM flags for one broker: the defaults, then ``$KSTREAMS_KAFKA_JVM_OPTS``, then ``extra``.

    ``-Xmx`` is the only memory knob; the initial heap is small so idle brokers
    stay small. Serial GC keeps the thread count and the pauses low for heaps this
    size on a 2-core machine running several brokers and the tests at once.
    """
    initial = ["-Xms32m"] if _size_bytes(heap) > 32 * 1024 * 1024 else []
    return [
        f"-Xmx{heap}",
        *initial,
        "-XX:+UseSerialGC",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
        *os.environ.get(JVM_OPTS_ENV, "").split(),
        *extra,
    ]


def broker_config(
    index: int,
    nodes: Sequence[NodeInfo],
    cluster_dir: Path,
    overrides: Mapping[str, str] | None,
) -> dict[str, str]:
    """The ``server.properties`` entries of node ``index`` of a cluster of ``nodes``."""
    count = len(nodes)
    replication = str(min(count, 3))
    min_isr = str(min(count, 2))
    node = nodes[index]
    config = {
        "process.roles": "broker,controller",
        "node.id": str(node.index),
        "controller.quorum.voters": ",".join(f"{other.index}@{HOST}:{other.controller_port}" for other in nodes),
        "listeners": f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{node.port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(cluster_dir / node.name / "data"),
        # Topics are created explicitly (admin client), as Kafka Streams users expect.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": replication,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        # Fence a killed broker (and move its leaderships) after 6 s instead of 9 s.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "6000",
        # No time-based deletion: tests write records with synthetic timestamps (1970), and the
        # first retention check (30 s after start, then every 5 min) deleted whole topics mid-test.
        "log.retention.ms": "-1",
        # The log cleaner allocates this buffer on the heap at startup (default 128 MiB).
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        "num.recovery.threads.per.data.dir": "1",
    }
    config.update(overrides or {})
    return config


# --------------------------------------------------------------------------- cluster


@dataclass
class NodeInfo:
    """One combined broker/controller node, as recorded in ``cluster.json``."""

    index: int
    port: int
    controller_port: int
    pid: int | None = None

    @property
    def name(self) -> str:
        return f"broker-{self.index}"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


class Cluster:
    """A local KRaft cluster whose files (config, data, logs, pids) live in ``dir``.

    Create one with :func:`start_cluster`, or attach to a running one (e.g. started
    by the CLI) with :meth:`Cluster.load`. The object is a context manager that
    stops the cluster on exit.
    """

    def __init__(
        self,
        cluster_dir: Path,
        cluster_id: str,
        nodes: list[NodeInfo],
        jvm_opts: Sequence[str],
        watchdog_pid: int | None = None,
    ) -> None:
        self.dir = cluster_dir
        self.cluster_id = cluster_id
        self.nodes = nodes
        self.jvm_opts = list(jvm_opts)
        self.watchdog_pid = watchdog_pid
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._admin: AdminClient | None = None

    # -- addresses and files

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` for clients: every node's PLAINTEXT listener."""
        return ",".join(node.address for node in self.nodes)

    @property
    def size(self) -> int:
        return len(self.nodes)

    def node_dir(self, index: int) -> Path:
        return self.dir / self.nodes[index].name

    def config_path(self, index: int) -> Path:
        return self.node_dir(index) / "server.properties"

    def log_path(self, index: int) -> Path:
        """The broker's Log4j log (``server.log``)."""
        return self.node_dir(index) / "logs" / "server.log"

    def stdout_path(self, index: int) -> Path:
        """The JVM's own stdout/stderr (crashes, bad flags, missing classes)."""
        return self.node_dir(index) / "stdout.log"

    def log_tail(self, index: int, lines: int = 40) -> str:
        parts = []
        for path in (self.stdout_path(index), self.log_path(index)):
            tail = _tail_file(path, lines)
            if tail:
                parts.append(f"--- {path} (last {lines} lines)\n{tail}")
        return "\n".join(parts) or f"(no log output for broker {index} in {self.node_dir(index)})"

    # -- state file

    def save(self) -> None:
        state = {
            "kafka_version": KAFKA_VERSION,
            "cluster_id": self.cluster_id,
            "jvm_opts": self.jvm_opts,
            "bootstrap": self.bootstrap,
            "watchdog_pid": self.watchdog_pid,
            "nodes": [asdict(node) for node in self.nodes],
        }
        tmp = self.dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.dir / STATE_FILE)
        (self.dir / BOOTSTRAP_FILE).write_text(self.bootstrap + "\n")

    @classmethod
    def load(cls, cluster_dir: str | os.PathLike[str]) -> Cluster:
        """Attach to the cluster recorded in ``cluster_dir/cluster.json``."""
        path = Path(cluster_dir).resolve()
        try:
            state = json.loads((path / STATE_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ClusterError(f"no cluster state in {path}: {exc}") from exc
        nodes = [NodeInfo(**node) for node in state["nodes"]]
        return cls(path, state["cluster_id"], nodes, state["jvm_opts"], state.get("watchdog_pid"))

    # -- processes

    def is_running(self, index: int) -> bool:
        """True if node ``index``'s JVM (started from this directory) is alive."""
        pid = self.nodes[index].pid
        if pid is None:
            return False
        child = self._children.get(index)
        if child is not None and child.pid == pid:
            return child.poll() is None
        if not process_alive(pid):
            return False
        # Guard against pid reuse: the command line names this node's config file.
        return str(self.config_path(index)) in _cmdline(pid)

    def running(self) -> list[int]:
        return [node.index for node in self.nodes if self.is_running(node.index)]

    def _launch(self, index: int) -> None:
        java = shutil.which("java")
        if java is None:
            raise ClusterError("'java' is not on PATH (Kafka needs Java 17 or newer)")
        node_dir = self.node_dir(index)
        (node_dir / "logs").mkdir(parents=True, exist_ok=True)
        command = [
            java,
            *self.jvm_opts,
            f"-Dlog4j2.configurationFile={self.dir / LOG4J_FILE}",
            f"-Dkafka.logs.dir={node_dir / 'logs'}",
            "-cp",
            f"{ensure_jars()}/*",
            _MAIN_CLASS,
            str(self.config_path(index)),
        ]
        with open(self.stdout_path(index), "ab") as out:
            child = subprocess.Popen(
                command,
                cwd=node_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, not the broker
            )
        self._children[index] = child
        self.nodes[index].pid = child.pid
        LOG.info(
            "started broker %d (pid %d) on %s",
            index,
            child.pid,
            self.nodes[index].address,
        )

    def _signal(self, index: int, sig: signal.Signals) -> None:
        pid = self.nodes[index].pid
        if pid is not None and self.is_running(index):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _wait_exit(self, indexes: Sequence[int], timeout: float) -> list[int]:
        """Wait until the nodes' JVMs are gone; return those still running."""
        deadline = time.monotonic() + timeout
        alive = [index for index in indexes if self.is_running(index)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [index for index in alive if self.is_running(index)]
        return alive

    def kill(self, index: int) -> None:
        """SIGKILL broker ``index`` (a crash: no controlled shutdown, no flush)."""
        self._check_index(index)
        self._signal(index, signal.SIGKILL)
        if self._wait_exit([index], KILL_TIMEOUT):
            raise ClusterError(f"broker {index} survived SIGKILL for {KILL_TIMEOUT:.0f} s")
        self.nodes[index].pid = None
        self.save()
        LOG.info("killed broker %d", index)

    def stop_broker(self, index: int, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop broker ``index`` with SIGTERM (controlled shutdown), SIGKILL after ``timeout``."""
        self._check_index(index)
        self._stop_nodes([index], timeout)
        self.save()

    def _stop_nodes(self, indexes: Sequence[int], timeout: float) -> None:
        for index in indexes:
            self._signal(index, signal.SIGTERM)
        stubborn = self._wait_exit(indexes, timeout)
        for index in stubborn:
            LOG.warning("broker %d ignored SIGTERM for %.0f s; sending SIGKILL", index, timeout)
            self._signal(index, signal.SIGKILL)
        if self._wait_exit(stubborn, KILL_TIMEOUT):
            raise ClusterError(f"brokers {stubborn} survived SIGKILL")
        for index in indexes:
            self.nodes[index].pid = None

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop every broker (SIGTERM, then SIGKILL after ``timeout``) and the watchdog.

        All nodes get SIGTERM at once: a broker's controlled shutdown needs a controller
        quorum, so nodes stopped one by one leave the last ones blocked. For the same
        reason, when a majority of the voters is already down the survivors get only
        ``QUORUMLESS_STOP_TIMEOUT`` before SIGKILL.
        """
        started = time.monotonic()
        self._admin = None  # destroy the client before its brokers go away
        if len(self.running()) <= len(self.nodes) // 2:
            timeout = min(timeout, QUORUMLESS_STOP_TIMEOUT)
        try:
            self._stop_nodes([node.index for node in self.nodes], timeout)
        finally:
            self._stop_watchdog()
            self.save()
        LOG.info("stopped cluster in %s in %.1f s", self.dir, time.monotonic() - started)

    def restart(self, index: int, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Start broker ``index`` again (same config and data) and wait until it rejoins.

        A running broker is stopped first (SIGTERM). Returns once every running broker,
        this one included, answers metadata requests that list all running brokers.
        """
        self._check_index(index)
        if self.is_running(index):
            self._stop_nodes([index], DEFAULT_STOP_TIMEOUT)
        self._launch(index)
        self.save()
        self.wait_ready(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.nodes):
            raise ClusterError(f"no broker {index}: brokers are 0..{len(self.nodes) - 1}")

    # -- readiness

    def metadata_brokers(self, via: int | None = None, timeout: float = 5.0) -> set[int]:
        """Node ids in the metadata returned by broker ``via`` (default: any running one)."""
        indexes = [via] if via is not None else self.running()
        if not indexes:
            return set()
        admin = AdminClient(
            {
                "bootstrap.servers": ",".join(self.nodes[i].address for i in indexes),
                "socket.timeout.ms": int(timeout * 1000),
                "logger": LOG,
            }
        )
        metadata = admin.list_topics(timeout=timeout)
        return set(metadata.brokers)

    def wait_ready(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Wait until each running broker answers metadata requests listing all running brokers.

        Every broker is asked itself, so a restarted broker counts only once it is
        registered, unfenced and caught up. Fails early, with the tail of its log, if
        a broker's JVM exits meanwhile.
        """
        expected = set(self.running())
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while True:
            for index in sorted(expected):
                if not self.is_running(index):
                    raise ClusterError(f"broker {index} exited during startup\n{self.log_tail(index)}")
            last_error = self._readiness_problem(expected) or ""
            if not last_error:
                return
            if time.monotonic() >= deadline:
                tails = "\n".join(self.log_tail(index, 20) for index in sorted(expected))
                raise ClusterError(f"cluster in {self.dir} not ready after {timeout:.0f} s ({last_error})\n{tails}")
            time.sleep(0.25)

    def _readiness_problem(self, expected: set[int]) -> str | None:
        """Why the ``expected`` brokers are not all ready yet, or None if they are."""
        for index in sorted(expected):
            if not _port_open(self.nodes[index].port):
                return f"broker {index} is not accepting connections yet"
            try:
                seen = self.metadata_brokers(via=index)
            except (KafkaException, OSError) as exc:
                return f"broker {index}: {exc}"
            if not expected <= seen:
                return f"broker {index} lists brokers {sorted(seen)}, want {sorted(expected)}"
        return None

    # -- client helpers (used by the pytest fixtures and the benchmarks)

    @property
    def admin(self) -> AdminClient:
        """A shared admin client for this cluster (created on first use)."""
        if self._admin is None:
            self._admin = AdminClient(self.client_config())
        return self._admin

    def client_config(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Client settings with ``bootstrap.servers`` filled in, updated with ``extra``."""
        return {"bootstrap.servers": self.bootstrap, **(extra or {})}

    @staticmethod
    def unique_name(prefix: str = "test") -> str:
        """A fresh topic / group / transactional id, so users of one cluster never clash."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = TOPIC_TIMEOUT,
    ) -> str:
        """Create a topic, wait until every partition has a leader, and return its name."""
        topic = NewTopic(name, num_partitions=partitions, replication_factor=replication, config=dict(config or {}))
        self.admin.create_topics([topic], operation_timeout=timeout)[name].result(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                leaders = self.partition_leaders(name)
            except (KafkaException, KeyError):
                leaders = {}
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders.values()):
                return name
            if time.monotonic() > deadline:
                raise ClusterError(f"topic {name} has no leader for every partition: {leaders}")
            time.sleep(0.1)

    def delete_topic(self, name: str, timeout: float = TOPIC_TIMEOUT) -> None:
        """Delete a topic (returns once the controller accepted the deletion)."""
        self.admin.delete_topics([name], operation_timeout=timeout)[name].result(timeout)

    def partition_leaders(self, topic: str) -> dict[int, int]:
        """Partition -> leader node id (-1 while a partition has no leader)."""
        partitions = self.admin.list_topics(topic, timeout=10).topics[topic].partitions
        return {p.id: p.leader for p in partitions.values()}

    def partition_isrs(self, topic: str) -> dict[int, list[int]]:
        """Partition -> node ids of the in-sync replicas."""
        partitions = self.admin.list_topics(topic, timeout=10).topics[topic].partitions
        return {p.id: list(p.isrs) for p in partitions.values()}

    def broker_ids(self) -> set[int]:
        """Node ids that the cluster metadata currently lists (alive, unfenced brokers)."""
        return set(self.admin.list_topics(timeout=10).brokers)

    def ensure_running(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Restart every broker that is not running (e.g. one a previous test killed)."""
        for node in self.nodes:
            if not self.is_running(node.index):
                self.restart(node.index, timeout)

    # -- watchdog

    def start_watchdog(self, owner_pid: int) -> None:
        """Stop this cluster if process ``owner_pid`` dies without stopping it."""
        self._stop_watchdog()
        command = [sys.executable, str(Path(__file__).resolve()), "_watch", "--dir", str(self.dir)]
        with open(self.dir / "watchdog.log", "ab") as log:
            watchdog = subprocess.Popen(
                [*command, "--owner-pid", str(owner_pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self.watchdog_pid = watchdog.pid
        self._watchdog = watchdog
        self.save()

    def _stop_watchdog(self) -> None:
        pid = self.watchdog_pid
        self.watchdog_pid = None
        if pid is None or pid == os.getpid():
            return
        if "_watch" in _cmdline(pid) and str(self.dir) in _cmdline(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(5)
            self._watchdog = None


def _format_storage(cluster: Cluster, libs: Path) -> None:
    """Run Kafka's StorageTool ``format`` for every node, in parallel."""
    java = shutil.which("java")
    if java is None:
        raise ClusterError("'java' is not on PATH (Kafka needs Java 17 or newer)")
    jobs: list[tuple[int, subprocess.Popen[bytes], Path]] = []
    for node in cluster.nodes:
        node_dir = cluster.node_dir(node.index)
        out_path = node_dir / "format.log"
        with open(out_path, "wb") as out:
            command = [
                java,
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                f"-Dlog4j2.configurationFile={cluster.dir / LOG4J_TOOLS_FILE}",
                "-cp",
                f"{libs}/*",
                _STORAGE_TOOL_CLASS,
                "format",
                "--cluster-id",
                cluster.cluster_id,
                "--config",
                str(cluster.config_path(node.index)),
            ]
            jobs.append(
                (
                    node.index,
                    subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    ),
                    out_path,
                )
            )
    errors = []
    for index, job, out_path in jobs:
        try:
            code = job.wait(FORMAT_TIMEOUT)
        except subprocess.TimeoutExpired:
            job.kill()
            job.wait()
            code = -1
        if code != 0:
            errors.append(f"formatting broker {index} failed (exit {code}):\n{_tail_file(out_path)}")
    if errors:
        raise ClusterError("\n".join(errors))


def _write_properties(path: Path, config: Mapping[str, str]) -> None:
    lines = ["# Written by tests/kafka/cluster.py"]
    lines += [f"{key}={value}" for key, value in config.items()]
    path.write_text("\n".join(lines) + "\n")


def start_cluster(
    cluster_dir: str | os.PathLike[str],
    brokers: int = 1,
    *,
    heap: str = DEFAULT_HEAP,
    timeout: float = DEFAULT_START_TIMEOUT,
    config: Mapping[str, str] | None = None,
    jvm_opts: Sequence[str] = (),
    cds: bool = True,
    owner_pid: int | None = None,
) -> Cluster:
    """Fetch the jars if needed, format and start ``brokers`` nodes, wait until ready.

    ``timeout`` bounds formatting, startup and the wait for all brokers to appear in
    the metadata (the Maven fetch, if any, is bounded separately by ``FETCH_TIMEOUT``).

    ``cluster_dir`` must not hold a running cluster; it is created if needed and a
    previous (stopped) cluster's files in it are replaced. ``config`` overrides or
    adds broker properties; ``jvm_opts`` are appended to the broker JVM flags. With
    ``cds`` the brokers map a class-data-sharing archive of Kafka's classes (built
    once by :func:`ensure_cds_archive`), which saves over a third of the CPU time a
    broker needs to start. With ``owner_pid`` a watchdog process stops the
    cluster when that process dies (e.g. a test session killed with SIGKILL).
    On any failure the started brokers are stopped and :class:`ClusterError` raised.
    """
    if brokers < 1:
        raise ClusterError("a cluster needs at least one broker")
    _size_bytes(heap)  # validate before anything is written
    path = Path(cluster_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    if (path / STATE_FILE).exists():
        previous = Cluster.load(path)
        if previous.running():
            raise ClusterError(f"a cluster is already running in {path}; stop it first")
        previous._stop_watchdog()
        for node in previous.nodes:
            shutil.rmtree(path / node.name, ignore_errors=True)
    # Neither is counted in ``timeout``: a cold fetch and the one-off archive have their own bounds.
    libs = ensure_jars()
    archive = ensure_cds_archive() if cds else None
    sharing = [f"-XX:SharedArchiveFile={archive}"] if archive is not None else []
    started = time.monotonic()
    ports = free_ports(2 * brokers)
    nodes = [NodeInfo(index=i, port=ports[2 * i], controller_port=ports[2 * i + 1]) for i in range(brokers)]
    cluster = Cluster(path, new_cluster_id(), nodes, jvm_options(heap, [*sharing, *jvm_opts]))
    (path / LOG4J_FILE).write_text(_LOG4J2_PROPERTIES)
    (path / LOG4J_TOOLS_FILE).write_text(_LOG4J2_TOOLS_PROPERTIES)
    for node in nodes:
        node_dir = cluster.node_dir(node.index)
        shutil.rmtree(node_dir, ignore_errors=True)
        (node_dir / "logs").mkdir(parents=True)
        _write_properties(
            cluster.config_path(node.index),
            broker_config(node.index, nodes, path, config),
        )
    cluster.save()
    _format_storage(cluster, libs)
    formatted = time.monotonic()
    try:
        for node in nodes:
            cluster._launch(node.index)
        cluster.save()
        if owner_pid is not None:
            cluster.start_watchdog(owner_pid)
        cluster.wait_ready(timeout=max(1.0, timeout - (time.monotonic() - started)))
    except BaseException:
        cluster.stop(timeout=10)
        raise
    LOG.info(
        "cluster of %d ready at %s in %.1f s (format %.1f s)",
        brokers,
        cluster.bootstrap,
        time.monotonic() - started,
        formatted - started,
    )
    return cluster


# --------------------------------------------------------------------------- CLI


def _watch(cluster_dir: Path, owner_pid: int) -> int:
    """Body of the hidden ``_watch`` command: stop the cluster once the owner is gone."""
    stop = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    while not stop:
        if not process_alive(owner_pid):
            LOG.warning(
                "owner process %d is gone; stopping cluster in %s",
                owner_pid,
                cluster_dir,
            )
            cluster = Cluster.load(cluster_dir)
            cluster.watchdog_pid = None
            cluster.stop(timeout=15)
            return 0
        time.sleep(0.5)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cluster.py",
        description="Local Apache Kafka (KRaft) cluster for kstreams tests.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="start a cluster; prints bootstrap=HOST:PORT,...")
    start.add_argument("--dir", required=True, type=Path, help="cluster directory")
    start.add_argument("--brokers", type=int, default=1, help="number of nodes (default 1)")
    start.add_argument("--heap", default=DEFAULT_HEAP, help=f"-Xmx per broker ({DEFAULT_HEAP})")
    start.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_START_TIMEOUT,
        help="seconds to wait for the cluster (default %(default)s)",
    )
    start.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra broker property (repeatable)",
    )

    stop = commands.add_parser("stop", help="stop every broker (SIGTERM, then SIGKILL)")
    stop.add_argument("--dir", required=True, type=Path)
    stop.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_STOP_TIMEOUT,
        help="seconds before SIGKILL (default %(default)s)",
    )

    kill = commands.add_parser("kill", help="SIGKILL one broker")
    kill.add_argument("--dir", required=True, type=Path)
    kill.add_argument("--broker", required=True, type=int, help="0-based broker index")

    restart = commands.add_parser("restart", help="start one broker again and wait for it")
    restart.add_argument("--dir", required=True, type=Path)
    restart.add_argument("--broker", required=True, type=int, help="0-based broker index")
    restart.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT)

    status = commands.add_parser("status", help="show brokers, pids and ports")
    status.add_argument("--dir", required=True, type=Path)

    commands.add_parser("fetch", help="download the Kafka jars (Maven) unless cached")

    watch = commands.add_parser("_watch")  # internal: see Cluster.start_watchdog
    watch.add_argument("--dir", required=True, type=Path)
    watch.add_argument("--owner-pid", required=True, type=int)
    return parser


def _parse_config(pairs: Sequence[str]) -> dict[str, str]:
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ClusterError(f"--config wants KEY=VALUE, got {pair!r}")
        config[key.strip()] = value.strip()
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "_watch" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "start":
            cluster = start_cluster(
                args.dir,
                args.brokers,
                heap=args.heap,
                timeout=args.timeout,
                config=_parse_config(args.config),
            )
            print(f"bootstrap={cluster.bootstrap}", flush=True)
        elif args.command == "stop":
            Cluster.load(args.dir).stop(timeout=args.timeout)
        elif args.command == "kill":
            Cluster.load(args.dir).kill(args.broker)
        elif args.command == "restart":
            Cluster.load(args.dir).restart(args.broker, timeout=args.timeout)
        elif args.command == "status":
            cluster = Cluster.load(args.dir)
            sys.stdout.write("".join(line + "\n" for line in _status_lines(cluster)))
            return 0 if cluster.running() else 3
        elif args.command == "fetch":
            ensure_jars()
        elif args.command == "_watch":
            return _watch(args.dir.resolve(), args.owner_pid)
    except ClusterError as exc:
        LOG.error("%s", exc)
        return 1
    return 0


def _status_lines(cluster: Cluster) -> Iterator[str]:
    yield f"cluster {cluster.cluster_id} in {cluster.dir}: bootstrap={cluster.bootstrap}"
    for node in cluster.nodes:
        state = "running" if cluster.is_running(node.index) else "stopped"
        yield (f"broker {node.index}: {state} pid={node.pid} port={node.port} controller_port={node.controller_port}")


if __name__ == "__main__":
    sys.exit(main())
