"""`maskscope enhance --tracks`: the probes read a DynCP model's gates in the pass that enhances."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from conftest import harmonic_speechlike

from maskscope.analysis.masks import MaskLayout
from maskscope.analysis.probes import ExportedProbe
from maskscope.core import framing
from maskscope.core.errors import MaskscopeError
from maskscope.evaluation import enhance as enhance_module
from maskscope.evaluation.enhance import TrackOptions, enhance_files
from maskscope.evaluation.tracks import PROBES_FILE, ProbeBundle, frame_tracks, read_probes, write_probes
from maskscope.models.checkpoint import load_model, save_model
from maskscope.models.conv_fsenet import ConvFSENet, ConvFSENetConfig
from maskscope.models.streaming import StreamingFSENet

MASKSCOPE = str(Path(sys.executable).parent / "maskscope")
BLOCKS, HIDDEN = 3, 32  # ConvFSENetConfig(stacks=1) below: 3 blocks of 32 channels
CLASSES = ["babble", "white"]


def noisy_speech(seconds: float = 1.3) -> np.ndarray:
    speech = harmonic_speechlike(seconds)
    return speech + 0.02 * np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)


def switching_model(gated: bool) -> ConvFSENet:
    """A small Conv-FSENet whose gates switch with the input (at initialisation they all stay open)."""
    torch.manual_seed(0)
    model = ConvFSENet(ConvFSENetConfig(bottleneck=16, hidden=HIDDEN, stacks=1, gated=gated, gate_rank=4)).eval()
    if gated:
        with torch.no_grad():
            for block in model.blocks:
                block.gate_predictor.expand.weight.mul_(20.0)
                block.gate_predictor.expand.bias.zero_()
    return model


def probes_on_switching_gates(model: ConvFSENet) -> dict[str, ExportedProbe]:
    """Random weight tables on gates that switch, each VAD bias set so that about half the frames are speech."""
    _, gates = StreamingFSENet.from_model(model).enhance_with_gates(noisy_speech())
    bits = gates.reshape(len(gates), -1)
    switching = np.flatnonzero(bits.var(axis=0) > 0)
    rng = np.random.default_rng(0)

    def probe(task: str, kind: str, outputs: int, classes: list[str] | None = None) -> ExportedProbe:
        chosen = rng.choice(switching, size=8, replace=False)
        weights = rng.normal(size=(outputs, 8))
        bias = -np.median(bits[:, chosen] @ weights.T, axis=0)
        return ExportedProbe(task, kind, chosen, weights, bias, classes)

    return {
        "vad": probe("vad", "binary", 1),
        "noise": probe("noise", "multiclass", 2, CLASSES),
        "f0": probe("f0", "regression", 1),
        "snr": probe("snr", "regression", 1),
    }


def write_bundle(directory: Path, gated: bool = True) -> Path:
    model = switching_model(gated)
    bundle = directory / "bundle"
    bundle.mkdir()
    save_model(bundle / "model.pt", model, "dyncp-25", {"kind": "dyncp", "target_usage": 0.25})
    tables = probes_on_switching_gates(switching_model(True))
    write_probes(bundle, "dyncp-25", MaskLayout(BLOCKS, HIDDEN), 4, tables)
    return bundle


def test_a_bundle_round_trips_and_its_tracks_are_the_probes_on_the_same_pass_gates(tmp_path):
    bundle = read_probes(write_bundle(tmp_path))
    assert bundle.layout == MaskLayout(BLOCKS, HIDDEN) and bundle.context_frames == 4
    streaming = StreamingFSENet.from_model(load_model(tmp_path / "bundle" / "model.pt")[0])
    audio = noisy_speech()
    enhanced, gates = streaming.enhance_with_gates(audio)
    assert np.array_equal(enhanced, streaming.enhance(audio))  # reading the gates changes nothing
    tracks = frame_tracks(bundle, gates, 16_000)
    assert len(tracks) == framing.frame_count(audio.size) == gates.shape[0]
    bits = gates.reshape(len(gates), -1).astype(np.float64)

    def by_hand(task: str) -> np.ndarray:
        probe = bundle.probes[task]
        return bits[:, probe.bits] @ probe.weights.T + probe.bias

    speech = by_hand("vad")[:, 0] > 0
    assert np.array_equal(tracks["vad"].to_numpy(), speech) and 0 < speech.mean() < 1
    assert np.allclose(tracks["f0_hz"][speech], by_hand("f0")[speech, 0], atol=1e-4)
    assert tracks["f0_hz"][~speech].isna().all() and tracks["snr_db"][~speech].isna().all()
    logits = by_hand("noise")
    averaged = np.stack([logits[max(0, t - 3) : t + 1].mean(axis=0) for t in range(len(logits))])
    assert list(tracks["noise_class"]) == [CLASSES[i] for i in averaged.argmax(axis=1)]
    assert tracks["time_s"].iloc[1] == pytest.approx(framing.HOP / 16_000)


def test_enhance_with_tracks_writes_wav_tracks_and_plot_and_skips_a_bad_file(tmp_path):
    write_bundle(tmp_path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    sf.write(inputs / "speech.wav", noisy_speech(), 16_000)
    (inputs / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    command = [MASKSCOPE, "enhance", str(inputs / "speech.wav"), str(inputs / "broken.wav"), "--out", "out"]
    result = subprocess.run(
        [*command, "--model", "bundle", "--tracks", "--plot"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1 and "skipped" in result.stderr and "broken.wav" in result.stderr
    out = tmp_path / "out"
    assert sorted(path.name for path in out.iterdir()) == ["speech.png", "speech.tracks.parquet", "speech.wav"]
    tracks = pd.read_parquet(out / "speech.tracks.parquet")
    assert list(tracks.columns) == ["frame", "time_s", "vad", "vad_probability", "noise_class", "snr_db", "f0_hz"]
    assert len(tracks) == framing.frame_count(sf.info(out / "speech.wav").frames)
    assert (out / "speech.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "speech: speech " in result.stdout and "noise " in result.stdout  # the per-file summary line
    csv = subprocess.run(
        [*command[:3], "--out", "csv", "--model", "bundle", "--tracks", "--tracks-format", "csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert csv.returncode == 0, csv.stderr
    from_csv = pd.read_csv(tmp_path / "csv" / "speech.tracks.csv")
    assert from_csv["vad"].tolist() == tracks["vad"].tolist()


def test_tracks_need_a_bundle_with_probes_and_a_gated_model(tmp_path):
    bundle = write_bundle(tmp_path)
    (tmp_path / "in.wav").parent.mkdir(exist_ok=True)
    sf.write(tmp_path / "in.wav", noisy_speech(0.5), 16_000)
    (bundle / PROBES_FILE).unlink()
    result = subprocess.run(
        [MASKSCOPE, "enhance", "in.wav", "--out", "out", "--model", "bundle", "--tracks"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "dvc repro probes" in result.stderr and "probes.json" in result.stderr
    assert not (tmp_path / "out").exists()
    dense = tmp_path / "dense"
    dense.mkdir()
    write_bundle(dense, gated=False)
    with pytest.raises(MaskscopeError, match="has none"):
        enhance_files([tmp_path / "in.wav"], tmp_path / "out", dense / "bundle" / "model.pt", tracks_options(dense))


def tracks_options(directory: Path) -> TrackOptions:
    return TrackOptions(read_probes(directory / "bundle"))


def test_a_wav_is_never_left_without_its_tracks(tmp_path, monkeypatch):
    write_bundle(tmp_path)
    sf.write(tmp_path / "in.wav", noisy_speech(0.5), 16_000)

    def broken(tracks: pd.DataFrame, path: Path, fmt: str) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(enhance_module, "write_tracks", broken)
    with pytest.raises(OSError, match="disk full"):
        enhance_files(
            [tmp_path / "in.wav"], tmp_path / "out", tmp_path / "bundle" / "model.pt", tracks_options(tmp_path)
        )
    assert list((tmp_path / "out").iterdir()) == []


def test_probes_of_another_layout_are_refused(tmp_path):
    bundle = read_probes(write_bundle(tmp_path))
    other = ProbeBundle(bundle.variant, MaskLayout(BLOCKS, 2 * HIDDEN), bundle.context_frames, bundle.probes)
    sf.write(tmp_path / "in.wav", noisy_speech(0.5), 16_000)
    with pytest.raises(MaskscopeError, match="another model"):
        enhance_files([tmp_path / "in.wav"], tmp_path / "out", tmp_path / "bundle" / "model.pt", TrackOptions(other))


def test_the_report_draws_the_tracks_of_one_utterance_beside_its_labels(tmp_path):
    from maskscope.report.figures import tracks_of_one_utterance

    bundle = read_probes(write_bundle(tmp_path))
    audio = noisy_speech()
    frames = framing.frame_count(audio.size)
    labels = pd.DataFrame(
        {"vad": np.arange(frames) % 20 < 10, "f0_hz": np.where(np.arange(frames) % 20 < 10, 140.0, 0)}
    )
    figure = tracks_of_one_utterance(bundle, load_model(tmp_path / "bundle" / "model.pt")[0], audio, labels, "u1")
    assert figure.name == "tracks" and figure.png[:8] == b"\x89PNG\r\n\x1a\n" and len(figure.png) > 10_000
    assert re.search(
        r"the tracks add [\d.]+ µs per frame to the [\d.]+ µs of the streaming enhance pass", figure.caption
    )
