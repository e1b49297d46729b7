from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from maskscope.core import framing
from maskscope.models.conv_fsenet import ConvFSENet, ConvFSENetConfig, macs_per_frame
from maskscope.models.streaming import StreamingFSENet

# B=20 exercises both the 16-lane vector part and the scalar tail of the dot product
SMALL = ConvFSENetConfig(bottleneck=20, hidden=32, stacks=2, blocks_per_stack=3, gate_rank=4)
SMALL_GATED = replace(SMALL, gated=True)
FRAMES = 100


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def noisy_spectrum(frames: int = FRAMES, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = rng.standard_normal((framing.N_BINS, frames)) + 1j * rng.standard_normal((framing.N_BINS, frames))
    return (spectrum * rng.uniform(0.01, 3.0, size=(1, frames))).astype(np.complex64)


def dense_model(seed: int = 0) -> ConvFSENet:
    torch.manual_seed(seed)
    return ConvFSENet(SMALL).eval()


def gate_logits(model: ConvFSENet, spectrum: np.ndarray) -> torch.Tensor:
    """(n_blocks, H, frames) gate logits of the model's own forward pass."""
    logits = []
    handles = [
        block.gate_predictor.register_forward_hook(lambda _m, _i, out: logits.append(out[0])) for block in model.blocks
    ]
    with torch.no_grad():
        model(torch.from_numpy(spectrum)[None])
    for handle in handles:
        handle.remove()
    return torch.stack(logits)


def gated_model(seed: int = 0) -> ConvFSENet:
    """Gated model whose gates are about half open and whose logits stay clear of 0 on `noisy_spectrum()`."""
    torch.manual_seed(seed)
    model = ConvFSENet(SMALL_GATED).eval()
    with torch.no_grad():
        for block in model.blocks:
            # a wide logit spread keeps every logit far from the decision threshold
            block.gate_predictor.expand.weight.mul_(20.0)
            block.gate_predictor.expand.bias.normal_(0.0, 2.0)
    return model


@pytest.fixture(scope="module")
def gated() -> ConvFSENet:
    return gated_model()


def reference(model: ConvFSENet, spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    with torch.no_grad():
        output = model.eval()(torch.from_numpy(spectrum)[None])
    gates = None if output.gates is None else output.gates[0].permute(2, 0, 1).numpy()
    return output.spectrum[0].numpy(), gates


def assert_close(actual: np.ndarray, expected: np.ndarray, tolerance: float = 1e-5) -> None:
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error <= tolerance, f"relative max error {error:.2e}"


def test_dense_matches_model():
    model = dense_model()
    spectrum = noisy_spectrum()
    enhanced, gates = StreamingFSENet.from_model(model).process(spectrum)
    expected, _ = reference(model, spectrum)
    assert enhanced.shape == spectrum.shape and enhanced.dtype == np.complex64
    assert_close(enhanced, expected)
    assert gates.shape == (FRAMES, SMALL.n_blocks, SMALL.hidden) and gates.all()


def test_gated_matches_model(gated):
    spectrum = noisy_spectrum()
    logits = gate_logits(gated, spectrum)
    assert logits.abs().min() > 1e-4, "test weights put a gate logit at the decision threshold"
    enhanced, gates = StreamingFSENet.from_model(gated).process(spectrum)
    expected, expected_gates = reference(gated, spectrum)
    assert 0.3 <= gates.mean() <= 0.6, f"usage {gates.mean():.3f}"
    per_channel = gates.mean(axis=0)
    assert ((per_channel > 0) & (per_channel < 1)).mean() > 0.2, "gates should change from frame to frame"
    np.testing.assert_array_equal(gates, expected_gates.astype(np.uint8))
    assert_close(enhanced, expected)


@pytest.mark.parametrize("which", ["dense", "gated"])
def test_frame_by_frame_matches_process_and_reset(which, gated):
    model = dense_model() if which == "dense" else gated
    spectrum = noisy_spectrum(seed=1)
    stream = StreamingFSENet.from_model(model)
    whole, whole_gates = stream.process(spectrum)
    stream.reset()
    outputs = [stream.process_frame(spectrum[:, t]) for t in range(spectrum.shape[1])]
    frames = np.stack([out for out, _ in outputs], axis=1)
    frame_gates = np.stack([g for _, g in outputs])
    np.testing.assert_array_equal(frames, whole)
    np.testing.assert_array_equal(frame_gates, whole_gates)
    stream.reset()
    again, again_gates = stream.process(spectrum)
    np.testing.assert_array_equal(again, whole)
    np.testing.assert_array_equal(again_gates, whole_gates)
    # without reset the state carries over, so the output differs
    carried, _ = stream.process(spectrum)
    assert not np.array_equal(carried, whole)


def test_split_process_calls_carry_state(gated):
    spectrum = noisy_spectrum(seed=2)
    stream = StreamingFSENet.from_model(gated)
    whole, _ = stream.process(spectrum)
    stream.reset()
    first, _ = stream.process(spectrum[:, :37])
    second, _ = stream.process(spectrum[:, 37:])
    np.testing.assert_array_equal(np.concatenate([first, second], axis=1), whole)


def test_enhance_matches_model():
    model = dense_model()
    rng = np.random.default_rng(3)
    t = np.arange(16000 + 123) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    enhanced = StreamingFSENet.from_model(model).enhance(audio)
    with torch.no_grad():
        expected = model.enhance_waveform(torch.from_numpy(audio)[None])[0].numpy()
    assert enhanced.shape == audio.shape and enhanced.dtype == np.float32
    np.testing.assert_allclose(enhanced, expected, rtol=0, atol=1e-4)


def test_non_causal_model_rejected():
    with pytest.raises(ValueError, match="causal"):
        StreamingFSENet.from_model(ConvFSENet(replace(SMALL, causal=False)))


def test_wrong_bin_count_rejected():
    stream = StreamingFSENet.from_model(dense_model())
    with pytest.raises(ValueError, match="bins"):
        stream.process(np.zeros((100, 5), np.complex64))


def test_macs_per_frame_spent(gated):
    dense_stream = StreamingFSENet.from_model(dense_model())
    _, gates = dense_stream.process(noisy_spectrum(frames=10))
    assert dense_stream.macs_per_frame_spent(gates) == macs_per_frame(SMALL).total
    gated_stream = StreamingFSENet.from_model(gated)
    _, gates = gated_stream.process(noisy_spectrum())
    spent = gated_stream.macs_per_frame_spent(gates)
    all_open = macs_per_frame(SMALL_GATED).total
    assert macs_per_frame(SMALL_GATED, 0.0).total < spent < all_open
    usage = gates.mean(axis=(0, 2))
    assert spent == pytest.approx(macs_per_frame(SMALL_GATED, list(usage)).total)
    assert gated_stream.macs_per_frame_spent(gates[0]) == pytest.approx(
        macs_per_frame(SMALL_GATED, list(gates[0].mean(axis=1))).total
    )
