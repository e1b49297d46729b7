"""Real human speech: the studio IVR prompts of Debian's asterisk-core-sounds-{fr,it,ru}-g722.

Each package holds one professional speaker (the directory name says so: fr_CA_f_June,
it_IT_m_Carlo, ru_RU_f_IvrvoiceRU) as headerless G.722 at 64 kbit/s: 16 kHz audio, two samples per
byte, so a file of N bytes lasts N / 8000 s. The packages are installed at build time, never
committed. The English and Spanish prompt packages are reserved for an independent evaluation and
must not be used here.
"""

from __future__ import annotations

import gzip
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import G722
import numpy as np

from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.errors import AudioError, ToolMissingError
from maskscope.core.tools import debian_package_files

logger = logging.getLogger(__name__)

G722_BIT_RATE = 64_000
BYTES_PER_SECOND = G722_BIT_RATE // 8  # 8000 bytes carry 16000 samples
# Non-speech prompts: tones, beeps and chimes (by file stem; the confbridge ones are two-note
# chimes at 260-440 Hz) and the silence/ folder of pure silences.
NON_SPEECH_STEMS = frozenset(
    {"beep", "beeperr", "ascending-2tone", "descending-2tone", "confbridge-join", "confbridge-leave"}
)
NON_SPEECH_DIRECTORIES = frozenset({"silence"})
# Plausibility limits for decoded audio. No studio prompt in these packages peaks above 0.81 of
# full scale; bytes that are not G.722 (text, WAV headers, zeros, random data) decode to
# full-scale noise, so many samples at full scale mean the file is not G.722.
_FULL_SCALE = 0.98
_MAX_FULL_SCALE_FRACTION = 0.001
_CONTAINER_MAGIC = {b"RIFF": "WAV", b"fLaC": "FLAC", b"OggS": "Ogg", b"ID3": "MP3", b".snd": "AU"}


@dataclass(frozen=True)
class AsteriskSpeaker:
    """One human speaker: the Debian package holding their prompts and where it installs them."""

    speaker: str
    language: str
    debian_package: str
    directory: Path  # where Debian 12 installs the prompts; resolve_directory() asks dpkg


ASTERISK_SPEAKERS: tuple[AsteriskSpeaker, ...] = (
    AsteriskSpeaker("asterisk-fr", "fr", "asterisk-core-sounds-fr-g722", Path("/usr/share/asterisk/sounds/fr_CA_f_June")),
    AsteriskSpeaker("asterisk-it", "it", "asterisk-core-sounds-it-g722", Path("/usr/share/asterisk/sounds/it_IT_m_Carlo")),
    AsteriskSpeaker(
        "asterisk-ru", "ru", "asterisk-core-sounds-ru-g722", Path("/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU")
    ),
)


def _missing(speaker: AsteriskSpeaker, why: str) -> ToolMissingError:
    return ToolMissingError(
        f"real speech of {speaker.speaker}: {why}; install it with: apt-get install -y {speaker.debian_package}"
    )


def _dpkg_g722_files(speaker: AsteriskSpeaker) -> list[Path] | None:
    """The .g722 files dpkg says the package installed, or None when dpkg is not available."""
    if shutil.which("dpkg") is None:
        return None
    try:
        files = debian_package_files(speaker.debian_package)
    except ToolMissingError:
        raise _missing(speaker, f"Debian package {speaker.debian_package} is not installed") from None
    return [path for path in files if path.suffix == ".g722"]


def resolve_directory(speaker: AsteriskSpeaker) -> Path:
    """The directory holding the speaker's prompts, as installed by its Debian package.

    Asks dpkg which files the package installed and takes the folder that holds them all, so a
    moved install path is followed. Without dpkg (not Debian) it falls back to `speaker.directory`.
    """
    files = _dpkg_g722_files(speaker)
    if files is None:
        directory = speaker.directory
    elif not files:
        raise _missing(speaker, f"Debian package {speaker.debian_package} lists no .g722 prompts")
    else:
        # The prompt root is the common parent of all files (subfolders such as digits/ below it).
        directory = Path(*Path(files[0]).parts[: _common_depth(files)])
    if not directory.is_dir() or not any(directory.rglob("*.g722")):
        raise _missing(speaker, f"no .g722 prompts found in {directory}")
    return directory


