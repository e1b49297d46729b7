"""MLflow lineage: one parent run per pipeline invocation, one child run per stage.

Tracking never costs a stage its outputs: if the tracking store is unreachable the failure is
logged as a warning and the stage carries on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PARENT_RUN_ENV = "MASKSCOPE_PARENT_RUN_ID"
# What the pipeline writes into the git tree (DVC keeps metrics and plots out of its cache, in git).
PIPELINE_OUTPUTS = ("metrics", "plots", "dvc.lock")
EXPERIMENT = "maskscope"
DEFAULT_STORE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
# Files .dvcignore keeps out of DVC's directory hashes (Snakemake's marker in directory outputs).
DVC_IGNORED = frozenset({".snakemake_timestamp"})


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE}"


def _fail_fast_on_unreachable_server() -> None:
    # MLflow's defaults retry a dead server for minutes; a stage should not wait on tracking.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def git_state(cwd: Path | None = None) -> dict[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        # Untracked files count: new code that is not committed yet makes the run dirty too. The
        # pipeline's own committed outputs do not: every run rewrites them (measured times among them).
        dirty = bool(
            git("status", "--porcelain", "--", ":(top)", *(f":(top,exclude){path}" for path in PIPELINE_OUTPUTS))
        )
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"git.commit": "unknown", "git.dirty": "unknown"}
    return {"git.commit": commit, "git.dirty": str(dirty).lower()}


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dvc_md5(path: Path | str) -> str:
    """The md5 DVC records for a file, or for a directory the `.dir` digest of its listing."""
    path = Path(path)
    if path.is_file():
        return _md5_file(path)
    entries = sorted(
        (
            {"md5": _md5_file(child), "relpath": child.relative_to(path).as_posix()}
            for child in path.rglob("*")
            if child.is_file() and child.name not in DVC_IGNORED
        ),
        key=lambda entry: entry["relpath"],
    )
    listing = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(listing).hexdigest() + ".dir"


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _experiment_id(mlflow: Any) -> str:
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    artifact_root = (Path.cwd() / ARTIFACT_DIR).resolve().as_uri()
    try:
        return mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_root)
    except Exception:
        # Another stage created it in the meantime.
        return mlflow.get_experiment_by_name(EXPERIMENT).experiment_id


def _warn(what: str, error: Exception) -> None:
    log.warning(
        "MLflow tracking failed while %s at %s (%s: %s); the stage's outputs are kept, only the run record is "
        "missing. Check the tracking server or MLFLOW_TRACKING_URI.",
        what,
        tracking_uri(),
        type(error).__name__,
        str(error).splitlines()[0] if str(error) else "",
    )


class StageTracker:
    """Logs a stage's results to its MLflow run; does nothing once tracking has failed."""

    def __init__(self, client: Any, run_id: str | None) -> None:
        self.client = client
        self.run_id = run_id

    def log_step(self, metrics: dict[str, float], step: int) -> None:
        if self.run_id is None:
            return
        try:
            for key, value in metrics.items():
                self.client.log_metric(self.run_id, key, float(value), step=step)
        except Exception as error:
            _warn("logging step metrics", error)

    def record_results(self, metrics: dict[str, Any], outs: dict[str, Path]) -> None:
        if self.run_id is None:
            return
        try:
            for key, value in flatten(metrics).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.client.log_metric(self.run_id, key, float(value))
            for name, path in outs.items():
                if Path(path).exists():
                    self.client.set_tag(self.run_id, f"output.{name}.path", str(path))
                    self.client.set_tag(self.run_id, f"output.{name}.md5", dvc_md5(path))
        except Exception as error:
            _warn("recording results", error)


def _start_run(name: str, params: dict[str, Any], inputs: dict[str, Path], preset: str) -> tuple[Any, str]:
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    tags = {"maskscope.stage": name, "maskscope.preset": preset, **git_state()}
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent:
        tags["mlflow.parentRunId"] = parent
    for input_name, path in inputs.items():
        tags[f"input.{input_name}.path"] = str(path)
        tags[f"input.{input_name}.md5"] = dvc_md5(path)
    run = client.create_run(_experiment_id(mlflow), run_name=name, tags=tags)
    run_id = run.info.run_id
    flat = flatten(params)
    for key, value in flat.items():
        client.log_param(run_id, key, json.dumps(value) if isinstance(value, list | dict) else value)
    if inputs:
        from mlflow.entities import InputTag

        datasets = []
        for input_name, path in inputs.items():
            with warnings.catch_warnings():
                # Local paths match two equivalent source types; MLflow warns and picks one.
                warnings.simplefilter("ignore", UserWarning)
                source = resolve_dataset_source(str(Path(path).resolve()))
            dataset = MetaDataset(source, name=input_name, digest=tags[f"input.{input_name}.md5"][:36])
            datasets.append(
                mlflow.entities.DatasetInput(
                    dataset._to_mlflow_entity(), tags=[InputTag(key="mlflow.data.context", value="input")]
                )
            )
        client.log_inputs(run_id, datasets=datasets)
    return client, run_id


@contextlib.contextmanager
def stage_run(name: str, params: dict[str, Any], inputs: dict[str, Path], preset: str) -> Iterator[StageTracker]:
    """A child MLflow run around one stage; a tracking failure is reported, never fatal."""
    _fail_fast_on_unreachable_server()
    client, run_id = None, None
    try:
        client, run_id = _start_run(name, params, inputs, preset)
    except Exception as error:
        _warn("starting the stage run", error)
    tracker = StageTracker(client, run_id)
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    finally:
        if run_id is not None:
            try:
                client.set_terminated(run_id, status=status)
            except Exception as error:
                _warn("closing the stage run", error)


def start_parent_run(tool: str, preset: str) -> str | None:
    """Open the parent run of one pipeline invocation; returns its id, or None if tracking failed."""
    _fail_fast_on_unreachable_server()
    try:
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(tracking_uri())
        client = MlflowClient()
        tags = {"maskscope.invocation": tool, "maskscope.preset": preset, **git_state()}
        run = client.create_run(_experiment_id(mlflow), run_name=f"{tool} {preset}", tags=tags)
        return run.info.run_id
    except Exception as error:
        _warn("starting the pipeline run", error)
        return None


def end_parent_run(run_id: str | None, succeeded: bool) -> None:
    if run_id is None:
        return
    try:
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri()).set_terminated(run_id, status="FINISHED" if succeeded else "FAILED")
    except Exception as error:
        _warn("closing the pipeline run", error)
