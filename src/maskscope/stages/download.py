"""Stage `download`: fetch the real corpora's archives (none for the embedded default).

Archives are verified and renamed into place one by one, so a rerun skips those already present
and resumes a partial one; the output is declared `persist` so DVC does not delete them first.
Checksums seen first here (none published) live in the manifest, never in the tracked table.
"""

from __future__ import annotations

import json
import logging
import shutil
from typing import Any

from maskscope.core.io import atomic_write_text
from maskscope.data.download import FIRST_SEEN, MANIFEST, download_corpus
from maskscope.pipeline.runner import StageContext

log = logging.getLogger(__name__)


def run(ctx: StageContext) -> dict[str, Any]:
    settings, destination = ctx.params.download, ctx.outs["archives"]
    destination.mkdir(parents=True, exist_ok=True)
    manifest_path = destination / MANIFEST
    earlier = json.loads(manifest_path.read_text())["archives"] if manifest_path.is_file() else []
    first_seen = {row["name"]: row for row in earlier if row.get("checksum") == FIRST_SEEN}
    for stale in sorted(path for path in destination.iterdir() if path.is_dir()):
        if stale.name not in settings.corpora:
            log.warning("%s: '%s' is no longer in download.corpora; removing its archives", stale, stale.name)
            shutil.rmtree(stale)
    archives = []
    for corpus in settings.corpora:
        archives += download_corpus(
            ctx.deps["table"],
            corpus,
            destination / corpus,
            mirror=settings.mirror,
            retries=settings.retries,
            backoff_seconds=settings.backoff_seconds,
            timeout_seconds=settings.timeout_seconds,
            first_seen=first_seen,
        )
    manifest = {"corpora": list(settings.corpora), "archives": archives}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return {}
