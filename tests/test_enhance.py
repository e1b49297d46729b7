"""`maskscope enhance`: any rate, mono or stereo in; 16 kHz WAVs of the same duration out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from conftest import harmonic_speechlike

from maskscope.models.checkpoint import load_model, save_model
from maskscope.models.conv_fsenet import ConvFSENet, ConvFSENetConfig

MASKSCOPE = str(Path(sys.executable).parent / "maskscope")


def write_model(directory: Path) -> Path:
    torch.manual_seed(0)
    model = ConvFSENet(ConvFSENetConfig(bottleneck=16, hidden=32, stacks=1, gated=True, gate_rank=4))
    path = directory / "models" / "dyncp-25" / "model.pt"
    path.parent.mkdir(parents=True)
    save_model(path, model, "dyncp-25", {"kind": "dyncp", "target_usage": 0.25})
    return path


def test_saved_model_round_trips(tmp_path):
    path = write_model(tmp_path)
    model, meta = load_model(path)
    assert meta["variant"] == "dyncp-25" and model.config.gated and not model.training


def test_enhance_handles_rates_channels_and_bad_files(tmp_path):
    write_model(tmp_path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    speech = harmonic_speechlike(1.3)
    noisy = speech + 0.02 * np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)
    sf.write(inputs / "mono16k.wav", noisy, 16000)
    stereo = np.stack([noisy, noisy * 0.5], axis=1)
    sf.write(inputs / "stereo44k.flac", np.repeat(stereo, 3, axis=0)[: int(1.3 * 44100)], 44100)
    (inputs / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    result = subprocess.run(
        [MASKSCOPE, "enhance", *sorted(map(str, inputs.iterdir())), "--out", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1  # one file failed
    assert "broken.wav" in result.stderr
    assert "downmixed" in result.stderr and "resampled from 44100 Hz" in result.stderr
    mono, rate = sf.read(tmp_path / "out" / "mono16k.wav")
    assert rate == 16000 and mono.size == noisy.size
    converted, rate = sf.read(tmp_path / "out" / "stereo44k.wav")
    assert rate == 16000 and abs(converted.size - int(1.3 * 16000)) <= 1
    assert not (tmp_path / "out" / "broken.wav").exists()


def test_unknown_model_says_how_to_get_one(tmp_path):
    sf.write(tmp_path / "a.wav", harmonic_speechlike(0.5), 16000)
    result = subprocess.run(
        [MASKSCOPE, "enhance", "a.wav", "--out", "out", "--model", "dyncp-50"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "make repro" in result.stderr and "dyncp-50" in result.stderr


def test_enhanced_audio_is_the_models_output(tmp_path):
    from maskscope.evaluation.enhance import enhance_files
    from maskscope.evaluation.scoring import enhance as dense_enhance

    path = write_model(tmp_path)
    speech = harmonic_speechlike(1.0)
    noisy = (speech + 0.02 * np.random.default_rng(1).standard_normal(speech.size)).astype(np.float32)
    sf.write(tmp_path / "x.wav", noisy, 16000, subtype="FLOAT")
    report = enhance_files([tmp_path / "x.wav"], tmp_path / "out", path)
    written, _ = sf.read(report.written[0], dtype="float32")
    model, _ = load_model(path)
    expected = dense_enhance(model, noisy).audio
    # The file is 16-bit PCM; the streaming path equals the masked dense model far below that step.
    assert np.max(np.abs(written - np.clip(expected, -1, 1))) < 2e-4


def test_a_training_checkpoint_is_refused_with_a_clear_message(tmp_path):
    bogus = tmp_path / "ckpt.pt"
    torch.save({"model": {}, "optimizer": {}}, bogus)
    sf.write(tmp_path / "a.wav", harmonic_speechlike(0.5), 16000)
    result = subprocess.run(
        [MASKSCOPE, "enhance", "a.wav", "--out", "out", "--model", str(bogus)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "not a usable model file" in result.stderr and "Traceback" not in result.stderr


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_model_file_that_would_run_code_when_loaded_is_refused_unloaded(tmp_path):
    marker = tmp_path / "code-ran"
    hostile = tmp_path / "model.pt"
    torch.save({"family": "conv_fsenet", "config": _RunsCodeWhenUnpickled(marker), "state": {}}, hostile)
    sf.write(tmp_path / "a.wav", harmonic_speechlike(0.5), 16000)
    result = subprocess.run(
        [MASKSCOPE, "enhance", "a.wav", "--out", "out", "--model", str(hostile)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "not a usable model file" in result.stderr
    assert not marker.exists()  # weights_only loading never called the object's code


def test_an_nsnet2_leaves_at_the_exit_asked_for(tmp_path):
    from maskscope.models.nsnet2 import NsNet2, NsNet2Config

    torch.manual_seed(0)
    model = NsNet2(NsNet2Config(input_width=16, gru_width=16, decoder_widths=(16, 16)))
    path = tmp_path / "models" / "nsnet2-joint" / "model.pt"
    path.parent.mkdir(parents=True)
    save_model(path, model, "nsnet2-joint", {"kind": "nsnet2", "regime": "joint", "topology": "plain"})
    speech = harmonic_speechlike(0.8)
    sf.write(tmp_path / "in.wav", speech, 16000)
    outputs = {}
    for exit_name in ("gru1", "final"):
        command = [MASKSCOPE, "enhance", "in.wav", "--out", exit_name, "--model", "nsnet2-joint", "--exit", exit_name]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        outputs[exit_name], rate = sf.read(tmp_path / exit_name / "in.wav")
        assert rate == 16000 and outputs[exit_name].size == speech.size
    assert not np.allclose(outputs["gru1"], outputs["final"], atol=1e-3)  # two exits, two predictors
    result = subprocess.run(
        [MASKSCOPE, "enhance", "in.wav", "--out", "bad", "--model", "nsnet2-joint", "--exit", "dec1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "no exit 'dec1'" in result.stderr and "gru1, gru2, final" in result.stderr
