from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import harmonic_speechlike

from maskscope.core import framing
from maskscope.models.checkpoint import load_model, save_model
from maskscope.models.conv_fsenet import ConvFSENet, ConvFSENetConfig
from maskscope.models.demucs import SlimDemucs, SlimDemucsConfig, speech_segments
from maskscope.models.nsnet2 import NsNet2, NsNet2Config
from maskscope.training.loop import (
    DynamicMixing,
    TrainSettings,
    Utterance,
    compressed,
    crop_batches,
    enhanced_spectrum,
    se_loss,
    train,
)

TINY = ConvFSENetConfig(bottleneck=8, hidden=16, stacks=1, blocks_per_stack=2, gate_rank=4, gated=True)


def tiny_set(count: int, seed: int, pad_seconds: float = 0.0) -> list[Utterance]:
    """Speech-like utterances, noisy throughout, with `pad_seconds` of digital silence on each side."""
    rng = np.random.default_rng(seed)
    silence = np.zeros(int(pad_seconds * framing.SAMPLE_RATE), dtype=np.float32)
    utterances = []
    for index in range(count):
        speech = harmonic_speechlike(0.6, f0=100 + 10 * index, seed=seed + index)
        clean = np.concatenate([silence, speech, silence])
        noisy = (clean + 0.05 * rng.standard_normal(clean.size)).astype(np.float32)
        utterances.append(Utterance(f"u{index}", clean, noisy, float(np.sqrt(np.mean(speech**2)))))
    return utterances


def settings(epochs: int) -> TrainSettings:
    return TrainSettings(
        epochs=epochs,
        batch_size=4,
        segment_seconds=0.5,
        learning_rate=3e-3,
        usage_weight=1.0,
        target_usage=0.25,
        seed=7,
    )


def fresh_model(config: ConvFSENetConfig = TINY) -> ConvFSENet:
    torch.manual_seed(0)
    return ConvFSENet(config)


def test_loss_is_zero_for_a_perfect_estimate_and_scale_invariant():
    clean = torch.randn(2, 257, 10, dtype=torch.complex64)
    level = torch.tensor([0.1, 1.0])
    assert float(se_loss(clean, clean, level)) == pytest.approx(0.0, abs=1e-10)
    noisy = clean + 0.1 * torch.randn_like(clean)
    loss = se_loss(noisy, clean, level)
    assert float(se_loss(3 * noisy, 3 * clean, 3 * level)) == pytest.approx(float(loss), rel=1e-4)


def test_compressed_spectrum_keeps_the_phase():
    spectrum = torch.tensor([[3 + 4j, -1e-3j]], dtype=torch.complex64)
    magnitude, complex_part = compressed(spectrum)
    assert torch.allclose(magnitude, torch.tensor([[5**0.3, 1e-3**0.3]]), rtol=1e-3)
    assert torch.allclose(torch.angle(complex_part), torch.angle(spectrum), atol=1e-5)


def test_crops_cover_each_utterance_once_with_the_segment_length():
    utterances = tiny_set(9, 0)
    batches = list(crop_batches(utterances, 4000, 4, np.random.default_rng(1)))
    assert len(batches) == 2 and all(clean.shape == (4, 4000) for clean, _, _ in batches)
    again = list(crop_batches(utterances, 4000, 4, np.random.default_rng(1)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))


def test_training_reduces_the_loss_and_pulls_usage_towards_the_target(tmp_path):
    model = fresh_model()
    state = train(model, tiny_set(8, 0), tiny_set(2, 100), settings(6), tmp_path / "ckpt.pt")
    first, last = state.history[0], state.history[-1]
    assert last.train_loss < first.train_loss
    assert abs(last.gate_usage - 0.25) < abs(first.gate_usage - 0.25)


def test_killed_run_resumes_to_the_same_result(tmp_path):
    train_set, valid_set = tiny_set(8, 0), tiny_set(2, 100)
    straight = fresh_model()
    train(straight, train_set, valid_set, settings(3), tmp_path / "straight.pt")

    interrupted = fresh_model()
    train(interrupted, train_set, valid_set, settings(3), tmp_path / "resumed.pt", stop_after_epoch=1)
    resumed = fresh_model()  # a new process: fresh weights, then the checkpoint
    state = train(resumed, train_set, valid_set, settings(3), tmp_path / "resumed.pt")

    assert [record.epoch for record in state.history] == [1, 2, 3]
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-5, atol=1e-6)


