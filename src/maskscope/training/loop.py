"""Training of the SE models: data crops, the loss, and a resumable, seeded training loop.

Loss (docs/papers.md): 0.7 * MSE of compressed magnitudes (exponent 0.3) + 0.3 * MSE of compressed
complex spectra, both after dividing the spectra by the clean active-speech level, so loud and
quiet utterances weigh the same. DynCP models add L_DCP (weight `dcp_weight`) pulling each
block's gate usage to the target. A slimmable DEMUCS is trained at every width each step (the
mean of the widths' losses on the STFT of its output); a routed one adds the utilization loss,
pulling the router's expected MAC share to a static model's at the target UF, and the rest loss,
its expected cost on segments whose clean speech is silent. An nsNet2 with exits trains jointly (the
weighted mean of its exits' losses) or layer-wise (the epochs split into one stage per exit, each
training its exit's layers on that exit's loss with the earlier stages frozen).

A checkpoint is written atomically after every epoch; a killed run resumes from it and, because
every epoch's data order and every random draw come from seeded generators whose state is saved,
ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from maskscope.core import framing
from maskscope.core.audio import SAMPLE_RATE, decode_audio
from maskscope.core.constants import ACTIVE_LEVEL_DB, PEAK_LIMIT
from maskscope.core.errors import ParamsError
from maskscope.core.framing import active_speech_power
from maskscope.core.io import atomic_output_file, read_shards
from maskscope.core.seeding import item_rng, item_seed
from maskscope.data.mixing import noise_segment
from maskscope.models.checkpoint import SEModel
from maskscope.models.conv_fsenet import gate_usage, gate_usage_loss
from maskscope.models.demucs import (
    SlimDemucs,
    expected_uf,
    rest_usage_loss,
    speech_segments,
    utilization_loss,
    width_costs,
)
from maskscope.models.nsnet2 import NsNet2

log = logging.getLogger(__name__)

COMPRESSION = 0.3
MAGNITUDE_WEIGHT = 0.7
COMPLEX_WEIGHT = 0.3
_EPS = 1e-12


@dataclass
class Utterance:
    utt_id: str
    clean: np.ndarray
    noisy: np.ndarray
    level: float  # RMS of the clean active speech
    lead: int = 0  # samples of silence the mix stage put before the speech
    trail: int = 0  # and after it
    kind: str = "synthetic"  # the speaker's: real (a human recording) or synthetic (TTS)

    @property
    def speech(self) -> np.ndarray:
        return self.clean[self.lead : self.clean.size - self.trail]


def load_split(mix_dir: Path, split: str, limit: int | None = None) -> list[Utterance]:
    """Decode one split's mixtures; `limit` keeps the first N (in shard order)."""
    columns = ["utt_id", "kind", "clean", "noisy", "lead_samples", "trail_samples"]
    table = read_shards(mix_dir, split, columns=columns)
    rows = table.to_pylist()[:limit] if limit else table.to_pylist()
    utterances = []
    for row in rows:
        clean = decode_audio(row["clean"], f"{mix_dir}: {row['utt_id']} (clean)")
        noisy = decode_audio(row["noisy"], f"{mix_dir}: {row['utt_id']} (noisy)")
        level = math.sqrt(max(active_speech_power(clean, ACTIVE_LEVEL_DB), 1e-10))
        utterances.append(
            Utterance(row["utt_id"], clean, noisy, level, row["lead_samples"], row["trail_samples"], row["kind"])
        )
    return utterances


