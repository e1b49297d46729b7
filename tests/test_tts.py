"""Synthetic voices from the Debian TTS engines: catalogue, audio format, determinism, errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.errors import AudioError, ToolMissingError
from maskscope.data.tts import (
    ENGINES,
    MAX_EDGE_SILENCE,
    MAX_PEAK,
    SILENCE_THRESHOLD,
    TARGET_ACTIVE_RMS,
    SyntheticVoice,
    engine_version,
    synthesize,
    voice_catalogue,
    voice_family,
    voice_packages,
    voice_version,
)

TEXT = "The careful baker carried forty-two fresh loaves across the narrow bridge."
ALL_ENGINES = all(shutil.which(tool) for tool in ("espeak-ng", "flite", "text2wave"))
INSTALL = "needs apt-get install -y espeak-ng flite festival"
needs_engines = pytest.mark.skipif(not ALL_ENGINES, reason=INSTALL)
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg (Debian)")


def voice(speaker: str) -> SyntheticVoice:
    return next(v for v in voice_catalogue() if v.speaker == speaker)


def median_f0(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Median F0 of clearly voiced 40 ms frames by normalised autocorrelation (60-400 Hz)."""
    size, low, high = int(0.04 * rate), rate // 400, rate // 60
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), size)[:: size // 2]
    energy = np.sum(frames**2, axis=1)
    f0s = []
    for frame in frames[energy > 0.05 * energy.max()]:
        frame = frame - frame.mean()
        spectrum = np.fft.rfft(frame, 2 * size)
        acf = np.fft.irfft(np.abs(spectrum) ** 2)[:size]
        acf /= acf[0]
        lag = low + int(np.argmax(acf[low:high]))
        if acf[lag] > 0.6:
            f0s.append(rate / lag)
    return float(np.median(f0s))


# A handful of voices across all three engines (festival takes ~0.5 s per utterance).
SAMPLE_VOICES = (
    "espeak-en-us-m3-p40-s165",
    "espeak-en-us-f2-p50-s160",
    "flite-slt",
    "flite-slt-f0-225",
    "festival-kal",
    "festival-ked",
    "festival-slt-hts",
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    if not ALL_ENGINES:
        pytest.skip(INSTALL)
    workdir = tmp_path_factory.mktemp("tts")
    return {name: synthesize(voice(name), TEXT, workdir) for name in SAMPLE_VOICES}


def test_catalogue_is_large_unique_and_deterministic() -> None:
    voices = voice_catalogue()
    assert len(voices) >= 24
    assert len({v.speaker for v in voices}) == len(voices)
    assert len({(v.engine, v.options) for v in voices}) == len(voices)
    assert voice_catalogue() == voices
    assert {v.engine for v in voices} == set(ENGINES)
    counts = {engine: sum(v.engine == engine for v in voices) for engine in ENGINES}
    assert counts["espeak-ng"] >= 14 and counts["flite"] >= 6 and counts["festival"] == 3
    prefixes = {"espeak-ng": "espeak-", "flite": "flite-", "festival": "festival-"}
    for v in voices:
        assert v.speaker.startswith(prefixes[v.engine])
        assert all(isinstance(option, str) for option in v.options)


def test_catalogue_names_match_options() -> None:
    v = voice("espeak-en-us-m3-p40-s165")
    assert v.options == ("-v", "en-us+m3", "-p", "40", "-s", "165")
    assert voice("flite-slt-f0-225").options == ("--setf", "int_f0_target_mean=225", "-voice", "slt")
    assert voice("festival-slt-hts").options == ("-eval", "(voice_cmu_us_slt_arctic_hts)")


@needs_engines
def test_output_is_16k_float32_mono_speech(rendered: dict[str, np.ndarray]) -> None:
    words = len(TEXT.replace("-", " ").split())
    for name, audio in rendered.items():
        assert audio.dtype == np.float32 and audio.ndim == 1, name
        assert np.all(np.isfinite(audio)), name
        seconds = audio.size / SAMPLE_RATE
        assert 0.15 * words < seconds < 0.7 * words, (name, seconds)
        assert np.max(np.abs(audio)) <= MAX_PEAK + 1e-6, name


@needs_engines
def test_edges_are_trimmed_and_level_is_normalised(rendered: dict[str, np.ndarray]) -> None:
    keep = round(MAX_EDGE_SILENCE * SAMPLE_RATE)
    for name, audio in rendered.items():
        loud = np.flatnonzero(np.abs(audio) > SILENCE_THRESHOLD * 0.2)  # gain may have lowered the floor
        assert loud[0] <= keep + 1 and audio.size - 1 - loud[-1] <= keep + 1, name
        frames = audio[: audio.size // 320 * 320].reshape(-1, 320).astype(np.float64)
        energy = np.mean(frames**2, axis=1)
        active_rms = np.sqrt(np.mean(energy[energy >= energy.max() * 1e-4]))
        peak_limited = np.max(np.abs(audio)) >= MAX_PEAK - 1e-4
        assert active_rms <= TARGET_ACTIVE_RMS * 1.01, name
        if not peak_limited:
            assert active_rms == pytest.approx(TARGET_ACTIVE_RMS, rel=0.01), name


@needs_engines
def test_same_voice_and_text_are_bit_identical(rendered: dict[str, np.ndarray], tmp_path: Path) -> None:
    for name in ("espeak-en-us-m3-p40-s165", "flite-slt-f0-225", "festival-kal"):
        again = synthesize(voice(name), TEXT, tmp_path)
        assert again.tobytes() == rendered[name].tobytes(), name
    assert list(tmp_path.iterdir()) == []  # temporary text and WAV files are removed


@needs_engines
def test_distinct_voices_give_distinct_audio(rendered: dict[str, np.ndarray]) -> None:
    blobs = {audio.tobytes() for audio in rendered.values()}
    assert len(blobs) == len(rendered)
    f0 = {name: median_f0(audio) for name, audio in rendered.items()}
    assert f0["espeak-en-us-f2-p50-s160"] > 1.5 * f0["espeak-en-us-m3-p40-s165"], f0
    assert f0["flite-slt-f0-225"] > 1.15 * f0["flite-slt"], f0
    assert 70 < f0["espeak-en-us-m3-p40-s165"] < 140 and 160 < f0["espeak-en-us-f2-p50-s160"] < 260, f0


@needs_engines
def test_festival_diphone_voices_differ_in_timbre(rendered: dict[str, np.ndarray]) -> None:
    """kal and ked share festival's prosody, so compare long-term spectra rather than pitch."""

    def spectrum_db(audio: np.ndarray) -> np.ndarray:
        frames = audio[: audio.size // 512 * 512].reshape(-1, 512) * np.hanning(512)
        return 10 * np.log10(np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0) + 1e-12)

    kal, ked = spectrum_db(rendered["festival-kal"]), spectrum_db(rendered["festival-ked"])
    assert np.sqrt(np.mean((kal - ked) ** 2)) > 2.0  # dB


@needs_engines
@pytest.mark.parametrize("name", ["espeak-en-us-m3-p40-s165", "flite-slt", "festival-kal"])
@pytest.mark.parametrize("text", ["   ", "..."])
def test_empty_output_names_voice_and_text(name: str, text: str, tmp_path: Path) -> None:
    with pytest.raises(AudioError) as caught:
        synthesize(voice(name), text, tmp_path)
    assert name in str(caught.value) and repr(text) in str(caught.value)


def test_silent_engine_output_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that writes a valid WAV of near-silence (as flite does for a pause) is rejected."""
    fake = tmp_path / "bin" / "espeak-ng"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\nimport os, shutil, sys\n"
        "shutil.copy(os.environ['FAKE_WAV'], sys.argv[sys.argv.index('-w') + 1])\n"
    )
    fake.chmod(0o755)
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.full(3000, 0.002, dtype=np.float32), 22050)
    monkeypatch.setenv("FAKE_WAV", str(quiet))
    monkeypatch.setenv("PATH", str(fake.parent))
    with pytest.raises(AudioError, match=r"espeak-en-us-m3-p40-s165.*no audible speech"):
        synthesize(voice("espeak-en-us-m3-p40-s165"), TEXT, tmp_path / "work")


@pytest.mark.parametrize(
    ("name", "package"),
    [("espeak-en-us-m3-p40-s165", "espeak-ng"), ("flite-rms", "flite"), ("festival-ked", "festival")],
)
def test_missing_engine_says_how_to_install(
    name: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match=f"apt-get install -y {package}"):
        synthesize(voice(name), TEXT, tmp_path)


@needs_engines
def test_festival_errors_are_reported_although_it_exits_0(tmp_path: Path) -> None:
    # festival prints "SIOD ERROR: unbound variable" for an unknown voice, exits 0 and writes nothing.
    unknown = SyntheticVoice("festival-xyz", "festival", ("-eval", "(voice_xyz_diphone)"))
    with pytest.raises(AudioError, match=r"festival-xyz.*wrote no audio"):
        synthesize(unknown, TEXT, tmp_path)
    # For a catalogue voice that means its voice package is missing: say which one to install.
    broken = SyntheticVoice("festival-ked", "festival", ("-eval", "(voice_ked_diphone)", "-eval", "(nope)"))
    with pytest.raises(ToolMissingError, match="apt-get install -y festvox-kdlpc16k"):
        synthesize(broken, TEXT, tmp_path)


@needs_dpkg
@needs_engines
def test_versions_come_from_dpkg() -> None:
    for engine in ENGINES:
        version = engine_version(engine)
        assert version.startswith(f"{engine} ") and any(ch.isdigit() for ch in version)
    assert "festvox-us-slt-hts" in voice_packages(voice("festival-slt-hts"))
    assert voice_version(voice("festival-kal")).startswith("festival ")
    assert "festvox-kallpc16k " in voice_version(voice("festival-kal"))


def test_families_group_voices_of_one_recorded_speaker() -> None:
    families = {v.speaker: voice_family(v) for v in voice_catalogue()}
    slt = {name for name, family in families.items() if family == "cmu-arctic-slt"}
    assert slt == {"flite-slt", "flite-slt-f0-225", "festival-slt-hts"}
    assert families["flite-kal16"] == families["festival-kal"] != families["festival-ked"]
    espeak = [name for name in families if name.startswith("espeak-")]
    assert all(families[name] == name for name in espeak)
    assert len(set(families.values())) >= 20


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        engine_version("say")
