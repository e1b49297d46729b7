from __future__ import annotations

import numpy as np
import pytest
from conftest import harmonic_speechlike

from maskscope.core.framing import active_speech_power
from maskscope.data.mixing import draw_mixture, mix_at_snr, noise_segment, pad_speech


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 15.0])
def test_snr_is_relative_to_active_speech(snr_db):
    speech = np.concatenate([np.zeros(16000), harmonic_speechlike(2.0), np.zeros(16000)]).astype(np.float32)
    noise = np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)
    clean, noisy = mix_at_snr(speech, noise, snr_db, -35.0)
    added = noisy.astype(np.float64) - clean
    measured = 10 * np.log10(active_speech_power(clean, -35.0) / np.mean(added**2))
    assert measured == pytest.approx(snr_db, abs=0.05)


def test_loud_mixtures_are_scaled_down_keeping_the_snr():
    speech = 0.9 * harmonic_speechlike(1.0) / np.max(np.abs(harmonic_speechlike(1.0)))
    noise = np.random.default_rng(0).standard_normal(speech.size)
    clean, noisy = mix_at_snr(speech, noise, -5.0, -35.0)
    assert np.max(np.abs(noisy)) <= 0.99 + 1e-6
    measured = 10 * np.log10(active_speech_power(clean, -35.0) / np.mean((noisy.astype(np.float64) - clean) ** 2))
    assert measured == pytest.approx(-5.0, abs=0.05)


def test_draws_depend_only_on_seed_and_mixture_id():
    lengths = {"white": 10**6, "pink": 10**6}
    first = draw_mixture(3, "utt-a_m0", ["white", "pink"], [0.0, 5.0], 1000, lengths, (0.1, 0.5))
    again = draw_mixture(3, "utt-a_m0", ["white", "pink"], [0.0, 5.0], 1000, lengths, (0.1, 0.5))
    assert first == again
    draws = {
        draw_mixture(3, f"utt-{i}_m0", ["white", "pink"], [0.0, 5.0], 1000, lengths, (0.1, 0.5)) for i in range(40)
    }
    assert {d.noise_class for d in draws} == {"white", "pink"} and {d.snr_db for d in draws} == {0.0, 5.0}
    assert all(1600 <= d.lead_samples <= 8000 and 1600 <= d.trail_samples <= 8000 for d in draws)
    assert all(0 <= d.noise_offset <= 10**6 - 1000 - d.lead_samples - d.trail_samples for d in draws)


def test_padding_puts_the_drawn_silence_around_the_speech():
    lengths = {"white": 10**6}
    draw = draw_mixture(0, "u_m0", ["white"], [0.0], 100, lengths, (0.01, 0.02))
    padded = pad_speech(np.ones(100, dtype=np.float32), draw)
    assert padded.size == 100 + draw.lead_samples + draw.trail_samples
    assert not padded[: draw.lead_samples].any() and padded[draw.lead_samples : draw.lead_samples + 100].all()


def test_noise_segment_wraps_around():
    noise = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(noise_segment(noise, 8, 5), [8, 9, 0, 1, 2])
