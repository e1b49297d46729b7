"""The whole smoke DAG through real `dvc repro` and real `snakemake`, in a copy of the repository."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import copy_repo
from mlflow.tracking import MlflowClient
from smoke_runs import repo_env, run, without_measured_costs

from maskscope.analysis.masks import aligned_bits, read_masks
from maskscope.core.framing import frame_count
from maskscope.core.io import read_shards
from maskscope.data.splits import SPLITS
from maskscope.evaluation.peers import PEERS
from maskscope.pipeline.config import gated_variants, load_params, preset_params, variants_of_kind
from maskscope.pipeline.tracking import dvc_md5

pytestmark = pytest.mark.e2e

# The smoke preset trains every kind of variant: Conv-FSENet dense/DynCP/static, DEMUCS slimmable/routed.
SMOKE_VARIANTS = preset_params(Path(__file__).resolve().parent.parent / "pipelines/presets", "smoke").variants
FSENET_VARIANTS = variants_of_kind(SMOKE_VARIANTS, "dense", "dyncp", "static")
PRUNED_VARIANTS = variants_of_kind(SMOKE_VARIANTS, "dyncp", "static")
ROUTED_VARIANTS = variants_of_kind(SMOKE_VARIANTS, "slim-dyn")
GATED_VARIANTS = gated_variants(SMOKE_VARIANTS)
EARLY_EXIT_VARIANTS = variants_of_kind(SMOKE_VARIANTS, "nsnet2")
TRUNCATED_VARIANTS = variants_of_kind(SMOKE_VARIANTS, "nsnet2-static")
SMOKE_EXITS = preset_params(Path(__file__).resolve().parent.parent / "pipelines/presets", "smoke").nsnet2.exits
NSNET2_TRAININGS = {f"train_nsnet2@{variant}" for variant in (*EARLY_EXIT_VARIANTS, *TRUNCATED_VARIANTS)}
SLIM_WIDTHS = ("1/8", "1/4", "1/2", "1")

OUTPUTS = ["data/corpus", "data/noises", "data/mix", "data/labels", "data/evaluate"]
SNAKEMAKE = ["snakemake", "--profile", "workflow/profiles/default"]


def snakemake_planned_rules(repo: Path) -> set[str]:
    output = run([*SNAKEMAKE, "-n"], repo).stdout
    if "Nothing to be done" in output:
        return set()
    table = output.split("Job stats:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", table, re.M)} - {"total", "all"}


def with_consumers(repo: Path, *names: str) -> set[str]:
    """The named stages and every stage of the repo's DAG that reads, directly or not, what they write."""
    from pipelines.stages import build_stages, fill

    STAGES = build_stages(load_params(repo / "params.yaml").variants)

    def concrete(stage, templates):
        return {fill(path, item) for path in templates for item in stage.instances()}

    outs = {entry.name: concrete(entry, [out.path for out in entry.outs.values()]) for entry in STAGES}
    deps = {entry.name: concrete(entry, entry.deps.values()) for entry in STAGES}
    found = set(names)
    while True:
        written = set().union(*(outs[name] for name in found))
        readers = {name for name, paths in deps.items() if paths & written} - found
        if not readers:
            return found
        found |= readers


def dvc_changed_stages(repo: Path) -> set[str]:
    return set(json.loads(run(["dvc", "status", "--json"], repo).stdout))


