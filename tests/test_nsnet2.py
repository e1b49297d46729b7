"""nsNet2 with early exits: the topologies, their causality, streaming and their MAC counts."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from maskscope.core import framing
from maskscope.models.nsnet2 import TOPOLOGIES, NsNet2, NsNet2Config, NsNet2State, exit_macs

TINY = NsNet2Config(input_width=24, gru_width=20, decoder_widths=(28, 26))


def seeded_model(topology: str) -> NsNet2:
    torch.manual_seed(0)
    return NsNet2(replace(TINY, topology=topology)).eval()


def noisy_spectrum(frames: int = 40, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    audio = 0.1 * torch.randn(1, framing.HOP * (frames - 1), generator=generator)
    return framing.stft(audio)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_exit_gives_a_floored_mask_of_the_spectrum(topology):
    model = NsNet2(replace(TINY, topology=topology)).eval()
    spectrum = noisy_spectrum()
    with torch.no_grad():
        output, _ = model(spectrum)
    assert len(output.masks) == len(TINY.exits) == len(output.spectra)
    floor = 10 ** (TINY.mask_floor_db / 20)
    for mask, enhanced in zip(output.masks, output.spectra, strict=True):
        assert mask.shape == spectrum.shape and bool((mask >= floor).all()) and bool((mask <= 1).all())
        assert torch.allclose(enhanced, mask * spectrum)
    assert not torch.allclose(output.masks[0], output.masks[-1])  # exits are different predictors


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_frame_by_frame_with_the_state_carried_equals_the_whole_file(topology):
    model = seeded_model(topology)
    spectrum = noisy_spectrum(30)
    with torch.no_grad():
        whole, _ = model(spectrum)
        state = NsNet2State()
        frames = [model(spectrum[:, :, t : t + 1], state)[0] for t in range(spectrum.shape[2])]
    for index in range(len(TINY.exits)):
        streamed = torch.cat([frame.masks[index] for frame in frames], dim=2)
        assert torch.allclose(streamed, whole.masks[index], atol=1e-5)


def test_no_exit_looks_at_the_future():
    model = NsNet2(replace(TINY, topology="split_gru")).eval()
    spectrum = noisy_spectrum(40)
    changed = spectrum.clone()
    changed[:, :, 25:] *= 10.0
    with torch.no_grad():
        before, _ = model(spectrum)
        after, _ = model(changed)
    for mask_before, mask_after in zip(before.masks, after.masks, strict=True):
        assert torch.equal(mask_before[:, :, :25], mask_after[:, :, :25])
        assert not torch.allclose(mask_before[:, :, 25:], mask_after[:, :, 25:])


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_exit_macs_are_what_torch_counts_on_a_real_forward_pass(topology):
    config = replace(TINY, topology=topology)
    model = NsNet2(config).eval()
    frames = 16
    counts = exit_macs(config)
    for index in range(len(config.exits)):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(noisy_spectrum(frames), exits=index + 1)
        # computing up to an exit runs the backbone there and every head on the way: the incremental cost
        assert counter.get_total_flops() / 2 / frames == counts[index]["incremental"]
    assert counts[0]["standalone"] == counts[0]["incremental"]
    assert counts[-1]["standalone"] <= counts[-1]["incremental"]


def test_a_static_model_truncated_at_an_exit_costs_that_exits_standalone_macs():
    full = exit_macs(TINY)
    for index, name in enumerate(TINY.exits):
        truncated = replace(TINY, exits=(name,))
        model = NsNet2(truncated).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(noisy_spectrum(8))
        assert counter.get_total_flops() / 2 / 8 == full[index]["standalone"] == exit_macs(truncated)[0]["standalone"]
    assert "dec1" not in NsNet2(replace(TINY, exits=("gru1",))).backbone  # nothing past the exit is built


def test_the_full_size_network_costs_what_nsnet2_is_known_to():
    # the published nsNet2 (F = 257, 400-wide GRUs, 600-wide FCs): about 2.78 M MACs per frame
    assert exit_macs(NsNet2Config(exits=("final",)))[0]["standalone"] == pytest.approx(2.78e6, rel=0.01)


def test_bad_exits_and_topologies_are_named():
    with pytest.raises(ValueError, match="not layers of this network"):
        NsNet2Config(exits=("gru3", "final"))
    with pytest.raises(ValueError, match="network order"):
        NsNet2Config(exits=("gru2", "gru1", "final"))
    with pytest.raises(ValueError, match="topology"):
        NsNet2Config(topology="ladder")
    with pytest.raises(ValueError, match="between 1 and 3"):
        NsNet2(TINY)(noisy_spectrum(4), exits=0)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_the_exit_policy_spans_the_first_comparable_exit_to_the_full_network(topology):
    model = seeded_model(topology)
    spectrum = noisy_spectrum(24)
    with torch.no_grad():
        full, _ = model(spectrum)
        second, _ = model(spectrum, exits=2)
        never = model.early_exit(spectrum, threshold=0.0)  # no change is below 0: every frame goes to the end
        always = model.early_exit(spectrum, threshold=float("inf"))  # the first comparison settles
        some = model.early_exit(spectrum, threshold=0.02)
    assert torch.all(never.exits == len(TINY.exits) - 1)
    assert torch.allclose(never.mask, full.masks[-1], atol=1e-5)
    assert torch.all(always.exits == 1)
    assert torch.allclose(always.mask, second.masks[1], atol=1e-5)
    assert torch.allclose(some.spectrum, some.mask * spectrum)
    assert set(some.exits.tolist()) <= {1, 2}


def test_the_exit_policy_never_looks_at_the_future():
    model = NsNet2(replace(TINY, topology="split_gru")).eval()
    spectrum = noisy_spectrum(30)
    changed = spectrum.clone()
    changed[:, :, 20:] *= 10.0
    with torch.no_grad():
        before, after = model.early_exit(spectrum, 0.02), model.early_exit(changed, 0.02)
    assert torch.equal(before.exits[:20], after.exits[:20])
    assert torch.equal(before.mask[:, :, :20], after.mask[:, :, :20])


def test_dumped_exit_decisions_read_back_as_the_exits_the_policy_took(tmp_path):
    """`dump_exits` stores a frame that left at exit e as bits 0..e set; read back through the
    probes' mask reader they give the policy's choice of every frame."""
    from maskscope.analysis.masks import MaskLayout, reached_exits, read_masks, write_masks

    model = seeded_model("split_decoder")
    audio = (0.1 * torch.randn(framing.HOP * 79, generator=torch.Generator().manual_seed(3))).numpy()
    spectrum = framing.stft(torch.from_numpy(audio)[None])
    with torch.no_grad():
        masks = model(spectrum)[0].masks
    # The policy compares exit 1's mask with exit 0's: at their median change about half the frames
    # leave at exit 1, so the decisions vary and the test can fail.
    threshold = float((masks[1] - masks[0]).abs().mean(dim=1).median())
    with torch.no_grad():
        taken = model.early_exit(spectrum, threshold).exits.numpy()
    layout = MaskLayout(blocks=len(TINY.exits), hidden=1)
    write_masks(tmp_path, [("policy", reached_exits(taken, layout.blocks))], layout)
    bits = read_masks(tmp_path).bits
    assert bits.shape == (framing.frame_count(audio.size), layout.blocks)
    assert (bits.sum(axis=1) - 1 == taken).all()  # as many exits reached as the one left at, plus one
    assert (bits[:, :-1] >= bits[:, 1:]).all()  # and always the first ones
    assert len(set(taken.tolist())) > 1
