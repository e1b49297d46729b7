"""`maskscope lineage`: from a metric, a file or a run id back to the sources, via dvc.lock and MLflow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from mlflow.tracking import MlflowClient

from maskscope.pipeline.lineage import LineageError, trace

LOCK = {
    "schema": "2.0",
    "stages": {
        "corpus": {
            "cmd": "c",
            "deps": [{"path": "src/maskscope/data/embedded_corpus.py", "md5": "c0"}],
            "params": {"params.yaml": {"seed": 1, "corpus": {"source": "embedded"}}},
            "outs": [{"path": "data/corpus", "md5": "corpus.dir"}],
        },
        "mix": {
            "cmd": "m",
            "deps": [
                {"path": "data/corpus", "md5": "corpus.dir"},
                {"path": "src/maskscope/data/mixing.py", "md5": "c1"},
            ],
            "outs": [{"path": "data/mix", "md5": "mix.dir"}],
        },
        "train@dyncp-25": {
            "cmd": "t",
            "deps": [{"path": "data/mix", "md5": "mix.dir"}],
            "params": {"params.yaml": {"variants.dyncp-25": {"kind": "dyncp", "target_usage": 0.25}}},
            "outs": [{"path": "models/dyncp-25", "md5": "model.dir"}],
        },
        "probes": {
            "cmd": "p",
            "deps": [{"path": "models/dyncp-25", "md5": "model.dir"}, {"path": "data/mix", "md5": "mix.dir"}],
            "outs": [{"path": "data/probes", "md5": "probes.dir"}, {"path": "metrics/probes.json", "md5": "pj"}],
        },
    },
}


PIPELINE = {
    "stages": {
        "corpus": {"cmd": "c"},
        "mix": {"cmd": "m"},
        "train": {"matrix": {"variant": ["dyncp-25"]}, "cmd": "t"},
        "probes": {"cmd": "p"},
    }
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    stale = {"cmd": "old", "outs": [{"path": "data/mix", "md5": "stale.dir"}]}  # a stage dvc.yaml no longer has
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({**LOCK, "stages": {"old_mix": stale, **LOCK["stages"]}}))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/probes.json").write_text(json.dumps({"dyncp-25": {"vad_accuracy": 0.91}}))
    monkeypatch.chdir(tmp_path)
    client = MlflowClient()
    experiment = client.create_experiment("maskscope")
    runs = {}
    for stage, outputs in [("corpus", ["corpus.dir"]), ("mix", ["mix.dir"]), ("probes", ["probes.dir", "pj"])]:
        tags = {"maskscope.stage": stage, "git.commit": f"commit-{stage}", "git.dirty": "false"}
        tags.update({f"output.o{i}.md5": md5 for i, md5 in enumerate(outputs)})
        runs[stage] = client.create_run(experiment, tags=tags).info.run_id
    # an older run of mix that wrote different bytes must not be picked
    client.create_run(experiment, tags={"maskscope.stage": "mix", "output.o0.md5": "old.dir", "git.commit": "x"})
    return tmp_path, runs


def test_a_metric_key_is_traced_back_to_the_corpus(workspace):
    _, runs = workspace
    lineage = trace("probes.dyncp-25.vad_accuracy")
    assert lineage.value == 0.91
    assert [link.stage for link in lineage.chain] == ["probes", "mix", "train@dyncp-25", "corpus"]
    by_stage = {link.stage: link for link in lineage.chain}
    assert by_stage["mix"].run_id == runs["mix"] and by_stage["mix"].git_commit == "commit-mix"
    assert by_stage["train@dyncp-25"].run_id is None  # no run recorded those bytes: said, not invented
    assert by_stage["corpus"].params == {"seed": 1, "corpus": {"source": "embedded"}}
    assert (
        by_stage["mix"].inputs == {"data/corpus": "corpus.dir"}
        and "src/maskscope/data/mixing.py" in by_stage["mix"].code
    )


def test_a_path_and_a_run_id_start_the_same_chain(workspace):
    _, runs = workspace
    assert [link.stage for link in trace("data/mix/train-00000.parquet").chain] == ["mix", "corpus"]
    assert [link.stage for link in trace(runs["mix"]).chain] == ["mix", "corpus"]


def test_unknown_targets_say_what_was_tried(workspace):
    with pytest.raises(LineageError, match="stopped at 'pesq'"):
        trace("probes.dyncp-25.pesq")
    with pytest.raises(LineageError, match="neither a file"):
        trace("nothing.here")


def test_the_command_prints_json_for_machines(workspace):
    result = subprocess.run(
        [sys.executable, "-m", "maskscope.cli", "lineage", "probes.dyncp-25.vad_accuracy", "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["value"] == 0.91 and data["chain"][0]["stage"] == "probes"
