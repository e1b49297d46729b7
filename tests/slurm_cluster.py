"""A one-node SLURM cluster that a test starts and stops: Debian's SLURM 22.05 (slurmctld, slurmd,
slurmdbd), munge and MariaDB (`make apt-slurm` installs them), all in one temporary directory.

Why slurmdbd and a database: snakemake-executor-plugin-slurm polls job states with `sacct` whenever
the sacct binary is on PATH, and slurm-client always ships it. Without accounting storage sacct
exits 1 with "Slurm accounting storage is disabled": the plugin counts every poll as failed and never
learns that a job ended, so a run hangs. (The plugin can poll with squeue instead,
`--slurm-status-command squeue`, but only while slurmctld still remembers finished jobs, MinJobAge
>= 120 s, and then it also loses sacct's failure reasons.) So this cluster keeps job accounting as a
real one does: slurmdbd on a MariaDB whose datadir is in the temporary directory.

- slurm.conf: one node at 127.0.0.1 with the cores and memory `slurmd -C` finds, proctrack/linuxproc,
  task/none, cons_tres on cores and memory (a job gets the CPUs and memory it asks for, no more
  jobs than fit), job comments stored (the executor plugin writes the rule's name there), a `gpu`
  GRES only if /dev/nvidia* devices exist.
- A fresh munge key, written by the test.
- Everything listens on 127.0.0.1 only: slurmctld and slurmd through
  CommunicationParameters=NoCtldInAddrAny,NoInAddrAny, MariaDB through --bind-address, munge on a
  unix socket. slurmdbd 22.05 has no such setting (it binds the wildcard address), so it runs with
  tests/bind_loopback.c preloaded, which turns its wildcard bind into a loopback bind.
- snakemake-executor-plugin-slurm-jobstep runs each job's command under a nested `srun` after
  dropping every SLURM_* variable but a few, SLURM_CONF among them: inside a job, SLURM's commands
  find slurm.conf only at its default path, /etc/slurm/slurm.conf, as on an ordinary cluster. So
  slurmd runs in a private mount namespace where this cluster's etc/ is bind-mounted on /etc/slurm;
  its jobs inherit that view, and nothing on the machine is changed.
- Every daemon runs in the foreground under `timeout` (it ends after `lifetime` seconds even if the
  test process is killed) and is stopped by its PID, after the cluster's jobs are cancelled.

Clients (sbatch, sacct, snakemake's executor) find the cluster through SLURM_CONF in `cluster.env`.
`python tests/slurm_cluster.py` starts one for trying things by hand and stops it on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIFETIME = 3 * 3600.0  # seconds: no daemon outlives this, whatever happens to the test
NODE = "maskscope-node"
PARTITION = "main"
DEFAULT_CONF_DIR = Path("/etc/slurm")  # where SLURM's commands look for slurm.conf without SLURM_CONF
EXECUTABLES = {
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "slurmdbd": "slurmdbd",
    "sbatch": "slurm-client",
    "munged": "munge",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "gcc": "build-essential",
    "unshare": "util-linux",
}


class ClusterStartError(RuntimeError):
    pass


def missing_executables() -> list[str]:
    return [f"{name} ({package})" for name, package in EXECUTABLES.items() if shutil.which(name) is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_hardware() -> dict[str, str]:
    """What slurmd finds on this machine: CPUs, sockets, cores, threads, RealMemory (MB)."""
    line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True, timeout=60).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", line.splitlines()[0]))
    keys = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    return {key: fields[key] for key in keys if key in fields}


def gpu_devices() -> list[str]:
    return sorted(str(path) for path in Path("/dev").glob("nvidia[0-9]*"))


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen  # `timeout LIFETIME daemon ...`
    output: Path

    @property
    def pid(self) -> int:
        """The daemon's own PID (the child of `timeout`), or timeout's if it has none (yet)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(children.read_text().split()[0])
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> None:
        if not self.alive():
            return
        pid = self.pid
        os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class LocalSlurmCluster:
    def __init__(self, root: Path, lifetime: float = LIFETIME):
        self.root = root
        self.lifetime = lifetime
        self.user = getpass.getuser()
        self.daemons: dict[str, Daemon] = {}
        self.ports = {name: free_port() for name in ("mariadb", "slurmdbd", "slurmctld", "slurmd")}
        self.munge_socket = root / "munge" / "munge.socket"
        self.conf = root / "etc" / "slurm.conf"
        self.hardware = node_hardware()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 60))

    @property
    def cpus(self) -> int:
        return int(self.hardware["CPUs"])

    @property
    def memory_mb(self) -> int:
        return int(self.hardware["RealMemory"])

    @property
    def env(self) -> dict[str, str]:
        """What a client needs in its environment to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    # --- configuration -------------------------------------------------------------------------

    def _write(self, relative: str, text: str, mode: int = 0o644) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def write_config(self) -> None:
        root = self.root
        for directory in ("etc", "munge", "log", "state", "spool", "run", "db"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        # munged wants a private key, and a socket directory every user can traverse
        (root / "munge" / "munge.key").write_bytes(secrets.token_bytes(1024))
        (root / "munge" / "munge.key").chmod(0o600)
        (root / "munge").chmod(0o755)
        self.db_password = secrets.token_hex(12)
        self._write(
            "db/init.sql",
            "".join(
                f"CREATE USER IF NOT EXISTS 'slurm'@'{host}' IDENTIFIED BY '{self.db_password}';\n"
                f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{host}';\n"
                for host in ("127.0.0.1", "localhost")
            ),
            0o600,
        )
        gpus = gpu_devices()
        node = " ".join(f"{key}={value}" for key, value in self.hardware.items())
        gres = f" Gres=gpu:{len(gpus)}" if gpus else ""
        if gpus:
            self._write("etc/gres.conf", "".join(f"Name=gpu File={device}\n" for device in gpus))
        self._write(
            "etc/slurm.conf",
            f"""# written by tests/slurm_cluster.py
