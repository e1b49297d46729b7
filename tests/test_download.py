"""Downloads against a real HTTP server on 127.0.0.1: resume, retries, verification, no network."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from maskscope.data.download import (
    FIRST_SEEN,
    Archive,
    ChecksumError,
    DownloadError,
    NoNetworkError,
    download_corpus,
    fetch,
    load_table,
    promote_checksums,
)

SIZE = 3_000_000


def free_port() -> int:
    """A port nobody listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path) -> tuple[Path, Archive]:
    root = tmp_path / "served"
    root.mkdir()
    data = np.random.default_rng(0).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    (root / "clean_testset_wav.zip").write_bytes(data)
    archive = Archive(
        "clean_testset_wav.zip", "https://example.invalid/x", SIZE, hashlib.md5(data).hexdigest(), "published"
    )
    return root, archive


def test_full_download_is_verified_and_renamed_into_place(served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root)
    path, md5 = fetch(archive, tmp_path / "dest", mirror=url, backoff_seconds=0.01)
    assert path == tmp_path / "dest" / archive.name
    assert path.read_bytes() == (root / archive.name).read_bytes() and md5 == archive.md5
    assert [p.name for p in path.parent.iterdir()] == [archive.name]  # no .part left
    assert [entry["status"] for entry in log()] == [200]


def test_an_archive_present_and_verified_is_not_fetched_again(served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root)
    fetch(archive, tmp_path / "dest", mirror=url)
    fetch(archive, tmp_path / "dest", mirror=url)
    assert len(log()) == 1


def test_a_broken_transfer_resumes_with_range_and_fetches_no_byte_twice(served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root, {archive.name: {"cut_after": 1_000_000}})
    path, _ = fetch(archive, tmp_path / "dest", mirror=url, backoff_seconds=0.01)
    assert path.read_bytes() == (root / archive.name).read_bytes()
    first, second = log()
    assert first["sent"] == 1_000_000
    assert second["range"].startswith("bytes=") and second["status"] == 206
    resumed_from = int(second["range"][len("bytes=") : -1])
    assert 0 < resumed_from <= 1_000_000
    assert second["sent"] == SIZE - resumed_from


def test_a_partial_file_left_by_a_killed_run_is_resumed(served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root)
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / f".{archive.name}.part").write_bytes((root / archive.name).read_bytes()[:1_234_567])
    _, md5 = fetch(archive, destination, mirror=url)
    assert md5 == archive.md5
    (entry,) = log()
    assert entry["range"] == "bytes=1234567-" and entry["sent"] == SIZE - 1_234_567


def test_an_md5_mismatch_fails_naming_the_file_and_keeps_nothing(served, archive_server, tmp_path):
    root, archive = served
    url, _ = archive_server(root)
    wrong = Archive(archive.name, archive.url, archive.size, "0" * 32, "published")
    with pytest.raises(ChecksumError) as failure:
        fetch(wrong, tmp_path / "dest", mirror=url)
    message = str(failure.value)
    assert archive.name in message and "0" * 32 in message and archive.md5 in message
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_size_mismatch_is_caught_before_the_body_is_stored(served, archive_server, tmp_path):
    root, archive = served
    url, _ = archive_server(root)
    wrong = Archive(archive.name, archive.url, SIZE + 1, archive.md5, "published")
    with pytest.raises(ChecksumError, match=str(SIZE + 1)):
        fetch(wrong, tmp_path / "dest", mirror=url)
    assert list((tmp_path / "dest").iterdir()) == []


def test_server_errors_are_retried_with_backoff(served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root, {archive.name: {"fail_first": 2}})
    _, md5 = fetch(archive, tmp_path / "dest", mirror=url, backoff_seconds=0.01)
    assert md5 == archive.md5
    assert [entry["status"] for entry in log()] == [500, 500, 200]


def test_retries_are_bounded(served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root, {archive.name: {"fail_first": 10}})
    with pytest.raises(DownloadError, match="gave up after 3 tries"):
        fetch(archive, tmp_path / "dest", mirror=url, retries=3, backoff_seconds=0.01)
    assert len(log()) == 3


def test_a_missing_file_is_not_retried(served, archive_server, tmp_path):
    root, _ = served
    url, log = archive_server(root)
    missing = Archive("noisy_testset_wav.zip", "https://example.invalid/y", None, None)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(missing, tmp_path / "dest", mirror=url, backoff_seconds=0.01)
    assert len(log()) == 1


def test_no_network_fails_fast_and_says_how_to_place_the_archive(served, tmp_path):
    _, archive = served
    with pytest.raises(NoNetworkError) as failure:
        fetch(archive, tmp_path / "dest", mirror=f"http://127.0.0.1:{free_port()}", backoff_seconds=5.0)
    message = str(failure.value)
    assert "place it as" in message and str(tmp_path / "dest" / archive.name) in message and archive.md5 in message


def unpublished_table(path: Path, name: str) -> Path:
    entry = {"name": name, "url": f"https://example.invalid/{name}", "size": None, "md5": None, "checksum": None}
    path.write_text(json.dumps({"vbd": {"title": "t", "licence": "l", "archives": [entry]}}))
    return path


