from __future__ import annotations

import numpy as np
import pytest
import torch

from maskscope.core import framing


@pytest.mark.parametrize("num_samples", [1, 255, 256, 257, 16000, 16000 * 3 + 101])
def test_frame_count_matches_stft(num_samples):
    audio = torch.randn(num_samples)
    assert framing.stft(audio).shape == (framing.N_BINS, framing.frame_count(num_samples))


def test_frame_energy_is_the_stft_power_of_the_same_frame():
    audio = np.random.default_rng(1).standard_normal(16000 + 77).astype(np.float32)
    spectrum = framing.stft(torch.from_numpy(audio)).numpy()
    weights = np.full(framing.N_BINS, 2.0)
    weights[[0, -1]] = 1.0
    stft_energy = (np.abs(spectrum) ** 2 * weights[:, None]).sum(axis=0) / framing.N_FFT
    np.testing.assert_allclose(framing.frame_energy(audio), stft_energy, rtol=1e-4)


def test_frame_t_is_centred_on_sample_t_times_hop():
    audio = np.zeros(16000, dtype=np.float32)
    audio[framing.HOP * 20] = 1.0  # an impulse at the centre of frame 20
    energy = framing.frame_energy(audio)
    assert int(np.argmax(energy)) == 20


def test_istft_inverts_stft():
    audio = torch.randn(12345)
    restored = framing.istft(framing.stft(audio), length=audio.numel())
    torch.testing.assert_close(restored, audio, atol=1e-5, rtol=1e-5)


def test_active_speech_power_ignores_silence():
    tone = 0.1 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)
    padded = np.concatenate([np.zeros(32000), tone, np.zeros(32000)])
    assert framing.active_speech_power(padded, -35.0) == pytest.approx(0.005, rel=0.1)
