"""The embedded speech corpus: TTS voices reading a seeded grammar, plus real asterisk prompts.

Every utterance is normalised to the same active speech level, stored as 16-bit FLAC bytes, and
described in a manifest (speaker, source with package version, text, duration, sha256 of PCM).
"""

from __future__ import annotations

import gzip
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from maskscope.core.constants import ACTIVE_LEVEL_DB, PEAK_LIMIT
from maskscope.core.audio import SAMPLE_RATE, quantize_pcm16
from maskscope.data.utterances import utterance_row
from maskscope.core.errors import ParamsError
from maskscope.core.framing import active_speech_power
from maskscope.data.grammar import make_sentences
from maskscope.data.asterisk_prompts import (
    REAL_SPEAKERS,
    RealSpeaker,
    decode_g722,
    list_prompts,
    package_version,
    resolve_directory,
)
from maskscope.core.seeding import item_seed
from maskscope.data.tts import SyntheticVoice, synthesize, voice_catalogue, voice_family, voice_version

log = logging.getLogger(__name__)

TARGET_ACTIVE_DBFS = -26.0


@dataclass(frozen=True)
class SyntheticJob:
    utt_id: str
    voice: SyntheticVoice
    text: str
    source: str


def normalise_level(audio: np.ndarray) -> np.ndarray:
    """Scale to TARGET_ACTIVE_DBFS of active speech, then down if the peak would clip."""
    power = active_speech_power(audio, ACTIVE_LEVEL_DB)
    gain = np.sqrt(10.0 ** (TARGET_ACTIVE_DBFS / 10.0) / max(power, 1e-20))
    scaled = np.asarray(audio, dtype=np.float64) * gain
    peak = float(np.max(np.abs(scaled)))
    if peak > PEAK_LIMIT:
        scaled *= PEAK_LIMIT / peak
    return quantize_pcm16(scaled)


def synthetic_jobs(seed: int, speakers: int, sentences_per_speaker: int) -> list[SyntheticJob]:
    catalogue = voice_catalogue()
    if speakers > len(catalogue):
        raise ParamsError(
            f"key 'corpus.synthetic_speakers': value {speakers} is not allowed: the voice catalogue has "
            f"{len(catalogue)} voices"
        )
    jobs = []
    for voice in catalogue[:speakers]:
        source = voice_version(voice)
        for index, text in enumerate(make_sentences(seed, voice.speaker, sentences_per_speaker)):
            jobs.append(SyntheticJob(f"{voice.speaker}-{index:04d}", voice, text, source))
    return jobs


def _synthesise_row(job: SyntheticJob) -> dict:
    with tempfile.TemporaryDirectory(prefix="maskscope-tts-") as workdir:
        audio = synthesize(job.voice, job.text, Path(workdir))
    family = voice_family(job.voice)
    return utterance_row(
        job.utt_id, job.voice.speaker, family, "synthetic", "en", job.source, job.text, normalise_level(audio)
    )


def synthesise(jobs: list[SyntheticJob], workers: int) -> Iterator[dict]:
    """Rows in job order; TTS engines run in `workers` processes."""
    if workers <= 1:
        yield from map(_synthesise_row, jobs)
        return
    with get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_synthesise_row, jobs, chunksize=4)


def prompt_transcripts(speaker: RealSpeaker) -> dict[str, str]:
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


def real_rows(
    speaker: RealSpeaker, seed: int, seconds: float, min_seconds: float, max_seconds: float
) -> Iterator[dict]:
    """Prompts with a spoken transcript, in a seeded order, until `seconds` of speech are taken."""
    transcripts = prompt_transcripts(speaker)
    source = f"{speaker.debian_package} {package_version(speaker)}"
    root = resolve_directory(speaker)
    prompts = []
    for path in list_prompts(speaker):
        name = path.relative_to(root).with_suffix("").as_posix()
        if name in transcripts:
            prompts.append((name, path))
    prompts.sort(key=lambda item: item_seed(seed, "prompt", speaker.speaker, item[0]))
    taken = 0.0
    for name, path in prompts:
        if taken >= seconds:
            return
        audio = decode_g722(path)
        duration = audio.size / SAMPLE_RATE
        if not min_seconds <= duration <= max_seconds:
            continue
        taken += duration
        utt_id = f"{speaker.speaker}-{name.replace('/', '_')}"
        yield utterance_row(
            utt_id,
            speaker.speaker,
            speaker.speaker,
            "real",
            speaker.language,
            source,
            transcripts[name],
            normalise_level(audio),
        )


def real_speaker(speaker_id: str) -> RealSpeaker:
    for speaker in REAL_SPEAKERS:
        if speaker.speaker == speaker_id:
            return speaker
    raise KeyError(speaker_id)
