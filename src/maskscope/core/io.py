"""Atomic outputs and Parquet shards.

A stage writes into a hidden temporary sibling and renames it into place only when complete, so
a killed stage leaves nothing that a later run could mistake for a finished output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from maskscope.core.errors import MissingInputError

TMP_MARK = ".tmp-"


def _tmp_sibling_prefix(path: Path) -> str:
    return f".{path.name}{TMP_MARK}"


def remove_stale_temporaries(path: Path) -> None:
    """Delete leftovers of earlier killed runs that wrote `path`."""
    parent = path.parent
    if parent.is_dir():
        for leftover in parent.glob(_tmp_sibling_prefix(path) + "*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _replace(tmp: Path, path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        trash = Path(tempfile.mkdtemp(prefix=_tmp_sibling_prefix(path), dir=path.parent))
        os.replace(path, trash / path.name)
        os.replace(tmp, path)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_output_dir(path: Path | str) -> Iterator[Path]:
    """Yield an empty temporary directory that becomes `path` when the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_sibling_prefix(path), dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the output from other users of a shared machine
    try:
        yield tmp
        _replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_output_file(path: Path | str) -> Iterator[Path]:
    """Yield a temporary file path that is renamed to `path` when the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(prefix=_tmp_sibling_prefix(path), dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_output_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write one Parquet file with settings that make identical tables give identical bytes."""
    pq.write_table(table, path, compression="zstd", compression_level=3, write_statistics=True)


def write_shards(rows: Sequence[dict], schema: pa.Schema, directory: Path, shard_size: int, stem: str) -> list[Path]:
    """Write rows as `stem-00000.parquet`, … with at most `shard_size` rows each."""
    paths = []
    for index, start in enumerate(range(0, max(len(rows), 1), shard_size)):
        chunk = rows[start : start + shard_size]
        table = pa.Table.from_pylist(list(chunk), schema=schema)
        path = directory / f"{stem}-{index:05d}.parquet"
        write_parquet(table, path)
        paths.append(path)
    return paths


def read_shards(directory: Path | str, stem: str = "*", columns: list[str] | None = None) -> pa.Table:
    """Concatenate a directory's Parquet shards in name order."""
    paths = sorted(Path(directory).glob(f"{stem}-*.parquet"))
    if not paths:
        raise MissingInputError(f"{directory}: no Parquet shards named {stem}-*.parquet; run the stage that makes it")
    return pa.concat_tables([pq.read_table(p, columns=columns) for p in paths])
