"""The command line as a user meets it: clear errors, exit codes, nothing half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
from conftest import ROOT, harmonic_speechlike

from maskscope.core.audio import encode_flac
from maskscope.core.io import write_parquet
from maskscope.data.noise_recordings import NOISE_SCHEMA
from maskscope.data.utterances import CORPUS_SCHEMA
from maskscope.pipeline.config import Params, preset_params, write_params

MASKSCOPE = str(Path(sys.executable).parent / "maskscope")


def maskscope(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([MASKSCOPE, *args], cwd=cwd, capture_output=True, text=True, env=env)


def test_params_check_names_the_bad_key(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: -4\n")
    result = maskscope("params", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "key 'seed'" in result.stderr and "-4" in result.stderr and "greater than or equal to 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_preset_command_writes_valid_params(tmp_path):
    shutil.copytree(ROOT / "pipelines" / "presets", tmp_path / "pipelines" / "presets")
    result = maskscope("preset", "smoke", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert maskscope("params", "check", cwd=tmp_path).returncode == 0
    assert 'preset: "smoke"' in (tmp_path / "params.yaml").read_text()


def test_repro_with_a_preset_regenerates_the_dag_as_the_preset_command_does(tmp_path):
    from conftest import copy_repo

    repo = copy_repo(tmp_path / "repo")
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    env["PATH"] = f"{Path(MASKSCOPE).parent}{os.pathsep}{env['PATH']}"  # dvc and snakemake of this environment
    # a dry run: the slimming DAG is planned, and nothing runs
    result = maskscope("repro", "--tool", "snakemake", "--preset", "slimming", "-n", cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    assert 'preset: "slimming"' in (repo / "params.yaml").read_text()
    assert (
        "train_router@slim-dyn-25" in (repo / "dvc.yaml").read_text()
        or "slim-dyn-25" in (repo / "dvc.yaml").read_text()
    )
    assert "models/slim-dyn-25" in (repo / "dvc.yaml").read_text()
    assert "train_router" in result.stdout
    preset_made = copy_repo(tmp_path / "other")
    assert maskscope("preset", "slimming", cwd=preset_made, env=env).returncode == 0
    assert (preset_made / "dvc.yaml").read_text() == (repo / "dvc.yaml").read_text()


def test_repro_refuses_an_unknown_tool_before_writing_anything(tmp_path):
    shutil.copytree(ROOT / "pipelines" / "presets", tmp_path / "pipelines" / "presets")
    write_params(Params(), tmp_path / "params.yaml")
    before = (tmp_path / "params.yaml").read_text()
    result = maskscope("repro", "--tool", "make", "--preset", "smoke", cwd=tmp_path)
    assert result.returncode == 2 and "'make'" in result.stderr and "'snakemake'" in result.stderr
    assert (tmp_path / "params.yaml").read_text() == before


def test_an_unknown_stage_is_named_with_the_stages_there_are(tmp_path):
    result = maskscope("stage", "nosuch", cwd=tmp_path)
    assert result.returncode == 2 and "no stage named 'nosuch'; stages: baselines, corpus" in result.stderr
    commands = maskscope("--help", cwd=tmp_path).stdout.split("Commands")[1]
    assert "│ stage " not in commands and "│ repro " in commands  # the stage runner is for the tools only


def test_missing_debian_tool_says_what_to_install(tmp_path):
    write_params(preset_params(ROOT / "pipelines" / "presets", "smoke"), tmp_path / "params.yaml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dpkg-query", "git"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{bin_dir}"}
    result = maskscope("stage", "corpus", "--keys", "seed,corpus", "--out", "corpus=data/corpus", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "apt-get install -y espeak-ng" in result.stderr
    assert not (tmp_path / "data" / "corpus").exists()


def write_tiny_corpus(directory: Path, corrupt_utt: str | None) -> None:
    directory.mkdir(parents=True)
    rows = []
    for index, (speaker, kind) in enumerate(
        [(f"v{i}", "synthetic") for i in range(3)] + [(f"r{i}", "real") for i in range(3)]
    ):
        utt_id = f"{speaker}-0"
        audio = encode_flac(harmonic_speechlike(0.5, seed=index))
        rows.append(
            {
                "utt_id": utt_id,
                "speaker": speaker,
                "family": speaker,
                "kind": kind,
                "language": "en",
                "source": "test",
                "text": "x",
                "duration_s": 0.5,
                "num_samples": 8000,
                "sha256": "0",
                "audio": b"garbage" if utt_id == corrupt_utt else audio,
            }
        )
    table = pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA)
    write_parquet(table, directory / "audio-00000.parquet")
    write_parquet(table.drop_columns(["audio"]), directory / "manifest.parquet")


def write_tiny_noises(directory: Path, classes: list[str]) -> None:
    directory.mkdir(parents=True)
    noise = encode_flac(0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32))
    rows = [
        {"split": s, "noise_class": c, "num_samples": 16000, "audio": noise}
        for s in ("train", "valid", "test")
        for c in classes
    ]
    write_parquet(pa.Table.from_pylist(rows, schema=NOISE_SCHEMA), directory / "noises.parquet")


def mix_args() -> list[str]:
    return [
        "stage",
        "mix",
        "--keys",
        "seed,splits,noises.classes,mix",
        "--dep",
        "corpus=corpus",
        "--dep",
        "noises=noises",
        "--out",
        "mix=mix",
        "--out",
        "metrics=mix.json",
    ]


def test_mix_stage_on_tiny_inputs(tmp_path):
    params = Params().model_copy(update={"noises": Params().noises.model_copy(update={"classes": ["white", "pink"]})})
    write_params(params, tmp_path / "params.yaml")
    write_tiny_corpus(tmp_path / "corpus", None)
    write_tiny_noises(tmp_path / "noises", ["white", "pink"])
    result = maskscope(*mix_args(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "mix").iterdir()) == [
        "test-00000.parquet",
        "train-00000.parquet",
        "valid-00000.parquet",
    ]


def test_corrupt_audio_fails_naming_the_utterance_and_writes_nothing(tmp_path):
    params = Params().model_copy(update={"noises": Params().noises.model_copy(update={"classes": ["white", "pink"]})})
    write_params(params, tmp_path / "params.yaml")
    write_tiny_corpus(tmp_path / "corpus", corrupt_utt="r1-0")
    write_tiny_noises(tmp_path / "noises", ["white", "pink"])
    result = maskscope(*mix_args(), cwd=tmp_path)
    assert result.returncode == 2
    assert "r1-0" in result.stderr and "cannot be decoded" in result.stderr
    assert not (tmp_path / "mix").exists() and not (tmp_path / "mix.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_missing_input_says_which_stage_to_run(tmp_path):
    write_params(Params(), tmp_path / "params.yaml")
    result = maskscope(*mix_args(), cwd=tmp_path)
    assert result.returncode == 2
    assert "input 'corpus' (corpus) does not exist" in result.stderr
