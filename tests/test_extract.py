"""Safe extraction: hostile archives are refused whole, and nothing lands outside the destination."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from maskscope.data.extract import ExtractionError, safe_extract


def make_zip(path: Path, entries: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo], files: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in (files or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for member in members:
            archive.addfile(member)
    return path


def tar_member(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def nothing_written(tmp_path: Path, destination: Path) -> bool:
    """The destination does not exist and no stray file appeared beside it or above it."""
    stray = [p.name for p in tmp_path.iterdir() if p.name not in {"a.zip", "a.tar"}]
    return not destination.exists() and stray == [] and not (tmp_path.parent / "evil.txt").exists()


def test_a_good_archive_is_extracted_with_its_tree(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("top/ch01.wav", b"x" * 100), ("top/sub/readme.txt", b"hello")])
    destination = tmp_path / "out" / "a"
    assert safe_extract(archive, destination) == destination
    assert (destination / "top" / "ch01.wav").read_bytes() == b"x" * 100
    assert (destination / "top" / "sub" / "readme.txt").read_text() == "hello"
    assert sorted(p.name for p in destination.parent.iterdir()) == ["a"]  # no temporary left


@pytest.mark.parametrize(
    "name, reason",
    [("../evil.txt", "climbs out"), ("ok/../../evil.txt", "climbs out"), ("/tmp/evil-absolute.txt", "absolute")],
)
def test_zip_entries_that_could_escape_are_refused(tmp_path, name, reason):
    archive = make_zip(tmp_path / "a.zip", [("fine.txt", b"ok"), (name, b"pwned")])
    destination = tmp_path / "out"
    with pytest.raises(ExtractionError, match=reason) as failure:
        safe_extract(archive, destination)
    assert name in str(failure.value) and "a.zip" in str(failure.value)
    assert nothing_written(tmp_path, destination)
    assert not Path("/tmp/evil-absolute.txt").exists()


def test_a_zip_symlink_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("fine.txt", b"ok")], symlink="link")
    with pytest.raises(ExtractionError, match="symlink"):
        safe_extract(archive, tmp_path / "out")
    assert nothing_written(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    "member, kind",
    [
        (tar_member("link", tarfile.SYMTYPE, "/etc/passwd"), "symlink"),
        (tar_member("hard", tarfile.LNKTYPE, "fine.txt"), "hardlink"),
        (tar_member("dev", tarfile.CHRTYPE), "device"),
        (tar_member("fifo", tarfile.FIFOTYPE), "device"),
    ],
)
def test_tar_links_and_devices_are_refused(tmp_path, member, kind):
    archive = make_tar(tmp_path / "a.tar", [member], {"fine.txt": b"ok"})
    with pytest.raises(ExtractionError, match=kind):
        safe_extract(archive, tmp_path / "out")
    assert nothing_written(tmp_path, tmp_path / "out")


def test_a_tar_entry_with_dotdot_is_refused(tmp_path):
    archive = make_tar(tmp_path / "a.tar", [], {"fine.txt": b"ok", "../evil.txt": b"pwned"})
    with pytest.raises(ExtractionError, match="climbs out"):
        safe_extract(archive, tmp_path / "out")
    assert nothing_written(tmp_path, tmp_path / "out")


def test_an_archive_above_the_size_bound_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("zeros.bin", bytes(2_000_000))])  # compresses to ~2 kB
    with pytest.raises(ExtractionError, match="bound"):
        safe_extract(archive, tmp_path / "out", limit_bytes=1_000_000)
    assert nothing_written(tmp_path, tmp_path / "out")


def test_a_corrupt_archive_is_named(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ExtractionError, match=r"a\.zip"):
        safe_extract(path, tmp_path / "out")


def test_a_damaged_entry_is_named_and_nothing_is_kept(tmp_path):
    data = bytes(range(256)) * 400
    archive = make_zip(tmp_path / "a.zip", [("top/ok.txt", b"fine"), ("top/ch01.wav", data)])
    raw = bytearray(archive.read_bytes())
    start = raw.index(b"top/ch01.wav") + len("top/ch01.wav")  # the local header's name, then the body
    raw[start + 20 : start + 60] = bytes(40)  # flip bytes inside the compressed body: bad CRC or stream
    archive.write_bytes(bytes(raw))
    with pytest.raises(ExtractionError, match=r"a\.zip: entry 'top/ch01\.wav' is damaged"):
        safe_extract(archive, tmp_path / "out")
    assert nothing_written(tmp_path, tmp_path / "out")


def test_a_failing_write_is_not_blamed_on_the_archive(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("top/ch01.wav", b"x" * 100)])
    (tmp_path / "blocked").write_text("a file where a directory is needed")
    with pytest.raises(OSError) as failure:
        safe_extract(archive, tmp_path / "blocked" / "out")
    assert not isinstance(failure.value, ExtractionError)
