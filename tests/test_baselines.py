"""Dedicated baselines: each one works on its own terms before it is compared with the probes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import harmonic_speechlike

from maskscope.analysis.baselines import best_threshold, log_mel, mel_filterbank, noisy_energy_db, webrtc_vad, world_f0
from maskscope.core import framing


def speech_then_silence() -> tuple[np.ndarray, int]:
    speech = harmonic_speechlike(1.5, f0=140.0)
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(24_000).astype(np.float32)
    return np.concatenate([speech, quiet]), framing.frame_count(speech.size)


def test_webrtc_vad_marks_speech_frames_and_not_near_silence():
    audio, boundary = speech_then_silence()
    flags = webrtc_vad(audio)
    assert flags.shape == (framing.frame_count(audio.size),)
    assert flags[5 : boundary - 5].mean() > 0.6 and flags[boundary + 5 :].mean() < 0.1


def test_the_energy_threshold_separates_loud_from_quiet_frames():
    audio, boundary = speech_then_silence()
    energy = noisy_energy_db(audio)
    truth = np.arange(energy.size) < boundary
    threshold = best_threshold(energy, truth)
    assert np.mean((energy >= threshold) == truth) > 0.9


@pytest.mark.parametrize("method", ["harvest", "dio"])
def test_world_f0_finds_the_pitch_of_a_harmonic_signal(method):
    audio, boundary = speech_then_silence()
    f0 = world_f0(audio, method, 60.0, 500.0)
    assert f0.shape == (framing.frame_count(audio.size),)
    voiced = f0[10 : boundary - 10]
    assert np.median(voiced[voiced > 0]) == pytest.approx(140.0, rel=0.05)
    with pytest.raises(ValueError, match="unknown F0 method"):
        world_f0(audio, "yin", 60.0, 500.0)


def test_log_mel_features_are_framed_like_the_model():
    bank = mel_filterbank()
    assert bank.shape == (40, framing.N_BINS) and np.all(bank.sum(axis=1) > 0)
    audio, _ = speech_then_silence()
    features = log_mel(audio, bank)
    assert features.shape == (framing.frame_count(audio.size), 40) and np.all(np.isfinite(features))
