"""Start Apache Kafka 4.x in KRaft mode from jars resolved from Maven Central.

Used by `make kafka`, `make run`, `make bench` and the test suite. Needs only Java 17+ and Maven:

    python broker/launch.py                 # one combined broker+controller on 127.0.0.1:9092
    python broker/launch.py --nodes 3       # three-node KRaft cluster on 9092, 9094, 9096

The jars go under var/broker/lib (Maven also caches them in ~/.m2), the data under var/kafka, the
broker's own log under var/log/kafka.log. A second start reuses the data. Ctrl-C or SIGTERM stops the
broker cleanly. The module is importable: tests drive `Cluster` directly.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "broker" / "pom.xml"
LIB = ROOT / "var" / "broker" / "lib"
# Sized for a small host (a couple of cores shared with the apps): a small heap, the serial collector (no
# concurrent GC threads competing for the cores) and two JIT compiler threads. Override either for a
# bigger machine, e.g. KAFKA_HEAP_OPTS="-Xms1g -Xmx1g" KAFKA_JVM_OPTS="-XX:+UseG1GC -XX:MaxGCPauseMillis=20".
HEAP = os.environ.get("KAFKA_HEAP_OPTS", "-Xms128m -Xmx256m").split()
JVM = os.environ.get("KAFKA_JVM_OPTS", "-XX:+UseSerialGC -XX:CICompilerCount=2").split()


class LaunchError(RuntimeError):
    """A problem the user can fix; the message says how."""


def say(msg: str) -> None:
    print(f"[kafka] {msg}", flush=True)


# ---------------------------------------------------------------- jars


def resolve_jars(lib: Path = LIB) -> Path:
    """Copy Kafka and its runtime dependencies into `lib` (skipped when the pom has not changed)."""
    stamp = lib / ".pom-sha256"
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and any(lib.glob("kafka_2.13-*.jar")):
        return lib
    if not shutil.which("java"):
        raise LaunchError(
            "Java is not installed. Install Java 17 or newer "
            "(Debian: apt-get install openjdk-17-jre-headless) and retry."
        )
    mvn = shutil.which("mvn")
    if not mvn:
        raise LaunchError("Maven is not installed. Install it (Debian: apt-get install maven) and retry.")
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    cmd = [mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={lib}"]
    say("resolving Kafka jars from Maven Central (first run only; cached in ~/.m2) ...")
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise LaunchError(
            f"could not resolve the Kafka jars. The command was:\n  {' '.join(cmd)}\nIt said:\n{tail}\n"
            "Check that this machine reaches https://repo.maven.apache.org (or your ~/.m2/settings.xml mirror)."
        )
    stamp.write_text(digest)
    say(f"jars ready in {time.monotonic() - started:.1f}s ({len(list(lib.glob('*.jar')))} jars)")
    return lib


# ---------------------------------------------------------------- wire check


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> int:
    """Send a Kafka Metadata v4 request by hand and return how many brokers the cluster reports.

    Hand-written so the launcher needs nothing but the standard library.
    """
    client_id = b"conveyor-launcher"
    body = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id + struct.pack(">i?", 0, False)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        payload = _recv_exact(sock, size)
    correlation_id, _throttle, brokers = struct.unpack(">iii", payload[:12])
    if correlation_id != 7:
        raise OSError("unexpected metadata response")
    return brokers


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- config

LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="{log}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
    <Console name="console" target="SYSTEM_ERR">
      <PatternLayout pattern="[kafka-{node}] %p %m%n"/>
      <ThresholdFilter level="ERROR"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/><AppenderRef ref="console"/></Root>
    <Logger name="kafka.server.KafkaServer" level="INFO"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
  </Loggers>
</Configuration>
"""


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    data_dir: Path
    process: subprocess.Popen | None = None

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"


