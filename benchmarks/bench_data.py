"""Data-stage costs, measured (never asserted). Prints one JSON line per figure.

Run after `make repro` (it reads the repository's data/ as the stages' inputs):
    python benchmarks/bench_data.py [--params params.yaml]
Figures: corpus build seconds per minute of speech; mix and labels throughput in seconds of
audio per wall second; no-op time of `dvc repro` and `snakemake -n` on the full DAG.
Stage outputs go to a temporary directory, so the repository's DVC state is untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.stages import stage  # noqa: E402


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def stage_command(name: str, params: str, out_dir: Path) -> list[str]:
    entry = stage(name)
    command = ["maskscope", "stage", name, "--params", params, "--keys", ",".join(entry.params)]
    for dep_name, path in entry.deps.items():
        command += ["--dep", f"{dep_name}={path}"]
    for out_name, out in entry.outs.items():
        command += ["--out", f"{out_name}={out_dir / Path(out.path).name}"]
    return [*command, "--workers", str(entry.resources.cpus)]


def emit(record: dict) -> None:
    record = {"benchmark": "data", "machine": f"{platform.node()} {os.cpu_count()} cpus", **record}
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.gettempdir()}/bench-mlflow.db")
    with tempfile.TemporaryDirectory(prefix="maskscope-bench-") as tmp:
        out = Path(tmp)
        seconds = timed(stage_command("corpus", args.params, out))
        corpus = json.loads((out / "corpus.json").read_text())
        emit(
            {
                "figure": "corpus_seconds_per_speech_minute",
                "value": seconds / corpus["minutes"],
                "wall_s": seconds,
                "speech_minutes": corpus["minutes"],
                "speakers": corpus["speakers"],
            }
        )
        mix_metrics = json.loads((ROOT / "metrics/mix.json").read_text())
        audio_s = 60.0 * sum(split["minutes"] for split in mix_metrics.values())
        for name in ("mix", "labels"):
            seconds = timed(stage_command(name, args.params, out))
            emit(
                {
                    "figure": f"{name}_audio_seconds_per_second",
                    "value": audio_s / seconds,
                    "wall_s": seconds,
                    "audio_s": audio_s,
                }
            )
    for label, command in (("dvc_repro_noop_s", ["dvc", "repro"]), ("snakemake_dry_run_noop_s", ["snakemake", "-n"])):
        runs = [timed(command) for _ in range(3)]
        emit({"figure": label, "value": min(runs), "runs_s": runs})


if __name__ == "__main__":
    main()
