from __future__ import annotations

import pyarrow as pa
import pytest

from maskscope.core.errors import MissingInputError
from maskscope.core.io import atomic_output_dir, atomic_write_text, read_shards, write_shards


def test_atomic_dir_appears_only_when_complete(tmp_path):
    target = tmp_path / "out"
    with atomic_output_dir(target) as tmp:
        (tmp / "a.txt").write_text("a")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "a"


def test_failure_keeps_the_previous_output_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out"
    with atomic_output_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    stale = tmp_path / ".out.tmp-abc"
    stale.mkdir()
    with atomic_output_dir(tmp_path / "out") as tmp:
        (tmp / "x").write_text("x")
    assert not stale.exists()


def test_atomic_write_text_replaces(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_text(path, "1")
    atomic_write_text(path, "2")
    assert path.read_text() == "2"
    assert len(list(tmp_path.iterdir())) == 1


def test_shards_split_and_concatenate_in_order(tmp_path):
    schema = pa.schema([("i", pa.int64())])
    rows = [{"i": i} for i in range(10)]
    paths = write_shards(rows, schema, tmp_path, 4, "train")
    assert [p.name for p in paths] == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    assert read_shards(tmp_path, "train").column("i").to_pylist() == list(range(10))


def test_missing_shards_say_which_stage_to_run(tmp_path):
    with pytest.raises(MissingInputError, match="run the stage"):
        read_shards(tmp_path, "test")
