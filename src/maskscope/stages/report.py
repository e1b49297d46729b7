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
from maskscope.report.tables import dynamic_versus_static, gate_dynamics_table, quality_table


def run(ctx: StageContext) -> dict[str, Any]:
    deps = ctx.deps
    evaluation = json.loads(deps["evaluation"].read_text())
    probes = json.loads(deps["probes"].read_text())
    analysis = json.loads((deps["analysis"] / "analysis.json").read_text())
    figures = standard_figures(evaluation, probes, analysis, read_masks(deps["masks"]), FOCUS_VARIANT)
    comparison = paper_comparison(evaluation, probes, ctx.params.mix.source, ctx.params.noises.source)
    tables = {
        "Quality and cost on the test split": quality_table(evaluation),
        "DynCP against static pruning at equal cost": dynamic_versus_static(evaluation),
        "The papers and us": comparison,
        "How dynamic the gates are (scored frames)": gate_dynamics_table(evaluation),
    }
    tables = {heading: rows for heading, rows in tables.items() if rows}
    notes = [
        f"Probes and baselines: {analysis['frames']} frames of {analysis['speakers']} speakers "
        f"({analysis['families']} voice families), "
        "speaker-disjoint cross-validation (folds keep TTS voices of one human together).",
    ]
    with atomic_output_dir(ctx.outs["report"]) as tmp:
        write_report(tmp, "maskscope: dynamic channel pruning and what its masks know", figures, tables, notes)
    return {}