def mixing(steps: int = 3, seed: int = 7) -> DynamicMixing:
    rng = np.random.default_rng(5)
    noises = {"hiss": rng.standard_normal(20_000).astype(np.float32), "hum": np.sin(np.arange(20_000) / 9.0)}
    return DynamicMixing(seed, noises, (0.0, 10.0), None, (-6.0, 6.0), (0.0, 0.2), steps)


def test_dynamic_examples_are_fresh_each_epoch_and_the_same_for_the_same_key():
    utterances, draw = tiny_set(6, 0), mixing()
    first = draw.example(utterances, 8000, epoch=1, index=0)
    again = draw.example(utterances, 8000, epoch=1, index=0)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)  # keyed by (seed, epoch, index): resumable bit for bit
    later = draw.example(utterances, 8000, epoch=2, index=0)
    assert not np.array_equal(first[1], later[1])  # another epoch, another mixture
    other_seed = mixing(seed=8).example(utterances, 8000, epoch=1, index=0)
    assert not np.array_equal(first[1], other_seed[1])
    batches = list(draw.batches(utterances, 8000, 4, epoch=1))
    assert len(batches) == 3 and batches[0][0].shape == (4, 8000) and batches[0][2].shape == (4,)


def test_a_dynamic_example_is_mixed_at_the_drawn_snr_relative_to_the_speech_level():
    utterance = tiny_set(1, 3)[0]
    for snr_db in (-5.0, 5.0, 15.0):
        draw = replace(mixing(), snrs_db=(snr_db,), level_range_db=(0.0, 0.0), pad_seconds=(0.0, 0.0))
        clean, noisy, level = draw.example([utterance], 4000, epoch=1, index=0)
        noise = noisy.astype(np.float64) - clean
        measured = 20 * np.log10(level / np.sqrt(np.mean(noise**2)))
        assert measured == pytest.approx(snr_db, abs=0.01)
        assert level == pytest.approx(utterance.level)  # no level gain, no clipping at these levels


def test_the_level_gain_scales_speech_noise_and_level_together():
    utterance = tiny_set(1, 3)[0]
    flat = replace(mixing(), level_range_db=(0.0, 0.0)).example([utterance], 4000, 1, 0)
    louder = replace(mixing(), level_range_db=(6.0, 6.0)).example([utterance], 4000, 1, 0)
    gain = 10 ** (6 / 20)
    np.testing.assert_allclose(louder[0], flat[0] * gain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(louder[1], flat[1] * gain, rtol=1e-5, atol=1e-7)
    assert louder[2] == pytest.approx(flat[2] * gain)


def test_a_killed_dynamic_run_resumes_to_the_same_weights(tmp_path):
    train_set, valid_set = tiny_set(8, 0), tiny_set(2, 100)
    dynamic = replace(settings(3), mixing=mixing(steps=2), grad_clip_norm=1.0)
    straight = fresh_model()
    train(straight, train_set, valid_set, dynamic, tmp_path / "straight.pt")
    interrupted = fresh_model()
    train(interrupted, train_set, valid_set, dynamic, tmp_path / "resumed.pt", stop_after_epoch=1)
    resumed = fresh_model()
    train(resumed, train_set, valid_set, dynamic, tmp_path / "resumed.pt")
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    fixed = fresh_model()
    train(fixed, train_set, valid_set, settings(3), tmp_path / "fixed.pt")
    assert any(not torch.equal(fixed.state_dict()[key], value) for key, value in straight.state_dict().items())


def test_gumbel_training_runs(tmp_path):
    config = ConvFSENetConfig(**{**TINY.__dict__, "gate_estimator": "gumbel"})
    state = train(fresh_model(config), tiny_set(4, 0), tiny_set(1, 100), settings(1), tmp_path / "g.pt")
    assert state.history[0].gate_usage is not None


def test_learning_rate_decays_from_base_to_a_tenth():
    from maskscope.training.loop import learning_rate_at

    run = settings(5)
    rates = [learning_rate_at(epoch, run) for epoch in range(1, 6)]
    assert rates[0] == pytest.approx(run.learning_rate) and rates[-1] == pytest.approx(run.learning_rate / 10)
    assert all(a > b for a, b in itertools.pairwise(rates))


SLIM = SlimDemucsConfig(hidden=4, depth=3, segment=2048, router_frame=256)


def slim_model(dynamic: bool) -> SlimDemucs:
    torch.manual_seed(0)
    return SlimDemucs(SlimDemucsConfig(**{**SLIM.__dict__, "dynamic": dynamic}))


def test_slimmable_training_improves_every_width(tmp_path):
    model = slim_model(dynamic=False)
    valid = tiny_set(3, 100)

    def losses() -> list[float]:
        with torch.no_grad():
            model.eval()
            scores = []
            for uf in model.config.widths:
                total = 0.0
                for u in valid:
                    clean = framing.stft(torch.from_numpy(u.clean)[None])
                    spectrum, _ = enhanced_spectrum(model, torch.from_numpy(u.noisy)[None], uf)
                    total += float(se_loss(spectrum, clean, torch.tensor([u.level])))
                scores.append(total)
            return scores

    before = losses()
    static = TrainSettings(**{**settings(6).__dict__, "target_usage": None})
    state = train(model, tiny_set(8, 0), valid, static, tmp_path / "slim.pt")
    after = losses()
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)
    assert state.history[-1].gate_usage is None


