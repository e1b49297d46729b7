"""The registry is the single source: dvc.yaml and the Snakefile must describe the same DAG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, copy_repo

from maskscope.pipeline.code_deps import stage_code
from maskscope.pipeline.config import load_params, preset_params
from pipelines.compile import render_dvc_yaml
from pipelines.stages import STAGES, Out, Stage, build_stages, fill

# The smoke preset has a variant of every kind, so its DAG has every stage (slimming ones included).
EVERY_STAGE = build_stages(preset_params(ROOT / "pipelines/presets", "smoke").variants)


def test_dvc_yaml_is_generated_from_the_registry():
    assert (ROOT / "dvc.yaml").read_text() == render_dvc_yaml()


def test_compile_check_passes_on_the_committed_tree():
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.compile", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def dvc_view(root: Path = ROOT, stages: tuple[Stage, ...] = STAGES) -> dict[str, dict[str, set[str]]]:
    from dvc.repo import Repo

    registry = {stage.name: stage for stage in stages}
    view = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            params = set()
            for dep in stage.deps:
                if hasattr(dep, "params"):
                    params |= set(dep.params)
            view[stage.name] = {
                "deps": {str(Path(dep.def_path)) for dep in stage.deps if not hasattr(dep, "params")},
                "outs": {str(Path(out.def_path)) for out in stage.outs},
                "params": params,
                "command": stage.cmd,
                "threads": registry[stage.name.split("@")[0]].resources.cpus,
            }
    return view


def snakemake_view(root: Path = ROOT, stages: tuple[Stage, ...] = STAGES) -> dict[str, dict[str, set[str]]]:
    """Each rule expanded over its registry instances, named as DVC names them."""
    import json

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    registry = {stage.name: stage for stage in stages}
    # A persistent directory is declared to Snakemake by its marker file: compare by the directory.
    marked = {out.snakemake_path: out.path for stage in stages for out in stage.outs.values()}
    view = {}
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=root / "Snakefile", workdir=root)
        for rule in workflow._workflow.rules:
            if rule.name == "all":
                continue
            stage = registry[rule.name]
            for item in stage.instances():
                view[stage.instance_name(item)] = {
                    "deps": {fill(marked.get(str(f), str(f)), item) for f in rule.input},
                    "outs": {fill(marked.get(str(f), str(f)), item) for f in rule.output},
                    "params": set(json.loads(rule.params.slice(item))),
                    "command": rule.params.command(item),
                }
    return view


def test_dvc_and_snakemake_run_the_same_stages():
    assert_same_dag(ROOT, STAGES)


def test_a_preset_with_more_variants_adds_their_stages_to_both_tools(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    subprocess.run(["maskscope", "preset", "slimming"], cwd=repo, check=True, capture_output=True)
    stages = build_stages(load_params(repo / "params.yaml").variants)
    names = {stage.instance_name(item) for stage in stages for item in stage.instances()}
    routed = {f"train_router@slim-dyn-{target}" for target in ("10", "25", "50")}
    assert {"train_slim", *routed, "dump_masks@slim-dyn-25-test", "train@dyncp-25"} <= names
    assert_same_dag(repo, stages)
    # back to the default: the slimming stages leave dvc.yaml again
    subprocess.run(["maskscope", "preset", "default"], cwd=repo, check=True, capture_output=True)
    assert (repo / "dvc.yaml").read_text() == (ROOT / "dvc.yaml").read_text()


def test_the_earlyexit_preset_trains_every_nsnet2_and_evaluate_reads_them(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    subprocess.run(["maskscope", "preset", "earlyexit"], cwd=repo, check=True, capture_output=True)
    variants = load_params(repo / "params.yaml").variants
    stages = build_stages(variants)
    names = {stage.instance_name(item) for stage in stages for item in stage.instances()}
    nsnet2 = [name for name, variant in variants.items() if variant.kind.startswith("nsnet2")]
    assert len(nsnet2) == 7 and {f"train_nsnet2@{name}" for name in nsnet2} <= names
    evaluate = next(stage for stage in stages if stage.name == "evaluate")
    assert {f"model-{name}" for name in nsnet2} <= set(evaluate.deps)
    # nsNet2 reads none of Conv-FSENet's architecture, schedule or pruning keys
    training = next(stage for stage in stages if stage.name == "train_nsnet2")
    sections = {key.split(".")[0] for key in training.params}
    assert "nsnet2" in sections and not {"model", "prune", "slimming"} & sections
    shared = {"batch_size", "segment_seconds", "valid_utterances", "mixing", "steps_per_epoch"}
    shared |= {"snr_range_db", "level_range_db", "grad_clip_norm"}
    assert {key.removeprefix("train.") for key in training.params if key.startswith("train")} == shared
    assert_same_dag(repo, stages)


def assert_same_dag(root: Path, stages: tuple[Stage, ...]) -> None:
    dvc, snakemake = dvc_view(root, stages), snakemake_view(root, stages)
    names = {stage.instance_name(item) for stage in stages for item in stage.instances()}
    assert set(dvc) == set(snakemake) == names
    for name in names:
        assert dvc[name]["deps"] == snakemake[name]["deps"], name
        assert dvc[name]["outs"] == snakemake[name]["outs"], name
        # Snakemake's params slice nests dotted keys; compare the top-level sections.
        assert {key.split(".")[0] for key in dvc[name]["params"]} == snakemake[name]["params"], name
        assert dvc[name]["command"] == snakemake[name]["command"], name


def test_every_dep_of_a_stage_is_a_source_file_or_another_stages_output():
    produced = {
        fill(out.path, item) for stage in EVERY_STAGE for item in stage.instances() for out in stage.outs.values()
    }
    for stage in EVERY_STAGE:
        for path in {fill(dep, item) for dep in stage.deps.values() for item in stage.instances()}:
            assert path in produced or (ROOT / path).is_file(), f"{stage.name} reads {path}, which nothing provides"
        for path in stage.code_paths:
            assert (ROOT / path).is_file(), f"{stage.name} lists missing code {path}"


@pytest.mark.parametrize("stage", EVERY_STAGE, ids=lambda s: s.name)
def test_stage_params_exist(stage):
    from maskscope.pipeline.config import params_slice

    for item in stage.instances():
        params_slice(preset_params(ROOT / "pipelines/presets", "smoke"), [fill(key, item) for key in stage.params])


@pytest.mark.parametrize("profile", ["default", "slurm", "kubernetes"])
def test_profiles_use_only_options_snakemake_knows(profile):
    import yaml

    options = yaml.safe_load((ROOT / "workflow" / "profiles" / profile / "config.yaml").read_text())
    help_text = subprocess.run(["snakemake", "--help"], capture_output=True, text=True, check=True).stdout
    unknown = [key for key in options if f"--{key}" not in help_text]
    assert not unknown, f"{profile}: unknown snakemake options {unknown}"


def test_slurm_profile_plans_the_dag(tmp_path):
    result = subprocess.run(
        ["snakemake", "--profile", "workflow/profiles/slurm", "-n", "--forceall"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "labels" in result.stdout and "corpus" in result.stdout


def test_a_matrix_stage_becomes_a_dvc_matrix():
    from pipelines.compile import dvc_stage

    sweep = Stage(
        name="train",
        deps={"mix": "data/mix"},
        outs={"model": Out("models/{variant}"), "metrics": Out("metrics/train/{variant}.json", "metrics")},
        params=("train", "variants.{variant}"),
        matrix={"variant": ("dense", "dyncp-25")},
    )
    spec = dvc_stage(sweep)
    assert spec["matrix"] == {"variant": ["dense", "dyncp-25"]}
    assert spec["params"] == ["train", "variants.${item.variant}"]
    assert spec["outs"] == ["models/${item.variant}"]
    assert spec["metrics"] == [{"metrics/train/${item.variant}.json": {"cache": False}}]
    assert "--item variant=${item.variant}" in spec["cmd"]
    assert [sweep.instance_name(item) for item in sweep.instances()] == ["train@dense", "train@dyncp-25"]
    assert fill("models/{variant}", {"variant": "dense"}) == "models/dense"


def imports_of(relative: str) -> set[str]:
    """What one module under src/maskscope imports from the package, by importing nothing: the names
    in its source, resolved to files."""
    import re

    package_root = ROOT / "src" / "maskscope"
    found = set()
    for name in re.findall(r"(?:from|import) (maskscope(?:\.\w+)+)", (package_root / relative).read_text()):
        parts = name.split(".")[1:]
        for candidate in ("/".join(parts) + ".py", "/".join([*parts, "__init__.py"])):
            if (package_root / candidate).is_file():
                found.add(candidate)
    return found


@pytest.mark.parametrize("stage", EVERY_STAGE, ids=lambda s: s.name)
def test_a_stage_depends_on_what_it_imports_and_on_what_those_import(stage):
    code = set(stage_code(stage.name))
    assert f"stages/{stage.name}.py" in code
    for module in code - {path for path in code if path.endswith(".json")}:
        shaping = {path for path in imports_of(module) if not path.startswith(("pipeline/", "core/errors"))}
        shaping -= {
            path
            for path in shaping
            if path.endswith("__init__.py") and "import" not in (ROOT / "src" / "maskscope" / path).read_text()
        }
        assert shaping <= code, f"{stage.name}: {module} imports {sorted(shaping - code)}, which it does not list"
    assert not {path for path in code if path.startswith(("pipeline/runner", "pipeline/tracking", "pipeline/config"))}


def test_the_report_depends_on_the_papers_numbers_it_reads():
    assert "report/papers.json" in stage_code("report") and "data/lexicon.json" in stage_code("corpus")
    assert "data/lexicon.json" not in stage_code("mix")


def test_a_change_to_any_imported_module_changes_the_training_code_digest(tmp_path, monkeypatch):
    from maskscope.pipeline import code_deps

    shadow = tmp_path / "maskscope"
    subprocess.run(["cp", "-r", str(ROOT / "src" / "maskscope"), str(shadow)], check=True)
    monkeypatch.setattr(code_deps, "PACKAGE_ROOT", shadow)
    code_deps.module_closure.cache_clear()
    before = code_deps.code_digest("train")
    framing = shadow / "core" / "framing.py"
    framing.write_text(framing.read_text() + "\n# changed\n")
    assert code_deps.code_digest("train") != before  # framing reaches training only through other modules
    tracking = shadow / "pipeline" / "tracking.py"
    changed = code_deps.code_digest("train")
    tracking.write_text(tracking.read_text() + "\n# changed\n")
    assert code_deps.code_digest("train") == changed  # tracking cannot change what a training computes
    code_deps.module_closure.cache_clear()


def test_no_stage_module_is_imported_outside_the_stage_runner():
    import re

    stage_import = re.compile(r"maskscope\.stages\.\w|from maskscope\.stages import|from maskscope import stages")
    offenders = []
    for folder in ("src", "tests", "benchmarks", "pipelines", "workflow"):
        for path in (ROOT / folder).rglob("*"):
            inside = path.parent.name == "stages" or path == Path(__file__)  # stage modules; this test's pattern
            if path.suffix in (".py", ".smk") and not inside and stage_import.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == ["src/maskscope/pipeline/runner.py"]


def test_snakemake_refuses_config_overrides_the_stages_would_not_see():
    result = subprocess.run(
        ["snakemake", "--profile", "workflow/profiles/default", "-n", "--config", "seed=99"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "differ from params.yaml" in result.stderr + result.stdout
