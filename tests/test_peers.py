from __future__ import annotations

import numpy as np
import pytest
from test_metrics import speechlike, with_noise

from maskscope.evaluation import peers
from maskscope.evaluation.scoring import Enhanced
from maskscope.evaluation.systems import System, peer_system, system_metrics
from maskscope.training.loop import Utterance


@pytest.fixture(scope="module")
def mixture() -> tuple[np.ndarray, np.ndarray]:
    clean = speechlike(seconds=4.0).astype(np.float32)
    return clean, with_noise(clean, snr_db=5.0).astype(np.float32)


def best_lag(estimate: np.ndarray, clean: np.ndarray, reach: int = 600) -> int:
    """The shift of `estimate` against `clean` that correlates best, in samples (positive: estimate late)."""
    core = slice(reach, clean.size - reach)
    scores = {
        lag: float(np.dot(estimate[core.start + lag : core.stop + lag], clean[core])) for lag in range(-reach, reach)
    }
    return max(scores, key=scores.get)


@pytest.mark.parametrize("name", peers.PEERS)
def test_each_peer_loads_from_its_wheel_and_returns_aligned_audio_of_the_input_length(name, mixture):
    clean, noisy = mixture
    loaded, errors = peers.load_peers([name])
    assert errors == {}
    enhanced = loaded[0].enhance(noisy)
    assert enhanced.shape == noisy.shape and enhanced.dtype == np.float32
    assert np.all(np.isfinite(enhanced))
    # the frame-by-frame peers' lag is removed: a lag left in would show as a shift of hundreds of samples
    assert abs(best_lag(enhanced, clean)) <= 2


@pytest.mark.parametrize("name", ["rnnoise", "deepfilternet3"])
def test_the_neural_peers_suppress_noise_alone(name):
    noise = (0.05 * np.random.default_rng(3).standard_normal(4 * 16000)).astype(np.float32)
    enhanced = peers.load_peers([name])[0][0].enhance(noise)
    settled = slice(16000, None)  # past the first second, while the models' noise estimates settle
    reduction_db = 10 * np.log10(np.mean(noise[settled] ** 2) / np.mean(enhanced[settled] ** 2))
    assert reduction_db > 10.0


def test_a_peer_that_cannot_load_is_left_out_with_its_error(monkeypatch):
    def broken() -> peers.Peer:
        raise OSError("librnnoise.so: cannot open shared object file")

    monkeypatch.setitem(peers._LOADERS, "rnnoise", broken)
    loaded, errors = peers.load_peers(["rnnoise", "spectral-gating"])
    assert [peer.name for peer in loaded] == ["spectral-gating"]
    assert "cannot open shared object file" in errors["rnnoise"]


def test_peer_rows_carry_cpu_time_and_scores_per_speaker_kind_but_no_mac_count(mixture):
    clean, noisy = mixture
    test = [
        Utterance("real-0", clean, noisy, 0.1, kind="real"),
        Utterance("tts-0", clean, noisy, 0.1, kind="synthetic"),
        Utterance("tts-1", clean, noisy, 0.1, kind="synthetic"),
    ]
    peer = peers.load_peers(["spectral-gating"])[0][0]
    system = peer_system(peer, test, timed=2)
    assert system.cpu_seconds_per_audio_second > 0
    rows = {
        "noisy": [{"pesq": 1.0}, {"pesq": 2.0}, {"pesq": 3.0}],
        "spectral-gating": [{"pesq": 2.0}, {"pesq": float("nan")}, {"pesq": 4.0}],
    }
    dense = System("dense", [Enhanced(noisy, None)] * 3, 10.0, {})
    rows["dense"] = [{"pesq": 3.0}, {"pesq": 3.0}, {"pesq": 3.0}]
    metrics = system_metrics({"dense": dense, "spectral-gating": system}, rows, [u.kind for u in test])
    entry = metrics["spectral-gating"]
    assert "macs_per_sample" not in entry and "mac_saving" not in entry
    assert entry["cpu_seconds_per_audio_second"] > 0
    assert entry["by_speaker_kind"]["real"] == {"pesq": 2.0, "utterances_scored": 1, "utterances_failed": 0}
    assert entry["by_speaker_kind"]["synthetic"] == {"pesq": 4.0, "utterances_scored": 1, "utterances_failed": 1}
    # gains compare systems on the utterances every system scored (the first and the last)
    assert entry["pesq_gain_over_noisy"] == 1.0
    assert metrics["dense"]["pesq_gain_over_noisy"] == 1.0
    assert metrics["noisy"]["by_speaker_kind"]["synthetic"]["pesq"] == 2.5
