from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from maskscope.models.conv_fsenet import count_parameters
from maskscope.models.demucs import (
    SlimConv1d,
    SlimDemucs,
    SlimDemucsConfig,
    SlimOutput,
    cost_share,
    expected_uf,
    lookahead_samples,
    macs_per_sample,
    network_length,
    rest_usage_loss,
    routed_macs_per_sample,
    router_macs_per_sample,
    slim_channels,
    speech_segments,
    utilization_loss,
    width_channel_masks,
    width_costs,
)

# channels (4, 8), bottleneck hop 16 samples, 8 bottleneck frames per router segment
TINY = SlimDemucsConfig(hidden=4, depth=2, kernel=8, stride=4, gru_layers=1, segment=128, router_frame=32)
TINY_DYNAMIC = replace(TINY, dynamic=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model(config: SlimDemucsConfig, seed: int = 0) -> SlimDemucs:
    torch.manual_seed(seed)
    return SlimDemucs(config).eval()


def noisy(batch: int = 2, samples: int = 500, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


class FixedRouter(nn.Module):
    """Stands in for the router: picks `pattern[k]` for segment k (the last entry repeats)."""

    def __init__(self, config: SlimDemucsConfig, pattern: list[int]) -> None:
        super().__init__()
        self.config = config
        self.pattern = pattern

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        n_seg = math.ceil(audio.shape[-1] / self.config.segment)
        picks = [self.pattern[min(k, len(self.pattern) - 1)] for k in range(n_seg)]
        logits = torch.full((audio.shape[0], n_seg, len(self.config.widths)), -10.0)
        logits[:, torch.arange(n_seg), picks] = 10.0
        return logits


# --- shapes and configuration ---


@pytest.mark.parametrize("resample", [1, 2, 4])
@pytest.mark.parametrize("variant", [{}, {"causal": False}, {"gru": "grouped"}, {"dynamic": True}])
def test_output_has_the_input_length(resample, variant):
    net = model(replace(TINY, resample=resample, **variant))
    for samples in (1, 37, 301):
        for uf in (None, 0.25):
            out = net(noisy(samples=samples), uf=uf)
            assert isinstance(out, SlimOutput)
            assert out.audio.shape == (2, samples)
            assert torch.isfinite(out.audio).all()


def _exact(config: SlimDemucsConfig, length: int) -> bool:
    for _ in range(config.depth):
        if length < config.kernel or (length - config.kernel) % config.stride:
            return False
        length = (length - config.kernel) // config.stride + 1
    return True


def test_network_length_is_the_smallest_exact_length():
    config = replace(TINY, kernel=3, stride=2, depth=3, resample=2)  # exact lengths are all odd here
    for length in (1, 10, 99):
        n = network_length(config, length)
        assert _exact(config, n)
        assert not any(_exact(config, m) for m in range(2 * length, n))


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("hidden", {"hidden": 0}),
        ("depth", {"depth": 0}),
        ("kernel", {"kernel": 2, "stride": 4}),
        ("resample", {"resample": 3}),
        ("growth", {"growth": 0.5}),
        ("gru", {"gru": "lstm"}),
        ("gru_groups", {"gru": "grouped", "gru_groups": 3}),
        ("normalize_floor", {"normalize_floor": 0.0}),
        ("widths", {"widths": (0.5, 0.25)}),
        ("widths", {"widths": (0.0, 1.0)}),
        ("widths", {"widths": ()}),
        ("segment", {"segment": 100}),
        ("gumbel_temperature", {"gumbel_temperature": 0.0}),
    ],
)
def test_config_validation_names_the_field(field, changes):
    with pytest.raises(ValueError, match=field):
        replace(TINY, **changes)


