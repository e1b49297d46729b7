"""The registry is the single source: dvc.yaml and the Snakefile must describe the same DAG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from pipelines.compile import render_dvc_yaml
from pipelines.stages import STAGES


def test_dvc_yaml_is_generated_from_the_registry():
    assert (ROOT / "dvc.yaml").read_text() == render_dvc_yaml()


def test_compile_check_passes_on_the_committed_tree():
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.compile", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def dvc_view() -> dict[str, dict[str, set[str]]]:
    from dvc.repo import Repo

    view = {}
    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            params = set()
            for dep in stage.deps:
                if hasattr(dep, "params"):
                    params |= set(dep.params)
            view[stage.name] = {
                "deps": {str(Path(dep.def_path)) for dep in stage.deps if not hasattr(dep, "params")},
                "outs": {str(Path(out.def_path)) for out in stage.outs},
                "params": params,
            }
    return view


def snakemake_view() -> dict[str, dict[str, set[str]]]:
    import json

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    view = {}
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=ROOT / "Snakefile", workdir=ROOT)
        for rule in workflow._workflow.rules:
            if rule.name == "all":
                continue

            view[rule.name] = {
                "deps": {str(f) for f in rule.input},
                "outs": {str(f) for f in rule.output},
                "params": set(json.loads(rule.params.slice)),
                "threads": rule.resources["_cores"],
            }
    return view


def test_dvc_and_snakemake_run_the_same_stages():
    dvc, snakemake = dvc_view(), snakemake_view()
    assert set(dvc) == set(snakemake) == {stage.name for stage in STAGES}
    for stage in STAGES:
        assert dvc[stage.name]["deps"] == snakemake[stage.name]["deps"], stage.name
        assert dvc[stage.name]["outs"] == snakemake[stage.name]["outs"], stage.name
        # Snakemake's params slice nests dotted keys; compare the top-level sections.
        assert {key.split(".")[0] for key in dvc[stage.name]["params"]} == snakemake[stage.name]["params"], stage.name


def test_every_dep_of_a_stage_is_a_source_file_or_another_stages_output():
    produced = {out.path for stage in STAGES for out in stage.outs.values()}
    for stage in STAGES:
        for path in stage.deps.values():
            assert path in produced, f"{stage.name} reads {path}, which no stage writes"
        for path in stage.code_paths:
            assert (ROOT / path).is_file(), f"{stage.name} lists missing code {path}"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_stage_params_exist(stage):
    from maskscope.config import Params, params_slice

    params_slice(Params(), list(stage.params))
