"""Stage runner: validate params, hand the stage only its declared slice, track the run.

Each module in this package is one DAG stage with `run(params, deps, outs, workers) -> metrics`.
The registry (pipelines/stages.py) decides which params keys, inputs and outputs it gets.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

from maskscope.config import load_params, params_slice
from maskscope.errors import ParamsError
from maskscope.io import atomic_write_text
from maskscope.tracking import stage_run

log = logging.getLogger(__name__)


class ParamsView:
    """Read-only attribute access to a params slice; reading an undeclared key is an error."""

    def __init__(self, data: dict[str, Any], stage: str, prefix: str = "") -> None:
        self._data = data
        self._stage = stage
        self._prefix = prefix

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


def parse_pairs(pairs: list[str], option: str) -> dict[str, Path]:
    result = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ParamsError(f"{option} expects NAME=PATH, got '{pair}'")
        result[name] = Path(path)
    return result


def run_stage(
    name: str, params_file: Path, keys: list[str], deps: dict[str, Path], outs: dict[str, Path], workers: int
) -> dict[str, Any]:
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
    with stage_run(name, data_slice, deps, params.preset) as tracker:
        metrics = module.run(ParamsView(data_slice, name), deps, outs, workers)
        if "metrics" in outs:
            atomic_write_text(outs["metrics"], json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        tracker.record_results(metrics, outs)
    return metrics
