"""Real recorded noise for the embedded corpus: LinCity-NG's ambience recordings (Debian's
lincity-ng-data, GPL-2+), about four seconds each, grouped into four classes by what they record.

A split takes whole files, never parts of one, so no stretch of a recording is heard in two splits;
each class's files are ranked by a seeded hash and the first go to test, the next to valid.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from maskscope.core.constants import RECORDED_NOISE_CLASSES, SAMPLE_RATE
from maskscope.core.errors import ToolMissingError
from maskscope.core.seeding import item_seed
from maskscope.core.tools import debian_package_files, debian_package_version
from maskscope.data.real_speech import decode_recording

PACKAGE = "lincity-ng-data"
LICENCE = "GPL-2+"
# Which recordings make each class, by the file name's stem without its number.
_CLASS_STEMS = {
    "street": ("TraficHigh", "TraficLow", "RailTrain", "DirtTrack"),
    "industry": ("IndustryHigh", "IndustryLight", "CoalMine", "OreMine", "Mill", "Blacksmith", "Recycle"),
    "crowd": ("SportsCroud", "MarketFull", "MarketMed", "School", "University"),
    "water": ("Water", "Harbor", "ParklandLake"),
}
assert tuple(_CLASS_STEMS) == RECORDED_NOISE_CLASSES
_FADE_SECONDS = 0.02  # at each file's ends, so the joins between files do not click
_VALID_FILES = 1
_TEST_FILES = 2


def class_files(noise_class: str) -> list[Path]:
    """The package's recordings of one class, sorted by name."""
    pattern = re.compile(rf"/sounds/({'|'.join(_CLASS_STEMS[noise_class])})\d+\.wav$")
    files = sorted(path for path in debian_package_files(PACKAGE) if pattern.search(path.as_posix()))
    if len(files) < _VALID_FILES + _TEST_FILES + 1:
        raise ToolMissingError(
            f"Debian package {PACKAGE} holds {len(files)} recordings of class {noise_class!r}, fewer than the "
            f"{_VALID_FILES + _TEST_FILES + 1} its splits need; reinstall it with: apt-get install --reinstall -y {PACKAGE}"
        )
    return files


def split_files(seed: int, noise_class: str) -> dict[str, list[Path]]:
    """Each split's whole files of the class: two for test, one for valid, the rest for train."""
    ranked = sorted(class_files(noise_class), key=lambda path: item_seed(seed, "noise-file", noise_class, path.name))
    return {
        "test": ranked[:_TEST_FILES],
        "valid": ranked[_TEST_FILES : _TEST_FILES + _VALID_FILES],
        "train": ranked[_TEST_FILES + _VALID_FILES :],
    }


def _faded(audio: np.ndarray) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, min(round(_FADE_SECONDS * SAMPLE_RATE), audio.size // 2))
    audio = np.asarray(audio, dtype=np.float64).copy()
    audio[: ramp.size] *= ramp
    audio[audio.size - ramp.size :] *= ramp[::-1]
    return audio


def recorded_noise(seed: int, noise_class: str, split: str) -> np.ndarray:
    """The split's files of the class end to end, each at unit RMS so that no file dominates."""
    pieces = []
    for path in split_files(seed, noise_class)[split]:
        audio = _faded(decode_recording(path))
        pieces.append(audio / (np.sqrt(np.mean(audio**2)) + 1e-12))
    return np.concatenate(pieces)


def package_source() -> str:
    return f"{PACKAGE} {debian_package_version(PACKAGE)}"