def test_a_checksum_is_recorded_on_first_download_and_enforced_after(served, archive_server, tmp_path):
    root, archive = served
    with zipfile.ZipFile(root / archive.name, "w") as built:  # a real archive this time
        built.writestr("clean_testset_wav/p232_001.wav", b"RIFF" + bytes(5000))
    data = (root / archive.name).read_bytes()
    url, _ = archive_server(root)
    table = unpublished_table(tmp_path / "archives.json", archive.name)
    before = table.read_text()
    rows = download_corpus(table, "vbd", tmp_path / "dest", mirror=url)
    md5 = hashlib.md5(data).hexdigest()
    assert rows == [{"corpus": "vbd", "name": archive.name, "size": len(data), "md5": md5, "checksum": FIRST_SEEN}]
    assert table.read_text() == before  # the tracked table is an input: never rewritten by a download
    with open(tmp_path / "dest" / archive.name, "r+b") as handle:  # bit rot in the kept copy
        handle.write(b"\0\0\0")
    first_seen = {row["name"]: row for row in rows}
    with pytest.raises(ChecksumError, match="present but wrong"):
        download_corpus(table, "vbd", tmp_path / "dest", mirror=url, first_seen=first_seen)
    assert promote_checksums(rows, table) == [archive.name]
    (recorded,) = load_table(table)["vbd"]
    assert (recorded.md5, recorded.size, recorded.checksum) == (md5, len(data), "recorded")
    with pytest.raises(ChecksumError, match="present but wrong"):
        download_corpus(table, "vbd", tmp_path / "dest", mirror=url)


def test_the_committed_table_holds_the_published_checksums():
    table = load_table(Path(__file__).resolve().parent.parent / "pipelines" / "archives.json")
    vbd = {archive.name: archive for archive in table["vbd"]}
    assert vbd["logfiles.zip"].md5 == "0d16f5b6afe12d64238d1e4a0e6ff6e8" and vbd["logfiles.zip"].size == 115_932
    assert len(table["demand"]) == 18
    assert all(a.url.endswith("/content") for a in table["vbd"])
    assert {a.name for a in table["demand"] if a.md5} == {"DKITCHEN_16k.zip", "DLIVING_16k.zip", "DWASHING_16k.zip"}


def test_the_download_command_fetches_a_corpus_and_reports_each_archive(served, archive_server, tmp_path):
    root, archive = served
    url, _ = archive_server(root)
    table = tmp_path / "archives.json"
    entry = {"name": archive.name, "url": archive.url, "size": SIZE, "md5": archive.md5, "checksum": "published"}
    table.write_text(json.dumps({"vbd": {"title": "t", "licence": "l", "archives": [entry]}}))
    command = ["maskscope", "download", "vbd", "--dest", str(tmp_path / "dest"), "--mirror", url, "--table", str(table)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"{archive.name}: {SIZE} bytes, md5 {archive.md5}" in result.stdout
    unknown = subprocess.run([*command[:2], "librispeech", *command[3:]], capture_output=True, text=True)
    assert unknown.returncode == 2 and "knows no corpus 'librispeech'" in unknown.stderr


def test_an_unpublished_download_that_is_no_archive_is_deleted_and_not_recorded(served, archive_server, tmp_path):
    root, archive = served  # random bytes, e.g. a portal's error page instead of the zip
    url, _ = archive_server(root)
    table = unpublished_table(tmp_path / "archives.json", archive.name)
    before = table.read_text()
    with pytest.raises(DownloadError, match=f"{archive.name}.*neither a zip nor a tar.*no checksum was recorded"):
        download_corpus(table, "vbd", tmp_path / "dest", mirror=url)
    assert table.read_text() == before
    assert list((tmp_path / "dest").iterdir()) == []


@pytest.mark.parametrize(
    "behaviour",
    [{"range_cap": 700_000}, {"ignore_range": True}, {"range_shift": 4096}],
    ids=["capped-ranges", "range-ignored", "misaligned-range"],
)
def test_resume_survives_servers_that_bend_range_requests(behaviour, served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root, {archive.name: {"cut_after": 1_000_000, **behaviour}})
    path, md5 = fetch(archive, tmp_path / "dest", mirror=url, retries=10, backoff_seconds=0.01)
    assert md5 == archive.md5 and path.read_bytes() == (root / archive.name).read_bytes()
    statuses = [entry["status"] for entry in log()]
    if "range_cap" in behaviour:  # the part grows by one capped range per request, none re-fetched
        assert statuses[1:] == [206] * (len(statuses) - 1) and len(statuses) == 1 + -(-(SIZE - 1_000_000) // 700_000)
        assert sum(entry["sent"] for entry in log()[1:]) <= SIZE - 1_000_000 + 65_536
    else:  # a whole file, or a misaligned range discarded: the part is rebuilt, never spliced
        assert statuses[-1] == 200


def test_a_server_lost_after_a_broken_transfer_is_retried_and_the_part_kept(served, archive_server, tmp_path):
    root, archive = served
    url, log = archive_server(root, {archive.name: {"cut_after": 1_000_000}}, lifetime=1.5)
    # The first try is cut at 1 MB; by the second the server has exited and refuses connections.
    with pytest.raises(DownloadError, match="gave up after 2 tries") as failure:
        fetch(archive, tmp_path / "dest", mirror=url, retries=2, backoff_seconds=3.0)
    assert not isinstance(failure.value, NoNetworkError)
    assert len(log()) == 1
    part = tmp_path / "dest" / f".{archive.name}.part"
    assert 0 < part.stat().st_size <= 1_000_000  # kept for the next run to resume


def test_a_part_from_an_earlier_run_does_not_delay_the_no_network_error(served, tmp_path):
    root, archive = served
    part = tmp_path / "dest" / f".{archive.name}.part"
    part.parent.mkdir()
    part.write_bytes((root / archive.name).read_bytes()[:500_000])
    with pytest.raises(NoNetworkError, match="place it as"):
        fetch(archive, tmp_path / "dest", mirror=f"http://127.0.0.1:{free_port()}", retries=5, backoff_seconds=5.0)
    assert part.stat().st_size == 500_000
