"""Enhance audio files with a trained model through the streaming sparse path; with tracks, also
read voice activity, noise class, SNR and F0 from a DynCP model's gates (see `tracks`)."""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from maskscope.core.audio import SAMPLE_RATE, resample
from maskscope.core.constants import MODEL_FILE
from maskscope.core.errors import AudioError, MaskscopeError
from maskscope.core.io import atomic_output_file
from maskscope.evaluation.tracks import (
    BUNDLES_DIR,
    ProbeBundle,
    frame_tracks,
    plot_tracks,
    tracks_summary,
    write_tracks,
)
from maskscope.models.checkpoint import load_model
from maskscope.models.conv_fsenet import ConvFSENet

log = logging.getLogger(__name__)

MODELS_DIR = Path("models")


def resolve_model(name_or_path: str, models_dir: Path = MODELS_DIR) -> Path:
    """A checkpoint path as given, a directory holding one (a probe bundle), or the model of a variant
    trained by the last `make repro`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    candidate = models_dir / name_or_path / MODEL_FILE
    if candidate.is_file():
        return candidate
    available = sorted(p.parent.name for p in models_dir.glob(f"*/{MODEL_FILE}")) if models_dir.is_dir() else []
    raise MaskscopeError(
        f"model '{name_or_path}' is neither a checkpoint file nor a trained variant in {models_dir}/ "
        f"(available: {', '.join(available) or 'none'}); run `make repro` to train the variants"
    )


def read_any_audio(path: Path) -> np.ndarray:
    """Any mono or multi-channel WAV/FLAC at any rate -> 16 kHz mono float32, saying what changed."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"{path}: cannot be read as audio ({error})") from error
    if audio.size == 0:
        raise AudioError(f"{path}: holds no samples (empty audio)")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    if audio.shape[1] > 1:
        log.info("%s: %d channels, downmixed to mono", path, audio.shape[1])
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        log.info("%s: resampled from %d Hz to %d Hz", path, rate, SAMPLE_RATE)
        mono = resample(mono, rate, SAMPLE_RATE)
    return mono.astype(np.float32)


def resolve_bundle(name_or_path: str, bundles_dir: Path = BUNDLES_DIR) -> Path:
    """The probe bundle for --tracks: a directory as given, the directory of a model file given, or
    the bundle the `probes` stage wrote for a variant name."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if path.is_file():
        return path.parent
    return bundles_dir / name_or_path


@dataclass(frozen=True)
class TrackOptions:
    bundle: ProbeBundle
    fmt: str = "parquet"  # one of TRACK_FORMATS
    plot: bool = False


@dataclass
class EnhanceReport:
    written: list[Path]
    failed: list[tuple[Path, str]]
    summaries: dict[Path, dict] = field(default_factory=dict)  # per written WAV, with tracks


def enhance_files(
    inputs: list[Path],
    out_dir: Path,
    model_path: Path,
    tracks: TrackOptions | None = None,
    exit_name: str | None = None,
) -> EnhanceReport:
    """Enhance each file into `out_dir` (16 kHz WAV, same stem); a bad file is reported and skipped.

    A Conv-FSENet runs through the streaming sparse path; a DEMUCS (slimmable or routed) runs over
    the whole file at once, routed if it has a router and at full width otherwise; an nsNet2 over the
    whole file too (it is causal: the same as streaming it), leaving at `exit_name` (default: its
    last exit). With `tracks`
    (DynCP only), each WAV gets NAME.tracks.parquet (or .csv) from the same pass's gates, written
    together with it, and NAME.png with `plot`."""
    from maskscope.evaluation.scoring import enhance
    from maskscope.evaluation.systems import nsnet2_exit_audio
    from maskscope.models.nsnet2 import NsNet2
    from maskscope.models.streaming import StreamingFSENet

    try:
        model, _ = load_model(model_path)
        streaming = StreamingFSENet.from_model(model) if isinstance(model, ConvFSENet) else None
    except (OSError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError) as error:
        raise MaskscopeError(
            f"{model_path}: is not a usable model file ({type(error).__name__}: {error}); pass a "
            "models/VARIANT/model.pt written by a training stage (streaming needs a causal model)"
        ) from None
    exits = None
    if exit_name is not None:
        if not isinstance(model, NsNet2) or exit_name not in model.config.exits:
            offered = ", ".join(model.config.exits) if isinstance(model, NsNet2) else "none: it is not an nsNet2"
            raise MaskscopeError(f"{model_path}: has no exit {exit_name!r} (its exits: {offered})")
        exits = model.config.exits.index(exit_name) + 1
    if tracks is not None and (streaming is None or not streaming.config.gated):
        raise MaskscopeError(
            f"{model_path}: --tracks reads the gates of a DynCP model; this model has none (pass a DynCP "
            f"variant such as dyncp-25, or its bundle {BUNDLES_DIR}/dyncp-25)"
        )
    if tracks is not None:
        gates_shape = (streaming.config.n_blocks, streaming.config.hidden)
        fitted_on = (tracks.bundle.layout.blocks, tracks.bundle.layout.hidden)
        if gates_shape != fitted_on:
            raise MaskscopeError(
                f"{model_path}: gates of {gates_shape} (blocks, channels), but the bundle's probes were fitted "
                f"on {fitted_on}: they belong to another model; rerun the probes stage (`dvc repro probes`)"
            )
    stems = [path.stem for path in inputs]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        raise MaskscopeError(f"several inputs would be written to the same output name: {', '.join(clashes)}.wav")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = EnhanceReport([], [])
    for path in inputs:
        try:
            audio = read_any_audio(path)
        except AudioError as error:
            log.error("%s", error)
            report.failed.append((path, str(error)))
            continue
        if isinstance(model, NsNet2):
            enhanced, gates = nsnet2_exit_audio(model, audio, exits)[-1], None
        elif streaming is None:
            enhanced, gates = enhance(model, audio).audio, None
        else:
            enhanced, gates = streaming.enhance_with_gates(audio)
        target = out_dir / f"{path.stem}.wav"
        if tracks is None:
            with atomic_output_file(target) as tmp:
                sf.write(tmp, np.clip(enhanced, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
        else:
            with threadpool_limits(
                limits=1
            ):  # tiny products: BLAS threads would only spin (see analysis.baselines.timed)
                found = frame_tracks(tracks.bundle, gates, SAMPLE_RATE)
            suffix = f".tracks.{tracks.fmt}"
            # Both temporaries are complete before either is renamed: a WAV never lacks its tracks.
            with (
                atomic_output_file(target) as tmp,
                atomic_output_file(out_dir / f"{path.stem}{suffix}") as tracks_tmp,
            ):
                sf.write(tmp, np.clip(enhanced, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
                write_tracks(found, tracks_tmp, tracks.fmt)
            if tracks.plot:
                with atomic_output_file(out_dir / f"{path.stem}.png") as plot_tmp:
                    plot_tracks(audio, enhanced, found, SAMPLE_RATE, plot_tmp)
            report.summaries[target] = tracks_summary(found)
        report.written.append(target)
    return report