def _common_depth(paths: list[Path]) -> int:
    parents = [path.parent.parts for path in paths]
    depth = min(len(parts) for parts in parents)
    for index in range(depth):
        if len({parts[index] for parts in parents}) > 1:
            return index
    return depth


def is_speech_prompt(path: Path, root: Path) -> bool:
    """False for the tone, beep and silence files that the prompt packages also ship."""
    relative = path.relative_to(root)
    return path.stem not in NON_SPEECH_STEMS and not (set(relative.parts[:-1]) & NON_SPEECH_DIRECTORIES)


def list_prompts(speaker: AsteriskSpeaker, *, speech_only: bool = True) -> list[Path]:
    """Sorted .g722 prompt files of one speaker, subfolders included.

    With `speech_only` (the default) tones, beeps, the silence/ folder and empty (0-byte) files
    are left out, so every listed file decodes to speech.
    """
    root = resolve_directory(speaker)
    prompts = sorted(path for path in root.rglob("*.g722") if path.is_file())
    if not speech_only:
        return prompts
    kept = []
    for path in prompts:
        if not is_speech_prompt(path, root):
            continue
        if path.stat().st_size == 0:
            logger.warning("skipping empty prompt file %s (0 bytes, shipped so by %s)", path, speaker.debian_package)
            continue
        kept.append(path)
    return kept


def prompt_duration(path: Path) -> float:
    """Duration in seconds from the file size alone (64 kbit/s G.722: 8000 bytes per second)."""
    return Path(path).stat().st_size / BYTES_PER_SECOND


def decode_g722(path: Path) -> np.ndarray:
    """Decode a headerless 64 kbit/s G.722 file to float32 mono at 16 kHz (full scale = 1.0)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise AudioError(f"{path}: cannot be read ({error})") from error
    if not data:
        raise AudioError(f"{path}: is empty (0 bytes); expected G.722 audio")
    for magic, kind in _CONTAINER_MAGIC.items():
        if data.startswith(magic):
            raise AudioError(f"{path}: is a {kind} file, not headerless G.722 audio")
    # use_numpy=False: the same array('h') result whether or not the optional G722-numpy is installed.
    codec = G722.G722(SAMPLE_RATE, G722_BIT_RATE, use_numpy=False)
    pcm = np.frombuffer(codec.decode(data), dtype=np.int16)
    if pcm.size != 2 * len(data):
        raise AudioError(
            f"{path}: decoded to {pcm.size} samples from {len(data)} bytes; expected {2 * len(data)} (corrupt G.722)"
        )
    audio = pcm.astype(np.float32) / np.float32(32768.0)
    full_scale = float(np.mean(np.abs(audio) >= _FULL_SCALE))
    if full_scale > _MAX_FULL_SCALE_FRACTION:
        raise AudioError(
            f"{path}: does not look like G.722 speech ({100 * full_scale:.1f}% of samples decode to "
            "full scale, as non-G.722 bytes do); the file is corrupt or in another format"
        )
    return audio


def prompt_transcripts(speaker: AsteriskSpeaker) -> dict[str, str]:
    """`relative/name` -> text, from the package's core-sounds-LANG.txt(.gz) documentation."""
    doc_dir = Path("/usr/share/doc") / speaker.debian_package.removesuffix("-g722")
    candidates = sorted(doc_dir.glob(f"core-sounds-{speaker.language}.txt*"))
    if not candidates:
        return {}
    path = candidates[0]
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    transcripts = {}
    for line in raw.decode("utf-8", errors="replace").splitlines():
        if line.startswith(";") or ":" not in line:
            continue
        name, text = line.split(":", 1)
        text = text.strip()
        # Bracketed entries describe tones and silence, not speech.
        if text and not text.startswith("["):
            transcripts[name.strip()] = text
    return transcripts
