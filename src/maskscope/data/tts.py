"""Synthetic speakers from Debian's TTS engines: espeak-ng, flite and festival.

Each `SyntheticVoice` is an engine plus the arguments that define a distinct voice (accent, voice
variant, pitch, rate). `synthesize` runs the engine on a text file (never through a shell), reads
its WAV, resamples it to 16 kHz with the project's one resampler, trims leading/trailing digital
silence to at most `MAX_EDGE_SILENCE` seconds and scales the utterance to a fixed active-speech
level (`TARGET_ACTIVE_RMS`, about -26 dBFS, the usual ITU-T P.56 operating level), lowering it
further only if the peak would exceed `MAX_PEAK`. With the same package versions the output is
bit-identical, so record `voice_version(voice)` next to the audio's sha256.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskscope.core.audio import SAMPLE_RATE, read_audio_file, resample
from maskscope.core.errors import AudioError, ToolMissingError
from maskscope.core.tools import debian_package_version, require_tool

MAX_EDGE_SILENCE = 0.15  # seconds of leading/trailing silence kept
SILENCE_THRESHOLD = 10 ** (-70 / 20)  # |x| below -70 dBFS counts as digital silence at the edges
MIN_SPEECH_PEAK = 10 ** (-40 / 20)  # engine output that never reaches -40 dBFS holds no speech
TARGET_ACTIVE_RMS = 10 ** (-26 / 20)  # RMS over active 20 ms frames after scaling
ACTIVE_FRAME_RANGE_DB = 40.0  # frames within 40 dB of the loudest frame count as active
MAX_PEAK = 0.95  # headroom so the 16-bit encode never clips
TIMEOUT_SECONDS = 120.0

ENGINES = ("espeak-ng", "flite", "festival")
# Executable checked for each engine, and the apt package that provides it.
_ENGINE_TOOLS = {
    "espeak-ng": ("espeak-ng", "espeak-ng"),
    "flite": ("flite", "flite"),
    "festival": ("text2wave", "festival"),
}
# Debian packages whose versions determine an engine's audio (engine, data, voices).
_ENGINE_PACKAGES = {
    "espeak-ng": ("espeak-ng", "espeak-ng-data", "libespeak-ng1"),
    "flite": ("flite", "libflite1"),
    "festival": ("festival",),
}
_FESTIVAL_VOICES = {
    # speaker suffix: (scheme voice function, Debian voice package)
    "kal": ("voice_kal_diphone", "festvox-kallpc16k"),
    "ked": ("voice_ked_diphone", "festvox-kdlpc16k"),
    "slt-hts": ("voice_cmu_us_slt_arctic_hts", "festvox-us-slt-hts"),
}

# espeak-ng voices: (accent, variant, pitch 0-99, rate in words per minute). Chosen so median F0
# spreads from ~80 Hz to ~260 Hz across accents (measured with espeak-ng 1.51).
_ESPEAK_VOICES = (
    ("en-us", "m3", 40, 165),
    ("en", "m1", 30, 155),
    ("en-gb-scotland", "m2", 55, 160),
    ("en-gb-x-rp", "m7", 65, 170),
    ("en-029", "m5", 45, 150),
    ("en-gb-x-gbclan", "m4", 75, 175),
    ("en-us-nyc", "david", 50, 160),
    ("en-gb-x-gbcwmd", "Andy", 35, 145),
    ("en-us", "klatt", 60, 160),
    ("en-us", "f2", 50, 160),
    ("en", "f1", 40, 150),
    ("en-gb-scotland", "f3", 60, 165),
    ("en-gb-x-rp", "f4", 45, 170),
    ("en-029", "f5", 70, 155),
    ("en-us", "Annie", 55, 165),
    ("en-gb-x-gbclan", "linda", 35, 160),
)
# flite voices: (voice, mean F0 target in Hz or None for the voice's own). rms ignores the F0
# target, so only slt, awb and kal16 get shifted variants.
_FLITE_VOICES = (
    ("slt", None),
    ("rms", None),
    ("awb", None),
    ("kal16", None),
    ("slt", 225),
    ("awb", 100),
)


@dataclass(frozen=True)
class SyntheticVoice:
    """One synthetic speaker: an engine and the arguments that define its voice."""

    speaker: str
    engine: str
    options: tuple[str, ...]


def voice_catalogue() -> list[SyntheticVoice]:
    """All synthetic voices, in a fixed order (16 espeak-ng, 6 flite, 3 festival)."""
    voices = []
    for accent, variant, pitch, rate in _ESPEAK_VOICES:
        voices.append(
            SyntheticVoice(
                speaker=f"espeak-{accent}-{variant.lower()}-p{pitch}-s{rate}",
                engine="espeak-ng",
                options=("-v", f"{accent}+{variant}", "-p", str(pitch), "-s", str(rate)),
            )
        )
    for name, f0 in _FLITE_VOICES:
        options: tuple[str, ...] = ("-voice", name)
        if f0 is not None:
            # flite takes its options before the voice; note the two dashes of --setf.
            options = ("--setf", f"int_f0_target_mean={f0}", *options)
        voices.append(
            SyntheticVoice(
                speaker=f"flite-{name}" + (f"-f0-{f0}" if f0 is not None else ""),
                engine="flite",
                options=options,
            )
        )
    for suffix, (function, _package) in _FESTIVAL_VOICES.items():
        voices.append(
            SyntheticVoice(speaker=f"festival-{suffix}", engine="festival", options=("-eval", f"({function})"))
        )
    return voices


# The recorded human behind the data-driven voices. Voices of one family share a real speaker's
# timbre, so speaker-disjoint splits must keep a family on one side; espeak-ng is rule-based
# formant synthesis, so each of its voices is its own family.
_FAMILIES = {
    "flite-slt": "cmu-arctic-slt",
    "flite-slt-f0-225": "cmu-arctic-slt",
    "festival-slt-hts": "cmu-arctic-slt",
    "flite-awb": "cmu-arctic-awb",
    "flite-awb-f0-100": "cmu-arctic-awb",
    "flite-rms": "cmu-arctic-rms",
    "flite-kal16": "kal",
    "festival-kal": "kal",
    "festival-ked": "ked",
}


def voice_family(voice: SyntheticVoice) -> str:
    """The human speaker a voice was built from ("cmu-arctic-slt", "kal", ...) or its own id."""
    return _FAMILIES.get(voice.speaker, voice.speaker)


def _command(voice: SyntheticVoice, text_file: Path, wav_file: Path) -> list[str]:
    if voice.engine not in _ENGINE_TOOLS:
        raise ValueError(f"voice {voice.speaker}: unknown engine {voice.engine!r}; known: {ENGINES}")
    executable, package = _ENGINE_TOOLS[voice.engine]
    path = require_tool(executable, package)
    if voice.engine == "espeak-ng":
        return [path, *voice.options, "-f", str(text_file), "-w", str(wav_file)]
    if voice.engine == "flite":
        return [path, *voice.options, "-f", str(text_file), "-o", str(wav_file)]
    return [path, *voice.options, "-o", str(wav_file), str(text_file)]


def _festival_voice_package(voice: SyntheticVoice) -> str | None:
    for function, package in _FESTIVAL_VOICES.values():
        if f"({function})" in voice.options:
            return package
    return None


def synthesize(voice: SyntheticVoice, text: str, workdir: Path) -> np.ndarray:
    """Speak `text` with `voice`: float32 mono at 16 kHz, edge silence trimmed, level-normalised."""
    if not text.strip():
        raise AudioError(f"voice {voice.speaker}: text {text!r} has no words to speak (empty speech)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Unique names, so several workers can share one workdir.
    handle, text_name = tempfile.mkstemp(prefix=f"{voice.speaker}-", suffix=".txt", dir=workdir)
    text_file = Path(text_name)
    wav_file = text_file.with_suffix(".wav")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text.strip() + "\n")
        command = _command(voice, text_file, wav_file)
        try:
            result = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise AudioError(
                f"voice {voice.speaker}: {voice.engine} took over {TIMEOUT_SECONDS:.0f} s on text {text!r}"
            ) from error
        detail = result.stderr.decode("utf-8", "replace").strip()[-500:]
        package = _festival_voice_package(voice)
        # festival exits 0 even when the voice is not installed ("SIOD ERROR: unbound variable").
        if package is not None and "unbound variable" in detail:
            raise ToolMissingError(
                f"voice {voice.speaker}: festival has no such voice ({detail}); "
                f"install it with: apt-get install -y {package}"
            )
        if result.returncode != 0:
            raise AudioError(
                f"voice {voice.speaker}: {voice.engine} failed (exit {result.returncode}) on text {text!r}: {detail}"
            )
        if not wav_file.exists() or wav_file.stat().st_size == 0:
            raise AudioError(
                f"voice {voice.speaker}: {voice.engine} wrote no audio for text {text!r}"
                + (f": {detail}" if detail else "")
            )
        try:
            audio, rate = read_audio_file(wav_file, expected_rate=None)
        except AudioError as error:
            raise AudioError(f"voice {voice.speaker}, text {text!r}: {error}") from error
    finally:
        text_file.unlink(missing_ok=True)
        wav_file.unlink(missing_ok=True)
    audio = resample(audio, rate, SAMPLE_RATE)
    return _normalise(audio, f"voice {voice.speaker}, text {text!r}")


def _normalise(audio: np.ndarray, origin: str) -> np.ndarray:
    """Trim edge silence to MAX_EDGE_SILENCE and scale to TARGET_ACTIVE_RMS (peak at most MAX_PEAK)."""
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0 or np.max(np.abs(x)) < MIN_SPEECH_PEAK:
        raise AudioError(f"{origin}: the engine produced no audible speech (empty or silent output)")
    loud = np.flatnonzero(np.abs(x) > SILENCE_THRESHOLD)
    keep = round(MAX_EDGE_SILENCE * SAMPLE_RATE)
    x = x[max(0, loud[0] - keep) : loud[-1] + 1 + keep]
    frame = SAMPLE_RATE // 50
    usable = x[: x.size // frame * frame].reshape(-1, frame) if x.size >= frame else x.reshape(1, -1)
    energies = np.mean(usable**2, axis=1)
    active = energies[energies >= energies.max() * 10 ** (-ACTIVE_FRAME_RANGE_DB / 10)]
    gain = TARGET_ACTIVE_RMS / np.sqrt(np.mean(active))
    peak = np.max(np.abs(x)) * gain
    if peak > MAX_PEAK:
        gain *= MAX_PEAK / peak
    return (x * gain).astype(np.float32)


def engine_version(engine: str) -> str:
    """The engine's Debian package and version, e.g. "espeak-ng 1.51+dfsg-10+deb12u2"."""
    if engine not in _ENGINE_PACKAGES:
        raise ValueError(f"unknown engine {engine!r}; known: {ENGINES}")
    package = _ENGINE_PACKAGES[engine][0]
    return f"{package} {debian_package_version(package)}"


def voice_packages(voice: SyntheticVoice) -> tuple[str, ...]:
    """Every Debian package whose version can change this voice's audio."""
    packages = _ENGINE_PACKAGES[voice.engine]
    festival_package = _festival_voice_package(voice)
    return packages + ((festival_package,) if festival_package else ())


def voice_version(voice: SyntheticVoice) -> str:
    """Versions of all packages behind a voice, e.g. "festival 1:2.5.0-9; festvox-kallpc16k 2.4-1"."""
    return "; ".join(f"{package} {debian_package_version(package)}" for package in voice_packages(voice))
