"""The report's tables of the test split: quality and cost of every system, dynamic against static at
equal cost, how dynamic each DynCP model's gates are, and the probes against the auxiliary models
they would replace."""

from __future__ import annotations

from typing import Any

Rows = list[dict[str, Any]]


def quality_table(evaluation: dict[str, Any]) -> Rows:
    """Every system's scores and its cost on the scored span, beside the saving over every frame."""
    return [
        {
            "system": name,
            "PESQ": entry["pesq"],
            "STOI": entry["stoi"],
            "SI-SDR": entry["si_sdr"],
            "scored / failed": f"{entry['utterances_scored']} / {entry['utterances_failed']}",
            "PESQ real / synthetic speakers": " / ".join(
                str(kind["pesq"]) for kind in entry.get("by_speaker_kind", {}).values()
            ),
            "MACs/sample (scored span)": round(entry["macs_per_sample"]) if "macs_per_sample" in entry else "",
            "MAC saving (scored span)": entry.get("mac_saving", ""),
            "MAC saving (all frames)": entry.get("all_frames", {}).get("mac_saving", ""),
            # DynCP: fraction of open gates; routed DEMUCS: average UF; slimmable DEMUCS: its fixed UF
            "usage": entry.get("gate_usage") or entry.get("average_uf") or entry.get("uf") or "",
            "CPU s per audio s": entry.get("cpu_seconds_per_audio_second", ""),
        }
        for name, entry in evaluation.items()
    ]


def dynamic_versus_static(evaluation: dict[str, Any]) -> Rows:
    """Each DynCP target beside the static model built for the same cost, with the same fine-tuning."""
    rows = []
    for name, dynamic in evaluation.items():
        static = evaluation.get(name.replace("dyncp-", "static-")) if name.startswith("dyncp-") else None
        if static is None:
            continue
        cheaper = dynamic["macs_per_sample"] <= static["macs_per_sample"]
        better = dynamic["pesq"] >= static["pesq"]
        verdict = "dynamic wins" if cheaper and better else ("dynamic loses" if not better else "dynamic costs more")
        rows.append(
            {
                "target": name.removeprefix("dyncp-"),
                "DynCP PESQ": dynamic["pesq"],
                "static PESQ": static["pesq"],
                "DynCP MACs/sample": round(dynamic["macs_per_sample"]),
                "static MACs/sample": round(static["macs_per_sample"]),
                "verdict": verdict,
            }
        )
    return rows


def gate_dynamics_table(evaluation: dict[str, Any]) -> Rows:
    """Per DynCP model and block: channels always open, always closed, switching, and how often they switch."""
    rows = []
    for name, entry in evaluation.items():
        dynamics = entry.get("gate_dynamics")
        if not dynamics:
            continue
        for block, values in enumerate(zip(*dynamics.values(), strict=True)):
            rows.append({"system": name, "block": block, **dict(zip(dynamics, values, strict=True))})
    return rows


def probed_decisions_table(probes: dict[str, Any]) -> Rows:
    """Per probed variant (DynCP gates, router widths, exit decisions): how many decision bits a frame
    has, and what its probes read from them per frame on the scored split."""
    return [
        {
            "variant": variant,
            "decision bits per frame": entry["decision_bits"],
            "VAD accuracy": entry["vad_accuracy"],
            "noise accuracy": entry["noise_accuracy"],
            "F0 R²": entry["f0_r2"],
            "SNR R²": entry["snr_r2"],
        }
        for variant, entry in probes.items()
        if variant != "baselines"
    ]


PROBED_TASKS = {"vad": "vad_accuracy", "noise": "noise_accuracy", "f0": "f0_r2"}  # the tasks a baseline also does


def replaced_models_table(probes: dict[str, Any], variant: str) -> Rows:
    """Per task: the probe on `variant`'s masks, then each dedicated model on the same frames, with
    score, score from 0 dB, pitch error where both call a frame voiced (F0), and measured cost."""
    entry, methods = probes[variant], probes["baselines"]["methods"]
    rows = []
    for task, metric in PROBED_TASKS.items():
        pitch = entry.get("f0_pitch", {}) if task == "f0" else {}
        rows.append(
            _replaced_row(
                task,
                f"probe, {variant} masks (K = {entry['k_bits']})",
                entry[metric],
                entry["from_0db"].get(metric),
                pitch,
                entry["cpu_us_per_frame"][task],
            )
        )
        for name, method in methods.items():
            if method["task"] == task:
                score = method.get("accuracy", method.get("r2"))
                from_0db = method.get("from_0db")
                rows.append(_replaced_row(task, name, score, from_0db, method, method["cpu_us_per_frame"]))
    return rows


def _replaced_row(task: str, method: str, score: Any, from_0db: Any, pitch: dict[str, Any], cost: float) -> dict:
    both = pitch.get("r2_both_voiced")
    return {
        "task": task,
        "method": method,
        "score": score,
        "from 0 dB": "" if from_0db is None else from_0db,
        "voiced found / R² there / gross errors": ""
        if both is None
        else f"{pitch['voiced_recall']:.2f} / {both:.3f} / {pitch['gross_error_rate']:.3f}",
        "CPU µs per frame": cost,
    }
