"""The `maskscope` command line."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from maskscope.core.constants import FOCUS_VARIANT
from maskscope.core.errors import MaskscopeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="maskscope: dynamic SE networks, one pipeline.",
)
params_app = typer.Typer(no_args_is_help=True, help="Inspect and validate params.yaml.")
app.add_typer(params_app, name="params")

PARAMS = Path("params.yaml")


class Tool(StrEnum):
    dvc = "dvc"
    snakemake = "snakemake"


PRESETS = Path("pipelines/presets")
ARCHIVE_TABLE = Path("pipelines/archives.json")


@app.command(hidden=True)
def stage(
    name: Annotated[str, typer.Argument(help="stage name from pipelines/stages.py")],
    params: Annotated[Path, typer.Option(help="params file")] = PARAMS,
    keys: Annotated[str, typer.Option(help="comma-separated params keys the stage reads")] = "",
    dep: Annotated[list[str] | None, typer.Option(help="NAME=PATH of an input")] = None,
    out: Annotated[list[str] | None, typer.Option(help="NAME=PATH of an output")] = None,
    workers: Annotated[int, typer.Option(min=1, help="parallel processes")] = 1,
    item: Annotated[list[str] | None, typer.Option(help="NAME=VALUE of a sweep (matrix) instance")] = None,
) -> None:
    """Run one pipeline stage (what dvc.yaml and the Snakefile call; not meant to be typed)."""
    from maskscope.pipeline.runner import parse_pairs, run_stage

    run_stage(
        name,
        params,
        [key for key in keys.split(",") if key],
        {name: Path(path) for name, path in parse_pairs(dep or [], "--dep").items()},
        {name: Path(path) for name, path in parse_pairs(out or [], "--out").items()},
        workers,
        parse_pairs(item or [], "--item"),
    )


@app.command()
def preset(
    name: Annotated[str, typer.Argument(help="preset name: a file in pipelines/presets/")],
    presets_dir: Annotated[Path, typer.Option(help="where presets live")] = PRESETS,
    params: Annotated[Path, typer.Option(help="params file to write")] = PARAMS,
) -> None:
    """Rewrite params.yaml as the embedded default with the named preset applied (and dvc.yaml after it)."""
    apply_preset(name, presets_dir, params)
    typer.echo(f"{params}: preset '{name}' applied")


def apply_preset(name: str, presets_dir: Path, params: Path) -> None:
    """Write the preset's params; when they are the checkout's params.yaml, regenerate dvc.yaml too,
    since the DAG follows the preset's variants."""
    from maskscope.pipeline.config import preset_params, write_params

    write_params(preset_params(presets_dir, name), params)
    root = params.resolve().parent
    if (root / "pipelines" / "compile.py").is_file() and params.name == "params.yaml":
        subprocess.run([sys.executable, "-m", "pipelines.compile"], cwd=root, check=True, stdout=subprocess.DEVNULL)


@params_app.command("check")
def params_check(path: Annotated[Path, typer.Argument()] = PARAMS) -> None:
    """Validate a params file; exit non-zero naming each bad key."""
    from maskscope.pipeline.config import load_params

    load_params(path)
    typer.echo(f"{path}: valid")


