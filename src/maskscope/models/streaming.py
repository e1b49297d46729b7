"""Streaming, batch-1 inference for a trained causal Conv-FSENet that computes only the open channels.

Each STFT frame goes through one compiled numba kernel: the |X|**compression features, the front-end,
every block (gate predictor, then only the open rows of `expand`, their PReLU, their depthwise dilated
filters over a per-block causal state of past depthwise inputs, PReLU, and only the open columns of
`project`), and the back-end mask. A closed channel is exactly zero at the depthwise input of the dense
model, so it writes a zero into the state and the sparse result equals the gated model's. Ungated models
run the same kernel with every channel open. `process` loops all frames inside one kernel call.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from maskscope.core import framing
from maskscope.models.conv_fsenet import ConvFSENet, ConvFSENetConfig, macs_per_frame

_MAGNITUDE_FLOOR = np.float32(1e-8)  # same floor as ConvFSENet.features
_CACHE_LINE = 64  # bytes
_PREFETCH_AHEAD = 2  # open channels ahead: the default weights (~2.5 MB) spill out of L2
_LANES = 16  # float32 lanes of the explicit vector dot product (one AVX-512 register, two AVX2)


@intrinsic
def _dot(typingctx, w, x):
    """Float32 dot product of two equal-length 1-D C-contiguous float32 arrays.

    Written as explicit LLVM vector ops because LLVM keeps a plain float reduction loop scalar (it may not
    reassociate it), which made the gathered `expand` rows 4x slower than a vectorized axpy. The order is
    fixed (lane l sums elements l, l + LANES, ...; then a pairwise tree; then the tail), so the result is
    deterministic and needs no fastmath flags.
    """
    for array in (w, x):
        if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
            return None
        if array.dtype != types.float32:
            return None

    def codegen(context, builder, signature, args):
        w_arr = context.make_array(signature.args[0])(context, builder, args[0])
        x_arr = context.make_array(signature.args[1])(context, builder, args[1])
        n = builder.extract_value(x_arr.shape, 0)
        f32 = ir.FloatType()
        vec = ir.VectorType(f32, _LANES)
        lanes = ir.Constant(n.type, _LANES)
        acc = cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * _LANES))
        n_vec = builder.sdiv(n, lanes)
        with cgutils.for_range(builder, n_vec) as loop:
            offset = builder.mul(loop.index, lanes)
            w_vec = builder.load(builder.bitcast(builder.gep(w_arr.data, [offset]), vec.as_pointer()), align=4)
            x_vec = builder.load(builder.bitcast(builder.gep(x_arr.data, [offset]), vec.as_pointer()), align=4)
            builder.store(builder.fadd(builder.load(acc), builder.fmul(w_vec, x_vec)), acc)
        total = builder.load(acc)
        width = _LANES
        while width > 1:
            width //= 2
            index = ir.VectorType(ir.IntType(32), width)
            low = builder.shuffle_vector(total, total, ir.Constant(index, list(range(width))))
            high = builder.shuffle_vector(total, total, ir.Constant(index, list(range(width, 2 * width))))
            total = builder.fadd(low, high)
        result = cgutils.alloca_once_value(builder, builder.extract_element(total, ir.Constant(ir.IntType(32), 0)))
        with cgutils.for_range_slice(builder, builder.mul(n_vec, lanes), n, ir.Constant(n.type, 1)) as (i, _):
            product = builder.fmul(
                builder.load(builder.gep(w_arr.data, [i])), builder.load(builder.gep(x_arr.data, [i]))
            )
            builder.store(builder.fadd(builder.load(result), product), result)
        return builder.load(result)

    return types.float32(w, x), codegen


@intrinsic
def _prefetch(typingctx, row):
    """Hint the CPU to fetch a 1-D C-contiguous float32 array into cache (no effect on results)."""
    if not (isinstance(row, types.Array) and row.ndim == 1 and row.layout == "C" and row.dtype == types.float32):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        n = builder.extract_value(arr.shape, 0)
        i32 = ir.IntType(32)
        byte_ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        step = ir.Constant(n.type, _CACHE_LINE // 4)
        with cgutils.for_range_slice(builder, ir.Constant(n.type, 0), n, step) as (i, _):
            ptr = builder.bitcast(builder.gep(arr.data, [i]), byte_ptr)
            # read, high temporal locality, data cache
            builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(row), codegen


@numba.njit(cache=True, fastmath=False)
def _run_frames(
    frames: np.ndarray,  # complex64 (T, bins)
    out: np.ndarray,  # complex64 (T, bins)
    gates_out: np.ndarray,  # uint8 (T, n_blocks, H)
    t0: int,  # frames processed since reset: position in the ring buffers
    state: np.ndarray,  # float32 (n_blocks, ring, H): past depthwise inputs
    compression: np.float32,
    front_wt: np.ndarray,  # (bins, B)
    front_b: np.ndarray,  # (B,)
    exp_w: np.ndarray,  # (n_blocks, H, B)
    exp_b: np.ndarray,  # (n_blocks, H)
    act1: np.ndarray,  # (n_blocks, H)
    dw_w: np.ndarray,  # (n_blocks, H, K)
    dw_b: np.ndarray,  # (n_blocks, H)
    act2: np.ndarray,  # (n_blocks, H)
    proj_wt: np.ndarray,  # (n_blocks, H, B)
    proj_b: np.ndarray,  # (n_blocks, B)
    dilations: np.ndarray,  # int64 (n_blocks,)
    gated: bool,
    red_wt: np.ndarray,  # (n_blocks, B, rank)
    red_b: np.ndarray,  # (n_blocks, rank)
    gexp_wt: np.ndarray,  # (n_blocks, rank, H)
    gexp_b: np.ndarray,  # (n_blocks, H)
    back_wt: np.ndarray,  # (B, bins)
    back_b: np.ndarray,  # (bins,)
) -> None:
    n_frames, bins = frames.shape
    n_blocks, hidden, bottleneck = exp_w.shape
    kernel = dw_w.shape[2]
    ring = state.shape[1]
    rank = red_b.shape[1]
    zero = np.float32(0.0)
    one = np.float32(1.0)

    feat = np.empty(bins, np.float32)
    x = np.empty(bottleneck, np.float32)
    acc = np.empty(bottleneck, np.float32)
    reduced = np.empty(rank, np.float32)
    logits = np.empty(hidden, np.float32)
    open_idx = np.empty(hidden, np.int64)
    mask = np.empty(bins, np.float32)

    for t in range(n_frames):
        step = t0 + t
        slot = step % ring
        for f in range(bins):
            magnitude = np.float32(abs(frames[t, f]))
            if magnitude < _MAGNITUDE_FLOOR:
                magnitude = _MAGNITUDE_FLOOR
            feat[f] = np.float32(magnitude**compression)

        # front-end as an axpy over bins: contiguous rows vectorize without reassociating sums
        x[:] = zero
        for f in range(bins):
            v = feat[f]
            for b in range(bottleneck):
                x[b] += v * front_wt[f, b]
        for b in range(bottleneck):
            x[b] += front_b[b]

        for i in range(n_blocks):
            n_open = 0
            if gated:
                reduced[:] = zero
                for b in range(bottleneck):
                    v = x[b]
                    for r in range(rank):
                        reduced[r] += v * red_wt[i, b, r]
                for r in range(rank):
                    v = reduced[r] + red_b[i, r]
                    reduced[r] = v if v > zero else zero
                logits[:] = zero
                for r in range(rank):
                    v = reduced[r]
                    for c in range(hidden):
                        logits[c] += v * gexp_wt[i, r, c]
                # branch-free: gates are close to coin flips, so a branch here mispredicts often
                state[i, slot, :] = zero
                for c in range(hidden):
                    is_open = logits[c] + gexp_b[i, c] > zero
                    gates_out[t, i, c] = is_open
                    open_idx[n_open] = c
                    n_open += is_open
            else:
                for c in range(hidden):
                    gates_out[t, i, c] = 1
                    open_idx[c] = c
                n_open = hidden

            dilation = dilations[i]
            acc[:] = zero
            for j in range(n_open):
                c = open_idx[j]
                if j + _PREFETCH_AHEAD < n_open:
                    _prefetch(exp_w[i, open_idx[j + _PREFETCH_AHEAD]])
                    _prefetch(proj_wt[i, open_idx[j + _PREFETCH_AHEAD]])
                y = _dot(exp_w[i, c], x) + exp_b[i, c]
                if y < zero:
                    y = act1[i, c] * y
                state[i, slot, c] = y
                z = zero
                for k in range(kernel):
                    past = (step - (kernel - 1 - k) * dilation) % ring
                    z += dw_w[i, c, k] * state[i, past, c]
                z += dw_b[i, c]
                if z < zero:
                    z = act2[i, c] * z
                for b in range(bottleneck):
                    acc[b] += z * proj_wt[i, c, b]
            for b in range(bottleneck):
                x[b] = x[b] + (acc[b] + proj_b[i, b])

        mask[:] = zero
        for b in range(bottleneck):
            v = x[b]
            for f in range(bins):
                mask[f] += v * back_wt[b, f]
        for f in range(bins):
            m = one / (one + np.float32(np.exp(-(mask[f] + back_b[f]))))
            out[t, f] = frames[t, f] * m


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


class StreamingFSENet:
    """Frame-by-frame sparse inference of a causal ConvFSENet (see module docstring)."""

    def __init__(self, config: ConvFSENetConfig, weights: dict[str, np.ndarray]) -> None:
        if not config.causal:
            raise ValueError("streaming needs a causal model (left padding only)")
        self.config = config
        self._weights = weights
        dilations = weights["dilations"]
        # one ring length for every block: slot arithmetic stays a single modulo of the frame counter
        self._ring = (config.kernel - 1) * int(dilations.max()) + 1
        self._state = np.zeros((config.n_blocks, self._ring, config.hidden), np.float32)
        self._step = 0

    @classmethod
    def from_model(cls, model: ConvFSENet) -> StreamingFSENet:
        """Copy the model's weights to contiguous float32 numpy; ValueError for a non-causal model."""
        config = model.config
        if not config.causal:
            raise ValueError("streaming needs a causal model (left padding only)")
        n, h, b, rank = config.n_blocks, config.hidden, config.bottleneck, config.gate_rank

        def t(param: torch.Tensor) -> np.ndarray:
            return param.detach().cpu().numpy()

        blocks = list(model.blocks)
        weights = {
            "front_wt": _f32(t(model.frontend.weight)[:, :, 0].T),
            "front_b": _f32(t(model.frontend.bias)),
            "exp_w": _f32(np.stack([t(k.expand.weight)[:, :, 0] for k in blocks])),
            "exp_b": _f32(np.stack([t(k.expand.bias) for k in blocks])),
            "act1": _f32(np.stack([np.broadcast_to(t(k.act1.weight), (h,)) for k in blocks])),
            "dw_w": _f32(np.stack([t(k.depthwise.weight)[:, 0, :] for k in blocks])),
            "dw_b": _f32(np.stack([t(k.depthwise.bias) for k in blocks])),
            "act2": _f32(np.stack([np.broadcast_to(t(k.act2.weight), (h,)) for k in blocks])),
            "proj_wt": _f32(np.stack([t(k.project.weight)[:, :, 0].T for k in blocks])),
            "proj_b": _f32(np.stack([t(k.project.bias) for k in blocks])),
            "dilations": np.array([k.dilation for k in blocks], dtype=np.int64),
            "back_wt": _f32(t(model.backend.weight)[:, :, 0].T),
            "back_b": _f32(t(model.backend.bias)),
        }
        if config.gated:
            weights |= {
                "red_wt": _f32(np.stack([t(k.gate_predictor.reduce.weight)[:, :, 0].T for k in blocks])),
                "red_b": _f32(np.stack([t(k.gate_predictor.reduce.bias) for k in blocks])),
                "gexp_wt": _f32(np.stack([t(k.gate_predictor.expand.weight)[:, :, 0].T for k in blocks])),
                "gexp_b": _f32(np.stack([t(k.gate_predictor.expand.bias) for k in blocks])),
            }
        else:
            # placeholders of the right rank and dtype so one compiled kernel serves both
            weights |= {
                "red_wt": np.zeros((n, b, rank), np.float32),
                "red_b": np.zeros((n, rank), np.float32),
                "gexp_wt": np.zeros((n, rank, h), np.float32),
                "gexp_b": np.zeros((n, h), np.float32),
            }
        return cls(config, weights)

    def reset(self) -> None:
        """Zero all causal state: the next frame is treated as the first."""
        self._state[:] = 0.0
        self._step = 0

    def _run(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, bins) complex64 frames -> enhanced (T, bins), gates (T, n_blocks, H); advances the state."""
        c, w = self.config, self._weights
        out = np.empty_like(frames)
        gates = np.empty((frames.shape[0], c.n_blocks, c.hidden), np.uint8)
        _run_frames(
            frames,
            out,
            gates,
            self._step,
            self._state,
            np.float32(c.compression),
            w["front_wt"],
            w["front_b"],
            w["exp_w"],
            w["exp_b"],
            w["act1"],
            w["dw_w"],
            w["dw_b"],
            w["act2"],
            w["proj_wt"],
            w["proj_b"],
            w["dilations"],
            c.gated,
            w["red_wt"],
            w["red_b"],
            w["gexp_wt"],
            w["gexp_b"],
            w["back_wt"],
            w["back_b"],
        )
        # keep the counter small; any multiple of the ring length preserves every slot
        self._step = (self._step + frames.shape[0]) % self._ring
        return out, gates

    def _check_bins(self, n: int) -> None:
        if n != self.config.bins:
            raise ValueError(f"expected {self.config.bins} bins, got {n}")

    def process_frame(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One complex (bins,) STFT column -> enhanced complex64 (bins,), gates uint8 (n_blocks, H)."""
        frame = np.asarray(frame)
        if frame.ndim != 1:
            raise ValueError(f"expected a (bins,) frame, got shape {frame.shape}")
        self._check_bins(frame.shape[0])
        out, gates = self._run(np.ascontiguousarray(frame[None, :], dtype=np.complex64))
        return out[0], gates[0]

    def process(self, spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Complex (bins, frames) -> enhanced complex64 (bins, frames), gates uint8 (frames, n_blocks, H).

        Continues from the current state; call `reset` first for an independent signal.
        """
        spectrum = np.asarray(spectrum)
        if spectrum.ndim != 2:
            raise ValueError(f"expected a (bins, frames) spectrum, got shape {spectrum.shape}")
        self._check_bins(spectrum.shape[0])
        out, gates = self._run(np.ascontiguousarray(spectrum.T, dtype=np.complex64))
        return np.ascontiguousarray(out.T), gates

    def enhance(self, audio: np.ndarray) -> np.ndarray:
        """Float32 16 kHz mono -> enhanced float32 of the same length, from a fresh state."""
        return self.enhance_with_gates(audio)[0]

    def enhance_with_gates(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`enhance`, and the gates of the same pass: uint8 (frames, n_blocks, H)."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio (samples,), got shape {audio.shape}")
        spectrum = framing.stft(torch.from_numpy(audio)).numpy()
        self.reset()
        enhanced, gates = self.process(spectrum)
        self.reset()
        return framing.istft(torch.from_numpy(enhanced), length=audio.shape[0]).numpy().astype(np.float32), gates

    def macs_per_frame_spent(self, gates: np.ndarray) -> float:
        """Mean MACs per frame actually computed (front/back-end and gate predictors included).

        `gates` is (n_blocks, H) for one frame or (frames, n_blocks, H).
        """
        gates = np.asarray(gates)
        if gates.shape[-2:] != (self.config.n_blocks, self.config.hidden):
            raise ValueError(f"expected gates (..., {self.config.n_blocks}, {self.config.hidden}), got {gates.shape}")
        usage = gates.reshape(-1, self.config.n_blocks, self.config.hidden).mean(axis=(0, 2), dtype=np.float64)
        return float(macs_per_frame(self.config, [float(u) for u in usage]).total)
