"""Where a number came from: the chain of stages behind a metric, a file or an MLflow run.

dvc.lock says which stage wrote each output (with its md5), what data it read and with which
params; MLflow says which run wrote those exact bytes, from which git commit. `lineage` joins the
two and walks upstream to the sources.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maskscope.core.errors import MaskscopeError

LOCK_FILE = Path("dvc.lock")
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class LineageError(MaskscopeError):
    """The target cannot be traced."""


@dataclass
class Link:
    stage: str
    outputs: dict[str, str]  # path -> DVC md5
    inputs: dict[str, str]  # data inputs only: path -> DVC md5
    code: dict[str, str]  # source files: path -> md5
    params: dict[str, Any]
    run_id: str | None = None
    git_commit: str | None = None
    git_dirty: str | None = None
    upstream: list[str] = field(default_factory=list)


@dataclass
class Lineage:
    target: str
    value: Any  # the metric's value, when the target is a metric key
    chain: list[Link]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "value": self.value, "chain": [asdict(link) for link in self.chain]}


def read_lock(path: Path = LOCK_FILE) -> dict[str, dict[str, Any]]:
    """The stages of dvc.lock that dvc.yaml (beside it) still defines: DVC keeps entries of removed
    stages in the lock, and those must not be mistaken for the producer of an output."""
    if not Path(path).exists():
        raise LineageError(f"{path}: missing; run the pipeline (make repro) before tracing a result")
    stages = yaml.safe_load(Path(path).read_text())["stages"]
    pipeline = Path(path).with_name("dvc.yaml")
    if not pipeline.exists():
        return stages
    defined = set()
    for name, spec in yaml.safe_load(pipeline.read_text())["stages"].items():
        matrix = spec.get("matrix")
        if matrix:
            defined |= {f"{name}@{'-'.join(map(str, combo))}" for combo in itertools.product(*matrix.values())}
        else:
            defined.add(name)
    return {name: entry for name, entry in stages.items() if name in defined}


def _links(lock: dict[str, dict[str, Any]]) -> dict[str, Link]:
    links = {}
    for name, entry in lock.items():
        deps = {dep["path"]: dep.get("md5", "") for dep in entry.get("deps", [])}
        params = {key: value for values in entry.get("params", {}).values() for key, value in values.items()}
        links[name] = Link(
            stage=name,
            outputs={out["path"]: out.get("md5", "") for out in entry.get("outs", [])},
            inputs={path: md5 for path, md5 in deps.items() if not path.startswith(("src/", "pipelines/stages"))},
            code={path: md5 for path, md5 in deps.items() if path.startswith("src/")},
            params=params,
        )
    return links


def producer(links: dict[str, Link], path: str) -> str | None:
    """The stage whose output is `path` or contains it."""
    normal = Path(path).as_posix().rstrip("/")
    for name, link in links.items():
        for out in link.outputs:
            if normal == out or normal.startswith(out.rstrip("/") + "/"):
                return name
    return None


def metric_value(key: str, metrics_root: Path = Path("metrics")) -> tuple[str, Any]:
    """A dotted metric key -> (metrics file, value): `probes.dyncp-25.vad_accuracy` reads
    metrics/probes.json["dyncp-25"]["vad_accuracy"]; `train.dense.valid_loss` metrics/train/dense.json."""
    parts = key.split(".")
    for cut in range(1, len(parts)):
        path = metrics_root.joinpath(*parts[:cut]).with_suffix(".json")
        if path.is_file():
            value: Any = json.loads(path.read_text())
            for part in parts[cut:]:
                if not isinstance(value, dict) or part not in value:
                    raise LineageError(f"{path} has no key '{'.'.join(parts[cut:])}' (stopped at '{part}')")
                value = value[part]
            return path.as_posix(), value
    raise LineageError(f"'{key}' is neither a file, an MLflow run id, nor a key of a metrics/*.json file")


def _attach_runs(chain: list[Link]) -> None:
    """The latest MLflow run of each stage whose recorded output md5 matches dvc.lock."""
    try:
        from mlflow.tracking import MlflowClient

        from maskscope.pipeline.tracking import tracking_uri

        client = MlflowClient(tracking_uri())
        experiment = client.get_experiment_by_name("maskscope")
        if experiment is None:
            return
        for link in chain:
            runs = client.search_runs(
                [experiment.experiment_id],
                f"tags.`maskscope.stage` = '{link.stage}'",
                order_by=["attributes.start_time DESC"],
                max_results=200,
            )
            wanted = set(link.outputs.values())
            for run in runs:
                recorded = {v for k, v in run.data.tags.items() if k.startswith("output.") and k.endswith(".md5")}
                if wanted and wanted <= recorded:
                    link.run_id = run.info.run_id
                    link.git_commit = run.data.tags.get("git.commit")
                    link.git_dirty = run.data.tags.get("git.dirty")
                    break
    except Exception as error:  # lineage from dvc.lock alone is still worth printing
        import logging

        logging.getLogger(__name__).warning("MLflow could not be searched (%s); showing dvc.lock only", error)


def stage_of_run(run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    from maskscope.pipeline.tracking import tracking_uri

    try:
        run = MlflowClient(tracking_uri()).get_run(run_id)
    except Exception as error:
        raise LineageError(f"MLflow run {run_id} not found at {tracking_uri()} ({error})") from None
    stage = run.data.tags.get("maskscope.stage")
    if stage is None:
        raise LineageError(f"MLflow run {run_id} is not a maskscope stage run (no maskscope.stage tag)")
    return stage


def trace(target: str, lock_path: Path = LOCK_FILE, metrics_root: Path = Path("metrics")) -> Lineage:
    lock = read_lock(lock_path)
    links = _links(lock)
    value = None
    if RUN_ID.match(target) and not Path(target).exists():
        start = stage_of_run(target)
    elif Path(target).exists() or producer(links, target):
        start = producer(links, target)
    else:
        path, value = metric_value(target, metrics_root)
        start = producer(links, path)
    if start is None or start not in links:
        raise LineageError(f"'{target}': no stage in {lock_path} produced it (is it a source file?)")
    chain, queue = [], [start]
    while queue:
        name = queue.pop(0)
        if any(link.stage == name for link in chain):
            continue
        link = links[name]
        link.upstream = sorted({up for path in link.inputs if (up := producer(links, path)) and up != name})
        chain.append(link)
        queue += link.upstream
    _attach_runs(chain)
    return Lineage(target, value, chain)


def render(lineage: Lineage) -> str:
    lines = [f"{lineage.target}" + (f" = {lineage.value}" if lineage.value is not None else "")]
    for link in lineage.chain:
        run = f"run {link.run_id}, commit {link.git_commit} (dirty: {link.git_dirty})" if link.run_id else "no run"
        lines.append(f"  <- {link.stage}  [{run}]")
        for path, md5 in link.outputs.items():
            lines.append(f"       out {path}  md5 {md5}")
        for path, md5 in link.inputs.items():
            lines.append(f"       in  {path}  md5 {md5}")
        for key, param in link.params.items():
            lines.append(f"       param {key} = {json.dumps(param)}")
        if link.upstream:
            lines.append(f"       from {', '.join(link.upstream)}")
    return "\n".join(lines)
