from __future__ import annotations

import itertools

import numpy as np
import pytest

from maskscope.evaluation import metrics

RATE = 16000
SNRS_DB = (20.0, 10.0, 0.0)


def speechlike(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Formant-shaped harmonics with vibrato, 4 Hz syllables, pauses, fricative-like noise bursts, a faint floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 130.0 + 25.0 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    formants = ((600.0, 120.0, 1.0), (1400.0, 150.0, 0.5), (2600.0, 200.0, 0.25))
    voice = np.zeros_like(t)
    for k in range(1, 48):  # highest harmonic stays below 7.5 kHz at the top of the vibrato
        amplitude = sum(gain / (1 + ((130.0 * k - centre) / width) ** 2) for centre, width, gain in formants)
        voice += amplitude * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    voice /= np.max(np.abs(voice))
    syllables = np.sin(np.pi * 4.0 * t) ** 2
    talking = (np.sin(2 * np.pi * 0.5 * t - 0.3) > -0.6).astype(float)
    bursts = np.clip(np.sin(np.pi * 4.0 * t + np.pi / 2), 0, None) ** 8 * talking
    fricative = np.diff(rng.standard_normal(t.size + 1))
    floor = 1e-4 * rng.standard_normal(t.size)
    return 0.3 * voice * syllables * talking + 0.03 * fricative * bursts + floor


def with_noise(clean: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(clean.size)
    return clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return speechlike()


@pytest.fixture(scope="module")
def noisy(clean) -> dict[float, np.ndarray]:
    return {snr: with_noise(clean, snr) for snr in SNRS_DB}


def test_si_sdr_identical_is_huge_and_scale_invariant(clean, noisy):
    assert metrics.si_sdr(clean, clean) > 100
    assert metrics.si_sdr(clean, 2.5 * clean) > 100
    estimate = noisy[10.0]
    assert metrics.si_sdr(clean, 2.5 * estimate) == pytest.approx(metrics.si_sdr(clean, estimate), abs=1e-9)
    # Zero-mean first: a DC offset in the estimate changes nothing.
    assert metrics.si_sdr(clean, estimate + 0.3) == pytest.approx(metrics.si_sdr(clean, estimate), abs=1e-9)


@pytest.mark.parametrize("snr_db", [*SNRS_DB, 5.0])
def test_si_sdr_matches_known_snr(clean, snr_db):
    assert metrics.si_sdr(clean, with_noise(clean, snr_db, seed=7)) == pytest.approx(snr_db, abs=0.5)


def test_pesq_is_maximal_for_identical_and_drops_with_noise(clean, noisy):
    scores = [metrics.pesq_wb(clean, clean)] + [metrics.pesq_wb(clean, noisy[snr]) for snr in SNRS_DB]
    assert scores[0] == pytest.approx(4.64, abs=0.01)
    assert all(a > b for a, b in itertools.pairwise(scores)), scores


def test_stoi_is_one_for_identical_and_drops_with_noise(clean, noisy):
    scores = [metrics.stoi(clean, clean)] + [metrics.stoi(clean, noisy[snr]) for snr in SNRS_DB]
    assert scores[0] == pytest.approx(1.0, abs=1e-6)
    assert all(a > b for a, b in itertools.pairwise(scores)), scores
    extended = [metrics.stoi(clean, clean, extended=True), metrics.stoi(clean, noisy[0.0], extended=True)]
    assert extended[0] == pytest.approx(1.0, abs=1e-6)
    assert extended[1] < scores[-1]


def test_composite_parts_for_identical_signals(clean):
    scores = metrics.composite(clean, clean)
    assert scores.llr == pytest.approx(0.0, abs=1e-9)
    assert scores.wss == pytest.approx(0.0, abs=1e-9)
    assert scores.seg_snr == pytest.approx(35.0)
    assert scores.pesq == pytest.approx(4.64, abs=0.01)
    assert (scores.csig, scores.cbak, scores.covl) == (5.0, 5.0, 5.0)
    assert metrics.llr(clean, clean) == pytest.approx(0.0, abs=1e-9)
    assert metrics.wss(clean, clean) == pytest.approx(0.0, abs=1e-9)
    assert metrics.seg_snr(clean, clean) == pytest.approx(35.0)


def test_composite_scores_fall_with_noise(clean, noisy):
    runs = [metrics.composite(clean, clean)] + [metrics.composite(clean, noisy[snr]) for snr in SNRS_DB]
    for run in runs:
        for value in (run.csig, run.cbak, run.covl):
            assert 1.0 <= value <= 5.0
    for name in ("csig", "cbak", "covl", "pesq"):
        values = [getattr(run, name) for run in runs]
        # Strictly down until the [1, 5] clip can flatten the noisiest step.
        assert values[0] > values[1] > values[2] >= values[3], (name, values)
    assert runs[1].cbak > runs[2].cbak > runs[3].cbak
    for name in ("llr", "wss"):
        values = [getattr(run, name) for run in runs]
        assert values[0] < values[1] < values[2] < values[3], (name, values)
    seg = [run.seg_snr for run in runs]
    assert seg[0] > seg[1] > seg[2] > seg[3] >= -10.0


def test_seg_snr_is_clipped_at_minus_ten(clean):
    # Error 5x the signal in every frame: -14 dB, clipped to -10.
    assert metrics.seg_snr(clean, -4.0 * clean) == pytest.approx(-10.0)
    assert metrics.seg_snr(clean, -clean) == pytest.approx(-20 * np.log10(2.0))


def test_composite_reuses_given_pesq(clean, noisy):
    computed = metrics.composite(clean, noisy[10.0])
    reused = metrics.composite(clean, noisy[10.0], pesq_score=computed.pesq)
    assert reused == computed


def test_evaluate_pair_keys_and_consistency(clean, noisy):
    estimate = noisy[10.0]
    scores = metrics.evaluate_pair(clean, estimate)
    assert set(scores) == {"pesq", "stoi", "si_sdr", "csig", "cbak", "covl"}
    assert all(isinstance(value, float) for value in scores.values())
    assert scores["si_sdr"] == pytest.approx(metrics.si_sdr(clean, estimate))
    assert scores["stoi"] == pytest.approx(metrics.stoi(clean, estimate))
    parts = metrics.composite(clean, estimate, pesq_score=scores["pesq"])
    assert scores["csig"] == parts.csig
    short = metrics.evaluate_pair(clean, estimate, with_composite=False)
    assert set(short) == {"pesq", "stoi", "si_sdr"}
    assert short["pesq"] == scores["pesq"]


def test_float32_input_gives_float64_results(clean, noisy):
    single = metrics.evaluate_pair(clean.astype(np.float32), noisy[10.0].astype(np.float32))
    double = metrics.evaluate_pair(clean, noisy[10.0])
    for key, value in single.items():
        assert value == pytest.approx(double[key], rel=1e-3, abs=0.02), key


@pytest.mark.parametrize(
    "measure",
    [metrics.si_sdr, metrics.pesq_wb, metrics.stoi, metrics.composite, metrics.evaluate_pair, metrics.llr],
)
def test_mismatched_lengths_raise(measure, clean):
    with pytest.raises(ValueError, match=r"48000.*47999"):
        measure(clean, clean[:-1])


@pytest.mark.parametrize("measure", [metrics.si_sdr, metrics.pesq_wb, metrics.stoi, metrics.evaluate_pair])
def test_silent_reference_raises_clear_error(measure, clean):
    with pytest.raises(ValueError, match="silent"):
        measure(np.zeros_like(clean), clean)


def test_silent_estimate_raises_for_pesq(clean):
    with pytest.raises(ValueError, match="estimate is silent"):
        metrics.pesq_wb(clean, np.zeros_like(clean))


def test_too_short_signals_raise_clear_errors():
    short = speechlike(0.2)
    with pytest.raises(ValueError, match="too short for PESQ"):
        metrics.pesq_wb(short, short)
    with pytest.raises(ValueError, match="fewer than 30 non-silent frames"):
        metrics.stoi(short, short)
    with pytest.raises(ValueError, match="too short for the composite"):
        metrics.wss(short[:500], short[:500])


def test_bad_inputs_raise():
    signal = speechlike(1.0)
    with pytest.raises(ValueError, match="16000 Hz"):
        metrics.pesq_wb(signal, signal, sample_rate=8000)
    with pytest.raises(ValueError, match="1-D"):
        metrics.si_sdr(signal[None, :], signal[None, :])
    broken = signal.copy()
    broken[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.stoi(signal, broken)
