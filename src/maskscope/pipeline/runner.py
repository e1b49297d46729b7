"""Stage runner: validate params, hand the stage only its declared slice, track the run.

Each module in maskscope.stages is one DAG stage with `run(ctx: StageContext) -> metrics`.
The registry (pipelines/stages.py) decides which params keys, inputs and outputs it gets.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskscope import stages
from maskscope.core.errors import ParamsError
from maskscope.core.io import atomic_write_text
from maskscope.pipeline.config import load_params, params_slice
from maskscope.pipeline.tracking import stage_run

log = logging.getLogger(__name__)


class ParamsView:
    """Read-only attribute access to a params slice; reading an undeclared key is an error."""

    def __init__(self, data: dict[str, Any], stage: str, prefix: str = "") -> None:
        self._data = data
        self._stage = stage
        self._prefix = prefix

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._data:
            raise KeyError(
                f"stage '{self._stage}' reads params key '{self._prefix}{name}', which pipelines/stages.py "
                "does not declare for it; add it to the stage's params"
            )
        value = self._data[name]
        if isinstance(value, dict):
            return ParamsView(value, self._stage, f"{self._prefix}{name}.")
        return value


@dataclass(frozen=True)
class StageContext:
    """What the registry hands one stage instance."""

    stage: str  # the stage's name in the registry
    params: ParamsView  # only the keys the registry declares for the stage
    deps: dict[str, Path]
    outs: dict[str, Path]
    workers: int
    items: dict[str, str] = field(default_factory=dict)  # sweep values of a matrix instance, e.g. variant
    log_step: Callable[[dict[str, float], int], None] = lambda metrics, step: None  # per-step metrics to MLflow


def instance_name(stage: str, items: dict[str, str]) -> str:
    """DVC's name for one instance of a sweep: `train@dyncp-25`, `dump_masks@dyncp-25-test`."""
    return f"{stage}@{'-'.join(items.values())}" if items else stage


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise ParamsError(f"{option} expects NAME=VALUE, got '{pair}'")
        result[name] = value
    return result


def run_stage(
    name: str,
    params_file: Path,
    keys: list[str],
    deps: dict[str, Path],
    outs: dict[str, Path],
    workers: int,
    items: dict[str, str] | None = None,
) -> dict[str, Any]:
    if importlib.util.find_spec(f"maskscope.stages.{name}") is None:
        known = sorted(module.name for module in pkgutil.iter_modules(stages.__path__))
        raise ParamsError(f"no stage named '{name}'; stages: {', '.join(known)} (see pipelines/stages.py)")
    params = load_params(params_file)  # the whole file must be valid before any work
    for key in keys:
        try:
            params_slice(params, [key])
        except KeyError:
            raise ParamsError(f"stage '{name}': params key '{key}' does not exist in {params_file}") from None
    for dep_name, path in deps.items():
        if not path.exists():
            raise ParamsError(
                f"stage '{name}': input '{dep_name}' ({path}) does not exist; run the stage that makes it"
            )
    module = importlib.import_module(f"maskscope.stages.{name}")
    data_slice = params_slice(params, keys)
    items = items or {}
    run_name = instance_name(name, items)
    with stage_run(run_name, data_slice, deps, params.preset) as tracker:
        context = StageContext(name, ParamsView(data_slice, name), deps, outs, workers, items, tracker.log_step)
        metrics = module.run(context)
        if "metrics" in outs:
            atomic_write_text(outs["metrics"], json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        tracker.record_results(metrics, outs)
    return metrics
