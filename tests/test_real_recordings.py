"""Real human speech and real recorded noise from Debian packages: listing, decoding, splits, errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.constants import REAL_SPEAKER_IDS, RECORDED_NOISE_CLASSES
from maskscope.core.errors import AudioError, ToolMissingError
from maskscope.core.io import write_parquet, write_shards
from maskscope.core.tools import debian_package_files
from maskscope.data import recorded_noise
from maskscope.data.noise_recordings import babble_sources
from maskscope.data.real_speech import REAL_VOICES, decode_recording
from maskscope.data.utterances import CORPUS_SCHEMA, utterance_row

ROOT = Path(__file__).resolve().parent.parent


def installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package], capture_output=True, text=True)
    return result.stdout.strip() == "installed"


def needs(package: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not installed(package), reason=f"needs apt-get install -y {package}")


def test_the_params_choices_are_the_voices_and_the_makefile_installs_each() -> None:
    assert tuple(voice.speaker for voice in REAL_VOICES) == REAL_SPEAKER_IDS
    makefile = (ROOT / "Makefile").read_text()
    apt_packages = set(
        re.search(r"^APT_PACKAGES :=((?:.*\\\n)*.*)$", makefile, re.MULTILINE)[1].replace("\\", " ").split()
    )
    for voice in REAL_VOICES:
        assert voice.debian_package in apt_packages, voice
        assert voice.licence
    assert recorded_noise.PACKAGE in apt_packages


@pytest.mark.parametrize("voice", [pytest.param(v, id=v.speaker, marks=needs(v.debian_package)) for v in REAL_VOICES])
def test_every_voice_lists_and_decodes_its_recordings(voice) -> None:
    recordings = voice.recordings()
    assert len(recordings) >= 100
    assert len({recording.name for recording in recordings}) == len(recordings)
    audio = voice.decode(recordings[len(recordings) // 2].path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.2 * SAMPLE_RATE < audio.size < 30 * SAMPLE_RATE
    assert np.all(np.isfinite(audio)) and float(np.sqrt(np.mean(audio**2))) > 1e-3


@needs("festvox-ru")
def test_festvox_sentences_carry_their_transcripts_without_stress_marks() -> None:
    (voice,) = [v for v in REAL_VOICES if v.speaker == "festvox-ru"]
    texts = [recording.text for recording in voice.recordings()]
    assert all(texts) and not any("+" in text for text in texts)


@needs("fillets-ng-data-cs")
def test_each_fish_is_its_own_actor() -> None:
    small, big = (next(v for v in REAL_VOICES if v.speaker == f"fillets-cs-{fish}") for fish in ("small", "big"))
    small_files = {recording.path for recording in small.recordings()}
    big_files = {recording.path for recording in big.recordings()}
    assert not small_files & big_files
    assert all("-m-" in path.name for path in small_files) and all("-v-" in path.name for path in big_files)


def test_stereo_recordings_are_averaged_and_resampled(tmp_path: Path) -> None:
    rate, seconds = 22_050, 1.5
    t = np.arange(int(rate * seconds)) / rate
    left = 0.5 * np.sin(2 * np.pi * 220 * t)
    path = tmp_path / "line.ogg"
    sf.write(path, np.stack([left, -left + 0.2 * left], axis=1), rate)  # right = -0.8 * left
    audio = decode_recording(path)
    assert audio.size == round(seconds * SAMPLE_RATE)
    middle = audio[SAMPLE_RATE // 4 : -SAMPLE_RATE // 4]
    assert 0.03 < float(np.max(np.abs(middle))) < 0.07  # (0.5 - 0.4) / 2


def test_a_broken_recording_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ru_0001.wav"
    path.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match=r"ru_0001\.wav.*reinstall"):
        decode_recording(path)


def test_a_missing_package_says_how_to_install_it() -> None:
    with pytest.raises(ToolMissingError, match="apt-get install -y no-such-package-maskscope"):
        debian_package_files("no-such-package-maskscope")


@needs(recorded_noise.PACKAGE)
@pytest.mark.parametrize("noise_class", RECORDED_NOISE_CLASSES)
def test_recorded_classes_give_each_split_whole_files_of_its_own(noise_class: str) -> None:
    files = recorded_noise.split_files(1234, noise_class)
    assert sorted(path for split in files.values() for path in split) == recorded_noise.class_files(noise_class)
    assert len(files["test"]) == 2 and len(files["valid"]) == 1 and len(files["train"]) >= 3
    assert recorded_noise.split_files(1234, noise_class) == files
    assert any(recorded_noise.split_files(seed, noise_class) != files for seed in range(5))
    noise = recorded_noise.recorded_noise(1234, noise_class, "valid")
    (only_file,) = files["valid"]
    assert noise.size == decode_recording(only_file).size and np.all(np.isfinite(noise))
    assert float(np.sqrt(np.mean(noise**2))) == pytest.approx(1.0, rel=0.05)


def _corpus(tmp_path: Path, speakers: dict[str, str]) -> Path:
    rng = np.random.default_rng(0)
    rows = [
        utterance_row(f"{speaker}-{i}", speaker, speaker, kind, "xx", "test", "", 0.1 * rng.standard_normal(1600))
        for speaker, kind in speakers.items()
        for i in range(2)
    ]
    write_shards(rows, CORPUS_SCHEMA, tmp_path, 16, "audio")
    write_parquet(
        pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA).drop_columns(["audio"]), tmp_path / "manifest.parquet"
    )
    return tmp_path


@pytest.mark.parametrize("real_talkers, expected", [(4, 4), (3, 3 + 5)])
def test_babble_takes_real_talkers_when_there_are_enough(tmp_path: Path, real_talkers: int, expected: int) -> None:
    speakers = {f"real{i}": "real" for i in range(real_talkers)} | {f"tts{i}": "synthetic" for i in range(5)}
    splits = dict.fromkeys(speakers, "train") | {"real-held-out": "test"}
    corpus = _corpus(tmp_path, speakers | {"real-held-out": "real"})
    sources = babble_sources(corpus, splits)
    assert len(sources) == expected and all(source.size == 2 * 1600 for source in sources)
