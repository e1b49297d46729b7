"""VoiceBank+DEMAND and DEMAND, read from the archives the `download` stage fetched.

Archives are unpacked (safely) into a scratch directory beside the stage's output and deleted
after reading: DVC tracks the archives as downloaded, never the extracted trees. Every file is
resampled to 16 kHz with the project's one fixed resampler (`audio.resample`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from maskscope.core.audio import SAMPLE_RATE, read_audio_file, resample
from maskscope.data.utterances import utterance_row
from maskscope.core.constants import DEMAND_ENVIRONMENTS
from maskscope.core.errors import InputFormatError, MissingInputError
from maskscope.data.extract import extracted_files, safe_extract
from maskscope.core.io import TMP_MARK

# VoiceBank+DEMAND: clean archive -> its noisy counterpart, and where the labels live.
VBD_PAIRS = {
    "clean_trainset_28spk_wav.zip": "noisy_trainset_28spk_wav.zip",
    "clean_testset_wav.zip": "noisy_testset_wav.zip",
}
VBD_LOGFILES = "logfiles.zip"
VBD_LOGS = ("log_trainset_28spk.txt", "log_testset.txt")
VBD_TRANSCRIPTS = "testset_txt.zip"

DEMAND_48K_ONLY = frozenset({"SCAFE"})  # published without a 16 kHz version
DEMAND_CHANNEL = "ch01"  # one microphone of the 16-channel array: the recordings are near-identical
# Each DEMAND recording (~5 min) is cut in time so that no noise sample is in two splits.
DEMAND_SPLIT_FRACTIONS = {"train": (0.0, 0.6), "valid": (0.6, 0.75), "test": (0.75, 1.0)}


def archive_path(archives_dir: Path, corpus: str, name: str) -> Path:
    path = Path(archives_dir) / corpus / name
    if not path.exists():
        raise MissingInputError(
            f"{path}: archive missing; add '{corpus}' to download.corpora in params.yaml and rerun the download stage"
        )
    return path


@contextmanager
def unpacked(archive: Path, near: Path) -> Iterator[Path]:
    """The archive safely extracted into a scratch directory beside `near`, deleted afterwards.

    The scratch is named as a temporary of `near`, so one left by a killed run is removed when a
    later run claims `near` (atomic_output_dir)."""
    near = Path(near)
    near.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{near.name}{TMP_MARK}unpack-", dir=near.parent) as scratch:
        yield safe_extract(archive, Path(scratch) / archive.stem)


def read_resampled(path: Path) -> np.ndarray:
    audio, rate = read_audio_file(path, expected_rate=None)
    return resample(audio, rate, SAMPLE_RATE)


def speaker_of(utt_id: str) -> str:
    """VoiceBank names files `<speaker>_<index>`, e.g. p226_001."""
    return utt_id.split("_", 1)[0]


def _text_files(root: Path) -> dict[str, str]:
    files = extracted_files(root, ".txt")
    return {stem: path.read_text(encoding="utf-8", errors="replace").strip() for stem, path in files.items()}


def vbd_clean_rows(archives_dir: Path, near: Path) -> Iterator[dict]:
    """Corpus rows of the clean VoiceBank utterances (28-speaker train set, then the test set).

    Levels are kept as published: the official noisy files were mixed from exactly these."""
    transcripts: dict[str, str] = {}
    text_archive = Path(archives_dir) / "vbd" / VBD_TRANSCRIPTS
    if text_archive.exists():
        with unpacked(text_archive, near) as root:
            transcripts = _text_files(root)
    for name in VBD_PAIRS:
        with unpacked(archive_path(archives_dir, "vbd", name), near) as root:
            for utt_id, path in extracted_files(root, ".wav").items():
                speaker = speaker_of(utt_id)
                audio = read_resampled(path)
                source = f"VoiceBank+DEMAND {name}"
                yield utterance_row(
                    utt_id, speaker, speaker, "real", "en", source, transcripts.get(utt_id, ""), audio, licence="CC-BY-4.0"
                )


def parse_vbd_log(path: Path) -> dict[str, tuple[str, float]]:
    """`<utterance> <noise> <snr>` per line -> {utterance: (noise, snr_db)}."""
    labels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            utt_id, noise, snr = fields
            labels[utt_id] = (noise, float(snr))
        except ValueError:
            raise InputFormatError(
                f"{path}, line {number}: expected '<utterance> <noise> <snr>', got {line!r}"
            ) from None
    return labels


def vbd_noise_labels(archives_dir: Path, near: Path) -> dict[str, tuple[str, float]]:
    """Noise type and SNR of every official noisy file, from logfiles.zip."""
    labels: dict[str, tuple[str, float]] = {}
    with unpacked(archive_path(archives_dir, "vbd", VBD_LOGFILES), near) as root:
        found = {path.name: path for path in root.rglob("*.txt") if "__MACOSX" not in path.parts}
        for name in VBD_LOGS:
            if name not in found:
                raise MissingInputError(f"{archives_dir}/vbd/{VBD_LOGFILES}: holds no {name}")
            labels.update(parse_vbd_log(found[name]))
    return labels


@contextmanager
def vbd_noisy_files(archives_dir: Path, near: Path) -> Iterator[dict[str, Path]]:
    """Utterance id -> path of its official noisy WAV, while the noisy archives stay unpacked."""
    train_archive, test_archive = (archive_path(archives_dir, "vbd", noisy) for noisy in VBD_PAIRS.values())
    with unpacked(train_archive, near) as train, unpacked(test_archive, near) as test:
        yield {**extracted_files(train, ".wav"), **extracted_files(test, ".wav")}


def demand_recording(archives_dir: Path, environment: str, near: Path) -> np.ndarray:
    """One microphone channel of a DEMAND environment, at 16 kHz."""
    candidates = sorted((Path(archives_dir) / "demand").glob(f"{environment}_*.zip"))
    if not candidates:
        rate = "48k" if environment in DEMAND_48K_ONLY else "16k"
        archive_path(archives_dir, "demand", f"{environment}_{rate}.zip")  # raises naming the missing file
    with unpacked(candidates[0], near) as root:
        channels = extracted_files(root, ".wav")
        if DEMAND_CHANNEL not in channels:
            raise MissingInputError(f"{candidates[0]}: holds no {DEMAND_CHANNEL}.wav")
        return read_resampled(channels[DEMAND_CHANNEL])


def demand_split(recording: np.ndarray, split: str) -> np.ndarray:
    start, stop = DEMAND_SPLIT_FRACTIONS[split]
    return recording[int(start * recording.size) : int(stop * recording.size)]
