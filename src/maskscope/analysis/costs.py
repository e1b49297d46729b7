"""What a probe may cost: per task, a budget of 1/COST_RATIO of the cheapest dedicated baseline's
measured CPU time, and each weight table timed as the baselines are (one utterance at a time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from maskscope.analysis.baselines import TIMING_REPEATS, timed
from maskscope.analysis.probes import ExportedProbe, Task, main_score, metric_name

# A probe is worth shipping when it costs at most 1/COST_RATIO of the task's cheapest dedicated baseline.
COST_RATIO = 100


def cost_budgets(methods: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task with a dedicated baseline: the cheapest one and 1/COST_RATIO of its measured CPU time
    per frame (SNR has no baseline, so no budget)."""
    budgets: dict[str, dict[str, Any]] = {}
    for name in sorted(methods, key=lambda name: methods[name]["cpu_us_per_frame"]):
        cost = methods[name]["cpu_us_per_frame"]
        budgets.setdefault(methods[name]["task"], {"baseline": name, "cpu_us_per_frame": round(cost / COST_RATIO, 4)})
    return budgets


def measured_us_per_frame(probe: ExportedProbe, bits: np.ndarray, spans: list[tuple[int, int]]) -> float:
    """CPU microseconds per frame of the weight table, applied to one utterance (`spans`: its rows) at
    a time, the least of TIMING_REPEATS runs each, as the baselines are timed."""
    seconds = sum(
        timed(lambda start=start, end=end: probe.predict(bits[start:end]), TIMING_REPEATS).cpu_seconds
        for start, end in spans
    )
    return round(1e6 * seconds / len(bits), 4)


def best_within_budget(
    chosen_on: dict[int, dict[str, float]],
    scored: dict[int, dict[str, float]],
    costs: dict[int, float],
    budget_us: float,
    task: Task,
) -> dict[str, Any] | None:
    """The K whose measured cost is within the budget and that scores best on the `chosen_on` curve
    (the fit split's cross-validation), with its score on the `scored` curve; None if no K is affordable."""
    affordable = [k for k in chosen_on if costs[k] <= budget_us]
    if not affordable:
        return None
    key = main_score(task.kind)
    best = max(affordable, key=lambda k: (chosen_on[k][key], -k))
    return {
        "k_bits": best,
        metric_name(task): round(scored[best][key], 4),
        f"cross_validated_{metric_name(task)}": round(chosen_on[best][key], 4),
        "cpu_us_per_frame": costs[best],
    }
