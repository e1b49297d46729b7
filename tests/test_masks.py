"""Bit-packed gate masks: exact round trip, keys aligned with label frames, size per frame."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from maskscope.analysis.masks import MaskLayout, mask_table, pack_gates, read_masks, unpack_masks, write_layout
from maskscope.core.errors import MissingInputError


def random_gates(blocks: int, hidden: int, frames: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((blocks, hidden, frames)) < 0.3).astype(np.uint8)


def test_the_default_model_takes_288_bytes_per_frame():
    assert MaskLayout(blocks=9, hidden=256).bytes_per_frame == 288


@pytest.mark.parametrize("blocks, hidden", [(9, 256), (3, 13), (1, 1)])
def test_pack_and_unpack_round_trip_bit_for_bit(blocks, hidden):
    layout = MaskLayout(blocks, hidden)
    gates = random_gates(blocks, hidden, 37, seed=blocks * hidden)
    bits = unpack_masks(pack_gates(gates), layout)
    assert bits.shape == (37, blocks * hidden)
    # bit b * H + h of frame t is the gate of channel h in block b
    np.testing.assert_array_equal(bits.reshape(37, blocks, hidden), gates.transpose(2, 0, 1).astype(bool))
    assert layout.block_of_bit().tolist() == [b for b in range(blocks) for _ in range(hidden)]


def test_written_shards_read_back_as_the_boolean_matrix_with_its_keys(tmp_path):
    layout = MaskLayout(blocks=3, hidden=20)
    utterances = {
        name: random_gates(3, 20, frames, seed) for seed, (name, frames) in enumerate({"a": 11, "b": 5, "c": 8}.items())
    }
    tables = [mask_table(utt_id, gates, layout) for utt_id, gates in utterances.items()]
    pq.write_table(pa.concat_tables(tables[:2]), tmp_path / "masks-00000.parquet")
    pq.write_table(tables[2], tmp_path / "masks-00001.parquet")
    write_layout(tmp_path, layout)
    masks = read_masks(tmp_path)
    assert masks.layout == layout
    assert masks.keys["utt_id"].tolist() == ["a"] * 11 + ["b"] * 5 + ["c"] * 8
    assert masks.keys["frame"].tolist() == [*range(11), *range(5), *range(8)]
    expected = np.concatenate([g.transpose(2, 0, 1).reshape(g.shape[2], -1) for g in utterances.values()]).astype(bool)
    np.testing.assert_array_equal(masks.bits, expected)


def test_a_missing_layout_names_the_stage_to_run(tmp_path):
    with pytest.raises(MissingInputError, match="dump_masks"):
        read_masks(tmp_path)