def test_config_is_frozen_and_sized():
    assert TINY.channels == (4, 8)
    assert SlimDemucsConfig().channels == (32, 64, 128, 256)
    assert replace(TINY, max_hidden=6).channels == (4, 6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.hidden = 8  # type: ignore[misc]


def test_forward_rejects_bad_input():
    net = model(TINY)
    with pytest.raises(ValueError):
        net(torch.zeros(100))
    for uf in (0.0, 1.5):
        with pytest.raises(ValueError):
            net(noisy(), uf=uf)


def test_normalisation_makes_the_model_scale_equivariant():
    net = model(replace(TINY, normalize_floor=1e-9))
    x = noisy()
    torch.testing.assert_close(net(10 * x).audio, 10 * net(x).audio, rtol=1e-4, atol=1e-5)
    raw = model(replace(TINY, normalize=False))
    assert not torch.allclose(raw(10 * x).audio, 10 * raw(x).audio, rtol=1e-2, atol=1e-3)


# --- slicing ---


def test_slim_channels_is_a_ceiling_of_at_least_one():
    assert slim_channels(32, 0.125) == 4
    assert slim_channels(30, 0.1) == 3  # no extra channel from float noise
    assert slim_channels(7, 0.5) == 4
    assert slim_channels(5, 0.01) == 1
    assert slim_channels(5, 1.0) == 5
    with pytest.raises(ValueError):
        slim_channels(5, 0.0)


def test_glu_conv_keeps_the_first_channels_of_each_half():
    torch.manual_seed(0)
    conv = SlimConv1d(4, 8, 1, out_blocks=2)
    x = torch.randn(1, 2, 5)
    rows = [0, 1, 4, 5]
    expected = nn.functional.conv1d(x, conv.weight[rows, :2], conv.bias[rows])
    torch.testing.assert_close(conv(x, 0.5), expected)
    with pytest.raises(ValueError):
        conv(torch.randn(1, 4, 5), 0.5)


def _perturb_beyond(tensor: torch.Tensor, dims: dict[int, tuple[int, int, int]]) -> None:
    """Add noise where, along any dim d, the index is not among the first `active` of its `blocks` blocks."""
    outside = torch.zeros(tensor.shape, dtype=torch.bool)
    for dim, (per_block, active, blocks) in dims.items():
        index = torch.arange(tensor.shape[dim])
        beyond = (index % per_block >= active) | (index >= per_block * blocks)
        shape = [1] * tensor.dim()
        shape[dim] = -1
        outside |= beyond.reshape(shape)
    assert outside.any()
    with torch.no_grad():
        tensor.add_(outside * torch.randn(tensor.shape))


@pytest.mark.parametrize("gru", ["plain", "grouped"])
def test_slicing_uses_only_the_first_channels(gru):
    net = model(replace(TINY, gru=gru))
    x = noisy()
    uf = 0.5
    before_half, before_full = net(x, uf=uf).audio, net(x, uf=1.0).audio
    full = (1, *TINY.channels)
    used = (1, *(slim_channels(c, uf) for c in TINY.channels))
    for i, layer in enumerate(net.encoder, start=1):
        conv_dims = {0: (full[i], used[i], 1)}
        if i > 1:
            conv_dims[1] = (full[i - 1], used[i - 1], 1)
        _perturb_beyond(layer.conv.weight, conv_dims)
        _perturb_beyond(layer.conv.bias, {0: (full[i], used[i], 1)})
        _perturb_beyond(layer.glu_conv.weight, {0: (full[i], used[i], 2), 1: (full[i], used[i], 1)})
        _perturb_beyond(layer.glu_conv.bias, {0: (full[i], used[i], 2)})
    for layer, i in zip(net.decoder, (2, 1), strict=True):
        _perturb_beyond(layer.glu_conv.weight, {0: (full[i], used[i], 2), 1: (full[i], used[i], 1)})
        _perturb_beyond(layer.glu_conv.bias, {0: (full[i], used[i], 2)})
        transposed_dims = {0: (full[i], used[i], 1)}
        if i > 1:
            transposed_dims[1] = (full[i - 1], used[i - 1], 1)
            _perturb_beyond(layer.conv.bias, {0: (full[i - 1], used[i - 1], 1)})
        _perturb_beyond(layer.conv.weight, transposed_dims)
    gru_layer = net.bottleneck.forward_layers[0]
    groups = gru_layer.groups
    per, active = full[-1] // groups, used[-1] // groups  # interleaved: each group holds an equal share
    _perturb_beyond(gru_layer.weight_ih, {1: (per, active, 3), 2: (per, active, 1)})
    _perturb_beyond(gru_layer.weight_hh, {1: (per, active, 3), 2: (per, active, 1)})
    _perturb_beyond(gru_layer.bias_ih, {1: (per, active, 3)})
    _perturb_beyond(gru_layer.bias_hh, {1: (per, active, 3)})
    torch.testing.assert_close(net(x, uf=uf).audio, before_half)
    assert (net(x, uf=1.0).audio - before_full).abs().max() > 1e-3


def test_grouped_gru_has_fewer_parameters():
    plain = model(TINY)
    grouped = model(replace(TINY, gru="grouped", gru_groups=2))
    assert count_parameters(grouped) < count_parameters(plain)
    assert count_parameters(grouped.bottleneck) * 2 == pytest.approx(count_parameters(plain.bottleneck), rel=0.2)


def test_widths_give_different_outputs():
    net = model(replace(TINY, hidden=16))  # with 4 channels, dead ReLUs can hide a width change
    x = noisy()
    outs = [net(x, uf=w).audio for w in TINY.widths]
    for a, b in itertools.pairwise(outs):
        assert (a - b).abs().max() > 1e-4
    torch.testing.assert_close(net(x).audio, outs[-1])  # a static model without uf runs at full width


# --- causality ---


@pytest.mark.parametrize(
    "config",
    [
        replace(TINY, hidden=16, normalize=False),
        replace(TINY, hidden=16, normalize=False, resample=4),
        replace(TINY, hidden=16, normalize=False, kernel=5, stride=2, depth=3, resample=2, gru="grouped"),
        replace(TINY_DYNAMIC, hidden=16, normalize=False),
    ],
    ids=["plain", "resample4", "odd-geometry", "routed"],
)
def test_output_never_depends_on_input_beyond_the_lookahead(config):
    net = model(config)
    lookahead = lookahead_samples(config)
    x = noisy(batch=1, samples=400)
    y = net(x).audio
    for t in (0, 63, 64, 130, 255):
        changed = x.clone()
        changed[:, t + lookahead + 1 :] += torch.randn(1, 400 - t - lookahead - 1)
        torch.testing.assert_close(net(changed).audio[:, : t + 1], y[:, : t + 1], rtol=0, atol=1e-6)
    # and the bound is tight: at t = 0 the output does see input t + lookahead
    changed = x.clone()
    changed[:, lookahead] += 1.0
    assert (net(changed).audio[:, 0] - y[:, 0]).abs().max() > 0


def test_lookahead_of_the_defaults():
    assert lookahead_samples(SlimDemucsConfig()) == 7 * (1 + 4 + 16 + 64)  # 595 samples, 37 ms at 16 kHz
    with pytest.raises(ValueError):
        lookahead_samples(replace(TINY, causal=False))


def test_non_causal_model_sees_the_future():
    net = model(replace(TINY, hidden=16, causal=False, normalize=False))
    x = noisy(batch=1, samples=200)
    changed = x.clone()
    changed[:, 100] += 10.0  # far beyond a causal model's 35-sample look-ahead
    assert (net(changed).audio[:, 0] - net(x).audio[:, 0]).abs().max() > 1e-6


# --- routing ---


@pytest.mark.parametrize("pick", range(4))
def test_router_forced_to_one_width_equals_the_static_model(pick):
    net = model(TINY_DYNAMIC)
    with torch.no_grad():
        net.router.output.weight.zero_()
        net.router.output.bias.fill_(-5.0)
        net.router.output.bias[pick] = 5.0
    x = noisy(samples=500)
    out = net(x)
    assert out.choices.shape == (2, math.ceil(500 / TINY.segment))
    assert torch.all(out.choices == pick)
    assert out.probs.shape == (2, 4, 4)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(out.audio, net(x, uf=TINY.widths[pick]).audio, rtol=1e-5, atol=1e-6)
    static_call = net(x, uf=0.5)
    assert static_call.choices is None and static_call.probs is None


@pytest.mark.parametrize("pattern", [[0, 3], [3, 0]])
def test_each_segment_runs_at_its_own_width(pattern):
    config = replace(TINY_DYNAMIC, normalize=False)
    net = model(config)
    net.router = FixedRouter(config, pattern)
    x = noisy(samples=512)
    out = net(x)
    assert out.choices[0].tolist() == [pattern[0], pattern[1], pattern[1], pattern[1]]
    first = config.segment - lookahead_samples(config)  # outputs that see only the first segment
    static_first = net(x, uf=config.widths[pattern[0]]).audio
    torch.testing.assert_close(out.audio[:, :first], static_first[:, :first], rtol=1e-5, atol=1e-6)
    assert (out.audio[:, config.segment :] - static_first[:, config.segment :]).abs().max() > 1e-4


def test_straight_through_gradients_reach_the_router():
    net = model(TINY_DYNAMIC).train()
    torch.manual_seed(1)
    out = net(noisy())
    assert torch.all((out.choices >= 0) & (out.choices < 4))
    out.audio.pow(2).mean().backward()
    for name in ("filterbank", "hidden", "output"):
        grad = getattr(net.router, name).weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    net.zero_grad()
    utilization_loss(net(noisy()).probs, TINY, 0.1).backward()
    assert net.router.output.bias.grad.abs().sum() > 0


def test_router_lookahead_sees_the_current_segment():
    x = noisy(batch=1, samples=256)
    louder = x.clone()
    louder[:, 128:] *= 10  # only the second (last) segment changes
    for lookahead in (False, True):
        net = model(replace(TINY_DYNAMIC, normalize=False, router_lookahead=lookahead))
        delta = (net.router(louder) - net.router(x)).abs().sum(-1)[0]
        assert delta[0] == 0  # no decision depends on a later segment
        assert (delta[1] > 0) == lookahead  # segment 1's own decision sees it only with look-ahead


def test_router_features_rise_above_the_running_noise_floor():
    quiet_then_loud = noisy(batch=1, samples=4 * 128)
    quiet_then_loud[:, 128:256] *= 0.1
    quiet_then_loud[:, 384:] *= 10
    net = model(replace(TINY_DYNAMIC, router_lookahead=True))
    features = net.router.features(quiet_then_loud)[0]
    energy, rise = features[:, : TINY.router_features], features[:, TINY.router_features :]
    floor = torch.stack([energy[:k].amin(0) for k in range(1, 4)])
    torch.testing.assert_close(rise[1:], energy[1:] - floor)
    assert torch.all(rise[0] == 0) and rise[1].mean() < 0  # a new minimum: the quiet segment lies below
    assert rise[3].mean() > rise[2].mean() + 1  # the loud last segment rises above the quiet one's floor
    causal = model(TINY_DYNAMIC)
    causal.load_state_dict(net.state_dict())
    torch.testing.assert_close(causal.router.features(quiet_then_loud)[0, 1:], features[:-1])


def test_speech_segments_follow_the_loudest_block():
    clean = torch.zeros(2, 4 * 128)
    clean[0, 128:256] = 1.0  # segment 1: the loudest
    clean[0, 256:288] = 10 ** (-50 / 20)  # segment 2: 50 dB down, not speech at -35
    clean[0, 480:512] = 10 ** (-20 / 20)  # segment 3: one block 20 dB down
    assert speech_segments(clean, TINY_DYNAMIC, -35.0).tolist() == [[False, True, False, True], [False] * 4]


def test_rest_usage_loss_moves_width_off_segments_without_speech():
    costs = width_costs(TINY)
    is_speech = torch.tensor([[True, False, False]])
    at_full = torch.zeros(1, 3, 4)
    at_full[..., 3] = 1
    assert rest_usage_loss(at_full, costs, is_speech).item() == 1.0
    assert rest_usage_loss(at_full, costs, torch.ones(1, 3, dtype=torch.bool)).item() == 0.0
    logits = torch.zeros(1, 3, 4, requires_grad=True)
    rest_usage_loss(torch.softmax(logits, -1), costs, is_speech).backward()
    assert torch.all(logits.grad[0, 0] == 0)  # the speech segment is free
    assert logits.grad[0, 1, 0] < 0 < logits.grad[0, 1, 3]


def test_width_costs_are_mac_shares():
    costs = width_costs(TINY)
    assert costs[-1] == 1.0 and list(costs) == sorted(costs)
    assert costs[2] == pytest.approx(macs_per_sample(TINY, 0.5) / macs_per_sample(TINY))
    assert costs[0] < TINY.widths[0]  # MACs fall faster than UF


def test_utilization_loss_holds_the_mac_budget_of_the_target_width():
    at_quarter = torch.zeros(2, 3, 4)
    at_quarter[..., 1] = 1
    assert utilization_loss(at_quarter, TINY, 0.25).item() == pytest.approx(0, abs=1e-12)
    over = (cost_share(TINY, 0.25) - cost_share(TINY, 0.5)) * 0.5 / cost_share(TINY, 0.5)
    assert utilization_loss(at_quarter, TINY, 0.5).item() == pytest.approx(over**2)
    # The narrowest and the full width can average UF 1/4 at several times its MACs: the loss sees it.
    bimodal = torch.zeros(1, 7, 4)
    bimodal[0, :6, 0] = 1
    bimodal[0, 6, 3] = 1
    assert expected_uf(bimodal, TINY.widths).item() == pytest.approx(0.25)
    assert utilization_loss(bimodal, TINY, 0.25).item() > 0.01
    logits = torch.zeros(1, 5, 4, requires_grad=True)
    utilization_loss(torch.softmax(logits, -1), TINY, 0.1).backward()
    assert logits.grad[0, 0, 0] < 0 < logits.grad[0, 0, 3]  # pushes probability to the narrow widths


# --- MAC accounting ---


def test_macs_match_a_hand_count():
    # channels 1 -> 4 -> 8; per level-i frame: conv cin*cout*k + GLU 1x1 2*c*c, encoder and decoder alike
    level1 = (1 * 4 * 8 + 2 * 4 * 4) / 4
    level2 = (4 * 8 * 8 + 2 * 8 * 8) / 16
    gru = 3 * (8 * 8 + 8 * 8) / 16
    assert macs_per_sample(TINY) == 2 * (level1 + level2) + gru == 104
    assert macs_per_sample(replace(TINY, resample=2)) == 208
    assert macs_per_sample(replace(TINY, gru="grouped")) == 2 * (level1 + level2) + 2 * 3 * (4 * 4 + 4 * 4) / 16
    bidirectional = 2 * 3 * (8 * 8 + 8 * 8) / 16 + 2 * 8 * 8 / 16
    assert macs_per_sample(replace(TINY, causal=False)) == 2 * (level1 + level2) + bidirectional
    # at UF 0.5: channels 1 -> 2 -> 4
    half = 2 * ((2 * 8 + 2 * 4) / 4 + (2 * 4 * 8 + 2 * 16) / 16) + 6 * 16 / 16
    assert macs_per_sample(TINY, 0.5) == half


@pytest.mark.parametrize(
    "config",
    [TINY, replace(TINY, causal=False), replace(TINY, gru="grouped")],
    ids=["causal", "bidirectional", "grouped"],
)
@pytest.mark.parametrize("uf", [1.0, 0.5])
def test_macs_per_sample_agree_with_what_torch_counts_on_a_real_forward_pass(config, uf):
    from torch.utils.flop_counter import FlopCounterMode

    model = SlimDemucs(config).eval()
    samples = 1 << 15
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, samples), uf=uf)
    # the strided convolutions run over a padded length, a few frames past the input
    assert counter.get_total_flops() / 2 / samples == pytest.approx(macs_per_sample(config, uf), rel=2e-3)


