from __future__ import annotations

import numpy as np
import pytest
from conftest import harmonic_speechlike

from maskscope.core.framing import HOP, active_frames, frame_count
from maskscope.data.labels import frame_labels, frame_snr_db, world_f0


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_world_f0_finds_the_pitch_on_frames_of_the_model(f0):
    speech = harmonic_speechlike(1.5, f0=f0)
    estimate = world_f0(speech, 60.0, 500.0)
    assert estimate.size == frame_count(speech.size)
    voiced = estimate > 0
    assert voiced.mean() > 0.6
    assert np.median(estimate[voiced]) == pytest.approx(f0, rel=0.02)


def test_f0_is_aligned_frame_by_frame():
    # Voicing that starts at a known frame must switch on at that frame, not one hop away.
    start_frame = 40
    speech = np.concatenate([np.zeros(start_frame * HOP), harmonic_speechlike(1.0, f0=150.0)])
    estimate = world_f0(speech, 60.0, 500.0)
    first_voiced = int(np.argmax(estimate > 0))
    assert abs(first_voiced - start_frame) <= 2


def test_energy_vad_marks_speech_not_silence():
    speech = np.concatenate([np.zeros(16000), harmonic_speechlike(1.0), np.zeros(16000)])
    vad = active_frames(speech, -35.0)
    assert vad.size == frame_count(speech.size)
    assert not vad[:55].any() and not vad[-55:].any() and vad[70:110].mean() > 0.6


def test_frame_snr_follows_local_energy():
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.zeros(8000), 0.3 * rng.standard_normal(8000)]).astype(np.float32)
    noise = 0.03 * rng.standard_normal(clean.size).astype(np.float32)
    snr = frame_snr_db(clean, clean + noise)
    assert snr[-10:].mean() == pytest.approx(20.0, abs=1.0)
    assert snr[:20].max() == -60.0


def test_frame_labels_have_one_value_per_frame():
    speech = harmonic_speechlike(1.0)
    labels = frame_labels(speech, speech + 0.01, -35.0, 60.0, 500.0)
    n = frame_count(speech.size)
    assert {labels.f0_hz.size, labels.voiced.size, labels.vad.size, labels.snr_db.size} == {n}
    assert np.array_equal(labels.voiced, labels.f0_hz > 0)


def test_f0_on_the_speech_span_matches_f0_on_the_padded_signal():
    speech = harmonic_speechlike(1.0, f0=130.0)
    padded = np.concatenate([np.zeros(HOP * 30 + 77, dtype=np.float32), speech, np.zeros(HOP * 25, dtype=np.float32)])
    import pyworld

    full, _ = pyworld.harvest(padded.astype(np.float64), 16000, f0_floor=60.0, f0_ceil=500.0, frame_period=16.0)
    trimmed = world_f0(padded, 60.0, 500.0)
    assert trimmed.size == full.size
    assert np.mean((trimmed > 0) == (full > 0)) > 0.97
    both = (trimmed > 0) & (full > 0)
    assert np.median(np.abs(trimmed[both] - full[both])) < 1.0


def test_silence_has_no_f0():
    assert not world_f0(np.zeros(8000, dtype=np.float32), 60.0, 500.0).any()