def compressed(spectrum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(|S|**c, |S|**c * e^{j angle S}) with a floor that keeps gradients finite at 0."""
    magnitude = (spectrum.real.square() + spectrum.imag.square() + _EPS).sqrt()
    scaled = magnitude.pow(COMPRESSION)
    return scaled, spectrum * (scaled / magnitude)


def se_loss(enhanced: torch.Tensor, clean: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """The co-author's loss on complex STFTs (batch, bins, frames), normalised by `level` (batch,)."""
    scale = level.reshape(-1, 1, 1)
    enhanced_mag, enhanced_complex = compressed(enhanced / scale)
    clean_mag, clean_complex = compressed(clean / scale)
    magnitude_term = (enhanced_mag - clean_mag).square().mean()
    complex_term = (enhanced_complex - clean_complex).abs().square().mean()
    return MAGNITUDE_WEIGHT * magnitude_term + COMPLEX_WEIGHT * complex_term


def crop_batches(
    utterances: list[Utterance], segment: int, batch_size: int, rng: np.random.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch of (clean, noisy, level) batches: every utterance once, a random crop of each."""
    order = rng.permutation(len(utterances))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        clean, noisy, level = [], [], []
        for index in order[start : start + batch_size]:
            utterance = utterances[index]
            span = utterance.clean.size - segment
            offset = int(rng.integers(span + 1)) if span > 0 else 0
            pad = max(0, -span)
            clean.append(np.pad(utterance.clean[offset : offset + segment], (0, pad)))
            noisy.append(np.pad(utterance.noisy[offset : offset + segment], (0, pad)))
            level.append(utterance.level)
        yield torch.from_numpy(np.stack(clean)), torch.from_numpy(np.stack(noisy)), torch.tensor(level)


@dataclass(frozen=True)
class DynamicMixing:
    """Fresh training examples: each one a crop of a training utterance with newly drawn silences,
    noise class, offset into that class's training recording, SNR and level, from an RNG keyed by
    (seed, epoch, example), so a run is bit-reproducible and a resumed one continues identically."""

    seed: int
    noises: dict[str, np.ndarray]  # noise class -> its training-split recording
    snrs_db: tuple[float, ...]  # drawn from when `snr_range_db` is None
    snr_range_db: tuple[float, float] | None  # a continuous range instead
    level_range_db: tuple[float, float]  # gain of speech and noise together
    pad_seconds: tuple[float, float]  # silence before and after the speech, as the mix stage draws it
    steps_per_epoch: int

    def example(self, utterances: list[Utterance], segment: int, epoch: int, index: int) -> tuple[np.ndarray, ...]:
        """(clean, noisy, level) of one example."""
        rng = item_rng(self.seed, "dynamic-mix", epoch, index)
        utterance = utterances[int(rng.integers(len(utterances)))]
        classes = list(self.noises)
        recording = self.noises[classes[int(rng.integers(len(classes)))]]
        if self.snr_range_db is None:
            snr_db = float(self.snrs_db[int(rng.integers(len(self.snrs_db)))])
        else:
            snr_db = float(rng.uniform(*self.snr_range_db))
        lead, trail = (round(rng.uniform(*self.pad_seconds) * SAMPLE_RATE) for _ in range(2))
        clean = np.pad(utterance.speech, (lead, trail))
        span = clean.size - segment
        offset = int(rng.integers(span + 1)) if span > 0 else 0
        clean = np.pad(clean[offset : offset + segment], (0, max(0, -span))).astype(np.float64)
        noise = noise_segment(recording, int(rng.integers(recording.size)), segment).astype(np.float64)
        # the SNR is relative to the utterance's active speech level, as in the mix stage
        noise_gain = utterance.level / math.sqrt(float(np.mean(noise**2)) + 1e-20) / 10.0 ** (snr_db / 20.0)
        noisy = clean + noise_gain * noise
        gain = 10.0 ** (rng.uniform(*self.level_range_db) / 20.0)
        peak = gain * float(np.max(np.abs(noisy)))
        gain *= PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
        return (clean * gain).astype(np.float32), (noisy * gain).astype(np.float32), utterance.level * gain

    def batches(
        self, utterances: list[Utterance], segment: int, batch_size: int, epoch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for step in range(self.steps_per_epoch):
            examples = [self.example(utterances, segment, epoch, step * batch_size + k) for k in range(batch_size)]
            clean, noisy, level = zip(*examples, strict=True)
            yield torch.from_numpy(np.stack(clean)), torch.from_numpy(np.stack(noisy)), torch.tensor(level)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    segment_seconds: float
    learning_rate: float
    usage_weight: float  # weight of L_DCP (DynCP) or of the router's utilization loss
    target_usage: float | None  # Φ_trgt for DynCP, the UF of a routed model's MAC budget, None otherwise
    seed: int
    rest_weight: float = 0.0  # a routed model: weight of its expected cost on segments without speech
    speech_threshold_db: float = ACTIVE_LEVEL_DB  # a segment holds speech if within this of the input's loudest block
    grad_clip_norm: float | None = None  # clip the gradient's global norm to this before each step
    mixing: DynamicMixing | None = None  # None: the mix stage's fixed mixtures, one crop of each per epoch
    exit_regime: str = "joint"  # an nsNet2 with exits: "joint" or "layerwise"
    exit_weights: tuple[float, ...] | None = None  # joint: each exit's loss weight (None: equal)

    def exit_stage(self, epoch: int, exits: int) -> int | None:
        """Layer-wise training: the exit (0-based) trained in `epoch`, the epochs split evenly; else None."""
        if self.exit_regime != "layerwise":
            return None
        return min((epoch - 1) * exits // self.epochs, exits - 1)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    valid_loss: float
    gate_usage: float | None
    gate_usage_per_block: list[float] | None
    seconds: float


@dataclass
class TrainState:
    """Everything a resumed run needs to continue exactly where the killed one stopped."""

    epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)


def enhanced_spectrum(
    model: SEModel, noisy: torch.Tensor, uf: float | None = None, exits: int | None = None
) -> tuple[torch.Tensor, object]:
    """(batch, samples) noisy audio -> the model's enhanced STFT and its raw output.

    A DEMUCS runs at `uf` (None: routed if it has a router, else full width); an nsNet2 up to its
    first `exits` exits (None: all), the deepest of them enhancing."""
    if isinstance(model, NsNet2):
        output, _ = model(framing.stft(noisy), exits=exits)
        return output.spectra[-1], output
    if isinstance(model, SlimDemucs):
        output = model(noisy, uf=uf)
        return framing.stft(output.audio), output
    output = model(framing.stft(noisy))
    return output.spectrum, output


def step_loss(
    model: SEModel,
    clean: torch.Tensor,
    noisy: torch.Tensor,
    level: torch.Tensor,
    settings: TrainSettings,
    stage: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One batch's training loss and the usage it reached (per gated block, or [average UF]);
    `stage`: the exit a layer-wise nsNet2 trains now."""
    clean_spec = framing.stft(clean)
    if isinstance(model, NsNet2):
        if stage is not None:
            return se_loss(enhanced_spectrum(model, noisy, exits=stage + 1)[0], clean_spec, level), None
        _, output = enhanced_spectrum(model, noisy)
        weights = settings.exit_weights or (1.0,) * len(output.spectra)
        losses = [
            weight * se_loss(spectrum, clean_spec, level)
            for weight, spectrum in zip(weights, output.spectra, strict=True)
        ]
        return torch.stack(losses).sum() / sum(weights), None
    if isinstance(model, SlimDemucs) and not model.config.dynamic:
        # Slimmable training: every width on the same batch, so each one is a usable model.
        losses = [se_loss(enhanced_spectrum(model, noisy, uf)[0], clean_spec, level) for uf in model.config.widths]
        return torch.stack(losses).mean(), None
    spectrum, output = enhanced_spectrum(model, noisy)
    loss = se_loss(spectrum, clean_spec, level)
    if settings.target_usage is None:
        return loss, None
    if isinstance(model, SlimDemucs):
        widths = model.config.widths
        loss = loss + settings.usage_weight * utilization_loss(output.probs, model.config, settings.target_usage)
        if settings.rest_weight:
            is_speech = speech_segments(clean, model.config, settings.speech_threshold_db)
            loss = loss + settings.rest_weight * rest_usage_loss(output.probs, width_costs(model.config), is_speech)
        return loss, expected_uf(output.probs, widths).detach()[None]
    if output.gates is None:
        return loss, None
    loss = loss + settings.usage_weight * gate_usage_loss(output.gates, settings.target_usage)
    return loss, gate_usage(output.gates).detach()


def evaluate_loss(model: SEModel, utterances: list[Utterance], exits: int | None = None) -> float:
    """Mean SE loss over whole utterances (no usage loss), in eval mode; a slimmable model at full
    width, an nsNet2 at its deepest exit (or the deepest of its first `exits`)."""
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for utterance in utterances:
            clean = framing.stft(torch.from_numpy(utterance.clean)[None].to(device))
            spectrum, _ = enhanced_spectrum(model, torch.from_numpy(utterance.noisy)[None].to(device), exits=exits)
            total += float(se_loss(spectrum, clean, torch.tensor([utterance.level], device=device)))
    return total / max(len(utterances), 1)


def learning_rate_at(epoch: int, settings: TrainSettings) -> float:
    """Cosine decay from the base rate to a tenth of it over the run; a function of the epoch
    alone, so a resumed run follows the same schedule."""
    progress = (epoch - 1) / max(settings.epochs - 1, 1)
    return settings.learning_rate * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))