@params_app.command("defaults")
def params_defaults() -> None:
    """Print the embedded default params.yaml."""
    from maskscope.pipeline.config import Params, render_params

    typer.echo(render_params(Params()), nl=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def repro(
    context: typer.Context,
    tool: Annotated[Tool, typer.Option(help="the workflow tool that runs the DAG")] = Tool.dvc,
    preset_name: Annotated[str | None, typer.Option("--preset", help="apply this preset first")] = None,
) -> None:
    """Run the pipeline as one MLflow parent run: `dvc repro` or `snakemake` (extra args pass through)."""
    from maskscope.pipeline.config import load_params
    from maskscope.pipeline.tracking import PARENT_RUN_ENV, end_parent_run, start_parent_run

    if preset_name:
        apply_preset(preset_name, PRESETS, PARAMS)
    params = load_params(PARAMS)  # fail before any work
    commands = {
        "dvc": ["dvc", "repro"],
        "snakemake": ["snakemake", "--profile", "workflow/profiles/default"],
    }
    # After a run of the whole DAG, let the other tool see the same state:
    # - DVC skips a stage whose inputs were rebuilt with identical bytes, leaving its outputs older
    #   than their inputs; Snakemake judges by mtime, so its timestamps are brought in line.
    # - Snakemake does not write dvc.lock; `dvc commit` records what it made.
    sync_commands = {
        "dvc": ["snakemake", "--touch", "--cores", "1", "--quiet"],
        "snakemake": ["dvc", "commit", "--force", "--quiet"],
    }
    run_id = start_parent_run(tool.value, params.preset)
    env = dict(os.environ)
    if run_id:
        env[PARENT_RUN_ENV] = run_id
    if shutil.which(commands[tool.value][0]) is None:
        end_parent_run(run_id, False)
        raise MaskscopeError(f"'{commands[tool.value][0]}' is not on PATH: run `make install` and use .venv/bin")
    completed = subprocess.run([*commands[tool.value], *context.args], env=env, check=False)
    whole_dag = not [arg for arg in context.args if not arg.startswith("-")]
    whole_dag &= not {"-n", "--dry", "--dry-run", "--dryrun"} & set(context.args)  # a dry run changed nothing
    if completed.returncode == 0 and whole_dag:
        completed = subprocess.run(sync_commands[tool.value], env=env, check=False, stdout=subprocess.DEVNULL)
    end_parent_run(run_id, completed.returncode == 0)
    raise typer.Exit(completed.returncode)


@app.command()
def enhance(
    inputs: Annotated[list[Path], typer.Argument(help="WAV/FLAC files, any rate, mono or stereo")],
    out: Annotated[Path, typer.Option("--out", help="directory for the enhanced 16 kHz WAVs")],
    model: Annotated[
        str,
        typer.Option(help="variant name (e.g. dense, dyncp-50, slim-dyn-25), a model.pt path or a probe bundle"),
    ] = FOCUS_VARIANT,
    tracks: Annotated[
        bool,
        typer.Option(
            "--tracks", help="also write NAME.tracks.parquet: VAD, noise class, SNR, F0 per frame from the gates"
        ),
    ] = False,
    tracks_format: Annotated[str, typer.Option(help="parquet or csv")] = "parquet",
    plot: Annotated[bool, typer.Option("--plot", help="with --tracks: NAME.png, spectrograms and tracks")] = False,
    exit_name: Annotated[
        str | None, typer.Option("--exit", help="an nsNet2 with exits: leave at this exit (default: its last)")
    ] = None,
) -> None:
    """Enhance audio files: Conv-FSENet through the streaming sparse path, DEMUCS and nsNet2 whole-file. With
    --tracks, a DynCP model's probe bundle (data/probes/bundles/VARIANT) also reads its gates."""
    from maskscope.evaluation.enhance import TrackOptions, enhance_files, resolve_bundle, resolve_model
    from maskscope.evaluation.tracks import TRACK_FORMATS, read_probes, summary_line

    if tracks_format not in TRACK_FORMATS:
        choices = ", ".join(TRACK_FORMATS)
        raise typer.BadParameter(f"{tracks_format!r}: choose one of {choices}", param_hint="--tracks-format")
    if plot and not tracks:
        raise typer.BadParameter("--plot draws the tracks: pass --tracks too", param_hint="--plot")
    options = None
    if tracks:
        bundle_dir = resolve_bundle(model)
        options = TrackOptions(read_probes(bundle_dir), tracks_format, plot)
        model_path = resolve_model(str(bundle_dir))  # the model the probes were fitted on, from the bundle
    else:
        model_path = resolve_model(model)
    report = enhance_files(inputs, out, model_path, options, exit_name)
    for path in report.written:
        typer.echo(f"wrote {path}")
        if path in report.summaries:
            typer.echo(f"  {summary_line(path.stem, report.summaries[path])}")
    for path, why in report.failed:
        typer.echo(f"skipped {path}: {why}", err=True)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def download(
    corpus: Annotated[str, typer.Argument(help="vbd (VoiceBank+DEMAND) or demand (DEMAND noise)")],
    dest: Annotated[Path, typer.Option("--dest", help="directory for the archives")],
    mirror: Annotated[str | None, typer.Option(help="base address serving the archives by file name")] = None,
    table: Annotated[Path, typer.Option(help="archive table: names, addresses, sizes, MD5s")] = ARCHIVE_TABLE,
    retries: Annotated[int, typer.Option(min=1, help="tries per archive on transient failures")] = 5,
) -> None:
    """Download a real corpus's archives: resumable, retried, size- and MD5-verified."""
    from maskscope.data.download import download_corpus

    for row in download_corpus(table, corpus, dest, mirror=mirror, retries=retries):
        typer.echo(f"{row['name']}: {row['size']} bytes, md5 {row['md5']}")


@app.command("download-promote")
def download_promote(
    manifest: Annotated[Path, typer.Argument(help="the download stage's manifest")] = Path(
        "data/archives/manifest.json"
    ),
    table: Annotated[Path, typer.Option(help="archive table to write the checksums into")] = ARCHIVE_TABLE,
) -> None:
    """Copy the checksums first seen by the download stage (none published) into the archive table."""
    import json

    from maskscope.data.download import promote_checksums

    if not manifest.is_file():
        raise MaskscopeError(f"{manifest}: no download manifest; run the download stage first (dvc repro download)")
    promoted = promote_checksums(json.loads(manifest.read_text())["archives"], table)
    typer.echo(f"{table}: " + (f"recorded {', '.join(promoted)}; commit it" if promoted else "nothing to promote"))


@app.command()
def lineage(
    target: Annotated[str, typer.Argument(help="a metric key (probes.dyncp-25.vad_accuracy), a path, or a run id")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Trace a result back through the stages, data, params, git commits and MLflow runs that made it."""
    import json

    from maskscope.pipeline.lineage import render, trace

    result = trace(target)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else render(result))


@app.command()
def ui(port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5000) -> None:
    """Serve the MLflow UI of this repository's runs on 127.0.0.1."""
    from maskscope.pipeline.tracking import tracking_uri

    os.execvp(
        "mlflow",
        ["mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", tracking_uri()],
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except MaskscopeError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
