"""Real human speech from the asterisk G.722 prompt packages: listing, decoding, errors."""

from __future__ import annotations

import shutil
import subprocess
from array import array
from pathlib import Path

import G722
import numpy as np
import pytest

from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.errors import AudioError, ToolMissingError
from maskscope.core.tools import debian_package_version
from maskscope.data.asterisk_prompts import (
    ASTERISK_SPEAKERS,
    BYTES_PER_SECOND,
    NON_SPEECH_STEMS,
    AsteriskSpeaker,
    decode_g722,
    list_prompts,
    prompt_duration,
    resolve_directory,
)


def installed(speaker: AsteriskSpeaker) -> bool:
    if shutil.which("dpkg-query") is None:
        return speaker.directory.is_dir()
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", speaker.debian_package], capture_output=True, text=True
    )
    return result.stdout.strip() == "installed"


with_packages = pytest.mark.parametrize(
    "speaker",
    [
        pytest.param(
            s,
            id=s.speaker,
            marks=pytest.mark.skipif(not installed(s), reason=f"needs apt-get install -y {s.debian_package}"),
        )
        for s in ASTERISK_SPEAKERS
    ],
)


def encode(audio: np.ndarray) -> bytes:
    pcm = np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)
    return bytes(G722.G722(SAMPLE_RATE, 64_000).encode(array("h", pcm.tobytes())))


def test_three_speakers_none_reserved() -> None:
    assert [s.language for s in ASTERISK_SPEAKERS] == ["fr", "it", "ru"]
    assert len({s.speaker for s in ASTERISK_SPEAKERS}) == 3
    for speaker in ASTERISK_SPEAKERS:
        # English and Spanish prompts are reserved for an independent evaluation.
        assert speaker.debian_package == f"asterisk-core-sounds-{speaker.language}-g722"
        assert "-en" not in speaker.debian_package and "-es" not in speaker.debian_package


@with_packages
def test_directory_comes_from_the_package(speaker: AsteriskSpeaker) -> None:
    assert resolve_directory(speaker) == speaker.directory


@with_packages
def test_prompts_are_sorted_speech_files_with_subfolders(speaker: AsteriskSpeaker) -> None:
    root = resolve_directory(speaker)
    prompts = list_prompts(speaker)
    everything = list_prompts(speaker, speech_only=False)
    assert prompts == sorted(prompts) and everything == sorted(everything)
    assert len(prompts) > 400 and set(prompts) < set(everything)
    assert all(p.suffix == ".g722" and p.stat().st_size > 0 for p in prompts)
    assert any(p.parent.name == "digits" for p in prompts)  # subfolders are included
    assert not any(p.stem in NON_SPEECH_STEMS or "silence" in p.relative_to(root).parts for p in prompts)
    assert any("silence" in p.relative_to(root).parts for p in everything)
    assert sum(map(prompt_duration, prompts)) > 15 * 60


@with_packages
def test_decoded_prompt_is_plausible_speech(speaker: AsteriskSpeaker) -> None:
    prompts = list_prompts(speaker)
    path = max(prompts[:80], key=lambda p: p.stat().st_size)
    audio = decode_g722(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # 64 kbit/s G.722: every byte carries two 16 kHz samples.
    assert audio.size == 2 * path.stat().st_size
    assert audio.size / SAMPLE_RATE == pytest.approx(prompt_duration(path))
    assert prompt_duration(path) == path.stat().st_size / BYTES_PER_SECOND
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    assert 0.01 < rms < 0.5 and np.max(np.abs(audio)) < 0.98
    assert decode_g722(path).tobytes() == audio.tobytes()


def test_decode_round_trips_an_encoded_signal(tmp_path: Path) -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)
    path = tmp_path / "tone.g722"
    path.write_bytes(encode(tone))
    assert path.stat().st_size == SAMPLE_RATE // 2
    decoded = decode_g722(path)
    assert decoded.size == tone.size
    # The QMF filter bank delays the signal by a few samples; align before comparing.
    lags = range(0, 64)
    errors = [np.sqrt(np.mean((decoded[lag:] - tone[: tone.size - lag]) ** 2)) for lag in lags]
    assert min(errors) < 0.02


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(), "not look like G.722"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(4000), "WAV file"),
        (b"this is a text file, not audio\n" * 200, "not look like G.722"),
    ],
    ids=["empty", "random-bytes", "wav", "text"],
)
def test_corrupt_files_are_named(content: bytes, words: str, tmp_path: Path) -> None:
    path = tmp_path / "bad prompt.g722"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=words) as caught:
        decode_g722(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nothing\.g722"):
        decode_g722(tmp_path / "nothing.g722")


def test_missing_package_says_how_to_install(tmp_path: Path) -> None:
    ghost = AsteriskSpeaker("asterisk-xx", "xx", "asterisk-core-sounds-xx-g722", tmp_path / "xx_XX_f_Nobody")
    for call in (list_prompts, resolve_directory, lambda speaker: debian_package_version(speaker.debian_package)):
        with pytest.raises(ToolMissingError, match="apt-get install -y asterisk-core-sounds-xx-g722"):
            call(ghost)


@with_packages
def test_package_version_names_the_package(speaker: AsteriskSpeaker) -> None:
    version = debian_package_version(speaker.debian_package)
    assert version and any(c.isdigit() for c in version)
