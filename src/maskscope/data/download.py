"""Downloading the real corpora: resumable, retried, verified, and renamed into place only when whole.

The archive table (pipelines/archives.json) lists each corpus's archives with their canonical
address, size and MD5. Where no checksum is published, the first download's checksum is recorded
in the download stage's manifest (never in the table, a tracked input): later runs check against it,
and `maskscope download-promote` copies such first-seen checksums into the table to commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm

from maskscope.core.errors import MaskscopeError
from maskscope.data.extract import ExtractionError, readable_archive
from maskscope.core.io import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"  # beside the archives: which corpora and archives the stage fetched
CHUNK_BYTES = 1 << 20
# Small network reads: a dropped connection loses at most the chunk being read, not a megabyte.
NETWORK_CHUNK_BYTES = 1 << 16
CONNECT_TIMEOUT_SECONDS = 10.0
RETRIED_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class DownloadError(MaskscopeError):
    """An archive could not be downloaded."""


class ChecksumError(DownloadError):
    """A downloaded or placed archive has the wrong size or MD5."""


class NoNetworkError(DownloadError):
    """The server cannot be reached at all."""


class _Transient(Exception):
    """A failure worth another try: a dropped connection, a timeout, a 5xx answer."""


@dataclass(frozen=True)
class Archive:
    name: str  # file name, e.g. clean_testset_wav.zip
    url: str  # canonical address
    size: int | None  # bytes; None when not published
    md5: str | None  # None when neither published nor recorded yet
    checksum: str | None = None  # "published", "recorded" (promoted into the table) or FIRST_SEEN

    def address(self, mirror: str | None) -> str:
        """Where to fetch it: a mirror replaces the base address and serves files by name."""
        return f"{mirror.rstrip('/')}/{self.name}" if mirror else self.url


def load_table(path: Path) -> dict[str, list[Archive]]:
    """The archive table: corpus name -> its archives."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {corpus: [Archive(**entry) for entry in spec["archives"]] for corpus, spec in data.items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DownloadError(f"{path}: is not a readable archive table ({error})") from None


def corpus_archives(table_path: Path, corpus: str) -> list[Archive]:
    table = load_table(table_path)
    if corpus not in table:
        raise DownloadError(f"{table_path}: knows no corpus '{corpus}'; known: {', '.join(table)}")
    return table[corpus]


FIRST_SEEN = "first-seen"  # a checksum taken from the first download, where none is published


def promote_checksums(rows: list[dict[str, Any]], table_path: Path) -> list[str]:
    """Copy the first-seen checksums of manifest `rows` into the archive table (atomically), so they are
    committed and checked everywhere; returns the names promoted."""
    data = json.loads(Path(table_path).read_text(encoding="utf-8"))
    promoted = []
    for row in rows:
        if row.get("checksum") != FIRST_SEEN:
            continue
        corpus = data.get(row["corpus"])
        if corpus is None:
            raise DownloadError(f"{table_path}: knows no corpus '{row['corpus']}' (from the manifest)")
        for entry in corpus["archives"]:
            if entry["name"] == row["name"] and entry["md5"] is None:
                entry.update(size=row["size"], md5=row["md5"], checksum="recorded")
                promoted.append(row["name"])
    atomic_write_text(Path(table_path), json.dumps(data, indent=2) + "\n")
    return promoted


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, archive: Archive) -> str:
    """Check size and MD5 against the table; returns the MD5. Raises ChecksumError naming both."""
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        raise ChecksumError(f"{archive.name}: size is {size} bytes, the table says {archive.size}")
    md5 = file_md5(path)
    if archive.md5 is not None and md5 != archive.md5:
        raise ChecksumError(f"{archive.name}: md5 is {md5}, expected {archive.md5}")
    return md5


def _manual_placement_hint(archive: Archive, target: Path) -> str:
    checksum = f" (md5 {archive.md5})" if archive.md5 else ""
    return (
        f"download {archive.url} on a machine with internet and place it as {target}{checksum}, "
        "then rerun; or point --mirror (params: download.mirror) at a server that has it"
    )


def _is_unreachable(error: requests.ConnectionError) -> bool:
    """No route, no name, refused: the server cannot be reached at all (vs a dropped transfer)."""
    text = repr(error)
    return any(
        marker in text for marker in ("NameResolutionError", "NewConnectionError", "Failed to resolve", "unreachable")
    )


