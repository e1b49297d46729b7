from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from maskscope.core.audio import decode_audio, encode_flac, quantize_pcm16, read_audio_file, resample
from maskscope.core.errors import AudioError


def test_flac_round_trip_is_the_pcm16_quantisation():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 4000).astype(np.float32)
    decoded = decode_audio(encode_flac(audio), "row")
    np.testing.assert_array_equal(decoded, quantize_pcm16(audio))


def test_encoding_is_deterministic():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 4000).astype(np.float32)
    assert encode_flac(audio) == encode_flac(audio.copy())


def test_corrupt_file_is_named(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(AudioError, match=r"broken\.wav"):
        read_audio_file(path)


def test_empty_file_is_named(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav.*no samples"):
        read_audio_file(path)


def test_wrong_rate_is_named(tmp_path):
    path = tmp_path / "fast.wav"
    sf.write(path, np.zeros(800, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match=r"fast\.wav.*8000 Hz.*16000 Hz"):
        read_audio_file(path)


def test_stereo_is_named(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.zeros((800, 2), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"stereo\.wav.*2 channels"):
        read_audio_file(path)


def test_corrupt_bytes_name_the_row():
    with pytest.raises(AudioError, match="mix shard 3: utt_7"):
        decode_audio(b"not audio", "mix shard 3: utt_7")


def test_resample_changes_length_by_the_ratio():
    audio = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    assert resample(audio, 22050).size == 16000