def _save_checkpoint(path: Path, model: SEModel, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        # plain data, so resuming loads with weights_only=True
        "state": {"epoch": state.epoch, "history": [asdict(record) for record in state.history]},
    }
    with atomic_output_file(path) as tmp:
        torch.save(payload, tmp)


def train(
    model: SEModel,
    train_set: list[Utterance],
    valid_set: list[Utterance],
    settings: TrainSettings,
    checkpoint: Path,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
    stop_after_epoch: int | None = None,
) -> TrainState:
    """Train `model` in place; resume from `checkpoint` if it exists. Returns the final state.

    The model keeps its last epoch's weights: for DynCP an earlier "best" epoch may not have
    reached the target gate usage yet.

    `stop_after_epoch` ends the run early as a kill would (for tests of resumption)."""
    torch.manual_seed(item_seed(settings.seed, "torch-init"))
    device = next(model.parameters()).device  # the caller places the model (CPU, or a GPU if present)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    state = TrainState()
    if checkpoint.exists():
        payload = torch.load(checkpoint, weights_only=True, map_location=device)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["torch_rng"].cpu())
        saved = payload["state"]
        state = TrainState(saved["epoch"], [EpochRecord(**record) for record in saved["history"]])
        log.info("resuming from %s after epoch %d", checkpoint, state.epoch)
    segment = int(settings.segment_seconds * SAMPLE_RATE)
    mixing = settings.mixing
    steps = mixing.steps_per_epoch if mixing else len(train_set) // settings.batch_size
    if steps == 0 or not train_set:
        raise ParamsError(
            f"the training split has {len(train_set)} utterances, fewer than one batch: lower train.batch_size "
            f"(now {settings.batch_size}) or make a bigger corpus"
        )
    while state.epoch < settings.epochs:
        epoch = state.epoch + 1
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(epoch, settings)
        rng = np.random.default_rng(item_seed(settings.seed, "epoch", epoch))
        stage = settings.exit_stage(epoch, len(model.config.exits)) if isinstance(model, NsNet2) else None
        if stage is not None:  # layer-wise: only this stage's layers learn; earlier ones stay as trained
            trained = {id(parameter) for parameter in model.stage_parameters(stage)}
            for parameter in model.parameters():
                parameter.requires_grad_(id(parameter) in trained)
        model.train()
        losses, usages = [], []
        if mixing:
            batches = mixing.batches(train_set, segment, settings.batch_size, epoch)
        else:
            batches = crop_batches(train_set, segment, settings.batch_size, rng)
        for clean, noisy, level in tqdm(batches, total=steps, desc=f"epoch {epoch}", disable=None, leave=False):
            clean, noisy, level = clean.to(device), noisy.to(device), level.to(device)
            loss, usage = step_loss(model, clean, noisy, level, settings, stage)
            if usage is not None:
                usages.append(usage)
            optimizer.zero_grad()
            loss.backward()
            if settings.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
        valid_loss = evaluate_loss(model, valid_set, None if stage is None else stage + 1)
        per_block = torch.stack(usages).mean(0).tolist() if usages else None
        record = EpochRecord(
            epoch=epoch,
            train_loss=float(np.mean(losses)),
            valid_loss=valid_loss,
            gate_usage=float(np.mean(per_block)) if per_block else None,
            gate_usage_per_block=per_block,
            seconds=time.perf_counter() - started,
        )
        state.history.append(record)
        state.epoch = epoch
        _save_checkpoint(checkpoint, model, optimizer, state)
        on_epoch(record)
        log.info(
            "epoch %d: train %.4f valid %.4f usage %s (%.0f s)",
            epoch,
            record.train_loss,
            valid_loss,
            "-" if record.gate_usage is None else f"{record.gate_usage:.3f}",
            record.seconds,
        )
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    return state
