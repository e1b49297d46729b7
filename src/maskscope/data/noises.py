"""Synthetic noise classes of distinct, realistic character (numpy/scipy only, no downloads).

Every generator draws only from the Generator it is given, so the same RNG state gives
bit-identical audio. Output is float32 mono, RMS-normalised to 0.1 (no peak clipping).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import fft as sfft
from scipy import signal

from maskscope.core.constants import SYNTHETIC_NOISE_CLASSES

_TARGET_RMS = 0.1
_TABLE_SIZE = 4096


# ----------------------------------------------------------------------------- helpers


def _normalise(x: np.ndarray) -> np.ndarray:
    """Scale to RMS 0.1 and cast to float32 (silence stays silence)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    rms = float(np.sqrt(np.mean(x * x)))
    if rms > 0.0:
        x = x * (_TARGET_RMS / rms)
    return x.astype(np.float32)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return x / rms if rms > 0.0 else x


def _butter_mag(f: np.ndarray, fc: float, order: int, highpass: bool) -> np.ndarray:
    """Magnitude response of a Butterworth filter, for shaping spectra directly."""
    ratio = np.maximum(f, 1e-12) / fc
    if highpass:
        ratio = 1.0 / ratio
    return 1.0 / np.sqrt(1.0 + ratio ** (2 * order))