@dataclass
class Cluster:
    """One or more combined broker+controller nodes on loopback."""

    nodes_count: int = 1
    base_port: int = 9092
    data_dir: Path = ROOT / "var" / "kafka"
    log_dir: Path = ROOT / "var" / "log"
    partitions: int = int(os.environ.get("KAFKA_TOPIC_PARTITIONS", "6"))
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.log_dir = Path(self.log_dir).resolve()
        self.nodes = [
            Node(i + 1, self.base_port + 2 * i, self.base_port + 2 * i + 1, self.data_dir / f"node-{i + 1}")
            for i in range(self.nodes_count)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    # -- preparation

    def write_configs(self) -> None:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = min(3, self.nodes_count)
        min_isr = 2 if self.nodes_count >= 3 else 1
        for node in self.nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            quorum = (
                f"controller.quorum.bootstrap.servers=127.0.0.1:{node.controller_port}"
                if self.nodes_count == 1
                else f"controller.quorum.voters={voters}"
            )
            node.config_path.write_text(
                "\n".join(
                    [
                        "process.roles=broker,controller",
                        f"node.id={node.node_id}",
                        quorum,
                        f"listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
                        f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}",
                        "inter.broker.listener.name=PLAINTEXT",
                        "controller.listener.names=CONTROLLER",
                        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                        f"log.dirs={node.data_dir / 'data'}",
                        f"num.partitions={self.partitions}",
                        f"default.replication.factor={replicas}",
                        f"min.insync.replicas={min_isr}",
                        f"offsets.topic.replication.factor={replicas}",
                        "offsets.topic.num.partitions=12",
                        f"transaction.state.log.replication.factor={replicas}",
                        f"transaction.state.log.min.isr={min_isr}",
                        f"share.coordinator.state.topic.replication.factor={replicas}",
                        f"share.coordinator.state.topic.min.isr={min_isr}",
                        "group.initial.rebalance.delay.ms=0",
                        "auto.create.topics.enable=false",
                        # few threads: a small host has few cores, and every idle thread still wakes
                        "num.network.threads=1",
                        "num.io.threads=2",
                        "background.threads=2",
                        "log.retention.hours=168",
                        "log.segment.bytes=104857600",
                        "",
                    ]
                )
            )
            (node.data_dir / "log4j2.xml").write_text(
                LOG4J2.format(
                    log=self.log_dir / f"kafka{'' if self.nodes_count == 1 else '-' + str(node.node_id)}.log",
                    node=node.node_id,
                )
            )

    def format_storage(self, lib: Path) -> None:
        cluster_file = self.data_dir / "cluster.id"
        if not cluster_file.exists():
            cluster_file.write_text(_kafka_cluster_id())
        cluster_id = cluster_file.read_text().strip()
        for node in self.nodes:
            if (node.data_dir / "data" / "meta.properties").exists():
                continue
            # `--cluster-id=<id>`: an id that starts with "-" (written by an earlier launcher) is still a value
            args = ["format", f"--cluster-id={cluster_id}", "-c", str(node.config_path)]
            if self.nodes_count == 1:
                args.insert(1, "--standalone")
            done = subprocess.run(
                self._java(lib, node, "kafka.tools.StorageTool", args), capture_output=True, text=True
            )
            if done.returncode != 0:
                raise LaunchError(
                    f"formatting {node.data_dir} failed:\n{done.stdout}{done.stderr}\n"
                    f"If the directory holds another cluster's data, remove {self.data_dir} and retry."
                )

    def _java(self, lib: Path, node: Node, main: str, args: list[str]) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java,
            *HEAP,
            *JVM,
            "-Djava.awt.headless=true",
            "-Dlog4j2.shutdownHookEnabled=false",  # the broker stops itself; no noisy second hook
            f"-Dlog4j2.configurationFile={node.data_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            f"{lib}/*",
            main,
            *args,
        ]

    # -- lifecycle

    def start(self) -> None:
        if not shutil.which("java"):
            raise LaunchError(
                "Java is not installed. Install Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)."
            )
        for node in self.nodes:
            for port in (node.port, node.controller_port):
                if not port_is_free(port):
                    raise LaunchError(
                        f"port {port} is already in use (another Kafka? see `ss -ltnp | grep :{port}`). "
                        "Stop that process, or set KAFKA_BOOTSTRAP_SERVERS to use the broker that is running."
                    )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        lib = resolve_jars()
        self.write_configs()
        self.format_storage(lib)
        for node in self.nodes:
            self.start_node(node, lib)

    def start_node(self, node: Node, lib: Path = LIB) -> None:
        node.process = subprocess.Popen(
            self._java(lib, node, "kafka.Kafka", [str(node.config_path)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Block until every node answers a metadata request naming all brokers; return seconds waited."""
        started = time.monotonic()
        pending = list(self.nodes)
        while pending:
            node = pending[0]
            if node.process is not None and node.process.poll() is not None:
                raise LaunchError(
                    f"Kafka node {node.node_id} exited with code {node.process.returncode} while starting.\n"
                    f"{self.log_tail()}\nSee {self.log_dir} for the whole log."
                )
            try:
                if metadata_brokers("127.0.0.1", node.port) >= self.nodes_count:
                    pending.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() - started > timeout:
                raise LaunchError(
                    f"Kafka did not answer on 127.0.0.1:{node.port} within {timeout:.0f}s.\n{self.log_tail()}"
                )
            time.sleep(0.1)
        return time.monotonic() - started

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for log in sorted(self.log_dir.glob("kafka*.log")):
            out.extend(log.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out)

    def stop_node(self, node: Node, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if node.process is None or node.process.poll() is not None:
            return
        node.process.send_signal(sig)
        try:
            node.process.wait(timeout)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            self.stop_node(node)


def _kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as `random-uuid` prints). Like
    Kafka's own `Uuid.randomUuid`, never one that starts with "-", which command lines take for an option."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _die_with_parent() -> None:
    """Linux: the broker gets SIGTERM if its launcher dies, so no orphaned JVM holds the ports."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=int(os.environ.get("NODES", "1") or 1))
    parser.add_argument("--port", type=int, default=9092, help="first broker port; controllers use port+1")
    parser.add_argument("--data-dir", default=None, help="default: var/kafka (var/kafka-cluster for --nodes>1)")
    parser.add_argument("--resolve-only", action="store_true", help="fetch the jars and exit")
    args = parser.parse_args(argv)

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and not args.resolve_only:
        say(f"KAFKA_BOOTSTRAP_SERVERS={os.environ['KAFKA_BOOTSTRAP_SERVERS']} is set: using it, starting nothing.")
        return 0
    try:
        if args.resolve_only:
            resolve_jars()
            say(f"jars in {LIB}")
            return 0
        data_dir = args.data_dir or ROOT / "var" / ("kafka" if args.nodes == 1 else "kafka-cluster")
        cluster = Cluster(nodes_count=args.nodes, base_port=args.port, data_dir=data_dir)
        started = time.monotonic()
        say(f"starting {args.nodes} node(s), data in {cluster.data_dir}, log in {cluster.log_dir}")
        cluster.start()
        stopping = []

        def _stop(signum, _frame):
            stopping.append(signum)
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        try:
            cluster.wait_ready()
            say(f"ready on {cluster.bootstrap_servers} in {time.monotonic() - started:.1f}s (Ctrl-C stops it)")
            while all(n.process.poll() is None for n in cluster.nodes):
                time.sleep(0.5)
            say(f"a broker exited unexpectedly.\n{cluster.log_tail()}")
            return 1
        except KeyboardInterrupt:
            say("stopping ...")
            cluster.stop()
            say("stopped")
            return 0
    except LaunchError as exc:
        say(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
