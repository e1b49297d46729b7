"""Safe extraction of downloaded archives (zip or tar).

Every entry is checked before anything is written: no absolute paths, no `..` components, no
symlinks, hard links or device files, and a bound on the total uncompressed size (enforced again
while writing, since headers can lie). Extraction goes to a temporary sibling that is renamed into
place only when complete, so nothing is ever written outside the destination and a failure leaves
nothing behind.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from maskscope.core.errors import MaskscopeError
from maskscope.core.io import atomic_output_dir

DEFAULT_LIMIT_BYTES = 16 * 1024**3  # far above any single archive of VoiceBank+DEMAND or DEMAND
COPY_CHUNK = 1 << 20


class ExtractionError(MaskscopeError):
    """An archive is unsafe or unreadable; nothing was extracted."""


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "file" | "dir" | "symlink" | "hardlink" | "device"
    size: int


def _zip_entries(archive: zipfile.ZipFile) -> list[Entry]:
    entries = []
    for info in archive.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            kind = "symlink"
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            kind = "device"
        elif info.is_dir():
            kind = "dir"
        else:
            kind = "file"
        entries.append(Entry(info.filename, kind, info.file_size))
    return entries


def _tar_entries(archive: tarfile.TarFile) -> list[Entry]:
    entries = []
    for member in archive.getmembers():
        if member.issym():
            kind = "symlink"
        elif member.islnk():
            kind = "hardlink"
        elif member.isdev():
            kind = "device"
        elif member.isdir():
            kind = "dir"
        elif member.isfile():
            kind = "file"
        else:
            kind = "device"
        entries.append(Entry(member.name, kind, member.size))
    return entries


def safe_relative_path(name: str, archive: Path) -> PurePosixPath:
    """The entry's path inside the destination, or an ExtractionError if it could escape it."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if normalised.startswith("/") or path.is_absolute() or (len(normalised) > 1 and normalised[1] == ":"):
        raise ExtractionError(f"{archive}: entry '{name}' has an absolute path; refusing to extract this archive")
    if ".." in path.parts:
        raise ExtractionError(f"{archive}: entry '{name}' climbs out with '..'; refusing to extract this archive")
    return PurePosixPath(*[part for part in path.parts if part not in ("", ".")])


def check_entries(entries: list[Entry], archive: Path, limit_bytes: int) -> None:
    total = 0
    for entry in entries:
        safe_relative_path(entry.name, archive)
        if entry.kind in ("symlink", "hardlink", "device"):
            raise ExtractionError(f"{archive}: entry '{entry.name}' is a {entry.kind}; refusing to extract the archive")
        total += entry.size
    if total > limit_bytes:
        raise ExtractionError(
            f"{archive}: would unpack to {total} bytes, above the bound of {limit_bytes}; refusing (a zip bomb?)"
        )


# What a damaged archive raises while it is opened or read (never what a full disk raises).
ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error, KeyError)


@contextmanager
def _open_archive(path: Path) -> Iterator[tuple[list[Entry], zipfile.ZipFile | tarfile.TarFile]]:
    archive: zipfile.ZipFile | tarfile.TarFile
    with ExitStack() as stack:
        try:
            if zipfile.is_zipfile(path):
                archive = stack.enter_context(zipfile.ZipFile(path))
                entries = _zip_entries(archive)
            elif tarfile.is_tarfile(path):
                archive = stack.enter_context(tarfile.open(path))
                entries = _tar_entries(archive)
            else:
                raise ExtractionError(f"{path}: is neither a zip nor a tar archive")
        except (*ARCHIVE_ERRORS, OSError) as error:
            raise ExtractionError(f"{path}: cannot be read as an archive ({error})") from error
        yield entries, archive


def readable_archive(path: Path) -> None:
    """Raise an ExtractionError unless `path` opens as a zip or tar archive and lists its entries."""
    with _open_archive(Path(path)):
        pass


def _member_chunks(archive: zipfile.ZipFile | tarfile.TarFile, name: str, path: Path) -> Iterator[bytes]:
    """The bytes of one regular-file entry; a corrupt entry raises an ExtractionError naming it."""
    try:
        if isinstance(archive, zipfile.ZipFile):
            source: IO[bytes] | None = archive.open(name)
        else:
            source = archive.extractfile(name)
        assert source is not None  # checked to be a regular file
        with source:
            while chunk := source.read(COPY_CHUNK):
                yield chunk
    except ARCHIVE_ERRORS as error:
        raise ExtractionError(f"{path}: entry '{name}' is damaged ({error}); download the archive again") from error


def safe_extract(archive_path: Path, destination: Path, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> Path:
    """Extract `archive_path` into `destination` (replacing it only once complete); returns it."""
    archive_path, destination = Path(archive_path), Path(destination)
    with _open_archive(archive_path) as (entries, archive):
        check_entries(entries, archive_path, limit_bytes)
        written = 0
        with atomic_output_dir(destination) as tmp:
            root = tmp.resolve()
            for entry in entries:
                relative = safe_relative_path(entry.name, archive_path)
                if not relative.parts:
                    continue
                target = (tmp / relative).resolve()
                if not target.is_relative_to(root):
                    raise ExtractionError(f"{archive_path}: entry '{entry.name}' resolves outside the destination")
                if entry.kind == "dir":
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as sink:
                    for chunk in _member_chunks(archive, entry.name, archive_path):
                        written += len(chunk)
                        if written > limit_bytes:
                            raise ExtractionError(
                                f"{archive_path}: unpacks to more than the bound of {limit_bytes} bytes "
                                "(its headers understate the sizes); refusing"
                            )
                        sink.write(chunk)
    return destination


def extracted_files(root: Path, suffix: str) -> dict[str, Path]:
    """Files with `suffix` anywhere under `root`, by stem; macOS resource forks are skipped."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob(f"*{suffix}")):
        if "__MACOSX" in path.parts or path.name.startswith("._"):
            continue
        found[path.stem] = path
    return found
