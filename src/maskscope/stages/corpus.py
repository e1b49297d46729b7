"""Stage `corpus`: the clean speech (audio shards + manifest): the embedded corpus, or VoiceBank's."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from maskscope.core.io import atomic_output_dir, write_parquet, write_shards
from maskscope.data.embedded_corpus import real_rows, synthesise, synthetic_jobs
from maskscope.data.real_speech import real_voice
from maskscope.data.utterances import CORPUS_SCHEMA
from maskscope.data.voicebank_demand import vbd_clean_rows
from maskscope.pipeline.runner import StageContext

log = logging.getLogger(__name__)
SHARD_SIZE = 256


def run(ctx: StageContext) -> dict[str, Any]:
    params, outs, workers = ctx.params, ctx.outs, ctx.workers
    corpus = params.corpus
    # The output directory is claimed before the long synthesis, so a kill at any point leaves only
    # a hidden temporary that the next run removes.
    with atomic_output_dir(outs["corpus"]) as tmp:
        if corpus.source == "vbd":
            clean = vbd_clean_rows(ctx.deps["archives"], outs["corpus"])
            rows = list(tqdm(clean, desc="corpus: VoiceBank", unit="utt", disable=None))
        else:
            rows = embedded_rows(params, workers)
        write_shards(rows, CORPUS_SCHEMA, tmp, SHARD_SIZE, "audio")
        manifest = pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA).drop_columns(["audio"])
        write_parquet(manifest, tmp / "manifest.parquet")
    return corpus_metrics(rows)


def embedded_rows(params: Any, workers: int) -> list[dict]:
    """TTS voices reading the seeded grammar, then the real speakers' recordings."""
    corpus = params.corpus
    jobs = synthetic_jobs(params.seed, corpus.synthetic_speakers, corpus.sentences_per_speaker)
    rows = list(tqdm(synthesise(jobs, workers), total=len(jobs), desc="corpus: TTS", unit="utt", disable=None))
    for speaker_id in corpus.real_speakers:
        prompts = real_rows(
            real_voice(speaker_id),
            params.seed,
            corpus.real_seconds_per_speaker,
            corpus.min_utterance_seconds,
            corpus.max_utterance_seconds,
        )
        rows.extend(tqdm(prompts, desc=f"corpus: {speaker_id}", unit="utt", disable=None))
    return rows


def corpus_metrics(rows: list[dict]) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in ("synthetic", "real"):
        selected = [row for row in rows if row["kind"] == kind]
        by_kind[kind] = {
            "speakers": len({row["speaker"] for row in selected}),
            "utterances": len(selected),
            "minutes": round(sum(row["duration_s"] for row in selected) / 60.0, 3),
        }
    return {
        "speakers": len({row["speaker"] for row in rows}),
        "utterances": len(rows),
        "minutes": round(sum(row["duration_s"] for row in rows) / 60.0, 3),
        **by_kind,
    }
