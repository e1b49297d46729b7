"""Speech-enhancement quality measures at 16 kHz: PESQ, STOI, SI-SDR and the CSIG/CBAK/COVL composites.

- PESQ is wide-band PESQ (ITU-T P.862.2, MOS-LQO) from the `pesq` package; identical signals score ~4.64.
- STOI (and optionally extended STOI) comes from `pystoi`.
- SI-SDR follows Le Roux et al. (2019): both signals are made zero-mean, the estimate is projected on the reference.
- The composite measures follow Hu & Loizou, "Evaluation of objective quality measures for speech enhancement"
  (IEEE TASLP 16(1), 2008) and the conventions of their composite.m, written anew here:

  * frames of 30 ms with 75 % overlap (hop = frame // 4), symmetric Hanning window without zero end points,
    floor((N - frame) / hop) frames, and machine epsilon added to both signals so digital silence stays defined;
  * LLR: LPC by the autocorrelation method (order 10 below 10 kHz, 16 above), per-frame
    log(a_e R_r a_e' / a_r R_r a_r'), averaged over the lowest 95 % of frames;
  * WSS: 25 critical-band Gaussian filters on a power spectrum, Klatt (1982) slope distance with Kmax = 20 and
    Klocmax = 1, averaged over the lowest 95 % of frames. As in composite.m the filter bank spans 50 Hz - ~3.8 kHz
    at every sample rate;
  * segmental SNR: per-frame SNR clipped to [-10, 35] dB, mean over all frames;
  * CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS,
    CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR,
    COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS, each clipped to [1, 5].

  The regression was fitted with narrow-band raw PESQ; like most speech-enhancement work on VoiceBank+DEMAND we plug in
  **wide-band PESQ** at 16 kHz, so CSIG/CBAK/COVL are comparable with those papers, not with the 2008 fit itself.

Every function takes equal-length 1-D arrays (reference first) and computes in float64. Inputs that cannot be scored
(different lengths, silence, too short, non-finite samples) raise ValueError with a message that says why.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pesq as pesq_lib
from pystoi import stoi as pystoi_stoi

__all__ = [
    "CompositeScores",
    "composite",
    "evaluate_pair",
    "llr",
    "pesq_wb",
    "seg_snr",
    "si_sdr",
    "stoi",
    "wss",
]

PESQ_SAMPLE_RATE = 16000
TRIM_FRACTION = 0.95
SEG_SNR_RANGE = (-10.0, 35.0)
WSS_KMAX = 20.0
WSS_KLOCMAX = 1.0
_EPS = np.finfo(np.float64).eps

# Critical-band centre frequencies and bandwidths (Hz) of the 25-band bank used by Hu & Loizou.
_CENTRE_HZ = np.array(
    [
        50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717, 904.128, 1020.38,
        1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08, 2446.71, 2701.97, 2978.04, 3276.17, 3597.63,
    ]
)  # fmt: skip
_BANDWIDTH_HZ = np.array(
    [
        70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398, 105.411, 116.256, 127.914,
        140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631, 255.255, 276.072, 298.126, 321.465, 346.136,
    ]
)  # fmt: skip


@dataclass(frozen=True)
class CompositeScores:
    """Hu & Loizou composite measures and the parts they are built from."""

    csig: float
    cbak: float
    covl: float
    llr: float
    wss: float
    seg_snr: float
    pesq: float


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as finite float64 1-D arrays of equal length."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.ndim != 1 or est.ndim != 1:
        raise ValueError(f"metrics need 1-D signals, got shapes {ref.shape} (reference) and {est.shape} (estimate)")
    if ref.shape[0] != est.shape[0]:
        raise ValueError(
            f"reference and estimate must have equal lengths, got {ref.shape[0]} (reference) "
            f"and {est.shape[0]} (estimate) samples"
        )
    if ref.shape[0] == 0:
        raise ValueError("reference and estimate are empty")
    if not (np.isfinite(ref).all() and np.isfinite(est).all()):
        raise ValueError("reference or estimate contains NaN or infinite samples")
    return ref, est


def _require_sound(reference: np.ndarray, measure: str) -> None:
    if not np.any(reference):
        raise ValueError(f"{measure}: the reference is silent (all zeros), so there is no speech to compare against")


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum stays single-threaded: BLAS dot wakes its thread pool, which costs milliseconds on a busy machine.
    return float(np.einsum("i,i->", a, b))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (both signals made zero-mean first)."""
    ref, est = _pair(reference, estimate)
    ref = ref - ref.mean()
    est = est - est.mean()
    ref_energy = _dot(ref, ref)
    if ref_energy == 0.0:
        raise ValueError("si_sdr: the reference is silent or constant, so SI-SDR is undefined")
    target = (_dot(est, ref) / ref_energy) * ref
    residual = est - target
    target_energy = _dot(target, target)
    if target_energy == 0.0:
        raise ValueError("si_sdr: the estimate is orthogonal to the reference (or silent), so SI-SDR is -inf")
    # A residual below float64 resolution is rounding noise: cap there instead of returning +inf.
    noise_energy = max(_dot(residual, residual), target_energy * _EPS**2)
    return float(10.0 * np.log10(target_energy / noise_energy))


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = PESQ_SAMPLE_RATE) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO, about 1.04 to 4.64) via the `pesq` package."""
    ref, est = _pair(reference, estimate)
    if sample_rate != PESQ_SAMPLE_RATE:
        raise ValueError(f"pesq_wb: wide-band PESQ needs {PESQ_SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    _require_sound(ref, "pesq_wb")
    if not np.any(est):
        # The P.862 C code turns an all-zero estimate into NaN and fails on converting it.
        raise ValueError("pesq_wb: the estimate is silent (all zeros), which PESQ cannot score")
    try:
        return float(pesq_lib.pesq(sample_rate, ref, est, "wb"))
    except pesq_lib.NoUtterancesError as error:
        raise ValueError(
            f"pesq_wb: PESQ found no utterances in the {ref.shape[0] / sample_rate:.2f} s signals "
            "(silent or too quiet reference/estimate)"
        ) from error
    except pesq_lib.BufferTooShortError as error:
        raise ValueError(
            f"pesq_wb: signals of {ref.shape[0]} samples ({ref.shape[0] / sample_rate:.2f} s) are too short for PESQ"
        ) from error
    except pesq_lib.PesqError as error:
        raise ValueError(f"pesq_wb: PESQ failed: {error}") from error


def stoi(
    reference: np.ndarray, estimate: np.ndarray, sample_rate: int = PESQ_SAMPLE_RATE, extended: bool = False
) -> float:
    """Short-time objective intelligibility (or extended STOI) via `pystoi`, in [0, 1] (ESTOI may dip below 0)."""
    ref, est = _pair(reference, estimate)
    _require_sound(ref, "stoi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        value = float(pystoi_stoi(ref, est, sample_rate, extended=extended))
    # pystoi returns a 1e-5 placeholder with a warning when fewer than 30 frames survive its silence removal.
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise ValueError(
            f"stoi: fewer than 30 non-silent frames in {ref.shape[0] / sample_rate:.2f} s of audio "
            "(signal too short or mostly silent)"
        )
    for caught_warning in caught:
        warnings.warn_explicit(
            caught_warning.message, caught_warning.category, caught_warning.filename, caught_warning.lineno
        )
    return value


# --- composite measure, after Hu & Loizou (2008) ---------------------------------------------------------------


def _frame_geometry(sample_rate: int) -> tuple[int, int]:
    frame = round(30 * sample_rate / 1000)
    return frame, frame // 4


@lru_cache(maxsize=8)
def _hanning(length: int) -> np.ndarray:
    """MATLAB's hanning(): symmetric, without the zero end points."""
    n = np.arange(1, length + 1)
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * n / (length + 1)))
    window.flags.writeable = False
    return window


