"""What the tests that run the whole smoke DAG share: running commands in a copy of the repository,
the local reference run (`make repro PRESET=smoke`, conftest's `smoke_repo`), and comparing two runs'
outputs by their DVC md5s, the outputs that hold measured CPU times without those measurements.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

# Outputs that hold measured CPU times, beside reproducible bytes: evaluate and the baselines time
# every system, the probes are budgeted and timed against the baselines, the report plots and
# tabulates both. Two runs of the same DAG agree on these only once the measurements are left out.
MEASURED_FILES = ("metrics/evaluate.json", "metrics/probes.json")
MEASURED_DIRS = ("data/baselines", "data/probes", "reports")
UNCOMPARABLE_DIRS = ("reports",)  # its figures draw measured CPU times: compared by file names only
REFERENCE_LOCK = "smoke-dvc.lock"  # beside the local run's repository: its dvc.lock right after the run


def repo_env(repo: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Run the copy's own code with this environment's tools; without MLFLOW_TRACKING_URI the stages
    use the default store, mlflow.db in the repository."""
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "CI": "true", "PYTHONPATH": str(repo / "src"), **(extra or {})}


def run(
    command: list[str], cwd: Path, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `command` in the repository copy `cwd`; `env` adds variables (a cluster's SLURM_CONF)."""
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=repo_env(cwd, env), stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def local_smoke_run(repo: Path) -> Path:
    """The README's own command on a fresh copy, which shares the installed environment of this run.
    Keeps the dvc.lock it wrote beside the copy (REFERENCE_LOCK): tests change the copy afterwards."""
    (repo / ".venv").symlink_to(Path(sys.prefix))
    with open(repo / ".git" / "info" / "exclude", "a") as exclude:
        exclude.write(".venv\n")
    # The copied pins are newer than the shared environment's install stamp, so make would reinstall
    # the package from the copy, leaving this environment's editable install pointing into a
    # temporary directory. Date them back: the environment is already installed from these pins.
    stamp = Path(sys.prefix, ".installed")
    if stamp.exists():
        before = stamp.stat().st_mtime - 1
        for name in ("pyproject.toml", "requirements.lock"):
            os.utime(repo / name, (before, before))
    started = time.perf_counter()
    result = run(["make", "repro", "PRESET=smoke"], repo)
    print(f"smoke make repro: {time.perf_counter() - started:.1f} s")
    repo.joinpath("repro.log").write_text(result.stdout + result.stderr)
    (repo.parent / REFERENCE_LOCK).write_text((repo / "dvc.lock").read_text())
    return repo


def without_measured_costs(value: object) -> object:
    """A metrics tree without the keys that hold measured CPU time."""
    if isinstance(value, dict):
        return {k: without_measured_costs(v) for k, v in value.items() if "cpu" not in k}
    return value


def lock_md5s(lock: Path) -> dict[str, str]:
    """Every output path a dvc.lock records, with its md5."""
    stages = yaml.safe_load(lock.read_text())["stages"]
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])}


def _cached(repo: Path, md5: str) -> Path:
    """An object in the repository's DVC cache (DVC 3 layout): outputs stay readable there by the
    md5 dvc.lock recorded, whatever the working tree holds now."""
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def _directory(repo: Path, md5: str) -> dict[str, str]:
    """A directory output's files and their md5s, from its `.dir` manifest in the cache."""
    return {entry["relpath"]: entry["md5"] for entry in json.loads(_cached(repo, md5).read_text())}


def _comparable_json(repo: Path, md5: str) -> object:
    return without_measured_costs(json.loads(_cached(repo, md5).read_text()))


def output_differences(repo: Path, lock: Path, reference_repo: Path, reference_lock: Path) -> dict[str, str]:
    """Where two runs' outputs differ, {path: how}: every output by its DVC md5, those of
    MEASURED_FILES and MEASURED_DIRS file by file, their JSON without the measured CPU times."""
    ours, theirs = lock_md5s(lock), lock_md5s(reference_lock)
    differ = {path: "only in one run" for path in set(ours) ^ set(theirs)}
    for path in set(ours) & set(theirs):
        if ours[path] == theirs[path]:
            continue
        if path in MEASURED_FILES:
            if _comparable_json(repo, ours[path]) != _comparable_json(reference_repo, theirs[path]):
                differ[path] = "differs beyond its measured CPU times"
        elif path in MEASURED_DIRS:
            files, reference_files = _directory(repo, ours[path]), _directory(reference_repo, theirs[path])
            if set(files) != set(reference_files):
                differ[path] = f"other files: {sorted(set(files) ^ set(reference_files))}"
            elif path not in UNCOMPARABLE_DIRS:
                for name in sorted(name for name in files if files[name] != reference_files[name]):
                    if not name.endswith(".json"):
                        differ[f"{path}/{name}"] = f"md5 {files[name]} != {reference_files[name]}"
                    elif _comparable_json(repo, files[name]) != _comparable_json(reference_repo, reference_files[name]):
                        differ[f"{path}/{name}"] = "differs beyond its measured CPU times"
        else:
            differ[path] = f"md5 {ours[path]} != {theirs[path]}"
    return differ