def set_param(repo: Path, section: str, key: str, value: object) -> None:
    path = repo / "params.yaml"
    data = yaml.safe_load(path.read_text())
    data[section][key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_dvc_run_leaves_nothing_to_do_for_either_tool(smoke_repo):
    assert "up to date" in run(["dvc", "status"], smoke_repo).stdout
    assert snakemake_planned_rules(smoke_repo) == set()


def test_corpus_is_smoke_sized_with_both_kinds_of_speaker(smoke_repo):
    corpus = json.loads((smoke_repo / "metrics/corpus.json").read_text())
    assert corpus["minutes"] <= 3.0
    assert corpus["synthetic"]["speakers"] == 6 and corpus["real"]["speakers"] == 4
    manifest = pq.read_table(smoke_repo / "data/corpus/manifest.parquet").to_pylist()
    assert all(row["sha256"] and row["source"] for row in manifest)
    # Every synthetic line has its text; every recording has its licence (the game actors' lines no text).
    assert all(row["text"] for row in manifest if row["kind"] == "synthetic")
    assert all(row["licence"] for row in manifest if row["kind"] == "real")
    assert all(row["text"] for row in manifest if row["speaker"] in ("asterisk-fr", "festvox-ru"))
    mix = json.loads((smoke_repo / "metrics/mix.json").read_text())
    for split in ("train", "valid", "test"):
        assert mix[split]["synthetic_speakers"] >= 1 and mix[split]["real_speakers"] >= 1, split


def test_splits_are_speaker_disjoint(smoke_repo):
    speakers = {
        split: set(read_shards(smoke_repo / "data/mix", split, ["speaker"]).column("speaker").to_pylist())
        for split in ("train", "valid", "test")
    }
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]


def test_labels_cover_every_stft_frame_of_every_mixture(smoke_repo):
    for split in ("train", "valid", "test"):
        mixtures = read_shards(smoke_repo / "data/mix", split, ["utt_id", "num_samples", "noise_class"]).to_pylist()
        labels = pq.read_table(smoke_repo / f"data/labels/{split}.parquet").to_pandas()
        grouped = labels.groupby("utt_id")
        assert set(grouped.groups) == {m["utt_id"] for m in mixtures}
        for mixture in mixtures:
            frames = grouped.get_group(mixture["utt_id"])
            assert frames["frame"].tolist() == list(range(frame_count(mixture["num_samples"])))
            assert set(frames["noise_class"]) == {mixture["noise_class"]}
        assert labels["vad"].mean() > 0.3 and labels["voiced"].mean() > 0.2


def test_mlflow_has_one_parent_run_with_a_child_per_stage(smoke_repo):
    client = MlflowClient(f"sqlite:///{smoke_repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("maskscope").experiment_id
    parents = client.search_runs([experiment], "tags.`maskscope.invocation` = 'dvc'")
    assert len(parents) >= 1
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parents[-1].info.run_id}'")
    trained = {"train_dense", *(f"train@{variant}" for variant in PRUNED_VARIANTS), "train_slim"}
    trained |= {f"train_router@{variant}" for variant in ROUTED_VARIANTS} | NSNET2_TRAININGS
    dumped = {f"dump_masks@{variant}-{split}" for variant in GATED_VARIANTS for split in ("train", "valid", "test")}
    dumped |= {
        f"dump_exits@{variant}-{split}" for variant in EARLY_EXIT_VARIANTS for split in ("train", "valid", "test")
    }
    assert {run.data.tags["maskscope.stage"] for run in children} == {
        "download",
        "corpus",
        "noises",
        "mix",
        "labels",
        "evaluate",
        "baselines",
        "probes",
        "report",
        *trained,
        *dumped,
    }
    labels_run = next(run for run in children if run.data.tags["maskscope.stage"] == "labels")
    assert labels_run.data.tags["input.mix.md5"] == dvc_md5(smoke_repo / "data/mix")
    assert labels_run.data.tags["git.commit"] != "unknown"


