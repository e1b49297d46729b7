"""Gate-mask dumps and probes, measured (never asserted).

    python benchmarks/bench_masks.py [--frames 200000] [--masks data/masks/dyncp-25/test]

Prints JSON lines: bytes per frame on disk (Parquet, zstd) and frames per second written and read
back, for random masks at the default layout (9 blocks x 256 channels) with ~25 % open gates; with
`--masks`, the same for a real dump. Also the CPU time per frame of evaluating a K-bit probe from the
unpacked bits.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from maskscope.analysis.masks import MaskLayout, mask_table, read_masks, write_layout
from maskscope.analysis.probes import ExportedProbe
from maskscope.core.io import write_parquet

UTTERANCE_FRAMES = 320  # ~5 s of audio


def write_and_read(gates_per_utterance: list[np.ndarray], layout: MaskLayout, directory: Path) -> dict:
    frames = sum(g.shape[2] for g in gates_per_utterance)
    started = time.perf_counter()
    tables = [mask_table(f"utt{i:05d}", gates, layout) for i, gates in enumerate(gates_per_utterance)]
    write_parquet(pa.concat_tables(tables), directory / "masks-00000.parquet")
    write_layout(directory, layout)
    written = time.perf_counter() - started
    started = time.perf_counter()
    masks = read_masks(directory)
    read = time.perf_counter() - started
    assert masks.bits.shape[0] == frames
    size = (directory / "masks-00000.parquet").stat().st_size
    return {
        "frames": frames,
        "raw_bytes_per_frame": layout.bytes_per_frame,
        "parquet_bytes_per_frame": round(size / frames, 1),
        "frames_per_second_written": round(frames / written),
        "frames_per_second_read": round(frames / read),
        "bits": masks.bits,
    }


def probe_cost(bits: np.ndarray, k: int, outputs: int, repeats: int = 5) -> dict:
    rng = np.random.default_rng(0)
    probe = ExportedProbe(
        "bench",
        "multiclass" if outputs > 1 else "binary",
        rng.choice(bits.shape[1], k, replace=False),
        rng.standard_normal((outputs, k)),
        rng.standard_normal(outputs),
        [str(i) for i in range(outputs)] if outputs > 1 else None,
    )
    best = min(_timed(lambda: probe.predict(bits)) for _ in range(repeats))
    return {"k_bits": k, "outputs": outputs, "us_per_frame": round(1e6 * best / len(bits), 4)}


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--masks", type=Path, help="a real dump_masks output directory")
    args = parser.parse_args()
    layout = MaskLayout(blocks=9, hidden=256)
    rng = np.random.default_rng(0)
    utterances = [
        (rng.random((layout.blocks, layout.hidden, UTTERANCE_FRAMES)) < 0.25).astype(np.uint8)
        for _ in range(args.frames // UTTERANCE_FRAMES)
    ]
    with tempfile.TemporaryDirectory() as scratch:
        result = write_and_read(utterances, layout, Path(scratch))
    bits = result.pop("bits")
    print(json.dumps({"bench": "masks", "source": "random, 25 % open", **result}))
    for k, outputs in ((200, 1), (200, 9)):
        print(json.dumps({"bench": "probe", **probe_cost(bits, k, outputs)}))
    if args.masks:
        masks = read_masks(args.masks)
        gates = []
        for _, group in masks.keys.groupby("utt_id", sort=False):
            block = masks.bits[group.index.to_numpy()]
            gates.append(block.reshape(len(block), masks.layout.blocks, masks.layout.hidden).transpose(1, 2, 0))
        with tempfile.TemporaryDirectory() as scratch:
            real = write_and_read(gates, masks.layout, Path(scratch))
        real.pop("bits")
        print(json.dumps({"bench": "masks", "source": str(args.masks), **real}))


if __name__ == "__main__":
    main()