def _content_range(value: str) -> tuple[int, int | None] | None:
    """(first byte, total size or None) of a `Content-Range: bytes first-last/total` header."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", value.strip())
    if match is None:
        return None
    return int(match[1]), None if match[3] == "*" else int(match[3])


def _transfer(session: requests.Session, url: str, part: Path, archive: Archive, timeout: float) -> None:
    """One request: continue `part` from its current size (HTTP Range) or start it afresh.

    Returns only when `part` holds as many bytes as the server said the file has; a short answer
    (a dropped connection, a server that caps ranges) is transient and the next try resumes."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with session.get(url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_SECONDS, timeout)) as response:
            if response.status_code == 416 and offset:
                return  # the part already holds every byte; verification decides
            if response.status_code in RETRIED_STATUS:
                raise _Transient(f"HTTP {response.status_code} from {url}")
            if response.status_code >= 400:
                raise DownloadError(f"{url}: the server answered HTTP {response.status_code}; check the address")
            if response.status_code == 206:
                served = _content_range(response.headers.get("Content-Range", ""))
                if served is None or served[0] != offset:
                    # Appending a range that does not start where the part ends would corrupt it.
                    part.unlink(missing_ok=True)
                    raise _Transient(
                        f"{url} answered the request for bytes {offset}- with Content-Range "
                        f"'{response.headers.get('Content-Range')}'; starting afresh"
                    )
                start, total = offset, served[1]
            else:  # the whole file, whatever was asked
                start = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None else None
            total = archive.size if total is None else total
            if archive.size is not None and total != archive.size:
                raise ChecksumError(f"{archive.name}: the server offers {total} bytes, the table says {archive.size}")
            with (
                open(part, "ab" if start else "wb") as handle,
                tqdm(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    desc=archive.name,
                    disable=None,
                    leave=False,
                ) as bar,
            ):
                for chunk in response.iter_content(NETWORK_CHUNK_BYTES):
                    handle.write(chunk)
                    bar.update(len(chunk))
    except requests.ConnectionError as error:
        if _is_unreachable(error):
            raise NoNetworkError(f"{url}: cannot reach the server ({error.__class__.__name__})") from error
        raise _Transient(f"connection to {url} failed: {error}") from error
    except (requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
        raise _Transient(f"transfer from {url} broke off: {error}") from error
    received = part.stat().st_size
    if total is not None and received < total:
        raise _Transient(f"{url} sent {received} of {total} bytes")


def fetch(
    archive: Archive,
    destination: Path,
    mirror: str | None = None,
    retries: int = 5,
    backoff_seconds: float = 2.0,
    timeout_seconds: float = 60.0,
) -> tuple[Path, str]:
    """Download one archive into `destination`; returns its path and MD5.

    An archive already in place is verified and kept. Otherwise bytes go to a hidden `.part` file
    that a later call resumes; it is renamed into place only once size and MD5 match."""
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / archive.name
    if target.exists():
        try:
            md5 = verify(target, archive)
        except ChecksumError as error:
            raise ChecksumError(f"{target} is present but wrong: {error}; delete it to download it again") from None
        log.info("%s: present and verified, skipped", target)
        return target, md5
    part = destination / f".{archive.name}.part"
    url = archive.address(mirror)
    reached = False  # once the server has answered, losing it again is worth another try
    with requests.Session() as session:
        for attempt in range(1, retries + 1):
            try:
                _transfer(session, url, part, archive, timeout_seconds)
                break
            except (_Transient, NoNetworkError) as error:
                if isinstance(error, NoNetworkError) and not reached:
                    raise NoNetworkError(f"{error}. No network? {_manual_placement_hint(archive, target)}") from None
                reached = True
                if attempt == retries:
                    raise DownloadError(
                        f"{archive.name}: gave up after {retries} tries ({error}); the {_size(part)} already "
                        f"fetched stay in {part} and the next run resumes from there"
                    ) from None
                delay = backoff_seconds * 2 ** (attempt - 1)
                log.warning("%s: %s; try %d of %d in %.1f s", archive.name, error, attempt + 1, retries, delay)
                time.sleep(delay)
            except ChecksumError:
                part.unlink(missing_ok=True)
                raise
    try:
        md5 = verify(part, archive)
    except ChecksumError as error:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{error}; the download was deleted (a corrupt transfer or a changed file)") from None
    os.replace(part, target)
    return target, md5


def _size(path: Path) -> str:
    return f"{path.stat().st_size if path.exists() else 0} bytes"


def download_corpus(
    table_path: Path,
    corpus: str,
    destination: Path,
    mirror: str | None = None,
    retries: int = 5,
    backoff_seconds: float = 2.0,
    timeout_seconds: float = 60.0,
    first_seen: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, object]]:
    """Fetch every archive of `corpus`; returns one {corpus, name, size, md5, checksum} row per archive.

    `first_seen` (archive name -> an earlier run's row) supplies the checksum of an archive the table
    publishes none for, so a kept copy is still checked."""
    rows = []
    for archive in corpus_archives(table_path, corpus):
        earlier = (first_seen or {}).get(archive.name)
        if archive.md5 is None and earlier is not None:
            archive = replace(archive, size=earlier["size"], md5=earlier["md5"], checksum=FIRST_SEEN)
        path, md5 = fetch(archive, destination, mirror, retries, backoff_seconds, timeout_seconds)
        if archive.md5 is None:
            # Nothing to check it against: at least it must be an archive (not, say, an error page).
            try:
                readable_archive(path)
            except ExtractionError as error:
                path.unlink()
                raise DownloadError(f"{error}; it was deleted and no checksum was recorded") from None
            log.warning(
                "%s: no published checksum; md5 %s recorded in the manifest as first-seen "
                "(`maskscope download-promote` copies it into %s to commit)",
                archive.name,
                md5,
                table_path,
            )
        checksum = archive.checksum if archive.md5 is not None else FIRST_SEEN
        rows.append(
            {"corpus": corpus, "name": archive.name, "size": path.stat().st_size, "md5": md5, "checksum": checksum}
        )
    return rows
