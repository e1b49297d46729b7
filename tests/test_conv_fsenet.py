from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

from maskscope.core import framing
from maskscope.models.conv_fsenet import (
    ConvFSENet,
    ConvFSENetConfig,
    ModelOutput,
    count_parameters,
    gate_usage_loss,
    initialise_from_dense,
    macs_per_frame,
    static_hidden_for_budget,
)

TINY = ConvFSENetConfig(bottleneck=16, hidden=32, stacks=1, gate_rank=4)
TINY_GATED = replace(TINY, gated=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def noisy_spectrum(batch: int = 2, frames: int = 40, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(batch, framing.N_BINS, frames, generator=generator)
    imag = torch.randn(batch, framing.N_BINS, frames, generator=generator)
    return torch.complex(real, imag)


def model(config: ConvFSENetConfig, seed: int = 0) -> ConvFSENet:
    torch.manual_seed(seed)
    return ConvFSENet(config)


class FixedLogits(nn.Module):
    """Stands in for a gate predictor: +1 logits for open channels, -1 for closed, every frame."""

    def __init__(self, hidden: int, closed: list[int]) -> None:
        super().__init__()
        logits = torch.ones(hidden)
        logits[closed] = -1.0
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[None, :, None].expand(x.shape[0], -1, x.shape[-1])


# --- MAC accounting ---


def test_dense_default_macs_match_the_published_count():
    count = macs_per_frame(ConvFSENetConfig())
    assert count.total == 662_528
    assert count.gates == 0
    assert count.frontend == count.backend == 257 * 128
    assert count.mmac_per_second == pytest.approx(41.4, abs=0.05)


@pytest.mark.parametrize("gated", [False, True], ids=["dense", "gated"])
def test_macs_per_frame_equal_what_torch_counts_on_a_real_forward_pass(gated):
    from torch.utils.flop_counter import FlopCounterMode

    config = ConvFSENetConfig(bottleneck=16, hidden=24, stacks=2, blocks_per_stack=2, gated=gated)
    model = ConvFSENet(config).eval()
    frames = 40
    noisy = torch.randn(1, config.bins, frames, dtype=torch.complex64)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(noisy)
    # the dense forward computes every channel, so a gated model costs its count at full usage
    assert counter.get_total_flops() / 2 / frames == macs_per_frame(config, usage=1.0).total


def test_gated_macs_at_quarter_usage_include_the_gate_cost():
    config = ConvFSENetConfig(gated=True)
    b, h, k, r, n = 128, 256, 3, 16, 9
    expected = 257 * b + b * 257 + 0.25 * n * (b * h + k * h + h * b) + n * (b * r + r * h)
    count = macs_per_frame(config, usage=0.25)
    assert count.total == pytest.approx(expected)
    assert count.gates == n * (b * r + r * h)
    assert macs_per_frame(config, usage=[0.25] * n).total == pytest.approx(expected)
    with pytest.raises(ValueError):
        macs_per_frame(config, usage=[0.25] * (n - 1))


@pytest.mark.parametrize("budget", [300_000, 450_123.5, 662_528])
def test_static_hidden_for_budget_is_the_largest_fitting_width(budget):
    config = ConvFSENetConfig(gated=True)
    hidden = static_hidden_for_budget(config, budget)
    assert macs_per_frame(replace(config, gated=False, hidden=hidden)).total <= budget
    assert macs_per_frame(replace(config, gated=False, hidden=hidden + 1)).total > budget
    if budget == 662_528:
        assert hidden == 256


def test_static_hidden_for_budget_rejects_impossible_budgets():
    with pytest.raises(ValueError):
        static_hidden_for_budget(ConvFSENetConfig(), 1000)


# --- outputs ---


@pytest.mark.parametrize("config", [TINY, TINY_GATED], ids=["dense", "gated"])
def test_output_shapes_and_ranges(config):
    net = model(config)
    noisy = noisy_spectrum(batch=2, frames=30)
    for training in (True, False):
        net.train(training)
        out = net(noisy)
        assert isinstance(out, ModelOutput)
        assert out.spectrum.shape == noisy.shape and out.spectrum.dtype == noisy.dtype
        assert out.mask.shape == noisy.shape and not out.mask.is_complex()
        assert out.mask.min() >= 0 and out.mask.max() <= 1
        torch.testing.assert_close(out.spectrum, out.mask * noisy)
        if config.gated:
            assert out.gates is not None
            assert out.gates.shape == (2, config.n_blocks, config.hidden, 30)
            assert out.gates.dtype == torch.float32
            assert torch.all((out.gates == 0) | (out.gates == 1))
        else:
            assert out.gates is None


def test_gumbel_gates_are_binary_in_training():
    net = model(replace(TINY_GATED, gate_estimator="gumbel")).train()
    gates = net(noisy_spectrum()).gates
    assert torch.all((gates == 0) | (gates == 1))


def test_gates_start_mostly_open():
    net = model(TINY_GATED).eval()
    assert net(noisy_spectrum()).gates.mean() > 0.7


def test_block_layout_for_sparse_implementations():
    net = model(TINY_GATED)
    assert isinstance(net.blocks, nn.ModuleList) and len(net.blocks) == 3
    for block, dilation in zip(net.blocks, (1, 2, 4), strict=True):
        assert block.dilation == dilation == block.depthwise.dilation[0]
        assert block.expand.weight.shape == (32, 16, 1)
        assert block.depthwise.groups == 32 and block.depthwise.weight.shape == (32, 1, 3)
        assert block.project.weight.shape == (16, 32, 1)
        assert block.act1.weight.shape == block.act2.weight.shape == (32,)
        assert block.gate_predictor is not None
    assert all(block.gate_predictor is None for block in model(TINY).blocks)
    assert net.frontend.weight.shape == (16, 257, 1) and net.backend.weight.shape == (257, 16, 1)


def test_count_parameters():
    net = model(TINY)
    assert count_parameters(net) == sum(p.numel() for p in net.parameters()) > 0
    assert count_parameters(model(TINY_GATED)) > count_parameters(net)


# --- causality ---


def _future_changes_past(config: ConvFSENetConfig, t: int = 17) -> bool:
    net = model(config).eval()
    noisy = noisy_spectrum(batch=1, frames=40)
    changed = noisy.clone()
    changed[..., t + 1 :] = noisy_spectrum(batch=1, frames=40, seed=1)[..., t + 1 :]
    with torch.no_grad():
        a, b = net(noisy), net(changed)
    past = slice(0, t + 1)
    same_mask = torch.allclose(a.mask[..., past], b.mask[..., past], atol=1e-6, rtol=0)
    same_gates = a.gates is None or torch.equal(a.gates[..., past], b.gates[..., past])
    return not (same_mask and same_gates)


@pytest.mark.parametrize("config", [TINY, TINY_GATED], ids=["dense", "gated"])
def test_causal_model_ignores_the_future(config):
    assert not _future_changes_past(config)


@pytest.mark.parametrize("config", [TINY, TINY_GATED], ids=["dense", "gated"])
def test_non_causal_model_sees_the_future(config):
    assert _future_changes_past(replace(config, causal=False))


# --- closed channels ---


def test_closed_channels_equal_zeroed_weights():
    closed = [0, 3, 5, 6, 10, 17, 31]
    gated = model(TINY_GATED).eval()
    pruned = copy.deepcopy(gated)
    for block in gated.blocks:
        block.gate_predictor = FixedLogits(TINY.hidden, closed)
    with torch.no_grad():
        for block in pruned.blocks:
            block.gate_predictor = FixedLogits(TINY.hidden, [])
            block.expand.weight[closed] = 0
            block.expand.bias[closed] = 0
            block.project.weight[:, closed] = 0
        noisy = noisy_spectrum()
        a, b = gated(noisy), pruned(noisy)
    assert torch.all(a.gates[:, :, closed] == 0) and torch.all(b.gates == 1)
    torch.testing.assert_close(a.mask, b.mask, atol=1e-6, rtol=1e-6)
    # and the closed channels are exactly zero around the depthwise conv
    seen = {}
    block = gated.blocks[1]
    handles = [
        block.depthwise.register_forward_hook(lambda m, i, o: seen.update(dw_in=i[0])),
        block.project.register_forward_hook(lambda m, i, o: seen.update(project_in=i[0])),
    ]
    with torch.no_grad():
        gated(noisy)
    for handle in handles:
        handle.remove()
    for name in ("dw_in", "project_in"):
        assert torch.all(seen[name][:, closed] == 0)
        assert not torch.all(seen[name][:, [1, 2]] == 0)


# --- surrogate gradients ---


@pytest.mark.parametrize("estimator", ["ste", "gumbel"])
def test_surrogate_gradients_reach_the_gate_predictor(estimator):
    net = model(replace(TINY_GATED, gate_estimator=estimator)).train()
    out = net(noisy_spectrum())
    loss = out.spectrum.abs().pow(2).mean() + gate_usage_loss(out.gates, 0.25)
    loss.backward()
    for block in net.blocks:
        grads = [p.grad for p in block.gate_predictor.parameters()]
        assert all(g is not None for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_gate_usage_loss_value():
    gates = torch.zeros(2, 3, 4, 5)
    gates[:, 0] = 1  # block usages 1, 0, 0
    expected = ((1 - 0.25) ** 2 + 0.25**2 + 0.25**2) / 3
    assert gate_usage_loss(gates, 0.25).item() == pytest.approx(expected)


@pytest.mark.parametrize("estimator", ["ste", "gumbel"])
def test_gate_usage_loss_decreases_under_optimisation(estimator):
    net = model(replace(TINY_GATED, gate_estimator=estimator)).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    noisy = noisy_spectrum(batch=1, frames=20)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = gate_usage_loss(net(noisy).gates, 0.25)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# --- waveform ---


@pytest.mark.parametrize("samples", [4000, 4321])
def test_enhance_waveform_keeps_the_length(samples):
    net = model(TINY_GATED).eval()
    audio = torch.randn(2, samples)
    with torch.no_grad():
        enhanced = net.enhance_waveform(audio)
    assert enhanced.shape == audio.shape
    assert torch.isfinite(enhanced).all()


# --- starting pruned variants from a trained dense model ---


def test_a_gated_model_starts_as_the_dense_model_with_all_gates_open():
    dense = model(TINY, seed=1)
    gated = model(TINY_GATED, seed=2)
    initialise_from_dense(gated, dense)
    for block in gated.blocks:  # force every gate open: the gated model must then compute the dense function
        block.gate_predictor = FixedLogits(TINY.hidden, closed=[])
    spectrum = noisy_spectrum()
    torch.testing.assert_close(gated.eval()(spectrum).spectrum, dense.eval()(spectrum).spectrum)


def test_static_pruning_keeps_the_heaviest_channels_of_each_block():
    dense = model(TINY, seed=3)
    with torch.no_grad():  # make channels 5 and 9 of block 0 clearly the heaviest
        dense.blocks[0].expand.weight[[5, 9]] *= 50
    static = model(replace(TINY, hidden=4), seed=4)
    initialise_from_dense(static, dense)
    block, source = static.blocks[0], dense.blocks[0]
    kept = [int(torch.nonzero((source.expand.weight == row).all(dim=(1, 2)))[0]) for row in block.expand.weight]
    assert {5, 9} <= set(kept) and kept == sorted(kept)
    torch.testing.assert_close(block.project.weight, source.project.weight[:, kept])
    torch.testing.assert_close(block.depthwise.weight, source.depthwise.weight[kept])
    # keeping every channel reproduces the dense function exactly
    whole = model(TINY, seed=5)
    initialise_from_dense(whole, dense)
    spectrum = noisy_spectrum()
    torch.testing.assert_close(whole.eval()(spectrum).spectrum, dense.eval()(spectrum).spectrum)


def test_initialising_from_an_incompatible_model_is_refused():
    with pytest.raises(ValueError, match="same architecture"):
        initialise_from_dense(model(TINY), model(replace(TINY, bottleneck=8)))
    with pytest.raises(ValueError, match="cannot prune"):
        initialise_from_dense(model(replace(TINY, hidden=64)), model(TINY))
