"""The real human speakers of the embedded corpus, each read from the Debian package that ships them.

Three studio IVR voices (asterisk-core-sounds-{fr,it,ru}-g722), the Russian speaker recorded for
Festival's msu_ru_nsh unit-selection voice (festvox-ru: 620 read sentences, 16 kHz WAV), and the
two fish of Fish Fillets NG in Czech and in Dutch (fillets-ng-data-{cs,nl}: each fish one actor,
about 35 minutes of acted dialogue as 22.05 kHz Ogg Vorbis). The packages are installed at build
time, never committed; their licences go into the corpus manifest. The English and Spanish asterisk
prompt packages are reserved for an independent evaluation and must not be used here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

from maskscope.core.audio import resample
from maskscope.core.constants import SAMPLE_RATE
from maskscope.core.errors import AudioError, ToolMissingError
from maskscope.core.tools import debian_package_files
from maskscope.data.asterisk_prompts import (
    ASTERISK_SPEAKERS,
    AsteriskSpeaker,
    decode_g722,
    list_prompts,
    prompt_transcripts,
    resolve_directory,
)


@dataclass(frozen=True)
class Recording:
    name: str  # unique within its speaker; becomes part of the utterance id
    path: Path
    text: str  # the transcript; "" where the package has none in the spoken language


@dataclass(frozen=True)
class RealVoice:
    speaker: str
    language: str
    debian_package: str
    licence: str  # as the package's copyright file states it
    recordings: Callable[[], list[Recording]]
    decode: Callable[[Path], np.ndarray]  # float32 mono at SAMPLE_RATE


def _asterisk_recordings(speaker: AsteriskSpeaker) -> list[Recording]:
    """The prompts that have a spoken transcript (tones, beeps and silences have none)."""
    transcripts = prompt_transcripts(speaker)
    root = resolve_directory(speaker)
    recordings = []
    for path in list_prompts(speaker):
        name = path.relative_to(root).with_suffix("").as_posix()
        if name in transcripts:
            recordings.append(Recording(name, path, transcripts[name]))
    return recordings


def _package_audio(package: str, pattern: str) -> list[Path]:
    """The package's files whose full path matches `pattern`, sorted; fail if there are none."""
    matcher = re.compile(pattern)
    files = sorted(path for path in debian_package_files(package) if matcher.search(path.as_posix()))
    if not files:
        raise ToolMissingError(
            f"Debian package {package} holds no recordings matching {pattern!r}; reinstall it with: "
            f"apt-get install --reinstall -y {package}"
        )
    return files


def _festvox_ru_recordings() -> list[Recording]:
    wavs = _package_audio("festvox-ru", r"/msu_ru_nsh_clunits/wav/[^/]+\.wav$")
    prompts = wavs[0].parent.parent / "etc" / "txt.done.data"
    # Lines read: ( ru_0001 "Sentence text." )
    transcripts = dict(re.findall(r'^\(\s*(\S+)\s+"(.*)"\s*\)\s*$', prompts.read_text("utf-8"), flags=re.MULTILINE))
    # "+" marks stress in the prompt file; it is not spoken text.
    return [Recording(path.stem, path, transcripts.get(path.stem, "").replace("+", "")) for path in wavs]


def _fillets_recordings(language: str, fish: str) -> list[Recording]:
    # Dialogue files are <level>/<language>/<scene>-<actor>-<line>.ogg; "m" is the small fish, "v" the big one.
    files = _package_audio(f"fillets-ng-data-{language}", rf"/sound/[^/]+/{language}/[^/]+-{fish}-[^/]+\.ogg$")
    # The game's scripts hold the lines in English only, so the Czech and Dutch audio goes untranscribed.
    return [Recording(f"{path.parent.parent.name}_{path.stem}", path, "") for path in files]


def decode_recording(path: Path) -> np.ndarray:
    """A WAV or Ogg recording as float32 mono at SAMPLE_RATE (channels averaged, resampled by soxr)."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"{path}: cannot be read as audio ({error}); reinstall the Debian package that ships it") from error
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: holds no samples or non-finite ones; reinstall the Debian package that ships it")
    return resample(audio.mean(axis=1), rate, SAMPLE_RATE)


_GPL2 = "GPL-2+"
REAL_VOICES: tuple[RealVoice, ...] = (
    *(
        RealVoice(
            speaker.speaker,
            speaker.language,
            speaker.debian_package,
            "CC-BY-SA-3.0",
            partial(_asterisk_recordings, speaker),
            decode_g722,
        )
        for speaker in ASTERISK_SPEAKERS
    ),
    RealVoice(
        "festvox-ru", "ru", "festvox-ru", "BSD-like (Nickolay V. Shmyrev 2005)", _festvox_ru_recordings, decode_recording
    ),
    *(
        RealVoice(
            f"fillets-{language}-{name}",
            language,
            f"fillets-ng-data-{language}",
            _GPL2,
            partial(_fillets_recordings, language, fish),
            decode_recording,
        )
        for language in ("cs", "nl")
        for fish, name in (("m", "small"), ("v", "big"))
    ),
)


def real_voice(speaker_id: str) -> RealVoice:
    for voice in REAL_VOICES:
        if voice.speaker == speaker_id:
            return voice
    raise KeyError(speaker_id)
