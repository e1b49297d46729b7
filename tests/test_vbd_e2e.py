"""The `vbd` preset end to end through real `dvc repro`, on a tiny VoiceBank-shaped set served from 127.0.0.1.

The archives have the real names and inner layout (48 kHz WAVs named <speaker>_<index>, logfiles
with `<utterance> <noise> <snr>`, test transcripts); the repository copy gets a table with their
sizes and MD5s, as a team with its own mirror would.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml
from conftest import copy_repo, harmonic_speechlike
from test_pipeline_e2e import run

from maskscope.core.audio import decode_audio, quantize_pcm16, resample
from maskscope.core.io import read_shards

pytestmark = pytest.mark.e2e

RATE = 48_000
TRAIN_SPEAKERS = ("p226", "p287", "p230", "p239", "p243")  # p226 and p287 validate
TEST_SPEAKERS = ("p232", "p257")
TRAIN_NOISES = ("cafe", "bus", "living", "babble")
TEST_NOISES = ("office", "psquare")


def wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def voicebank_shaped(root: Path) -> dict[str, tuple[str, float]]:
    """Write the six VoiceBank+DEMAND archives; returns the noise labels put in logfiles.zip."""
    rng = np.random.default_rng(7)
    labels: dict[str, tuple[str, float]] = {}
    sets = {
        "trainset_28spk": (TRAIN_SPEAKERS, TRAIN_NOISES, (15.0, 10.0, 5.0, 0.0), 3),
        "testset": (TEST_SPEAKERS, TEST_NOISES, (17.5, 12.5, 7.5, 2.5), 2),
    }
    logs = {}
    for name, (speakers, noises, snrs, count) in sets.items():
        clean_zip = zipfile.ZipFile(root / f"clean_{name}_wav.zip", "w")
        noisy_zip = zipfile.ZipFile(root / f"noisy_{name}_wav.zip", "w")
        lines = []
        for number, speaker in enumerate(speakers):
            for index in range(1, count + 1):
                utt_id = f"{speaker}_{index:03d}"
                clean = harmonic_speechlike(1.4, f0=110 + 15 * number, seed=index, rate=RATE)
                noise_class, snr = noises[(number + index) % len(noises)], snrs[index % len(snrs)]
                noise = rng.standard_normal(clean.size).astype(np.float32)
                noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr / 10))
                clean_zip.writestr(f"clean_{name}_wav/{utt_id}.wav", wav_bytes(clean))
                noisy_zip.writestr(f"noisy_{name}_wav/{utt_id}.wav", wav_bytes(clean + noise))
                lines.append(f"{utt_id} {noise_class} {snr:g}")
                labels[utt_id] = (noise_class, snr)
        clean_zip.close()
        noisy_zip.close()
        logs[f"log_{name}.txt"] = "\n".join(lines) + "\n"
    with zipfile.ZipFile(root / "logfiles.zip", "w") as archive:
        for name, text in logs.items():
            archive.writestr(f"logfiles/{name}", text)
        archive.writestr("logfiles/log_readme.txt", "noise and SNR of every file\n")
    with zipfile.ZipFile(root / "testset_txt.zip", "w") as archive:
        for utt_id in labels:
            if utt_id.split("_")[0] in TEST_SPEAKERS:
                archive.writestr(f"testset_txt/{utt_id}.txt", f"sentence {utt_id}\n")
    return labels


def write_table(repo: Path, served: Path) -> None:
    table = json.loads((repo / "pipelines/archives.json").read_text())
    for entry in table["vbd"]["archives"]:
        data = (served / entry["name"]).read_bytes()
        entry.update(size=len(data), md5=hashlib.md5(data).hexdigest())
    (repo / "pipelines/archives.json").write_text(json.dumps(table, indent=2) + "\n")


@pytest.fixture(scope="module")
def vbd_run(tmp_path_factory):
    served = tmp_path_factory.mktemp("served")
    labels = voicebank_shaped(served)
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    write_table(repo, served)
    run(["git", "commit", "-qam", "tiny mirror's checksums"], repo)
    run(["maskscope", "preset", "vbd"], repo)
    return repo, served, labels


@pytest.fixture(scope="module")
def reproduced(vbd_run, archive_server_module):
    repo, served, labels = vbd_run
    url, log = archive_server_module(served)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    smoke = yaml.safe_load((repo / "pipelines/presets/smoke.yaml").read_text())
    for section in ("model", "train", "evaluate"):
        params[section].update(smoke[section])
    params["download"].update(mirror=url, backoff_seconds=0.05)
    params["mix"]["shard_size"] = 8
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], repo)
    return repo, served, labels, log


def test_every_archive_is_fetched_once_and_tracked_by_dvc(reproduced):
    repo, served, _, log = reproduced
    fetched = sorted(entry["path"].lstrip("/") for entry in log())
    assert fetched == sorted(p.name for p in served.iterdir())
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    (archives_out,) = lock["stages"]["download"]["outs"]
    assert archives_out["path"] == "data/archives" and archives_out["nfiles"] == 7  # six archives + manifest
    assert not list((repo / "data").glob(".unpack*"))  # extracted trees are gone


def test_official_splits_and_noise_labels(reproduced):
    repo, _, labels, _ = reproduced
    speakers = {
        split: set(read_shards(repo / "data/mix", split, ["speaker"]).column("speaker").to_pylist())
        for split in ("train", "valid", "test")
    }
    assert speakers == {"train": {"p230", "p239", "p243"}, "valid": {"p226", "p287"}, "test": set(TEST_SPEAKERS)}
    for split in ("train", "valid", "test"):
        mixtures = read_shards(repo / "data/mix", split, ["clean_utt_id", "noise_class", "snr_db"]).to_pylist()
        for mixture in mixtures:
            assert (mixture["noise_class"], mixture["snr_db"]) == labels[mixture["clean_utt_id"]]
        frames = pq.read_table(repo / f"data/labels/{split}.parquet", columns=["noise_class"]).column(0)
        assert set(frames.to_pylist()) == {m["noise_class"] for m in mixtures}
    corpus = pq.read_table(repo / "data/corpus/manifest.parquet").to_pylist()
    texts = {row["utt_id"]: row["text"] for row in corpus}
    assert texts["p232_001"] == "sentence p232_001" and texts["p230_001"] == ""


def test_noisy_audio_is_the_official_file_resampled_to_16k(reproduced):
    repo, served, _, _ = reproduced
    (row,) = [r for r in read_shards(repo / "data/mix", "test").to_pylist() if r["clean_utt_id"] == "p257_002"]
    with zipfile.ZipFile(served / "noisy_testset_wav.zip") as archive:
        original, rate = sf.read(io.BytesIO(archive.read("noisy_testset_wav/p257_002.wav")), dtype="float32")
    assert rate == RATE
    expected = quantize_pcm16(resample(original, RATE))
    stored = decode_audio(row["noisy"], "test row")
    assert stored.size == expected.size == round(original.size / 3)
    np.testing.assert_allclose(stored, expected, atol=1 / 32768)


def test_models_are_trained_and_scored_on_the_official_test_speakers(reproduced):
    repo, _, _, _ = reproduced
    evaluation = json.loads((repo / "metrics/evaluate.json").read_text())
    assert {"noisy", "dense", "dyncp-25"} <= set(evaluation)
    assert np.isfinite(evaluation["dense"]["pesq"]) and np.isfinite(evaluation["noisy"]["pesq"])


def test_a_second_repro_downloads_nothing(reproduced):
    repo, _, _, log = reproduced
    before = len(log())
    assert "up to date" in run(["dvc", "status"], repo).stdout
    run(["dvc", "repro"], repo)
    assert len(log()) == before
