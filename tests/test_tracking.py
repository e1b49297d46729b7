from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from maskscope.core.errors import MissingInputError
from maskscope.pipeline.tracking import (
    PARENT_RUN_ENV,
    dvc_md5,
    end_parent_run,
    stage_run,
    start_parent_run,
    tracking_uri,
)


def test_parent_and_child_runs_carry_lineage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "input"
    data.mkdir()
    (data / "a.bin").write_bytes(b"abc")
    parent = start_parent_run("dvc", "smoke")
    monkeypatch.setenv(PARENT_RUN_ENV, parent)
    out = tmp_path / "out.json"
    with stage_run("labels", {"labels": {"vad_threshold_db": -35.0}}, {"mix": data}, "smoke") as tracker:
        out.write_text("{}")
        tracker.record_results({"test": {"frames": 10}}, {"metrics": out})
    end_parent_run(parent, True)

    client = MlflowClient(tracking_uri())
    children = client.search_runs(
        [client.get_experiment_by_name("maskscope").experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert len(children) == 1
    child = children[0]
    assert child.info.status == "FINISHED"
    assert child.data.tags["maskscope.stage"] == "labels"
    assert child.data.tags["input.mix.md5"] == dvc_md5(data)
    assert child.data.tags["output.metrics.md5"] == dvc_md5(out)
    assert child.data.params["labels.vad_threshold_db"] == "-35.0"
    assert child.data.metrics["test.frames"] == 10.0
    assert child.inputs.dataset_inputs[0].dataset.name == "mix"
    assert client.get_run(parent).info.status == "FINISHED"


def test_failed_stage_marks_its_run_failed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError), stage_run("mix", {}, {}, "default"):
        raise RuntimeError("boom")
    client = MlflowClient(tracking_uri())
    runs = client.search_runs([client.get_experiment_by_name("maskscope").experiment_id])
    assert [run.info.status for run in runs] == ["FAILED"]


def test_unreachable_server_is_reported_and_the_stage_completes(tmp_path, monkeypatch, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    out = tmp_path / "result.txt"
    with stage_run("corpus", {"seed": 1}, {}, "default") as tracker:
        out.write_text("kept")
        tracker.record_results({"minutes": 1.0}, {"result": out})
    assert out.read_text() == "kept"
    assert "MLflow tracking failed" in caplog.text and "outputs are kept" in caplog.text


def test_dvc_md5_matches_dvc_for_files_and_directories(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_bytes(b"bee")
    (tmp_path / "d" / "sub" / "a.txt").write_bytes(b"ay")
    (tmp_path / "f.txt").write_bytes(b"file")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "add", "-q", "d", "f.txt"], cwd=tmp_path, check=True)
    import yaml

    for name in ("d", "f.txt"):
        recorded = yaml.safe_load((tmp_path / f"{name}.dvc").read_text())["outs"][0]["md5"]
        assert dvc_md5(tmp_path / name) == recorded


def test_default_store_is_sqlite_in_the_repo(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri() == "sqlite:///mlflow.db"


def test_stage_runner_tracks_via_cli(tmp_path, monkeypatch):
    """The child run of a real stage invocation records its params slice."""
    from maskscope.pipeline.config import Params, write_params
    from maskscope.pipeline.runner import run_stage

    monkeypatch.chdir(tmp_path)
    write_params(Params(), tmp_path / "params.yaml")
    mix = tmp_path / "mix"
    mix.mkdir()
    with pytest.raises(MissingInputError):  # the stage starts, finds no shards, fails: its run is FAILED
        run_stage("labels", Path("params.yaml"), ["labels"], {"mix": mix}, {"labels": tmp_path / "labels"}, 1)
    client = MlflowClient(tracking_uri())
    run = client.search_runs([client.get_experiment_by_name("maskscope").experiment_id])[0]
    assert run.info.status == "FAILED"
    assert json.loads(json.dumps(run.data.params)) == {
        "labels.vad_threshold_db": "-35.0",
        "labels.f0_floor_hz": "60.0",
        "labels.f0_ceil_hz": "500.0",
    }
    assert not (tmp_path / "labels").exists()


def test_a_run_is_dirty_for_changed_code_or_params_but_not_for_the_pipelines_own_outputs(tmp_path):
    from maskscope.pipeline.tracking import git_state

    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for relative in ("src/stage.py", "params.yaml", "metrics/probes.json", "plots/train/dense.csv", "dvc.lock"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("committed\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "c"], cwd=tmp_path, check=True, env=env)
    for output in ("metrics/probes.json", "plots/train/dense.csv", "dvc.lock"):  # what every run rewrites
        (tmp_path / output).write_text("measured again\n")
    assert git_state(tmp_path)["git.dirty"] == "false"
    (tmp_path / "params.yaml").write_text("seed: 2\n")
    assert git_state(tmp_path)["git.dirty"] == "true"
    subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=tmp_path, check=True)
    (tmp_path / "src" / "new.py").write_text("x = 1\n")  # untracked code counts
    assert git_state(tmp_path)["git.dirty"] == "true"
