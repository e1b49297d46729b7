from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_tracking(tmp_path_factory, monkeypatch):
    """Keep every test's MLflow runs out of the repository's own store."""
    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.delenv("MASKSCOPE_PARENT_RUN_ID", raising=False)


def harmonic_speechlike(seconds: float, f0: float = 140.0, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """A voiced-like test signal: harmonics of `f0` with syllable-rate amplitude modulation."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3.0 * t)) ** 2
    return (0.1 * voice * envelope).astype(np.float32)


def copy_repo(destination: Path) -> Path:
    """A working copy of the repository's tracked and new files (no data, no venv), as a git repo."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for relative in listed:
        source = ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    subprocess.run(["git", "add", "-A"], cwd=destination, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "copy"], cwd=destination, check=True, env=env)
    return destination


@pytest.fixture(scope="session")
def smoke_repo(tmp_path_factory):
    """The smoke DAG run locally, once per test session, for the end-to-end tests and as the
    reference the SLURM run's outputs are compared with (smoke_runs.local_smoke_run)."""
    from smoke_runs import local_smoke_run

    return local_smoke_run(copy_repo(tmp_path_factory.mktemp("repo")))


@contextlib.contextmanager
def archive_servers(workdir: Path):
    """Start tests/archive_server.py processes on 127.0.0.1; each is stopped by PID at the end.

    Yields start(root, behaviour) -> (base_url, read_log)."""
    processes: list[subprocess.Popen] = []

    def start(root: Path, behaviour: dict | None = None, lifetime: float = 900.0):
        port_file = workdir / f"port-{len(processes)}"
        log_file = workdir / f"requests-{len(processes)}.jsonl"
        log_file.touch()
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "archive_server.py"),
                str(root),
                str(port_file),
                str(log_file),
                json.dumps(behaviour or {}),
                str(lifetime),
            ]
        )
        processes.append(process)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the test archive server did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"

        def read_log() -> list[dict]:
            return [json.loads(line) for line in log_file.read_text().splitlines()]

        return url, read_log

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=10)


@pytest.fixture
def archive_server(tmp_path):
    with archive_servers(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def archive_server_module(tmp_path_factory):
    with archive_servers(tmp_path_factory.mktemp("server")) as start:
        yield start


@pytest.fixture
def one_torch_thread():
    """Tiny models run faster on one thread than split over two (and leave a core to the rest)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
