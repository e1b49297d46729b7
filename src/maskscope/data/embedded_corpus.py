"""The embedded speech corpus: TTS voices reading a seeded grammar, plus real human recordings.

Every utterance is normalised to the same active speech level, stored as 16-bit FLAC bytes, and
described in a manifest (speaker, source with package version, text, duration, sha256 of PCM).
"""

from __future__ import annotations

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
from maskscope.data.real_speech import RealVoice
from maskscope.core.tools import debian_package_version
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


def real_rows(voice: RealVoice, seed: int, seconds: float, min_seconds: float, max_seconds: float) -> Iterator[dict]:
    """The voice's recordings in a seeded order, until `seconds` of speech are taken."""
    source = f"{voice.debian_package} {debian_package_version(voice.debian_package)}"
    recordings = sorted(voice.recordings(), key=lambda rec: item_seed(seed, "prompt", voice.speaker, rec.name))
    taken = 0.0
    for recording in recordings:
        if taken >= seconds:
            return
        audio = voice.decode(recording.path)
        duration = audio.size / SAMPLE_RATE
        if not min_seconds <= duration <= max_seconds:
            continue
        taken += duration
        utt_id = f"{voice.speaker}-{recording.name.replace('/', '_')}"
        yield utterance_row(
            utt_id,
            voice.speaker,
            voice.speaker,
            "real",
            voice.language,
            source,
            recording.text,
            normalise_level(audio),
            licence=voice.licence,
        )