def _frames(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, frame_length) windowed analysis frames as composite.m cuts them (the last partial hop is dropped)."""
    frame, hop = _frame_geometry(sample_rate)
    count = (signal.shape[0] - frame) // hop
    if count < 1:
        raise ValueError(
            f"signals of {signal.shape[0]} samples are too short for the composite measures: "
            f"need more than {frame + hop} samples at {sample_rate} Hz"
        )
    view = np.lib.stride_tricks.sliding_window_view(signal, frame)[::hop][:count]
    return view * _hanning(frame)


def _trimmed_mean(values: np.ndarray) -> float:
    """Mean of the lowest 95 % of the values (MATLAB round() for the count, as in composite.m)."""
    ordered = np.sort(values)
    keep = max(1, int(np.floor(ordered.shape[0] * TRIM_FRACTION + 0.5)))
    return float(ordered[:keep].mean())


def _prepare(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = _pair(reference, estimate)
    # composite.m adds eps to both signals so that frames of digital silence keep a defined LPC fit and spectrum.
    return ref + _EPS, est + _EPS


def _lpc(frames: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Autocorrelation (lags 0..order) and LPC polynomials [1, -a1, ..., -ap] of each frame (Levinson-Durbin)."""
    length = frames.shape[1]
    acf = np.stack([np.einsum("ij,ij->i", frames[:, : length - k], frames[:, k:]) for k in range(order + 1)], axis=1)
    coeffs = np.zeros((frames.shape[0], order))
    error = acf[:, 0].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(order):
            past = coeffs[:, :i].copy()
            reflection = (acf[:, i + 1] - np.einsum("ij,ij->i", past, acf[:, i:0:-1])) / error
            coeffs[:, i] = reflection
            coeffs[:, :i] = past - reflection[:, None] * past[:, ::-1]
            error = (1.0 - reflection**2) * error
    polynomial = np.concatenate([np.ones((frames.shape[0], 1)), -coeffs], axis=1)
    return acf, polynomial