def test_macs_grow_with_uf_and_halving_cuts_two_to_four_times():
    config = SlimDemucsConfig()
    grid = [i / 64 for i in range(1, 65)]
    counts = [macs_per_sample(config, uf) for uf in grid]
    assert all(a <= b for a, b in itertools.pairwise(counts)) and counts[0] < counts[-1]
    for uf in (1.0, 0.5, 0.25):
        ratio = macs_per_sample(config, uf) / macs_per_sample(config, uf / 2)
        assert 1.8 <= ratio <= 4.0


def test_router_and_dynamic_macs():
    c = TINY_DYNAMIC
    assert router_macs_per_sample(c) == c.router_features + (2 * 16 * 32 + 32 * 4) / c.segment
    share = [0.5, 0.25, 0.0, 0.25]
    expected = (2 * macs_per_sample(c, 0.125) + macs_per_sample(c, 1.0) + macs_per_sample(c, 0.25)) / 4
    assert routed_macs_per_sample(c, share) == pytest.approx(expected + router_macs_per_sample(c))
    with pytest.raises(ValueError, match="one share per width"):
        routed_macs_per_sample(c, share[:3])


def test_width_channel_masks_keep_each_layers_prefix():
    config = SlimDemucsConfig(hidden=4, depth=3)  # channels 4, 8, 16
    masks = width_channel_masks(config)
    assert masks.shape == (4, 3, 16)
    # UF 1/4 of layer 2 (8 channels): the first 2 on; layer 1 never has channels past its 4
    assert masks[1, 1].tolist() == [1, 1] + [0] * 14
    assert masks[:, 0, 4:].sum() == 0
    assert masks[3].sum(-1).tolist() == [4, 8, 16]


