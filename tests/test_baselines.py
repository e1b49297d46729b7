"""Dedicated baselines: each one works on its own terms before it is compared with the probes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import harmonic_speechlike

from maskscope.analysis.baseline_study import FLOOR_GRID_DB, PEAK_GRID_DB
from maskscope.analysis.baselines import (
    SILERO_THRESHOLD,
    SileroVad,
    best_threshold,
    energy_above_floor_db,
    log_mel,
    mel_filterbank,
    noisy_energy_db,
    pyin_f0,
    webrtc_vad,
    world_f0,
)
from maskscope.analysis.probes import pitch_scores
from maskscope.core import framing
from maskscope.data.real_speech import real_voice


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
    threshold = best_threshold(energy, truth, PEAK_GRID_DB)
    assert np.mean((energy >= threshold) == truth) > 0.9


def test_the_causal_energy_vad_never_looks_ahead_and_separates_speech_from_noise():
    audio, boundary = speech_then_silence()
    noisy = np.concatenate([1e-3 * np.random.default_rng(1).standard_normal(8000).astype(np.float32), audio])
    feature = energy_above_floor_db(noisy)
    louder_future = noisy.copy()
    louder_future[16_000:] *= 10.0  # frames before sample 16,000 - N_FFT/2 cannot see this
    unchanged = (16_000 - framing.N_FFT // 2) // framing.HOP
    assert np.array_equal(energy_above_floor_db(louder_future)[:unchanged], feature[:unchanged])
    truth = np.zeros(feature.size, dtype=bool)
    truth[framing.frame_count(8000) : framing.frame_count(8000) + boundary] = True
    threshold = best_threshold(feature, truth, FLOOR_GRID_DB)
    assert threshold > 0 and np.mean((feature >= threshold) == truth) > 0.85


def real_speech_in_quiet_noise() -> tuple[np.ndarray, slice, slice]:
    """A read Russian sentence between 1 s stretches of faint noise: (audio, speech frames, noise frames)."""
    voice = real_voice("festvox-ru")
    speech = voice.decode(voice.recordings()[0].path)
    rng = np.random.default_rng(2)
    quiet = (3e-4 * rng.standard_normal(16_000)).astype(np.float32)
    audio = np.concatenate([quiet, speech, quiet])
    start, end = framing.frame_count(16_000), framing.frame_count(16_000 + speech.size)
    return audio, slice(start, end), slice(end + 20, None)


def test_silero_vad_hears_real_speech_and_not_faint_noise():
    audio, speech, noise = real_speech_in_quiet_noise()
    probability = SileroVad()(audio)
    assert probability.shape == (framing.frame_count(audio.size),)
    assert np.mean(probability[speech] > SILERO_THRESHOLD) > 0.5
    assert np.mean(probability[noise] > SILERO_THRESHOLD) < 0.1
    assert np.mean(probability[: framing.frame_count(16_000) - 20] > SILERO_THRESHOLD) < 0.1


def test_pyin_finds_the_pitch_of_a_harmonic_signal_and_calls_silence_unvoiced():
    audio, boundary = speech_then_silence()
    f0 = pyin_f0(audio, 60.0, 500.0)
    assert f0.shape == (framing.frame_count(audio.size),)
    voiced = f0[10 : boundary - 10]
    assert np.median(voiced[voiced > 0]) == pytest.approx(140.0, rel=0.05)
    assert np.mean(f0[boundary + 10 :] > 0) < 0.1


def test_pitch_scores_keep_voicing_misses_apart_from_pitch_errors():
    reference = np.array([100.0, 100.0, 200.0, 200.0, 150.0])
    estimate = np.array([0.0, 101.0, 260.0, 199.0, 150.0])  # a miss, then one gross error in four
    found = pitch_scores(reference, estimate)
    assert found["voiced_recall"] == pytest.approx(0.8)
    assert found["gross_error_rate"] == pytest.approx(0.25)
    assert found["r2_both_voiced"] < 1.0
    assert np.isnan(pitch_scores(reference, np.zeros(5))["gross_error_rate"])


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
