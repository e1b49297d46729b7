"""Stage `report`: reports/index.html (self-contained) and reports/summary.md from the run's results."""

from __future__ import annotations

import json
from typing import Any

from maskscope.analysis.masks import read_masks
from maskscope.core.constants import FOCUS_VARIANT
from maskscope.core.io import atomic_output_dir
from maskscope.pipeline.runner import StageContext
from maskscope.report.figures import standard_figures
from maskscope.report.papers import paper_comparison
from maskscope.report.render import write_report


def run(ctx: StageContext) -> dict[str, Any]:
    deps = ctx.deps
    evaluation = json.loads(deps["evaluation"].read_text())
    probes = json.loads(deps["probes"].read_text())
    analysis = json.loads((deps["analysis"] / "analysis.json").read_text())
    figures = standard_figures(evaluation, probes, analysis, read_masks(deps["masks"]), FOCUS_VARIANT)
    quality = [
        {
            "system": name,
            "PESQ": entry["pesq"],
            "STOI": entry["stoi"],
            "SI-SDR": entry["si_sdr"],
            "MACs/sample": round(entry["macs_per_sample"]) if name != "noisy" else "",
            "MAC saving": entry.get("mac_saving", ""),
            # DynCP: fraction of open gates; routed DEMUCS: average UF; slimmable DEMUCS: its fixed UF
            "usage": entry.get("gate_usage") or entry.get("average_uf") or entry.get("uf") or "",
        }
        for name, entry in evaluation.items()
    ]
    comparison = paper_comparison(evaluation, probes, ctx.params.mix.source, ctx.params.noises.source)
    tables = {"Quality and cost on the test split": quality, "The papers and us": comparison}
    notes = [
        f"Probes and baselines: {analysis['frames']} frames of {analysis['speakers']} speakers "
        f"({analysis['families']} voice families), "
        "speaker-disjoint cross-validation (folds keep TTS voices of one human together).",
    ]
    with atomic_output_dir(ctx.outs["report"]) as tmp:
        write_report(tmp, "maskscope: dynamic channel pruning and what its masks know", figures, tables, notes)
    return {}