def test_every_variant_is_trained_and_evaluated(smoke_repo):
    evaluation = json.loads((smoke_repo / "metrics/evaluate.json").read_text())
    slimmable = [f"slim-static@{width}" for width in SLIM_WIDTHS]
    exits = [f"{variant}@{name}" for variant in EARLY_EXIT_VARIANTS for name in (*SMOKE_EXITS, "policy")]
    ours = {*FSENET_VARIANTS, *slimmable, *ROUTED_VARIANTS, *exits}
    assert set(evaluation) == {"noisy", *ours, *TRUNCATED_VARIANTS, *PEERS}  # every peer loads from its wheel
    for system in set(evaluation) - {"noisy"}:
        entry = evaluation[system]
        measured = ("pesq", "stoi", "si_sdr", "csig", "cbak", "covl", "cpu_seconds_per_audio_second")
        for key in (*measured, *(("macs_per_sample", "mac_saving") if system in ours else ())):
            assert np.isfinite(entry[key]), (system, key)
        kinds = entry["by_speaker_kind"]
        assert set(kinds) == {"real", "synthetic"}
        per_kind = sum(kind["utterances_scored"] + kind["utterances_failed"] for kind in kinds.values())
        assert per_kind == evaluation["noisy"]["utterances"]
    for variant in SMOKE_VARIANTS:
        assert (smoke_repo / f"models/{variant}/model.pt").is_file()
        history = (smoke_repo / f"plots/train/{variant}.csv").read_text().splitlines()
        epochs = 2 if variant == "dense" else 1  # smoke: train.epochs 2, the others 1
        assert history[0].startswith("epoch,") and len(history) == 1 + epochs
    assert evaluation["dense"]["mac_saving"] == 0.0
    assert evaluation["static-25"]["macs_per_frame"] < evaluation["dense"]["macs_per_frame"]
    for variant in ("dyncp-25", "dyncp-50", "dyncp-75"):
        usage = evaluation[variant]["gate_usage_per_block"]
        assert len(usage) == 3 and all(0.0 <= u <= 1.0 for u in usage)
    # one set of weights, four costs: narrower widths are cheaper, and savings are against full width
    costs = [evaluation[system]["macs_per_sample"] for system in slimmable]
    assert costs == sorted(costs) and len(set(costs)) == 4 and evaluation["slim-static@1"]["mac_saving"] == 0.0
    for variant in ROUTED_VARIANTS:
        entry = evaluation[variant]
        assert sum(entry["uf_share"].values()) == pytest.approx(1.0, abs=1e-3)
        assert 0.125 <= entry["average_uf"] <= 1.0
        assert entry["macs_per_sample"] > costs[0] + entry["router_macs_per_sample"] - 1e-6
    # each exit costs more than the one before, its earlier heads included
    for variant in EARLY_EXIT_VARIANTS:
        costs = [evaluation[f"{variant}@{name}"]["macs_per_frame"] for name in SMOKE_EXITS]
        assert costs == sorted(costs) and len(set(costs)) == len(costs)
        assert all(
            evaluation[f"{variant}@{name}"]["standalone_macs_per_frame"]
            <= evaluation[f"{variant}@{name}"]["macs_per_frame"]
            for name in SMOKE_EXITS
        )
        # the causal exit policy: every frame leaves at an exit from the second on, and pays what it took
        policy = evaluation[f"{variant}@policy"]
        assert sum(policy["exit_share"].values()) == pytest.approx(1.0, abs=1e-3)
        assert policy["exit_share"][SMOKE_EXITS[0]] == 0.0
        assert costs[1] <= policy["macs_per_frame"] <= costs[-1]
    for variant in TRUNCATED_VARIANTS:
        assert evaluation[variant]["exit"] == SMOKE_VARIANTS[variant].exit


def test_enhance_uses_the_trained_default_model(smoke_repo, tmp_path):
    import soundfile as sf

    row = read_shards(smoke_repo / "data/mix", "test", ["utt_id", "noisy", "num_samples"]).to_pylist()[0]
    source = tmp_path / f"{row['utt_id']}.flac"
    source.write_bytes(row["noisy"])
    result = run(["maskscope", "enhance", str(source), "--out", str(tmp_path / "out")], smoke_repo)
    enhanced, rate = sf.read(tmp_path / "out" / f"{row['utt_id']}.wav")
    assert rate == 16000 and enhanced.size == row["num_samples"]
    assert "wrote" in result.stdout
    routed = ROUTED_VARIANTS[0]
    run(["maskscope", "enhance", str(source), "--out", str(tmp_path / routed), "--model", routed], smoke_repo)
    enhanced_by_demucs, rate = sf.read(tmp_path / routed / f"{row['utt_id']}.wav")
    assert rate == 16000 and enhanced_by_demucs.size == row["num_samples"]
    assert not np.allclose(enhanced_by_demucs, enhanced, atol=1e-3)  # another model, another output


