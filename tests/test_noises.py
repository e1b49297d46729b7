"""Tests for the synthetic noise classes: format, determinism, and that each class has its own character."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from scipy import signal, stats

from maskscope.core.constants import SYNTHETIC_NOISE_CLASSES as NOISE_CLASSES
from maskscope.data.noises import synthesize_noise

SR = 16_000
SECONDS = 6.0
SEEDS = (0, 1, 2)


def _fake_talker(seed: int, seconds: float = 2.5) -> np.ndarray:
    """Speech-like stand-in: a gliding harmonic voice, gated into syllables at 3-5 Hz."""
    rng = np.random.default_rng(1000 + seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(90.0, 220.0) * (1.0 + 0.1 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    rate, offset = rng.uniform(3.0, 5.0), rng.uniform(0, 2 * np.pi)
    syllables = np.clip(np.sin(2 * np.pi * rate * t + offset), 0, None) ** 2
    return (0.1 * voice * syllables).astype(np.float32)


TALKERS = tuple(_fake_talker(i) for i in range(6))


@functools.cache
def _noise(noise_class: str, seed: int, seconds: float = SECONDS) -> np.ndarray:
    sources = list(TALKERS) if noise_class == "babble" else None
    out = synthesize_noise(noise_class, seconds, np.random.default_rng(seed), SR, babble_sources=sources)
    out.setflags(write=False)  # shared through the cache
    return out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def _psd(x: np.ndarray, nperseg: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    return signal.welch(np.asarray(x, dtype=np.float64), SR, nperseg=nperseg)


_BAND_EDGES = 50.0 * 2.0 ** (np.arange(44) / 6.0)  # sixth-octave bands, 50 Hz .. ~7.2 kHz


def _band_profile(x: np.ndarray) -> np.ndarray:
    """Mean log power per sixth-octave band (dB, mean removed): averaging in dB keeps tonal valleys."""
    f, p = _psd(x)
    level = 10.0 * np.log10(p + 1e-20)
    bands = np.array([level[(f >= lo) & (f < hi)].mean() for lo, hi in itertools.pairwise(_BAND_EDGES)])
    return bands - bands.mean()


def _frame_rms(x: np.ndarray, frame: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sqrt(np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1))


def _slope_db_per_octave(x: np.ndarray, lo: float, hi: float) -> float:
    f, p = _psd(x)
    keep = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log2(f[keep]), 10.0 * np.log10(p[keep]), 1)[0])


# ----------------------------------------------------------------------------- format and determinism


def test_class_list_is_exact() -> None:
    assert NOISE_CLASSES == ("white", "pink", "brown", "hum", "traffic", "clatter", "hvac", "babble", "rain")


@pytest.mark.parametrize("noise_class", NOISE_CLASSES)
def test_float32_length_finite_and_rms(noise_class: str) -> None:
    x = _noise(noise_class, 0)
    assert x.dtype == np.float32
    assert x.shape == (round(SECONDS * SR),)
    assert np.all(np.isfinite(x))
    assert _rms(x) == pytest.approx(0.1, rel=1e-3)
    assert np.std(x) > 0.05  # not a constant offset


@pytest.mark.parametrize("noise_class", NOISE_CLASSES)
@pytest.mark.parametrize(("seconds", "rate"), [(1.23456, 16_000), (0.7, 8_000), (0.3, 44_100), (0.0001, 16_000)])
def test_length_is_rounded_and_other_rates_work(noise_class: str, seconds: float, rate: int) -> None:
    sources = list(TALKERS) if noise_class == "babble" else None
    x = synthesize_noise(noise_class, seconds, np.random.default_rng(7), rate, babble_sources=sources)
    assert x.dtype == np.float32
    assert x.size == round(seconds * rate)
    assert np.all(np.isfinite(x))
    assert _rms(x) == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("noise_class", NOISE_CLASSES)
def test_zero_seconds_gives_empty_float32(noise_class: str) -> None:
    sources = list(TALKERS) if noise_class == "babble" else None
    x = synthesize_noise(noise_class, 0.0, np.random.default_rng(0), babble_sources=sources)
    assert x.dtype == np.float32 and x.size == 0


@pytest.mark.parametrize("noise_class", NOISE_CLASSES)
def test_same_seed_identical_different_seed_different(noise_class: str) -> None:
    sources = list(TALKERS) if noise_class == "babble" else None
    a = synthesize_noise(noise_class, 2.0, np.random.default_rng(123), babble_sources=sources)
    b = synthesize_noise(noise_class, 2.0, np.random.default_rng(123), babble_sources=sources)
    c = synthesize_noise(noise_class, 2.0, np.random.default_rng(124), babble_sources=sources)
    assert a.tobytes() == b.tobytes()
    assert not np.allclose(a, c, atol=1e-3)


@pytest.mark.parametrize("noise_class", NOISE_CLASSES)
def test_global_numpy_rng_neither_used_nor_disturbed(noise_class: str) -> None:
    sources = list(TALKERS) if noise_class == "babble" else None
    np.random.seed(1)
    before = np.random.get_state(legacy=False)
    a = synthesize_noise(noise_class, 1.0, np.random.default_rng(5), babble_sources=sources)
    after = np.random.get_state(legacy=False)
    assert np.array_equal(before["state"]["key"], after["state"]["key"])
    assert before["state"]["pos"] == after["state"]["pos"]
    np.random.seed(99)
    b = synthesize_noise(noise_class, 1.0, np.random.default_rng(5), babble_sources=sources)
    assert a.tobytes() == b.tobytes()


def test_generator_is_consumed_so_successive_calls_differ() -> None:
    rng = np.random.default_rng(3)
    a = synthesize_noise("pink", 1.0, rng)
    b = synthesize_noise("pink", 1.0, rng)
    assert not np.allclose(a, b)


# ----------------------------------------------------------------------------- errors


def test_unknown_class_error_names_it_and_lists_classes() -> None:
    with pytest.raises(ValueError, match="thunder") as info:
        synthesize_noise("thunder", 1.0, np.random.default_rng(0))
    for name in NOISE_CLASSES:
        assert name in str(info.value)


@pytest.mark.parametrize("sources", [None, []])
def test_babble_without_sources_raises(sources: list[np.ndarray] | None) -> None:
    with pytest.raises(ValueError, match="babble needs speech sources"):
        synthesize_noise("babble", 1.0, np.random.default_rng(0), babble_sources=sources)


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_bad_duration_raises(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        synthesize_noise("white", seconds, np.random.default_rng(0))


# ----------------------------------------------------------------------------- character


@pytest.mark.parametrize("seed", SEEDS)
def test_classes_have_distinct_long_term_spectra(seed: int) -> None:
    profiles = {name: _band_profile(_noise(name, seed)) for name in NOISE_CLASSES}
    for a, b in itertools.combinations(NOISE_CLASSES, 2):
        distance = float(np.sqrt(np.mean((profiles[a] - profiles[b]) ** 2)))
        assert distance > 3.0, f"{a} and {b} spectra differ by only {distance:.2f} dB"


@pytest.mark.parametrize("seed", SEEDS)
def test_white_pink_brown_slopes(seed: int) -> None:
    assert _slope_db_per_octave(_noise("white", seed), 100, 6000) == pytest.approx(0.0, abs=0.75)
    assert _slope_db_per_octave(_noise("pink", seed), 100, 6000) == pytest.approx(-3.0, abs=0.75)
    assert _slope_db_per_octave(_noise("brown", seed), 100, 6000) == pytest.approx(-6.0, abs=0.75)


def test_brown_is_high_passed_and_bounded() -> None:
    x = _noise("brown", 0)
    f, p = _psd(x, nperseg=16384)
    assert p[(f > 2) & (f < 6)].mean() < p[(f > 30) & (f < 40)].mean()  # rolled off below ~20 Hz
    halves = _frame_rms(x, x.size // 6)
    assert halves.max() / halves.min() < 2.0  # no random-walk drift


@pytest.mark.parametrize("seed", range(8))
def test_hum_peak_at_mains_frequency(seed: int) -> None:
    x = _noise("hum", seed, 4.0)
    f, p = _psd(x, nperseg=16384)
    level = 10.0 * np.log10(p)
    window = (f >= 40) & (f <= 70)
    peak = f[window][np.argmax(level[window])]
    mains = 50.0 if abs(peak - 50.0) < abs(peak - 60.0) else 60.0
    assert abs(peak - mains) < 1.5
    assert level[window].max() - np.median(level[(f >= 20) & (f <= 2000)]) > 30.0
    # Nearly all the energy sits on harmonics of the mains frequency.
    harmonic = np.abs(f / mains - np.round(f / mains)) * mains < 3.0
    assert p[harmonic & (f > 20)].sum() / p.sum() > 0.9


def test_hum_uses_both_mains_frequencies() -> None:
    seen = set()
    for seed in range(16):
        f, p = _psd(_noise("hum", seed, 2.0), nperseg=16384)
        window = (f >= 40) & (f <= 70)
        seen.add(50 if f[window][np.argmax(p[window])] < 55 else 60)
    assert seen == {50, 60}


@pytest.mark.parametrize("seed", SEEDS)
def test_hvac_has_blade_tone_over_low_passed_air(seed: int) -> None:
    x = _noise("hvac", seed)
    f, p = _psd(x, nperseg=16384)
    level = 10.0 * np.log10(p)
    band = (f >= 78) & (f <= 302)
    k = np.flatnonzero(band)[np.argmax(level[band])]
    neighbourhood = (np.abs(f - f[k]) < 60) & (np.abs(f - f[k]) > 5)
    assert level[k] - np.median(level[neighbourhood]) > 15.0
    assert p[(f >= 4000)].sum() < 0.02 * p[(f < 1000)].sum()  # broadband part is low-passed
    assert stats.kurtosis(x, fisher=False) < 5.0  # steady, not impulsive


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("noise_class", ["clatter", "rain"])
def test_transient_classes_are_impulsive(noise_class: str, seed: int) -> None:
    white = _noise("white", seed)
    x = _noise(noise_class, seed)
    assert stats.kurtosis(x, fisher=False) > 8.0
    assert stats.kurtosis(white, fisher=False) == pytest.approx(3.0, abs=0.2)
    crest, white_crest = np.abs(x).max() / _rms(x), np.abs(white).max() / _rms(white)
    assert crest > 1.8 * white_crest


@pytest.mark.parametrize("seed", SEEDS)
def test_rain_is_high_passed_and_steady_clatter_is_sparse(seed: int) -> None:
    rain, clatter = _noise("rain", seed), _noise("clatter", seed)
    f, p = _psd(rain)
    assert p[f < 300].sum() < 0.01 * p.sum()
    rain_frames, clatter_frames = _frame_rms(rain, 1600), _frame_rms(clatter, 1600)
    # Rain is a dense patter: every 100 ms frame has sound; clatter has quiet gaps between hits.
    assert rain_frames.std() / rain_frames.mean() < 0.4
    assert clatter_frames.std() / clatter_frames.mean() > rain_frames.std() / rain_frames.mean()
    f, p = _psd(clatter)
    assert p[(f >= 1000) & (f <= 6500)].sum() > 0.8 * p.sum()  # resonances live at 1-6 kHz


@pytest.mark.parametrize("seed", SEEDS)
def test_traffic_is_low_heavy_and_time_varying(seed: int) -> None:
    x, white = _noise("traffic", seed, 12.0), _noise("white", seed)
    f, p = _psd(x)
    fw, pw = _psd(white)
    low, low_white = p[f < 500].sum() / p.sum(), pw[fw < 500].sum() / pw.sum()
    assert low > 3.0 * low_white
    frames, white_frames = _frame_rms(x, SR // 2), _frame_rms(white, SR // 2)
    cv, white_cv = frames.std() / frames.mean(), white_frames.std() / white_frames.mean()
    assert cv > 0.1 and cv > 5.0 * white_cv  # pass-bys rise and fall
    assert 20.0 * np.log10(frames.max() / frames.min()) > 3.0


@pytest.mark.parametrize("seed", SEEDS)
def test_babble_is_a_speech_like_mixture(seed: int) -> None:
    x = _noise("babble", seed)
    # Not one of the inputs: its correlation with every talker at every lag stays well below 1.
    for talker in TALKERS:
        xc = signal.correlate(x.astype(np.float64), talker.astype(np.float64), mode="full", method="fft")
        norm = np.sqrt(np.sum(x.astype(np.float64) ** 2) * np.sum(talker.astype(np.float64) ** 2))
        assert np.abs(xc).max() / norm < 0.8
    # Spectrally it resembles the talkers, not white noise.
    speech_profile = np.mean([_band_profile(np.tile(t, 3)) for t in TALKERS], axis=0)
    babble_profile, white_profile = _band_profile(x), _band_profile(_noise("white", seed))
    to_speech = np.sqrt(np.mean((babble_profile - speech_profile) ** 2))
    to_white = np.sqrt(np.mean((babble_profile - white_profile) ** 2))
    assert to_speech < 0.5 * to_white
    # Several overlapping voices: the envelope fluctuates less than one talker, more than white noise.
    frames = _frame_rms(x, 320)
    single = _frame_rms(np.tile(TALKERS[0], 3), 320)
    white_frames = _frame_rms(_noise("white", seed), 320)
    cv = frames.std() / frames.mean()
    assert white_frames.std() / white_frames.mean() * 3.0 < cv < 0.7 * single.std() / single.mean()


def test_babble_mixes_even_a_single_source() -> None:
    talker = TALKERS[0]
    x = synthesize_noise("babble", 3.0, np.random.default_rng(0), babble_sources=[talker])
    tiled = np.tile(talker, 3)[: x.size].astype(np.float64)
    corr = abs(np.corrcoef(x.astype(np.float64), tiled)[0, 1])
    assert corr < 0.9 and np.all(np.isfinite(x))
