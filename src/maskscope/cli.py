"""The `maskscope` command line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from maskscope.errors import MaskscopeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="maskscope: dynamic SE networks, one pipeline.",
)
params_app = typer.Typer(no_args_is_help=True, help="Inspect and validate params.yaml.")
app.add_typer(params_app, name="params")

PARAMS = Path("params.yaml")
PRESETS = Path("pipelines/presets")
ARCHIVE_TABLE = Path("pipelines/archives.json")


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="stage name from pipelines/stages.py")],
    params: Annotated[Path, typer.Option(help="params file")] = PARAMS,
    keys: Annotated[str, typer.Option(help="comma-separated params keys the stage reads")] = "",
    dep: Annotated[list[str] | None, typer.Option(help="NAME=PATH of an input")] = None,
    out: Annotated[list[str] | None, typer.Option(help="NAME=PATH of an output")] = None,
    workers: Annotated[int, typer.Option(min=1, help="parallel processes")] = 1,
    item: Annotated[list[str] | None, typer.Option(help="NAME=VALUE of a sweep (matrix) instance")] = None,
) -> None:
    """Run one pipeline stage (what dvc.yaml and the Snakefile call)."""
    from maskscope.stages import parse_pairs, run_stage

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
    """Rewrite params.yaml as the embedded default with the named preset applied."""
    from maskscope.config import preset_params, write_params

    values = preset_params(presets_dir, name)
    write_params(values, params)
    typer.echo(f"{params}: preset '{name}' applied")
    # The DAG follows the preset's variants: regenerate dvc.yaml when this is the checkout's params file.
    root = params.resolve().parent
    if (root / "pipelines" / "compile.py").is_file() and params.name == "params.yaml":
        subprocess.run([sys.executable, "-m", "pipelines.compile"], cwd=root, check=True)


@params_app.command("check")
def params_check(path: Annotated[Path, typer.Argument()] = PARAMS) -> None:
    """Validate a params file; exit non-zero naming each bad key."""
    from maskscope.config import load_params

    load_params(path)
    typer.echo(f"{path}: valid")


@params_app.command("defaults")
def params_defaults() -> None:
    """Print the embedded default params.yaml."""
    from maskscope.config import Params, render_params

    typer.echo(render_params(Params()), nl=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def repro(
    context: typer.Context,
    tool: Annotated[str, typer.Option(help="dvc or snakemake")] = "dvc",
    preset_name: Annotated[str | None, typer.Option("--preset", help="apply this preset first")] = None,
) -> None:
    """Run the pipeline as one MLflow parent run: `dvc repro` or `snakemake` (extra args pass through)."""
    from maskscope.config import load_params, preset_params, write_params
    from maskscope.tracking import PARENT_RUN_ENV, end_parent_run, start_parent_run

    if preset_name:
        write_params(preset_params(PRESETS, preset_name), PARAMS)
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
    if tool not in commands:
        raise MaskscopeError(f"--tool must be one of {', '.join(commands)}, got '{tool}'")
    run_id = start_parent_run(tool, params.preset)
    env = dict(os.environ)
    if run_id:
        env[PARENT_RUN_ENV] = run_id
    completed = subprocess.run([*commands[tool], *context.args], env=env, check=False)
    whole_dag = not [arg for arg in context.args if not arg.startswith("-")]
    if completed.returncode == 0 and whole_dag:
        completed = subprocess.run(sync_commands[tool], env=env, check=False, stdout=subprocess.DEVNULL)
    end_parent_run(run_id, completed.returncode == 0)
    raise typer.Exit(completed.returncode)


@app.command()
def enhance(
    inputs: Annotated[list[Path], typer.Argument(help="WAV/FLAC files, any rate, mono or stereo")],
    out: Annotated[Path, typer.Option("--out", help="directory for the enhanced 16 kHz WAVs")],
    model: Annotated[
        str, typer.Option(help="variant name (e.g. dense, dyncp-50, slim-dyn-25) or a model.pt path")
    ] = "dyncp-25",
) -> None:
    """Enhance audio files: Conv-FSENet through the streaming sparse path, DEMUCS whole-file."""
    from maskscope.enhance import enhance_files, resolve_model

    report = enhance_files(inputs, out, resolve_model(model))
    for path in report.written:
        typer.echo(f"wrote {path}")
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
    from maskscope.download import download_corpus

    for row in download_corpus(table, corpus, dest, mirror=mirror, retries=retries):
        typer.echo(f"{row['name']}: {row['size']} bytes, md5 {row['md5']}")


@app.command()
def lineage(
    target: Annotated[str, typer.Argument(help="a metric key (probes.dyncp-25.vad_accuracy), a path, or a run id")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Trace a result back through the stages, data, params, git commits and MLflow runs that made it."""
    import json

    from maskscope.lineage import render, trace

    result = trace(target)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else render(result))


@app.command()
def ui(port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5000) -> None:
    """Serve the MLflow UI of this repository's runs on 127.0.0.1."""
    from maskscope.tracking import tracking_uri

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