def test_enhance_tracks_apply_the_probes_the_pipeline_exported(smoke_repo, tmp_path):
    import pandas as pd

    row = read_shards(smoke_repo / "data/mix", "test", ["utt_id", "noisy"]).to_pylist()[0]
    source = tmp_path / f"{row['utt_id']}.flac"
    source.write_bytes(row["noisy"])
    result = run(["maskscope", "enhance", str(source), "--out", str(tmp_path / "out"), "--tracks"], smoke_repo)
    assert f"{row['utt_id']}: speech " in result.stdout
    tracks = pd.read_parquet(tmp_path / "out" / f"{row['utt_id']}.tracks.parquet")
    # The streaming pass's gates are the dumped masks' (the same model), so the tracks' VAD is the
    # exported VAD table applied to that utterance's dumped masks.
    masks = read_masks(smoke_repo / "data/masks/dyncp-25/test")
    bits = masks.bits[(masks.keys["utt_id"] == row["utt_id"]).to_numpy()]
    table = pq.read_table(smoke_repo / "data/probes/dyncp-25-vad.parquet").to_pandas()
    weights = table[table["bit"] >= 0]
    logit = table.loc[table["bit"] == -1, "weight"].item() + bits[:, weights["bit"]] @ weights["weight"].to_numpy()
    assert len(tracks) == len(bits)
    assert np.mean(tracks["vad"].to_numpy() == (logit > 0)) > 0.99
    assert tracks.loc[~tracks["vad"], "f0_hz"].isna().all()


def test_snakemake_reproduces_the_same_bytes_and_reruns_only_what_changed(smoke_repo):
    repo = smoke_repo
    before = {path: dvc_md5(repo / path) for path in OUTPUTS}
    scored = ("metrics/probes.json", "metrics/evaluate.json")
    scores_before = [without_measured_costs(json.loads((repo / path).read_text())) for path in scored]
    partial = repo / "data/archives/.noisy_testset_wav.zip.part"  # stands in for a broken download's part
    partial.write_bytes(b"first bytes")
    run([*SNAKEMAKE, "--forceall"], repo)
    assert partial.read_bytes() == b"first bytes"  # Snakemake reran `download` but kept what it had
    partial.unlink()
    assert {path: dvc_md5(repo / path) for path in OUTPUTS} == before  # bit-reproducible data stages
    # Quality, probe and baseline scores are reproducible too; measured CPU costs are measurements.
    assert [without_measured_costs(json.loads((repo / path).read_text())) for path in scored] == scores_before
    run(["dvc", "commit", "--force"], repo)  # as `maskscope repro --tool snakemake` does after Snakemake
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert snakemake_planned_rules(repo) == set()

    # What follows changes params and reruns two stages; later tests read this run's outputs, so the
    # params, the lock and the outputs are put back afterwards: data from DVC's cache, the metrics
    # files (kept in git, not in the cache) from their saved text.
    kept = ["params.yaml", "dvc.lock", *(str(path.relative_to(repo)) for path in (repo / "metrics").rglob("*.json"))]
    saved = {name: (repo / name).read_text() for name in kept}
    try:
        set_param(repo, "labels", "vad_threshold_db", -30.0)
        # Snakemake plans what consumes the labels too; DVC lists only the stages whose own deps changed:
        # the labels, and the routers, whose rest loss reads the VAD threshold.
        changed = {"labels", *(f"train_router@{variant}" for variant in ROUTED_VARIANTS)}
        assert snakemake_planned_rules(repo) == with_consumers(repo, "labels", "train_router")
        assert dvc_changed_stages(repo) == changed

        set_param(repo, "variants", "dyncp-50", {"kind": "dyncp", "target_usage": 0.4})
        dumps = {f"dump_masks@dyncp-50-{split}" for split in SPLITS}
        assert dvc_changed_stages(repo) == {*changed, "train@dyncp-50", "evaluate", *dumps}
        set_param(repo, "variants", "dyncp-50", {"kind": "dyncp", "target_usage": 0.5})

        set_param(repo, "prune", "epochs", 2)  # fine-tuning only: the dense model stays
        assert dvc_changed_stages(repo) == {*changed, *(f"train@{variant}" for variant in PRUNED_VARIANTS)}
        set_param(repo, "prune", "epochs", 1)

        set_param(repo, "mix", "snrs_db", [0.0, 5.0])
        assert snakemake_planned_rules(repo) == with_consumers(repo, "mix")
        # DVC lists the stages whose own deps changed: dynamic mixing draws training SNRs from mix.snrs_db too
        trainings = {
            "train_dense",
            "train_slim",
            *(f"train@{variant}" for variant in PRUNED_VARIANTS),
            *NSNET2_TRAININGS,
        }
        assert dvc_changed_stages(repo) == {"mix", *changed, *trainings}
        log = run(["dvc", "repro", "labels"], repo).stdout
        assert "Running stage 'mix'" in log and "Running stage 'labels'" in log
        assert "Running stage 'corpus'" not in log and "Running stage 'noises'" not in log
        assert dvc_md5(repo / "data/corpus") == before["data/corpus"]
    finally:
        for name, text in saved.items():
            (repo / name).write_text(text)
        run(["dvc", "checkout", "--force"], repo)
    assert "up to date" in run(["dvc", "status"], repo).stdout


