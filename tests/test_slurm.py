"""The smoke DAG through a real one-node SLURM cluster (tests/slurm_cluster.py), run as the README's
cluster section says: `snakemake --profile workflow/profiles/slurm`, then `dvc commit --force`.

`make test-slurm` runs this module (marker `slurm`; `make test` leaves it out): the local reference
run, the run through SLURM and the time-limit rerun (a dense training of a few minutes).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import smoke_runs
import yaml
from conftest import copy_repo
from mlflow.tracking import MlflowClient
from slurm_cluster import LocalSlurmCluster, listening_addresses, minutes, slurm_cluster

pytestmark = pytest.mark.slurm

# The first status poll 5 s after a submission rather than the plugin's 40 s: the smoke jobs take
# seconds. The logs of successful jobs are kept, to be read below.
SLURM = [
    "snakemake",
    "--profile",
    "workflow/profiles/slurm",
    "--slurm-init-seconds-before-status-checks",
    "5",
    "--slurm-keep-successful-logs",
]
LOCAL_DRY_RUN = ["snakemake", "--profile", "workflow/profiles/default", "-n"]
SACCT_FIELDS = ("JobIDRaw", "JobName", "Comment", "State", "ReqCPUS", "AllocCPUS", "ReqMem", "Timelimit", "Elapsed")


def run(command: list[str], repo: Path, cluster: LocalSlurmCluster | None = None, check: bool = True):
    """A command in the repository copy; with a cluster, its clients find it through SLURM_CONF."""
    return smoke_runs.run(command, repo, check, cluster.env if cluster else None)


def stage_instances(repo: Path) -> list[tuple[str, dict[str, str], object]]:
    """(rule, wildcards, resources) of every job of the repo's DAG."""
    from maskscope.pipeline.config import load_params
    from pipelines.stages import build_stages

    stages = build_stages(load_params(repo / "params.yaml").variants)
    return [(stage.name, item, stage.resources) for stage in stages for item in stage.instances()]


def job_comment(rule: str, wildcards: dict[str, str]) -> str:
    """What the executor plugin writes into a job's comment: the rule and its wildcard values."""
    return f"rule_{rule}" + (f"_wildcards_{'_'.join(wildcards.values())}" if wildcards else "")


def new_jobs(cluster: LocalSlurmCluster, before: set[str]) -> list[dict[str, str]]:
    return [row for row in cluster.sacct(*SACCT_FIELDS) if row["JobIDRaw"] not in before]


def job_ids(cluster: LocalSlurmCluster) -> set[str]:
    return {row["JobIDRaw"] for row in cluster.sacct("JobIDRaw")}


def files_under(repo: Path) -> dict[str, float]:
    return {
        str(path.relative_to(repo)): path.stat().st_mtime
        for path in repo.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(repo).parts
    }


@pytest.fixture(scope="module")
def cluster():
    with slurm_cluster() as running:
        from pipelines.stages import STAGES

        cpus = max(stage.resources.cpus for stage in STAGES)
        mem_mb = max(stage.resources.mem_mb for stage in STAGES)
        if running.cpus < cpus or running.memory_mb < mem_mb:
            pytest.fail(
                f"this machine has {running.cpus} CPUs and {running.memory_mb} MB; the registry's largest "
                f"stages ask {cpus} CPUs and {mem_mb} MB, which sbatch would refuse on its one node"
            )
        yield running


@dataclass
class SlurmRun:
    repo: Path
    jobs: list[dict[str, str]]  # sacct rows of the jobs the run submitted
    seconds: float


@pytest.fixture(scope="module")
def slurm_smoke(cluster, tmp_path_factory) -> SlurmRun:
    repo = copy_repo(tmp_path_factory.mktemp("slurm-repo"))
    run(["maskscope", "preset", "smoke"], repo)
    before = job_ids(cluster)
    started = time.perf_counter()
    result = run(SLURM, repo, cluster)
    seconds = time.perf_counter() - started
    (repo.parent / "snakemake-slurm.log").write_text(result.stdout + result.stderr)
    run(["dvc", "commit", "--force"], repo)
    jobs = new_jobs(cluster, before)
    # sacct's own lines for these jobs, kept beside the copy for whoever reads the test's tmp dir
    lines = ["|".join(SACCT_FIELDS), *("|".join(row.values()) for row in jobs)]
    (repo.parent / "sacct.txt").write_text("\n".join(lines) + "\n")
    print(f"smoke DAG through SLURM: {seconds:.0f} s, {len(jobs)} jobs")
    return SlurmRun(repo, jobs, seconds)


def test_every_daemon_listens_on_loopback_only(cluster):
    listening = {name: listening_addresses(daemon.pid) for name, daemon in cluster.daemons.items()}
    assert set(listening) == {"mariadbd", "munged", "slurmdbd", "slurmctld", "slurmd"}
    ports = {"mariadbd": "mariadb", "slurmdbd": "slurmdbd", "slurmctld": "slurmctld", "slurmd": "slurmd"}
    for name, port in ports.items():
        assert ("127.0.0.1", cluster.ports[port]) in listening[name], (name, listening[name])
    for name, addresses in listening.items():
        assert {address for address, _ in addresses} <= {"127.0.0.1", "::1"}, (name, addresses)
    assert listening["munged"] == set()  # a unix socket only