def _spectral_noise(n: int, rng: np.random.Generator, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Gaussian noise with amplitude spectrum `gain(f)`, made in the frequency domain (fast, exact slopes)."""
    # A fast FFT length (and a minimum) keeps odd or tiny lengths from being slow or degenerate.
    m = sfft.next_fast_len(max(n, 1024), real=True)
    freqs = np.fft.rfftfreq(m, d=1.0 / sr)
    spec = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
    g = gain(freqs)
    g[0] = 0.0
    return _unit_rms(sfft.irfft(spec * g, n=m)[:n])


def _pink_gain(f: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(np.maximum(f, 5.0))


def _brown_gain(f: np.ndarray) -> np.ndarray:
    # 1/f amplitude is integrated noise; the 20 Hz high-pass keeps the waveform from wandering off.
    return _butter_mag(f, 20.0, 2, highpass=True) / np.maximum(f, 1.0)


def _slow_noise(n: int, sr: int, rng: np.random.Generator, rate_hz: float) -> np.ndarray:
    """A smooth random curve (about unit scale) varying at roughly `rate_hz` (well below 50 Hz)."""
    # Built on a 100 Hz grid and linearly upsampled: far cheaper than evaluating it per sample.
    step = sr / 100.0
    coarse_len = int(np.ceil(n / step)) + 2
    t = np.arange(coarse_len) * (rate_hz / 100.0)
    knots = rng.standard_normal(int(np.ceil(t[-1])) + 2)
    i = t.astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (t - i))
    coarse = knots[i] * (1.0 - w) + knots[i + 1] * w
    return np.interp(np.arange(n, dtype=np.float64), np.arange(coarse_len) * step, coarse)


def _harmonic_table(amps: np.ndarray, harmonics: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """One period of sum_k a_k sin(2 pi h_k x + p_k), sampled on _TABLE_SIZE + 1 points (closed)."""
    grid = np.arange(_TABLE_SIZE + 1) * (2.0 * np.pi / _TABLE_SIZE)
    return (amps[:, None] * np.sin(harmonics[:, None] * grid[None, :] + phases[:, None])).sum(axis=0)


def _periodic(cycles: np.ndarray, tables: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Evaluate periodic waveforms at phases given in cycles, via one wavetable lookup for all harmonics."""
    pos = cycles - np.floor(cycles)
    pos *= _TABLE_SIZE
    i = np.minimum(pos.astype(np.int64), _TABLE_SIZE - 1)
    frac = pos - i
    out = []
    for table in tables:
        lo = table[i]
        out.append(lo + frac * (table[i + 1] - lo))
    return out


def _nyq_cap(f: float, sr: int) -> float:
    return min(f, 0.45 * sr)


# ----------------------------------------------------------------------------- classes


def _white(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    return rng.standard_normal(n)


def _pink(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    return _spectral_noise(n, rng, sr, _pink_gain)


def _brown(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    return _spectral_noise(n, rng, sr, _brown_gain)


def _hum(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    f0 = float(rng.choice([50.0, 60.0]))
    top = max(2, int(_nyq_cap(2000.0, sr) // f0))
    extra = rng.choice(np.arange(2, top + 1), size=min(int(rng.integers(4, 13)), top - 1), replace=False)
    harmonics = np.concatenate([[1.0], np.sort(extra).astype(np.float64)])
    decay = rng.uniform(2.0, 8.0)
    base = np.exp(-(harmonics - 1.0) / decay)
    base[1:] *= rng.uniform(0.2, 0.9, size=harmonics.size - 1)
    # Mains frequency drifts by a few hundredths of a hertz; all harmonics follow it.
    drift_hz = 0.03 * _slow_noise(n, sr, rng, 0.1)
    cycles = (f0 / sr) * np.arange(n) + np.cumsum(drift_hz) / sr
    # Two timbres cross-faded slowly: the harmonic balance wobbles, as with varying load.
    tables = [
        _harmonic_table(base * rng.lognormal(0.0, 0.3, base.size), harmonics, rng.uniform(0, 2 * np.pi, base.size))
        for _ in range(2)
    ]
    w1, w2 = _periodic(cycles, tables)
    mix = 0.5 + 0.5 * np.tanh(_slow_noise(n, sr, rng, 0.15))
    am = 1.0 + 0.15 * np.tanh(_slow_noise(n, sr, rng, 0.3))
    tone = _unit_rms(am * (mix * w1 + (1.0 - mix) * w2))
    return tone + rng.uniform(0.01, 0.04) * _pink(n, rng, sr)


def _traffic(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    fc_rumble = rng.uniform(120.0, 300.0)
    rumble = _spectral_noise(n, rng, sr, lambda f: _brown_gain(f) * _butter_mag(f, fc_rumble, 2, False))
    out = rng.uniform(0.3, 0.5) * rumble
    engine_table = _harmonic_table(np.array([1.0, 0.5, 0.25]), np.arange(1.0, 4.0), np.zeros(3))
    seconds = n / sr
    rate = rng.uniform(0.08, 0.2)
    pad = 4.0
    count = max(1, int(rng.poisson(rate * (seconds + pad))))
    for k in range(count):
        # The first vehicle passes inside the clip, so even short clips have a pass-by.
        tc = rng.uniform(0.0, seconds) if k == 0 else rng.uniform(-pad / 2, seconds + pad / 2)
        width = rng.uniform(0.6, 2.0)  # closest-approach time scale: distance / speed
        start = int(np.floor((tc - 3.0 * width) * sr))
        stop = int(np.ceil((tc + 3.0 * width) * sr))
        u = (np.arange(start, stop) / sr - tc) / width
        inv_dist = 1.0 / np.sqrt(1.0 + u * u)
        radial = u * inv_dist  # cosine of the angle to the source: -1 approaching, +1 gone
        env = inv_dist * np.cos((np.pi / 6.0) * u) ** 2
        # Tyre/wind noise: two band-passes cross-faded, brighter while approaching (filter sweep).
        raw = rng.standard_normal(stop - start)
        f_lo = rng.uniform(150.0, 400.0)
        f_hi = _nyq_cap(rng.uniform(1000.0, 2500.0), sr)
        shift = rng.uniform(1.2, 1.6)
        sos_a = signal.butter(2, [f_lo, _nyq_cap(f_hi * shift, sr)], btype="band", fs=sr, output="sos")
        sos_b = signal.butter(2, [f_lo, f_hi / shift], btype="band", fs=sr, output="sos")
        near = signal.sosfilt(sos_b, raw)
        noise = near + (0.5 * (1.0 - radial)) * (signal.sosfilt(sos_a, raw) - near)
        # Engine tone with Doppler: pitch falls by about 2*v/c as the vehicle passes.
        beta = rng.uniform(0.02, 0.07)
        f_eng = rng.uniform(35.0, 120.0) * (1.0 - beta * radial)
        (engine,) = _periodic(np.cumsum(f_eng) / sr + rng.random(), [engine_table])
        burst = _unit_rms(noise) + rng.uniform(0.2, 0.6) * _unit_rms(engine)
        gain = rng.uniform(0.6, 1.6)
        lo, hi = max(start, 0), min(stop, n)
        if hi > lo:
            out[lo:hi] += gain * (env * burst)[lo - start : hi - start]
    return out


def _clatter(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    out = np.zeros(n)
    rate = rng.uniform(1.5, 6.0)
    count = max(1, int(rng.poisson(rate * n / sr)))
    f_top = _nyq_cap(6000.0, sr)
    f_bottom = min(1000.0, 0.5 * f_top)
    for _ in range(count):
        pos = int(rng.integers(0, n))
        modes = int(rng.integers(1, 4))
        freqs = rng.uniform(f_bottom, f_top, modes)
        taus = rng.uniform(0.005, 0.06, modes)
        amps = rng.uniform(0.3, 1.0, modes)
        phases = rng.uniform(0, 2 * np.pi, modes)
        length = min(int(5.0 * taus.max() * sr) + 1, n - pos)
        t = np.arange(length) / sr
        burst = (
            amps[:, None]
            * np.exp(-t[None, :] / taus[:, None])
            * np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None])
        ).sum(axis=0)
        burst += 0.5 * np.exp(-t / 0.0008) * rng.standard_normal(length)  # the hit itself
        gain = rng.lognormal(0.0, 0.7)
        # Dishes and keys often rattle in quick clusters of a few hits.
        repeats = int(rng.integers(2, 5)) if rng.random() < 0.3 else 1
        at = pos
        for _r in range(repeats):
            seg = min(length, n - at)
            if seg <= 0:
                break
            out[at : at + seg] += gain * burst[:seg]
            gain *= rng.uniform(0.3, 0.9)
            at += int(rng.uniform(0.04, 0.15) * sr)
    level = float(np.sqrt(np.mean(out * out)))
    background = _pink(n, rng, sr) * level * rng.uniform(0.03, 0.1)
    return out + background


def _hvac(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    # Duct air: roughly flat up to a knee, then a steep roll-off; a faint hiss from the grille on top.
    fc = _nyq_cap(rng.uniform(300.0, 1000.0), sr)
    air = _spectral_noise(n, rng, sr, lambda f: _butter_mag(f, fc, 2, False) * _butter_mag(f, 40.0, 2, True))
    hiss = rng.uniform(0.01, 0.03) * rng.standard_normal(n)
    f_blade = rng.uniform(80.0, 300.0)
    harmonics = np.arange(1, int(rng.integers(2, 6)) + 1, dtype=np.float64)
    amps = np.exp(-(harmonics - 1.0) * rng.uniform(0.5, 1.5)) * rng.uniform(0.5, 1.0, harmonics.size)
    amps[0] = 1.0
    jitter_hz = 0.003 * f_blade * _slow_noise(n, sr, rng, 0.2)  # motor speed hunting
    cycles = (f_blade / sr) * np.arange(n) + np.cumsum(jitter_hz) / sr
    blade_table = _harmonic_table(amps, harmonics, rng.uniform(0, 2 * np.pi, harmonics.size))
    sine_table = _harmonic_table(np.ones(1), np.ones(1), np.zeros(1))
    blade, sine = _periodic(cycles, [blade_table, sine_table])
    am = 1.0 + rng.uniform(0.1, 0.3) * np.tanh(_slow_noise(n, sr, rng, rng.uniform(0.1, 0.8)))
    # Air turbulence is itself chopped a little by the passing blades.
    chop = 1.0 + rng.uniform(0.05, 0.2) * sine
    return air * chop + hiss + rng.uniform(0.35, 0.7) * am * _unit_rms(blade)


def _resonator(freq: float, tau: float, phase: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """IIR (b, a) whose impulse response is exp(-t/tau) * sin(2 pi freq t + phase)."""
    d = np.exp(-1.0 / (tau * sr))
    w = 2.0 * np.pi * freq / sr
    return np.array([np.sin(phase), d * np.sin(w - phase)]), np.array([1.0, -2.0 * d * np.cos(w), d * d])


def _rain(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    rate = rng.uniform(150.0, 600.0)
    count = int(rng.poisson(rate * n / sr))
    pos = rng.integers(0, n, size=count)
    # Heavy-tailed but capped: a single freak drop must not dominate the whole clip.
    amps = np.minimum(rng.lognormal(0.0, 0.8, size=count), 6.0) * rng.choice([-1.0, 1.0], size=count)
    group = rng.integers(0, 4, size=count)
    drops = np.zeros(n)
    for g in range(4):
        # Each group of droplets rings at its own small-surface resonance.
        sel = group == g
        train = np.bincount(pos[sel], weights=amps[sel], minlength=n)
        b, a = _resonator(
            rng.uniform(_nyq_cap(2000.0, sr) * 0.8, _nyq_cap(7000.0, sr)),
            rng.uniform(0.0003, 0.002),
            rng.uniform(0, 2 * np.pi),
            sr,
        )
        drops += signal.lfilter(b, a, train)
    sos = signal.butter(2, _nyq_cap(500.0, sr), btype="high", fs=sr, output="sos")
    drops = _unit_rms(signal.sosfilt(sos, drops))
    fc = _nyq_cap(rng.uniform(800.0, 2500.0), sr)
    bed = _spectral_noise(n, rng, sr, lambda f: _butter_mag(f, fc, 2, True))
    return drops + rng.uniform(0.2, 0.45) * bed


def _talker_stream(source: np.ndarray, n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """One voice: its source tiled from a random offset, with short pauses between repetitions."""
    pieces: list[np.ndarray] = [np.zeros(0)]
    have = 0
    at = int(rng.integers(0, source.size))
    while have < n:
        piece = np.asarray(source[at : at + (n - have)], dtype=np.float64)
        at = 0
        gap = np.zeros(min(int(rng.uniform(0.05, 0.4) * sr), max(n - have - piece.size, 0)))
        pieces += [piece, gap]
        have += piece.size + gap.size
    return _unit_rms(np.concatenate(pieces))


def _babble(n: int, rng: np.random.Generator, sr: int, babble_sources: Sequence[np.ndarray] | None) -> np.ndarray:
    if babble_sources is None or len(babble_sources) == 0:
        raise ValueError("babble needs speech sources (babble_sources is None or empty)")
    sources = [np.asarray(s).reshape(-1) for s in babble_sources]
    sources = [s for s in sources if s.size > 0]
    if not sources:
        raise ValueError("babble needs speech sources; all given babble_sources are empty")
    talkers = int(rng.integers(4, 9))
    # Distinct sources where there are enough; otherwise reuse them at different offsets.
    chosen = rng.choice(len(sources), size=talkers, replace=len(sources) < talkers)
    out = np.zeros(n)
    for idx in chosen:
        out += rng.uniform(0.7, 1.4) * _talker_stream(sources[int(idx)], n, rng, sr)
    if not np.all(np.isfinite(out)):
        raise ValueError("babble_sources contain NaN or infinite samples")
    return out


_GENERATORS: dict[str, Callable[[int, np.random.Generator, int], np.ndarray]] = {
    "white": _white,
    "pink": _pink,
    "brown": _brown,
    "hum": _hum,
    "traffic": _traffic,
    "clatter": _clatter,
    "hvac": _hvac,
    "rain": _rain,
}


def synthesize_noise(
    noise_class: str,
    seconds: float,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    babble_sources: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """float32 mono noise, length round(seconds*sample_rate), RMS normalised to 0.1 (no peak clipping).

    `babble_sources` (needed by "babble" only) are speech arrays at `sample_rate`, ideally one per
    talker; 4-8 of them are tiled from random offsets and summed.
    """
    if noise_class not in SYNTHETIC_NOISE_CLASSES:
        raise ValueError(f"unknown noise class {noise_class!r}; known classes: {', '.join(SYNTHETIC_NOISE_CLASSES)}")
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite non-negative number, got {seconds!r}")
    # Below 8 kHz the fixed filter bands (traffic, rain, clatter) would not fit under Nyquist.
    if int(sample_rate) != sample_rate or sample_rate < 8000:
        raise ValueError(f"sample_rate must be an integer >= 8000 Hz, got {sample_rate!r}")
    sr = int(sample_rate)
    n = round(float(seconds) * sr)
    if noise_class == "babble":
        return _normalise(_babble(n, rng, sr, babble_sources))
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    return _normalise(_GENERATORS[noise_class](n, rng, sr))