def _llr_frames(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> np.ndarray:
    order = 10 if sample_rate < 10000 else 16
    acf_ref, poly_ref = _lpc(_frames(ref, sample_rate), order)
    _, poly_est = _lpc(_frames(est, sample_rate), order)
    lags = np.abs(np.subtract.outer(np.arange(order + 1), np.arange(order + 1)))
    toeplitz = acf_ref[:, lags]
    numerator = np.einsum("fi,fij,fj->f", poly_est, toeplitz, poly_est)
    denominator = np.einsum("fi,fij,fj->f", poly_ref, toeplitz, poly_ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(numerator / denominator)


def llr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = PESQ_SAMPLE_RATE) -> float:
    """Log-likelihood ratio (Itakura), mean over the lowest 95 % of frames; 0 for identical signals."""
    values = _llr_frames(*_prepare(reference, estimate), sample_rate)
    # Frames whose LPC fit breaks down numerically carry no information; the original would return NaN.
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("llr: no frame has a usable LPC fit (signals silent or degenerate)")
    return _trimmed_mean(values)


@lru_cache(maxsize=8)
def _critical_band_filters(sample_rate: int, half_fft: int) -> np.ndarray:
    """(25, bins) Gaussian critical-band weights on FFT bins 0, 1, ..., cut at their -30 dB points."""
    max_freq = sample_rate / 2
    centre_bin = np.floor(_CENTRE_HZ / max_freq * half_fft)
    width_bins = _BANDWIDTH_HZ / max_freq * half_fft
    gain = np.log(_BANDWIDTH_HZ[0]) - np.log(_BANDWIDTH_HZ)
    bins = np.arange(half_fft)
    filters = np.exp(-11.0 * ((bins[None, :] - centre_bin[:, None]) / width_bins[:, None]) ** 2 + gain[:, None])
    filters *= filters > np.exp(-30.0 / (2.0 * 2.303))
    # The bank stops near 3.9 kHz; dropping the all-zero bins above it halves the filtering work.
    filters = np.ascontiguousarray(filters[:, : np.flatnonzero(filters.any(axis=0)).max() + 1])
    filters.flags.writeable = False
    return filters


def _band_energies_db(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    frame, _ = _frame_geometry(sample_rate)
    n_fft = 1 << int(np.ceil(np.log2(2 * frame)))
    filters = _critical_band_filters(sample_rate, n_fft // 2)
    power = np.abs(np.fft.rfft(_frames(signal, sample_rate), n_fft, axis=1)[:, : filters.shape[1]]) ** 2
    # einsum rather than a BLAS matmul: BLAS threads contend badly on a busy machine for so small a product.
    return 10.0 * np.log10(np.maximum(np.einsum("fk,bk->fb", power, filters), 1e-10))


def _nearest_peak(energy: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Per band, the level of the nearest spectral peak, searched uphill as composite.m does.

    On a rising slope composite.m walks right to the first non-rising band n and takes band n-1; on a falling slope it
    walks left to the last rising band n and takes n+1. The rightward index is kept as published for comparability.
    """
    bands = slope.shape[1]
    index = np.arange(bands)
    not_rising = np.where(slope <= 0, index, bands)
    next_not_rising = np.minimum.accumulate(not_rising[:, ::-1], axis=1)[:, ::-1]
    rising = np.where(slope > 0, index, -1)
    last_rising = np.maximum.accumulate(rising, axis=1)
    peak_band = np.where(slope > 0, next_not_rising - 1, last_rising + 1)
    return np.take_along_axis(energy, peak_band, axis=1)


def _wss_frames(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> np.ndarray:
    weights = []
    slopes = []
    for signal in (ref, est):
        energy = _band_energies_db(signal, sample_rate)
        slope = np.diff(energy, axis=1)
        body = energy[:, :-1]
        global_weight = WSS_KMAX / (WSS_KMAX + energy.max(axis=1, keepdims=True) - body)
        local_weight = WSS_KLOCMAX / (WSS_KLOCMAX + _nearest_peak(energy, slope) - body)
        weights.append(global_weight * local_weight)
        slopes.append(slope)
    weight = 0.5 * (weights[0] + weights[1])
    return np.sum(weight * (slopes[0] - slopes[1]) ** 2, axis=1) / np.sum(weight, axis=1)


def wss(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = PESQ_SAMPLE_RATE) -> float:
    """Weighted spectral slope distance (Klatt 1982), mean over the lowest 95 % of frames; 0 for identical signals."""
    return _trimmed_mean(_wss_frames(*_prepare(reference, estimate), sample_rate))


def _seg_snr_frames(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> np.ndarray:
    clean = _frames(ref, sample_rate)
    signal_energy = np.sum(clean**2, axis=1)
    noise_energy = np.sum((clean - _frames(est, sample_rate)) ** 2, axis=1)
    snr = 10.0 * np.log10(signal_energy / (noise_energy + _EPS) + _EPS)
    return np.clip(snr, *SEG_SNR_RANGE)


def seg_snr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = PESQ_SAMPLE_RATE) -> float:
    """Segmental SNR in dB: per-frame SNR clipped to [-10, 35], averaged over all frames."""
    return float(np.mean(_seg_snr_frames(*_prepare(reference, estimate), sample_rate)))


def composite(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int = PESQ_SAMPLE_RATE,
    *,
    pesq_score: float | None = None,
) -> CompositeScores:
    """CSIG, CBAK, COVL (Hu & Loizou 2008) with wide-band PESQ; pass `pesq_score` to reuse one already computed."""
    ref, est = _prepare(reference, estimate)
    llr_frames = _llr_frames(ref, est, sample_rate)
    llr_frames = llr_frames[np.isfinite(llr_frames)]
    if llr_frames.size == 0:
        raise ValueError("composite: no frame has a usable LPC fit (signals silent or degenerate)")
    llr_mean = _trimmed_mean(llr_frames)
    wss_mean = _trimmed_mean(_wss_frames(ref, est, sample_rate))
    seg = float(np.mean(_seg_snr_frames(ref, est, sample_rate)))
    quality = pesq_wb(reference, estimate, sample_rate) if pesq_score is None else float(pesq_score)

    def clip(value: float) -> float:
        return float(min(5.0, max(1.0, value)))

    return CompositeScores(
        csig=clip(3.093 - 1.029 * llr_mean + 0.603 * quality - 0.009 * wss_mean),
        cbak=clip(1.634 + 0.478 * quality - 0.007 * wss_mean + 0.063 * seg),
        covl=clip(1.594 + 0.805 * quality - 0.512 * llr_mean - 0.007 * wss_mean),
        llr=llr_mean,
        wss=wss_mean,
        seg_snr=seg,
        pesq=quality,
    )


def evaluate_pair(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int = PESQ_SAMPLE_RATE,
    with_composite: bool = True,
) -> dict[str, float]:
    """PESQ (wide-band), STOI and SI-SDR, plus CSIG/CBAK/COVL if `with_composite`; PESQ is computed once."""
    ref, est = _pair(reference, estimate)
    scores = {
        "pesq": pesq_wb(ref, est, sample_rate),
        "stoi": stoi(ref, est, sample_rate),
        "si_sdr": si_sdr(ref, est),
    }
    if with_composite:
        parts = asdict(composite(ref, est, sample_rate, pesq_score=scores["pesq"]))
        scores.update({key: parts[key] for key in ("csig", "cbak", "covl")})
    return scores
