"""Gate masks as data: one bit-packed row per STFT frame, keyed by (utt_id, frame) as the labels are.

Bit `b * H + h` of a frame's row is the gate of channel h in block b (numpy's big-endian bit order
within each byte), so the default model's 9 blocks x 256 channels take 288 bytes per frame.
`read_masks` gives back the boolean matrix and its keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from maskscope.core.errors import InputFormatError, MissingInputError
from maskscope.core.io import write_parquet

LAYOUT_FILE = "layout.json"
MASK_SHARD_UTTERANCES = 64


@dataclass(frozen=True)
class MaskLayout:
    blocks: int
    hidden: int

    @property
    def bits(self) -> int:
        return self.blocks * self.hidden

    @property
    def bytes_per_frame(self) -> int:
        return (self.bits + 7) // 8

    def schema(self) -> pa.Schema:
        return pa.schema(
            [("utt_id", pa.string()), ("frame", pa.int32()), ("mask", pa.binary(self.bytes_per_frame))],
            metadata={"blocks": str(self.blocks), "hidden": str(self.hidden)},
        )

    def block_of_bit(self) -> np.ndarray:
        """The block each bit belongs to, (bits,)."""
        return np.repeat(np.arange(self.blocks), self.hidden)


def pack_gates(gates: np.ndarray) -> np.ndarray:
    """(blocks, H, frames) 0/1 gates -> (frames, bytes_per_frame) uint8."""
    blocks, hidden, frames = gates.shape
    bits = np.ascontiguousarray(gates.transpose(2, 0, 1).reshape(frames, blocks * hidden), dtype=bool)
    return np.packbits(bits, axis=1)


def unpack_masks(packed: np.ndarray, layout: MaskLayout) -> np.ndarray:
    """(frames, bytes_per_frame) uint8 -> (frames, bits) bool."""
    return np.unpackbits(packed, axis=1, count=layout.bits).astype(bool)


def mask_table(utt_id: str, gates: np.ndarray, layout: MaskLayout) -> pa.Table:
    """One utterance's frames as rows of the mask schema."""
    packed = pack_gates(gates)
    frames = packed.shape[0]
    masks = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(layout.bytes_per_frame), frames, [None, pa.py_buffer(packed.tobytes())]
    )
    return pa.Table.from_arrays(
        [pa.array([utt_id] * frames, pa.string()), pa.array(np.arange(frames, dtype=np.int32)), masks],
        schema=layout.schema(),
    )


def reached_exits(taken: np.ndarray, exits: int) -> np.ndarray:
    """An exit policy's decisions as mask bits: (frames,) index of the exit each frame left at ->
    (exits, 1, frames), bit b set when the frame reached exit b."""
    return (np.arange(exits)[:, None] <= np.asarray(taken)[None, :])[:, None, :]


def write_layout(directory: Path, layout: MaskLayout) -> None:
    (directory / LAYOUT_FILE).write_text(json.dumps({"blocks": layout.blocks, "hidden": layout.hidden}) + "\n")


def write_masks(directory: Path, decisions: Iterable[tuple[str, np.ndarray]], layout: MaskLayout) -> tuple[int, int]:
    """Each utterance's (blocks, H, frames) 0/1 decisions into shards of MASK_SHARD_UTTERANCES
    utterances, and the layout; returns the frames written and the bits set among them."""
    frames = set_bits = shard = 0
    tables: list[pa.Table] = []
    for utt_id, gates in decisions:
        tables.append(mask_table(utt_id, gates, layout))
        frames += gates.shape[2]
        set_bits += int(gates.sum())
        if len(tables) == MASK_SHARD_UTTERANCES:
            write_parquet(pa.concat_tables(tables), directory / f"masks-{shard:05d}.parquet")
            tables, shard = [], shard + 1
    if tables:
        write_parquet(pa.concat_tables(tables), directory / f"masks-{shard:05d}.parquet")
    write_layout(directory, layout)
    return frames, set_bits


@dataclass
class MaskSet:
    keys: pd.DataFrame  # utt_id, frame: row i of `bits` is frame keys.frame[i] of keys.utt_id[i]
    bits: np.ndarray  # (frames, blocks * hidden) bool
    layout: MaskLayout


def read_layout(directory: Path) -> MaskLayout:
    path = Path(directory) / LAYOUT_FILE
    if not path.exists():
        raise MissingInputError(f"{path}: missing; run the dump_masks stage that writes {directory}")
    data = json.loads(path.read_text())
    return MaskLayout(blocks=int(data["blocks"]), hidden=int(data["hidden"]))


def read_masks(directory: Path | str) -> MaskSet:
    """All frames of a mask directory (one variant and split), in stored order."""
    directory = Path(directory)
    layout = read_layout(directory)
    paths = sorted(directory.glob("masks-*.parquet"))
    if not paths:
        raise MissingInputError(f"{directory}: no masks-*.parquet shards; run the dump_masks stage")
    table = pa.concat_tables([pq.read_table(path) for path in paths])
    width = table.schema.field("mask").type.byte_width
    if width != layout.bytes_per_frame:
        raise InputFormatError(
            f"{directory}: masks are {width} bytes per frame, {LAYOUT_FILE} says {layout.bytes_per_frame}"
        )
    keys = table.select(["utt_id", "frame"]).to_pandas()
    # The fixed-size binary column's data buffers are the packed rows, back to back.
    parts = [
        np.frombuffer(chunk.buffers()[1], dtype=np.uint8)[chunk.offset * width : (chunk.offset + len(chunk)) * width]
        for chunk in table.column("mask").chunks
    ]
    packed = np.concatenate(parts).reshape(len(keys), width)
    return MaskSet(keys=keys, bits=unpack_masks(packed, layout), layout=layout)


def aligned_bits(masks: list[MaskSet], labels: pd.DataFrame, origin: str) -> np.ndarray:
    """Mask bits in the order of the label rows; every label frame must have its mask."""
    keys = pd.concat([m.keys for m in masks], ignore_index=True)
    bits = np.concatenate([m.bits for m in masks])
    index = pd.Series(np.arange(len(keys)), index=pd.MultiIndex.from_frame(keys[["utt_id", "frame"]]))
    wanted = pd.MultiIndex.from_frame(labels[["utt_id", "frame"]].astype({"frame": keys["frame"].dtype}))
    rows = index.reindex(wanted)
    if rows.isna().any():
        missing = labels.loc[rows.isna().to_numpy(), ["utt_id", "frame"]].head(3).to_dict("records")
        raise InputFormatError(f"{origin}: no mask for label frames such as {missing}; rerun dump_masks")
    return bits[rows.to_numpy(np.int64)]