def test_invalid_param_fails_before_any_work(smoke_repo, tmp_path):
    repo = smoke_repo
    original = (repo / "params.yaml").read_text()
    try:
        set_param(repo, "mix", "snrs_db", ["loud"])
        result = run(["maskscope", "repro"], repo, check=False)
        assert result.returncode != 0
        assert "mix.snrs_db.0" in result.stderr and "'loud'" in result.stderr
        result = run([*SNAKEMAKE, "-n"], repo, check=False)
        assert result.returncode != 0 and "snrs_db" in (result.stdout + result.stderr)
    finally:
        (repo / "params.yaml").write_text(original)


def test_killed_stage_leaves_no_output_a_rerun_would_accept(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    run(["maskscope", "preset", "smoke"], repo)
    # Enough sentences that synthesis lasts several seconds, so the kill lands mid-stage on a fast machine.
    set_param(repo, "corpus", "sentences_per_speaker", 40)
    command = ["maskscope", "stage", "corpus", "--keys", "seed,corpus", "--out", "corpus=data/corpus", "--workers", "1"]
    process = subprocess.Popen(
        command,
        cwd=repo,
        env=repo_env(repo),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((repo / "data").glob(".corpus.tmp-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # into the synthesis, with partial work under the temporary
        assert process.poll() is None, "the stage ended before it could be killed"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert list((repo / "data").glob(".corpus.tmp-*")), "the killed run's temporary should be left behind"
    assert not (repo / "data/corpus").exists()
    changed = json.loads(run(["dvc", "status", "corpus", "--json"], repo).stdout)
    assert "corpus" in changed  # DVC still considers the stage not done
    run(command, repo)  # a rerun cleans up and completes
    assert (repo / "data/corpus/manifest.parquet").is_file()
    assert not list((repo / "data").glob(".corpus.tmp-*"))


def test_data_stages_are_bit_reproducible_across_fresh_runs(smoke_repo, tmp_path):
    """A second, independent run of the smoke corpus and noises gives the same bytes."""
    repo = copy_repo(tmp_path / "again")
    run(["maskscope", "preset", "smoke"], repo)
    run(["dvc", "repro", "noises"], repo)
    for path in ("data/corpus", "data/noises"):
        assert dvc_md5(repo / path) == dvc_md5(smoke_repo / path), path
    manifest = pq.read_table(repo / "data/corpus/manifest.parquet").column("sha256").to_pylist()
    assert len(set(manifest)) == len(manifest)
    assert np.all(
        np.array(manifest)
        == np.array(pq.read_table(smoke_repo / "data/corpus/manifest.parquet").column("sha256").to_pylist())
    )


def test_masks_are_keyed_frame_for_frame_like_the_labels(smoke_repo):
    for split in ("valid", "test"):
        masks = read_masks(smoke_repo / f"data/masks/dyncp-25/{split}")
        labels = pq.read_table(smoke_repo / f"data/labels/{split}.parquet", columns=["utt_id", "frame"]).to_pandas()
        assert masks.keys.reset_index(drop=True).equals(labels.astype({"frame": masks.keys["frame"].dtype}))
        assert masks.bits.shape == (len(labels), masks.layout.blocks * masks.layout.hidden)
        assert 0.0 < masks.bits.mean() < 1.0
    for variant in ROUTED_VARIANTS:
        masks = read_masks(smoke_repo / f"data/masks/{variant}/test")
        labels = pq.read_table(smoke_repo / "data/labels/test.parquet", columns=["utt_id", "frame"]).to_pandas()
        assert masks.keys.reset_index(drop=True).equals(labels.astype({"frame": masks.keys["frame"].dtype}))
        layers = masks.bits.reshape(len(labels), masks.layout.blocks, masks.layout.hidden)
        # a width keeps a prefix of each layer's channels: an active channel's predecessors are active
        assert not np.any(layers[:, :, 1:] & ~layers[:, :, :-1])
        assert layers[:, :, 0].all()
    # exit decisions: a frame has reached a prefix of the exits, and the policy's first choice is the second
    for variant in EARLY_EXIT_VARIANTS:
        masks = read_masks(smoke_repo / f"data/masks/{variant}/test")
        labels = pq.read_table(smoke_repo / "data/labels/test.parquet", columns=["utt_id", "frame"]).to_pandas()
        assert masks.keys.reset_index(drop=True).equals(labels.astype({"frame": masks.keys["frame"].dtype}))
        assert masks.layout.blocks == len(SMOKE_EXITS) and masks.layout.hidden == 1
        assert not np.any(masks.bits[:, 1:] & ~masks.bits[:, :-1])
        assert masks.bits[:, :2].all()


def test_probes_and_baselines_are_scored_on_the_same_frames(smoke_repo):
    probes = json.loads((smoke_repo / "metrics/probes.json").read_text())
    baselines = probes.pop("baselines")
    assert set(probes) == {*GATED_VARIANTS, *EARLY_EXIT_VARIANTS}
    for entry in probes.values():
        for key in ("vad_accuracy", "noise_accuracy", "f0_r2", "snr_r2", "snr_mae_db"):
            assert np.isfinite(entry[key]), key
        assert 0.0 <= entry["vad_accuracy"] <= 1.0 and entry["k_bits"] == 24 and entry["decision_bits"] >= 2
        assert set(entry["ops_per_frame"]) == {"vad", "noise", "f0", "snr"}
        # scores per mixture SNR: the smoke mixtures' SNRs, and the pooled 0 dB-and-above range among them
        snrs = sorted(float(snr) for snr in entry["by_snr_db"])
        assert set(snrs) <= set(preset_params(smoke_repo / "pipelines/presets", "smoke").mix.snrs_db) and len(snrs) >= 2
        assert set(entry["from_0db"]) == {"vad_accuracy", "noise_accuracy", "f0_r2", "snr_r2"}
        # a cost budget for each task a dedicated baseline does (SNR has none), from that task's cheapest
        assert set(entry["cpu_budget"]) == {"vad", "noise", "f0"}
        for task, budget in entry["cpu_budget"].items():
            assert baselines["methods"][budget["baseline"]]["task"] == task
    analysis = json.loads((smoke_repo / "data/probes/analysis.json").read_text())
    assert analysis["frames"] == baselines["frames"]
    assert {"silero", "webrtcvad", "energy", "energy_causal", "harvest", "dio", "pyin", "logmel_logreg"} <= set(
        baselines["methods"]
    )
    for method in baselines["methods"].values():
        assert method["cpu_seconds_per_audio_second"] > 0
    table = pq.read_table(smoke_repo / "data/probes/dyncp-25-vad.parquet").to_pandas()
    assert (table["bit"] == -1).sum() == 1 and (table["bit"] >= 0).sum() <= 24
    # Fitted on train, scored on test: the table written is the probe whose score is reported.
    assert analysis["fit"]["splits"] == ["train"] and analysis["scored"]["splits"] == ["test"]
    labels = pq.read_table(smoke_repo / "data/labels/test.parquet").to_pandas()
    masks = read_masks(smoke_repo / "data/masks/dyncp-25/test")
    bits = aligned_bits([masks], labels, "dyncp-25 test masks")
    weights = table[table["bit"] >= 0]
    logit = (
        table.loc[table["bit"] == -1, "weight"].item()
        + bits[:, weights["bit"].to_numpy()].astype(np.float64) @ weights["weight"].to_numpy()
    )
    accuracy = float(np.mean((logit > 0) == labels["vad"].to_numpy(bool)))
    assert accuracy == pytest.approx(probes["dyncp-25"]["vad_accuracy"], abs=1e-3)