def test_dumped_router_masks_follow_the_channels_the_model_keeps_on():
    """`router_masks` (per STFT frame, what dump_masks stores) agrees with the masks the routed
    forward applies at every encoder level, for choices that vary and a short last segment."""
    from maskscope.core.framing import HOP, frame_count
    from maskscope.evaluation.scoring import router_masks

    config = SlimDemucsConfig(hidden=4, depth=3, segment=2048, dynamic=True)
    model = SlimDemucs(config)
    length = 5 * config.segment + 700
    choices = torch.tensor([3, 0, 2, 1, 0, 3])
    one_hot = torch.nn.functional.one_hot(choices, len(config.widths)).float()[None]
    applied = model._masks(one_hot, length, 1.0)
    dumped = router_masks(config, choices.numpy(), frame_count(length))
    assert dumped.shape == (config.depth, max(config.channels), frame_count(length))
    compared = 0
    for level, channels in enumerate(config.channels, start=1):
        step = config.stride**level  # a level-`level` frame starts every `step` input samples
        for frame in range(frame_count(length)):
            index = frame * HOP // step
            if index < applied[level].shape[-1]:
                expected = applied[level][0, :, index].numpy().astype(bool)
                assert (dumped[level - 1, :channels, frame] == expected).all(), (level, frame)
                compared += 1
        assert not dumped[level - 1, channels:].any()  # padding bits of a narrower layer stay off
    assert compared > 3 * 30
