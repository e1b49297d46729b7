"""The stage registry: the single source of the DAG.

`python -m pipelines.compile` writes dvc.yaml from it, and workflow/rules/stages.smk builds one
Snakemake rule per entry, so both tools run the same stages with the same deps, outs and params.
Each stage is run as `maskscope stage NAME ...` with its paths and its params keys as arguments.

The trained variants come from params.yaml (`variants`): `build_stages` makes one training per
variant, and the evaluation, mask dumps and probes follow them. After changing `variants`, run
`python -m pipelines.compile` (`maskscope preset` does) so that dvc.yaml follows too.

A stage with a `matrix` is a sweep: "{axis}" in its paths and params keys stands for the axis
value, which DVC writes as `${item.axis}` in a `matrix` stage and Snakemake as a wildcard.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from maskscope.core.constants import FOCUS_VARIANT
from maskscope.data.splits import SPLITS
from maskscope.pipeline.code_deps import stage_code
from maskscope.pipeline.config import VariantParams, gated_variants, load_params, variants_of_kind
from maskscope.pipeline.runner import instance_name

ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = "params.yaml"
PACKAGE = "src/maskscope"


@dataclass(frozen=True)
class Out:
    path: str
    kind: Literal["dir", "file", "metrics", "plots"] = "dir"
    plot: tuple[tuple[str, str], ...] = ()  # DVC plot properties, e.g. (("x", "epoch"),)
    persist: bool = False  # DVC keeps it before rerunning the stage (downloads that resume)
    # For a persistent directory: the file in it the stage writes last. Snakemake deletes a job's
    # outputs before running it and has no `persist`, so it tracks this file instead of the directory.
    marker: str = ""

    def __post_init__(self) -> None:
        if self.persist and self.kind == "dir" and not self.marker:
            raise ValueError(f"{self.path}: a persistent directory needs a marker file for Snakemake")

    @property
    def snakemake_path(self) -> str:
        return f"{self.path}/{self.marker}" if self.persist and self.marker else self.path


@dataclass(frozen=True)
class Resources:
    """What one run of the stage asks a scheduler for (Snakemake's threads, mem_mb and runtime; on SLURM
    sbatch's --cpus-per-task, --mem and --time). Runtimes are upper bounds for the largest preset on a
    CPU node; a training killed at its limit resumes from its checkpoint when rerun."""

    cpus: int = 1
    mem_mb: int = 2000
    runtime: int = 60  # minutes


@dataclass(frozen=True)
class Stage:
    name: str
    deps: dict[str, str]  # argument name -> data path the stage reads
    outs: dict[str, Out]  # argument name -> what it writes
    params: tuple[str, ...]  # dotted keys of params.yaml the stage reads (sections or leaves)
    resources: Resources = field(default_factory=Resources)
    description: str = ""
    matrix: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sweep axis -> values

    @property
    def code_paths(self) -> list[str]:
        """The code whose change reruns the stage: the import closure of its stage module."""
        return [f"{PACKAGE}/{module}" for module in stage_code(self.name)]

    @property
    def dep_paths(self) -> list[str]:
        """Everything whose content decides the outputs: data first, then code."""
        return [*self.deps.values(), *self.code_paths]

    def command(self) -> str:
        """The shell command both tools run ("{axis}" placeholders for a sweep)."""
        parts = ["maskscope", "stage", self.name, "--params", PARAMS_FILE]
        parts += ["--keys", ",".join(self.params)] if self.params else []
        parts += [f"--dep {name}={path}" for name, path in self.deps.items()]
        parts += [f"--out {name}={out.path}" for name, out in self.outs.items()]
        parts += [f"--item {axis}={{{axis}}}" for axis in self.matrix]
        parts += ["--workers", str(self.resources.cpus)]
        return " ".join(parts)

    def instances(self) -> list[dict[str, str]]:
        """The axis values of every instance of the sweep ([{}] for a plain stage)."""
        axes = list(self.matrix)
        return [dict(zip(axes, values, strict=True)) for values in itertools.product(*self.matrix.values())]

    def instance_name(self, item: dict[str, str]) -> str:
        """DVC's name for one instance: `train@dense`, `dump_masks@dyncp-25-test`."""
        return instance_name(self.name, item)


def fill(template: str, item: dict[str, str]) -> str:
    """Put one instance's axis values into a "{axis}" template (Snakemake may add ",constraint")."""
    return re.sub(r"\{(\w+)(?:,[^{}]*)?\}", lambda match: item.get(match.group(1), match.group(0)), template)


DATA_STAGES: tuple[Stage, ...] = (
    Stage(
        name="download",
        description="real corpora's archives (VoiceBank+DEMAND, DEMAND), resumed and verified; none by default",
        deps={"table": "pipelines/archives.json"},
        outs={"archives": Out("data/archives", persist=True, marker="manifest.json")},
        params=("download",),
        resources=Resources(runtime=240),  # gigabytes over the network, resumed
    ),
    Stage(
        name="corpus",
        description="clean speech: TTS voices speaking a seeded grammar + eight real speakers, or VoiceBank",
        deps={"archives": "data/archives"},
        outs={"corpus": Out("data/corpus"), "metrics": Out("metrics/corpus.json", "metrics")},
        params=("seed", "corpus"),
        resources=Resources(cpus=2, mem_mb=4000, runtime=120),
    ),
    Stage(
        name="noises",
        description="noise recordings per class and split: synthetic (babble from training speakers) or DEMAND",
        deps={"corpus": "data/corpus", "archives": "data/archives"},
        outs={"noises": Out("data/noises")},
        params=("seed", "splits", "noises"),
        resources=Resources(cpus=1, mem_mb=4000, runtime=60),
    ),
    Stage(
        name="mix",
        description="speaker-disjoint splits; speech + noise at seeded SNRs (or VoiceBank's own), as Parquet shards",
        deps={"corpus": "data/corpus", "noises": "data/noises", "archives": "data/archives"},
        outs={"mix": Out("data/mix"), "metrics": Out("metrics/mix.json", "metrics")},
        params=("seed", "splits", "noises.classes", "mix"),
        resources=Resources(cpus=1, mem_mb=6000, runtime=90),
    ),
    Stage(
        name="labels",
        description="per STFT frame: WORLD F0 + voiced flag, energy VAD, noise class, SNR",
        deps={"mix": "data/mix"},
        outs={"labels": Out("data/labels"), "metrics": Out("metrics/labels.json", "metrics")},
        params=("labels",),
        resources=Resources(cpus=2, mem_mb=4000, runtime=120),
    ),
)


TRAIN_OUTS = {
    "model": Out("models/{variant}"),
    "metrics": Out("metrics/train/{variant}.json", "metrics"),
    "plots": Out(
        "plots/train/{variant}.csv",
        "plots",
        plot=(("x", "epoch"), ("y", "valid_loss"), ("title", "validation loss")),
    ),
}
TRAIN_RESOURCES = Resources(cpus=2, mem_mb=6000, runtime=720)


def base_training(name: str, variant: str, description: str, params: tuple[str, ...]) -> Stage:
    """The training of a variant others start from (dense Conv-FSENet, slimmable DEMUCS)."""
    return Stage(
        name=name,
        description=description,
        deps={"mix": "data/mix", "noises": "data/noises"},
        outs={key: replace(out, path=fill(out.path, {"variant": variant})) for key, out in TRAIN_OUTS.items()},
        params=(*params, f"variants.{variant}"),
        resources=TRAIN_RESOURCES,
    )


def derived_training(
    name: str, base: str, variants: tuple[str, ...], description: str, params: tuple[str, ...]
) -> Stage:
    """A sweep over the variants fine-tuned from `base`'s trained model."""
    return Stage(
        name=name,
        description=description,
        deps={"mix": "data/mix", "noises": "data/noises", "base": f"models/{base}"},
        outs=TRAIN_OUTS,
        params=(*params, "variants.{variant}"),
        resources=TRAIN_RESOURCES,
        matrix={"variant": variants},
    )


# what dynamic mixing draws from: the noise classes, the SNRs and silences the mix stage uses
MIXING_PARAMS = ("noises.classes", "mix.snrs_db", "mix.pad_seconds")
FSENET_PARAMS = ("seed", "model", "train", *MIXING_PARAMS)
SLIM_TRAIN_KEYS = ("batch_size", "segment_seconds", "valid_utterances", "mixing", "steps_per_epoch", "snr_range_db")
SLIM_TRAIN_KEYS += ("level_range_db", "grad_clip_norm")
SLIM_TRAIN_PARAMS = ("seed", *(f"train.{key}" for key in SLIM_TRAIN_KEYS), *MIXING_PARAMS)
# the slimmable base reads the architecture and its own schedule; the router's keys retrain routers only
SLIM_BASE_KEYS = ("hidden", "depth", "kernel", "stride", "resample", "gru", "gru_groups", "gru_layers", "widths")
SLIM_PARAMS = (*SLIM_TRAIN_PARAMS, *(f"slimming.{key}" for key in (*SLIM_BASE_KEYS, "epochs", "learning_rate")))
ROUTER_PARAMS = (*SLIM_TRAIN_PARAMS, "slimming", "labels.vad_threshold_db")
# nsNet2 shares Conv-FSENet's data and batches, not its architecture, schedule or pruning keys
NSNET2_PARAMS = (*SLIM_TRAIN_PARAMS, "nsnet2")


def build_stages(variants: Mapping[str, VariantParams]) -> tuple[Stage, ...]:
    """The whole DAG for these variants (params.yaml's `variants`)."""
    variants = dict(variants)
    pruned = variants_of_kind(variants, "dyncp", "static")
    routed = variants_of_kind(variants, "slim-dyn")
    gated = gated_variants(variants)
    trainings = []
    if "dense" in variants:
        trainings.append(
            base_training(
                "train_dense",
                "dense",
                "train the dense Conv-FSENet, resumably; the pruned variants start from it",
                FSENET_PARAMS,
            )
        )
    if pruned:
        trainings.append(
            derived_training(
                "train",
                "dense",
                pruned,
                "train one pruned variant (DynCP at a target usage, or static), from the dense model, resumably",
                (*FSENET_PARAMS, "prune"),
            )
        )
    if "slim-static" in variants:
        trainings.append(
            base_training(
                "train_slim",
                "slim-static",
                "train the slimmable DEMUCS at every width (UF) each step, resumably; routed variants start from it",
                SLIM_PARAMS,
            )
        )
    if routed:
        trainings.append(
            derived_training(
                "train_router",
                "slim-static",
                routed,
                "train one routed DEMUCS (per-segment UF by Gumbel-softmax) within a static UF's MACs, resumably",
                ROUTER_PARAMS,
            )
        )
    early_exits = variants_of_kind(variants, "nsnet2", "nsnet2-static")
    if early_exits:
        trainings.append(
            Stage(
                name="train_nsnet2",
                description="train one nsNet2 from scratch, resumably: with exits (joint or layer-wise), or static"
                " and truncated at one exit",
                deps={"mix": "data/mix", "noises": "data/noises"},
                outs=TRAIN_OUTS,
                params=(*NSNET2_PARAMS, "variants.{variant}"),
                resources=TRAIN_RESOURCES,
                matrix={"variant": early_exits},
            )
        )
    evaluate = Stage(
        name="evaluate",
        description="noisy input and every variant on the test split: PESQ, STOI, SI-SDR, composite, MACs, usage",
        deps={"mix": "data/mix", **{f"model-{variant}": f"models/{variant}" for variant in variants}},
        outs={"scores": Out("data/evaluate"), "metrics": Out("metrics/evaluate.json", "metrics")},
        params=("model", "evaluate", "variants", "nsnet2.exit_threshold"),
        resources=Resources(cpus=2, mem_mb=6000, runtime=240),
    )
    dump_masks = Stage(
        name="dump_masks",
        description="every frame's gates (DynCP) or router widths (DEMUCS) of one variant on one split, bit-packed",
        deps={"mix": "data/mix", "model": "models/{variant}"},
        outs={"masks": Out("data/masks/{variant}/{split}")},
        params=("variants.{variant}",),
        resources=Resources(cpus=2, mem_mb=4000, runtime=45),
        matrix={"variant": gated, "split": SPLITS},
    )
    exiting = variants_of_kind(variants, "nsnet2")
    dump_exits = Stage(
        name="dump_exits",
        description="the exit the causal exit policy takes on every frame of one nsNet2 variant on one split,"
        " as mask bits (exit reached or not)",
        deps={"mix": "data/mix", "model": "models/{variant}"},
        outs={"masks": Out("data/masks/{variant}/{split}")},
        params=("variants.{variant}", "nsnet2.exit_threshold"),
        resources=Resources(cpus=1, mem_mb=4000, runtime=60),
        matrix={"variant": exiting, "split": SPLITS},
    )
    probed = (*gated, *exiting)
    baselines = Stage(
        name="baselines",
        description="Silero VAD, webrtcvad, energy VADs, WORLD harvest/dio and pyin F0, log-mel noise classifier"
        " on the probes' frames: fitted on the fit split, scored on the scored split",
        deps={"labels": "data/labels", "mix": "data/mix"},
        outs={"baselines": Out("data/baselines")},
        params=(
            "seed",
            "probes.splits",
            "probes.utterances",
            "probes.fit_split",
            "probes.fit_utterances",
            "probes.context_frames",
            "labels.f0_floor_hz",
            "labels.f0_ceil_hz",
        ),
        resources=Resources(cpus=1, mem_mb=4000, runtime=150),
    )
    probes = Stage(
        name="probes",
        description="linear probes on mask bits (VAD, noise class, F0, SNR) of gates, router widths and exit"
        " decisions: fitted on train, scored on test; a bundle (model + probes) per DynCP variant",
        deps={
            "corpus": "data/corpus",  # voice families, so that cross-validation folds keep them apart
            "labels": "data/labels",
            "mix": "data/mix",  # each mixture's SNR, for the scores by SNR
            "baselines": "data/baselines",
            **{f"masks-{variant}-{split}": f"data/masks/{variant}/{split}" for variant in probed for split in SPLITS},
            # DynCP models travel with their probes: one bundle per variant for `enhance --tracks`
            **{f"model-{variant}": f"models/{variant}" for variant in variants_of_kind(variants, "dyncp")},
        },
        outs={"probes": Out("data/probes"), "metrics": Out("metrics/probes.json", "metrics")},
        params=("seed", "probes"),
        resources=Resources(cpus=2, mem_mb=8000, runtime=180),
    )
    report = Stage(
        name="report",
        description="reports/index.html (self-contained, figures inline) and reports/summary.md",
        deps={
            "evaluation": "metrics/evaluate.json",
            "probes": "metrics/probes.json",
            "analysis": "data/probes",
            "masks": f"data/masks/{FOCUS_VARIANT}/test",
            # the tracks figure: one test mixture through the focus variant's bundle, beside its labels
            "mix": "data/mix",
            "labels": "data/labels",
        },
        outs={"report": Out("reports")},
        params=("mix.source", "noises.source"),  # the paper-comparison sentences name our data
        resources=Resources(runtime=30),
    )
    exit_dumps = (dump_exits,) if exiting else ()
    return (*DATA_STAGES, *trainings, evaluate, dump_masks, *exit_dumps, baselines, probes, report)


def pipeline_variants(root: Path = ROOT) -> dict[str, VariantParams]:
    """The variants of the checkout's params.yaml."""
    return load_params(root / PARAMS_FILE).variants


STAGES = build_stages(pipeline_variants())


def stage(name: str, stages: tuple[Stage, ...] = STAGES) -> Stage:
    for entry in stages:
        if entry.name == name:
            return entry
    raise KeyError(f"no stage named '{name}'; stages: {', '.join(s.name for s in stages)}")
