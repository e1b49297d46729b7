"""The report's tables of the test split: quality and cost of every system, dynamic against static at
equal cost, and how dynamic each DynCP model's gates are."""

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