def test_routed_training_pulls_the_average_width_towards_the_target(tmp_path):
    model = slim_model(dynamic=True)
    routed = TrainSettings(**{**settings(8).__dict__, "usage_weight": 20.0, "target_usage": 0.125})
    state = train(model, tiny_set(8, 0), tiny_set(2, 100), routed, tmp_path / "routed.pt")
    first, last = state.history[0].gate_usage, state.history[-1].gate_usage
    # a fresh router averages about the mean width (0.47); the pull drives it to the narrowest
    assert last < first and last < 0.3, (first, last)


def test_the_rest_weight_moves_the_width_budget_onto_speech(tmp_path):
    train_set, valid_set = tiny_set(8, 0, pad_seconds=0.5), tiny_set(2, 100, pad_seconds=0.5)
    gaps = {}
    for rest_weight in (0.0, 8.0):
        model = slim_model(dynamic=True)
        routed = TrainSettings(**{**settings(6).__dict__, "target_usage": 0.25, "rest_weight": rest_weight})
        train(model, train_set, valid_set, routed, tmp_path / f"rest-{rest_weight}.pt")
        model.eval()
        speech_uf, rest_uf = [], []
        with torch.no_grad():
            for u in valid_set:
                clean = torch.from_numpy(u.clean)[None]
                probs = model(torch.from_numpy(u.noisy)[None]).probs
                uf = (probs * torch.tensor(model.config.widths)).sum(-1)[0]
                is_speech = speech_segments(clean, model.config, routed.speech_threshold_db)[0]
                speech_uf += uf[is_speech].tolist()
                rest_uf += uf[~is_speech].tolist()
        gaps[rest_weight] = np.mean(speech_uf) - np.mean(rest_uf)
    assert gaps[8.0] > gaps[0.0] + 0.03 and gaps[8.0] > 0, gaps


def test_a_routed_run_resumes_to_the_same_weights(tmp_path):
    train_set, valid_set = tiny_set(8, 0), tiny_set(2, 100)
    routed = TrainSettings(**{**settings(2).__dict__, "target_usage": 0.25})
    straight = slim_model(dynamic=True)
    train(straight, train_set, valid_set, routed, tmp_path / "straight.pt")
    interrupted = slim_model(dynamic=True)
    train(interrupted, train_set, valid_set, routed, tmp_path / "cut.pt", stop_after_epoch=1)
    resumed = slim_model(dynamic=True)
    train(resumed, train_set, valid_set, routed, tmp_path / "cut.pt")
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-5, atol=1e-6)


def slimming_stage_view(stage_name: str, params):
    """What a slimming training stage is handed: only the params keys the registry declares for it."""
    from maskscope.pipeline.config import params_slice
    from maskscope.pipeline.runner import ParamsView
    from pipelines.stages import build_stages, fill

    stage = next(s for s in build_stages(params.variants) if s.name == stage_name)
    keys = [fill(key, {"variant": "slim-dyn-25"}) for key in stage.params]
    return ParamsView(params_slice(params, keys), stage_name)


def test_the_slimmable_base_reads_no_router_key_and_a_router_key_leaves_it_alone():
    from conftest import ROOT

    from maskscope.pipeline.config import preset_params
    from maskscope.training.variants import build_variant

    params = preset_params(ROOT / "pipelines/presets", "smoke")
    router_keys = {"gumbel_temperature": 0.5, "segment_samples": params.slimming.segment_samples * 2}
    changed = params.model_copy(update={"slimming": params.slimming.model_copy(update=router_keys)})
    base_view, router_view = slimming_stage_view("train_slim", params), slimming_stage_view("train_router", params)
    assert slimming_stage_view("train_slim", changed).to_dict() == base_view.to_dict()
    assert slimming_stage_view("train_router", changed).to_dict() != router_view.to_dict()
    # the base builds from its declared keys alone (an undeclared read raises KeyError)
    model, _, started_from = build_variant(base_view, params.variants["slim-static"], None)
    assert started_from == "scratch" and not model.config.dynamic