ClusterName=maskscope
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={self.ports["slurmctld"]}
SlurmdPort={self.ports["slurmd"]}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser={self.user}
SlurmdUser={self.user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={self.ports["slurmdbd"]}
AccountingStoragePass={self.munge_socket}
AccountingStoreFlags=job_comment
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=5
{"GresTypes=gpu" if gpus else ""}
NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname=localhost {node}{gres} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""",
        )
        # slurmdbd reads slurmdbd.conf beside slurm.conf and insists on it being private
        self._write(
            "etc/slurmdbd.conf",
            f"""# written by tests/slurm_cluster.py
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports["slurmdbd"]}
SlurmUser={self.user}
PidFile={root}/run/slurmdbd.pid
LogFile={root}/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports["mariadb"]}
StorageUser=slurm
StoragePass={self.db_password}
StorageLoc=slurm_acct_db
""",
            0o600,
        )

    # --- daemons -------------------------------------------------------------------------------

    def _spawn(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> Daemon:
        output = self.root / "log" / f"{name}.out"
        with open(output, "ab") as sink:
            process = subprocess.Popen(
                ["timeout", "--kill-after=10", str(int(self.lifetime)), *command],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, **(extra_env or {})},
                start_new_session=True,  # a Ctrl-C of the test reaches the daemons only through stop()
            )
        daemon = Daemon(name, process, output)
        self.daemons[name] = daemon
        return daemon

    def _wait(self, daemon: Daemon, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not daemon.alive():
                raise ClusterStartError(f"{daemon.name} exited ({daemon.process.returncode}):\n{daemon.tail()}")
            if time.monotonic() > deadline:
                raise ClusterStartError(f"{daemon.name} not ready within {timeout:.0f} s:\n{daemon.tail()}")
            time.sleep(0.2)

    def _listening(self, port: int) -> Callable[[], bool]:
        def ready() -> bool:
            with socket.socket() as probe:
                probe.settimeout(1)
                return probe.connect_ex(("127.0.0.1", port)) == 0

        return ready

    def client(self, *command: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster."""
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def _answers(self, *command: str, expect: str = "") -> Callable[[], bool]:
        def ready() -> bool:
            result = self.client(*command, check=False, timeout=30)
            return result.returncode == 0 and expect in result.stdout

        return ready

    def start_database(self) -> None:
        datadir = self.root / "db" / "data"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={datadir}",
                f"--user={self.user}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        daemon = self._spawn(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={datadir}",
                f"--user={self.user}",
                "--bind-address=127.0.0.1",
                f"--port={self.ports['mariadb']}",
                f"--socket={self.root / 'db' / 'mariadb.sock'}",
                f"--pid-file={self.root / 'run' / 'mariadbd.pid'}",
                f"--init-file={self.root / 'db' / 'init.sql'}",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M",
            ],
        )
        self._wait(daemon, self._listening(self.ports["mariadb"]))

    def start_munge(self) -> None:
        munge = self.root / "munge"
        daemon = self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                f"--key-file={munge / 'munge.key'}",
                f"--socket={self.munge_socket}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--seed-file={munge / 'munged.seed'}",
                "--num-threads=10",
            ],
        )
        self._wait(daemon, lambda: self.munge_socket.exists())

    def start_slurmdbd(self) -> None:
        shim = self.root / "run" / "bind_loopback.so"
        if not shim.exists():
            subprocess.run(
                ["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(HERE / "bind_loopback.c"), "-ldl"],
                check=True,
                capture_output=True,
                timeout=120,
            )
        daemon = self._spawn("slurmdbd", ["slurmdbd", "-D"], {"LD_PRELOAD": str(shim)})
        self._wait(daemon, self._listening(self.ports["slurmdbd"]))

    def start_controller(self) -> None:
        daemon = self._spawn("slurmctld", ["slurmctld", "-D"])
        self._wait(daemon, self._answers("scontrol", "ping", expect=" is UP"))

    def stop_controller(self) -> None:
        self.daemons.pop("slurmctld").stop()

    def start_node(self) -> None:
        # The jobs' nested srun finds no SLURM_CONF (the jobstep plugin drops it) and reads the default
        # path: slurmd, and so every job it starts, sees this cluster's etc/ at /etc/slurm, in a mount
        # namespace of its own. The machine's /etc/slurm stays as it is.
        if not DEFAULT_CONF_DIR.is_dir():
            raise ClusterStartError(f"{DEFAULT_CONF_DIR} is missing: reinstall slurm-client (`make apt-slurm`)")
        mount_then_run = 'mount --bind "$0" "$1" && exec slurmd -D -N "$2"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount_then_run]
        daemon = self._spawn("slurmd", [*command, str(self.conf.parent), str(DEFAULT_CONF_DIR), NODE])
        self.wait_idle(daemon)

    def wait_idle(self, daemon: Daemon | None = None, timeout: float = 60.0) -> None:
        """Until the node takes jobs (after a start, or a restart of the controller)."""
        check = self._answers("sinfo", "--noheader", "--nodes", NODE, "--format", "%T", expect="idle")
        self._wait(daemon or self.daemons["slurmd"], check, timeout)

    def start(self) -> None:
        self.write_config()
        self.start_database()
        self.start_munge()
        self.start_slurmdbd()
        self.start_controller()
        self.start_node()

    def stop(self) -> None:
        """Cancel the cluster's jobs, then stop every daemon by PID, the node first."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].alive():
            self.client("scancel", "--user", self.user, check=False, timeout=30)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                queue = self.client("squeue", "--noheader", "--format", "%i", check=False, timeout=30)
                if queue.returncode != 0 or not queue.stdout.strip():
                    break
                time.sleep(1)
        for name in ("slurmd", "slurmctld", "slurmdbd", "munged", "mariadbd"):
            if name in self.daemons:
                self.daemons.pop(name).stop()

    # --- queries -------------------------------------------------------------------------------

    def sacct(self, *fields: str, job_name: str | None = None) -> list[dict[str, str]]:
        """One row per job allocation (no steps) since the cluster started, as {field: value}."""
        command = ["sacct", "--allusers", "--allocations", "--parsable2", "--noheader"]
        command += ["--starttime", self.started_at, "--format", ",".join(fields)]
        command += ["--name", job_name] if job_name else []
        rows = self.client(*command).stdout.splitlines()
        return [dict(zip(fields, row.split("|"), strict=True)) for row in rows if row]


@contextlib.contextmanager
def slurm_cluster(lifetime: float = LIFETIME) -> Iterator[LocalSlurmCluster]:
    """Start the cluster in a fresh directory under /tmp (munged needs a socket path every user can
    traverse, which pytest's private tmp_path is not); stop it and remove the directory afterwards."""
    missing = missing_executables()
    if missing:
        raise ClusterStartError(f"not installed: {', '.join(missing)}; run `make apt-slurm`")
    root = Path(tempfile.mkdtemp(prefix="maskscope-slurm-", dir="/tmp"))
    root.chmod(0o755)
    cluster = LocalSlurmCluster(root, lifetime)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs on which process `pid` listens for TCP connections (IPv4 and IPv6),
    read from /proc: its socket inodes, matched against the kernel's tables of sockets in LISTEN."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                address, port = local.split(":")
                raw = bytes.fromhex(address)
                # /proc/net prints the address as 32-bit words in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add((str(ipaddress.ip_address(words)), int(port, 16)))
    return found


def minutes(limit: str) -> int:
    """sacct's Timelimit ([days-]hours:minutes:seconds) in minutes."""
    days, _, clock = limit.rpartition("-")
    hours, mins, _ = (int(part) for part in clock.split(":"))
    return (int(days or 0) * 24 + hours) * 60 + mins


if __name__ == "__main__":
    with slurm_cluster() as running:
        print(f"export SLURM_CONF={running.conf}  # {running.cpus} CPUs, {running.memory_mb} MB; Ctrl-C stops it")
        try:
            signal.pause()
        except KeyboardInterrupt:
            sys.exit(0)