def test_slurmctld_down_fails_before_anything_is_written(cluster, tmp_path):
    repo = copy_repo(tmp_path / "repo")
    run(["maskscope", "preset", "smoke"], repo)
    files = files_under(repo)
    jobs_before = job_ids(cluster)
    cluster.stop_controller()
    try:
        result = run(SLURM, repo, cluster, check=False)
    finally:
        cluster.start_controller()
        cluster.wait_idle()
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the SLURM controller does not answer (`scontrol ping`" in said
    assert "start slurmctld" in said and "nothing was submitted" in said
    written = {path for path in set(files_under(repo)) - set(files) if not path.startswith(".snakemake/log/")}
    assert written == set(), written  # no output, no MLflow store, no Snakemake metadata
    assert files_under(repo).items() >= files.items()  # and nothing rewritten
    assert job_ids(cluster) == jobs_before


def test_accounting_down_fails_naming_slurmdbd(cluster, tmp_path):
    repo = copy_repo(tmp_path / "repo")
    run(["maskscope", "preset", "smoke"], repo)
    cluster.daemons.pop("slurmdbd").stop()
    try:
        result = run(SLURM, repo, cluster, check=False)
    finally:
        cluster.start_slurmdbd()
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert "SLURM job accounting does not answer (`sacct`" in said and "start slurmdbd" in said
    assert not (repo / "mlflow.db").exists() and not (repo / "data" / "corpus").exists()


def test_every_stage_ran_as_a_slurm_job_with_the_registry_resources(slurm_smoke):
    expected = {
        job_comment(rule, wildcards): resources for rule, wildcards, resources in stage_instances(slurm_smoke.repo)
    }
    comments = [row["Comment"] for row in slurm_smoke.jobs]
    assert sorted(comments) == sorted(expected)  # each job once, every one through sbatch
    for row in slurm_smoke.jobs:
        resources = expected[row["Comment"]]
        assert row["State"] == "COMPLETED", row
        assert int(row["ReqCPUS"]) == int(row["AllocCPUS"]) == resources.cpus, row
        assert row["ReqMem"] == f"{resources.mem_mb}M", row
        assert minutes(row["Timelimit"]) == resources.runtime, row
    assert len({row["JobName"] for row in slurm_smoke.jobs}) == 1  # one workflow run named them all


def test_dvc_commit_records_the_run_and_neither_tool_has_anything_to_do(slurm_smoke):
    repo = slurm_smoke.repo
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert "Nothing to be done" in run(LOCAL_DRY_RUN, repo).stdout
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("maskscope").experiment_id
    parents = client.search_runs([experiment], "tags.`maskscope.invocation` = 'snakemake'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert len(children) == len(slurm_smoke.jobs)  # each job's stage attached to the run that submitted it


def test_outputs_have_the_md5s_of_a_local_run(slurm_smoke, smoke_repo):
    """Every output as the same preset's local `dvc repro` wrote it; those holding measured CPU times
    (evaluate, baselines, probes, report) equal but for the measurements."""
    reference_lock = smoke_repo.parent / smoke_runs.REFERENCE_LOCK
    differ = smoke_runs.output_differences(slurm_smoke.repo, slurm_smoke.repo / "dvc.lock", smoke_repo, reference_lock)
    assert differ == {}, differ
    md5s = smoke_runs.lock_md5s(slurm_smoke.repo / "dvc.lock")
    assert len(md5s) >= 40 and "models/dense" in md5s and "data/mix" in md5s  # compared: the whole DAG's outputs


def test_a_job_over_its_time_limit_is_killed_and_the_rerun_resumes_training(cluster, slurm_smoke, tmp_path):
    import torch

    repo = tmp_path / "repo"
    shutil.copytree(slurm_smoke.repo, repo, symlinks=True)
    # A dense training of a few minutes in epochs of ~8 s, sized from the smoke run's own epochs.
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("maskscope").experiment_id
    dense = client.search_runs([experiment], "tags.`maskscope.stage` = 'train_dense'")[0]
    epoch_seconds = max(m.value for m in client.get_metric_history(dense.info.run_id, "epoch_seconds"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    steps = params["train"]["steps_per_epoch"]
    params["train"]["steps_per_epoch"] = max(steps, math.ceil(steps * 8.0 / epoch_seconds))
    epochs = 20
    params["train"]["epochs"] = epochs
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    before = job_ids(cluster)
    killed = run([*SLURM, "--until", "train_dense", "--set-resources", "train_dense:runtime=1"], repo, cluster, False)
    assert killed.returncode != 0
    [job] = new_jobs(cluster, before)
    assert job["Comment"] == "rule_train_dense" and job["State"] == "TIMEOUT", job
    assert minutes(job["Timelimit"]) == 1
    assert "TIMEOUT" in killed.stdout + killed.stderr
    [checkpoint] = (repo / "checkpoints" / "dense").glob("*.pt")
    done = torch.load(checkpoint, weights_only=True)["state"]["epoch"]
    assert 1 <= done < epochs, done  # killed mid-training, after at least one epoch was saved
    assert not (repo / "models" / "dense").exists()

    before = job_ids(cluster)
    run([*SLURM, "--until", "train_dense"], repo, cluster)
    [job] = new_jobs(cluster, before)
    assert job["State"] == "COMPLETED" and minutes(job["Timelimit"]) == 720, job
    log = (repo / ".snakemake" / "slurm_logs" / "rule_train_dense" / f"{job['JobIDRaw']}.log").read_text()
    assert re.search(rf"resuming from checkpoints/dense/\w+\.pt after epoch {done}\b", log), log[-3000:]
    trained = [int(m) for m in re.findall(r"epoch (\d+): train", log)]
    assert trained == list(range(done + 1, epochs + 1))  # only the epochs the killed job had not finished
    history = (repo / "plots" / "train" / "dense.csv").read_text().splitlines()
    assert len(history) == 1 + epochs
    assert not checkpoint.exists()  # a finished training leaves no checkpoint behind
    assert json.loads((repo / "metrics" / "train" / "dense.json").read_text())["epochs"] == epochs