def test_a_router_on_a_base_of_another_shape_is_refused_with_the_fix(tmp_path):
    from conftest import ROOT

    from maskscope.core.constants import MODEL_FILE
    from maskscope.core.errors import ParamsError
    from maskscope.models.checkpoint import save_model
    from maskscope.pipeline.config import preset_params
    from maskscope.training.variants import build_variant

    params = preset_params(ROOT / "pipelines/presets", "smoke")
    other = SlimDemucs(SlimDemucsConfig(hidden=params.slimming.hidden * 2, depth=params.slimming.depth))
    save_model(tmp_path / MODEL_FILE, other, "slim-static", {"kind": "slim-static", "target_usage": None})
    with pytest.raises(ParamsError, match="not the slimmable DEMUCS of these slimming params; retrain it"):
        build_variant(slimming_stage_view("train_router", params), params.variants["slim-dyn-25"], tmp_path)


NSNET = NsNet2Config(input_width=24, gru_width=20, decoder_widths=(24, 24))


def exit_losses(model: NsNet2, valid: list[Utterance]) -> list[float]:
    model.eval()
    totals = [0.0] * len(model.config.exits)
    with torch.no_grad():
        for u in valid:
            clean = framing.stft(torch.from_numpy(u.clean)[None])
            output, _ = model(framing.stft(torch.from_numpy(u.noisy)[None]))
            for index, spectrum in enumerate(output.spectra):
                totals[index] += float(se_loss(spectrum, clean, torch.tensor([u.level])))
    return totals


@pytest.mark.parametrize("topology", ["plain", "split_gru"])
def test_joint_nsnet2_training_improves_every_exit(tmp_path, topology):
    torch.manual_seed(0)
    model = NsNet2(replace(NSNET, topology=topology))
    valid = tiny_set(3, 100)
    before = exit_losses(model, valid)
    joint = TrainSettings(**{**settings(6).__dict__, "target_usage": None, "exit_weights": (1.0, 1.0, 2.0)})
    train(model, tiny_set(8, 0), valid, joint, tmp_path / "joint.pt")
    after = exit_losses(model, valid)
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)


@pytest.mark.parametrize("topology", ["plain", "split_decoder", "split_gru"])
def test_layerwise_nsnet2_training_trains_one_exit_per_stage_and_freezes_the_ones_before(tmp_path, topology):
    config = replace(NSNET, topology=topology)
    torch.manual_seed(0)
    model = NsNet2(config)
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    layerwise = TrainSettings(**{**settings(3).__dict__, "target_usage": None, "exit_regime": "layerwise"})
    assert [layerwise.exit_stage(epoch, 3) for epoch in (1, 2, 3)] == [0, 1, 2]
    every_stage = [id(p) for stage in range(3) for p in model.stage_parameters(stage)]
    assert sorted(every_stage) == sorted(id(p) for p in model.parameters())  # each parameter in one stage
    train_set, valid = tiny_set(8, 0), tiny_set(2, 100)
    train(model, train_set, valid, layerwise, tmp_path / "lw.pt", stop_after_epoch=1)
    after_stage_0 = {name: value.clone() for name, value in model.state_dict().items()}
    first = {id(p) for p in model.stage_parameters(0)}
    for name, parameter in model.named_parameters():  # stage 0 trained its own parameters and no others
        assert torch.equal(after_stage_0[name], initial[name]) != (id(parameter) in first), name
    train(model, train_set, valid, layerwise, tmp_path / "lw.pt")  # resumes: stages 1 and 2
    final = model.state_dict()
    for name, parameter in model.named_parameters():
        assert not torch.equal(final[name], initial[name]), name  # every stage trained its parameters
        if id(parameter) in first:
            assert torch.equal(final[name], after_stage_0[name]), name  # frozen after its stage


def test_an_nsnet2_round_trips_through_its_model_file(tmp_path):
    model = NsNet2(replace(NSNET, topology="split_decoder"))
    save_model(tmp_path / "model.pt", model, "nsnet2-joint", {"kind": "nsnet2"})
    loaded, meta = load_model(tmp_path / "model.pt")
    assert isinstance(loaded, NsNet2) and loaded.config == model.config and meta["variant"] == "nsnet2-joint"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
