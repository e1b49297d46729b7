"""The HTML report renders every figure in a real headless Chromium, with no external links."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from maskscope.analysis.masks import MaskLayout, MaskSet
from maskscope.report.figures import standard_figures
from maskscope.report.papers import paper_comparison
from maskscope.report.render import write_report
from maskscope.report.tables import replaced_models_table

CHROMIUM = shutil.which("chromium") or "chromium"  # Debian's package, installed by `make install`
TASKS = ("vad", "noise", "f0", "snr")


def results() -> tuple[dict, dict, dict, MaskSet]:
    rng = np.random.default_rng(0)
    evaluation = {"noisy": {"pesq": 1.3, "stoi": 0.85, "si_sdr": 5.0}}
    for name, usage in (("dense", None), ("dyncp-25", 0.25), ("dyncp-50", 0.5)):
        evaluation[name] = {
            "pesq": 1.6 + (usage or 0.3) / 10,
            "stoi": 0.86,
            "si_sdr": 9.0,
            "macs_per_frame": 662528 * (usage or 1.0),
            "macs_per_sample": 662528 * (usage or 1.0) / 256,
            "mac_saving": 1 - (usage or 1.0),
            "pesq_drop_relative": 0.01,
            "gate_usage": usage,
            "gate_usage_per_block": None if usage is None else list(usage + 0.02 * rng.standard_normal(3)),
        }
    for uf, pesq in ((0.125, 1.5), (0.25, 1.6), (0.5, 1.65), (1.0, 1.7)):
        label = {0.125: "1/8", 0.25: "1/4", 0.5: "1/2", 1.0: "1"}[uf]
        evaluation[f"slim-static@{label}"] = {"pesq": pesq, "stoi": 0.85, "si_sdr": 8.0, "uf": uf}
        evaluation[f"slim-static@{label}"]["macs_per_sample"] = 3392 * uf**2
    for target, average, pesq in (("10", 0.18, 1.55), ("25", 0.3, 1.62), ("50", 0.55, 1.66)):
        evaluation[f"slim-dyn-{target}"] = {"pesq": pesq, "stoi": 0.85, "si_sdr": 8.5, "average_uf": average}
        evaluation[f"slim-dyn-{target}"]["macs_per_sample"] = 3392 * average**2 + 16
        evaluation[f"slim-dyn-{target}"]["router_macs_per_sample"] = 16.0
    entry = {
        "vad_accuracy": 0.9,
        "noise_accuracy": 0.8,
        "f0_r2": 0.7,
        "snr_r2": 0.5,
        "snr_mae_db": 4.0,
        "k_bits": 8,
        "cpu_us_per_frame": dict.fromkeys(TASKS, 0.01),
        "in_context": {"frames": 4, "seconds": 0.064, "noise_accuracy": 0.86},
        "by_snr_db": {
            snr: {"vad_accuracy": 0.8 + float(snr) / 100, "noise_accuracy": 0.7, "f0_r2": 0.1, "snr_r2": 0.5}
            for snr in ("-5", "0", "5")
        },
        "from_0db": {"vad_accuracy": 0.935, "noise_accuracy": 0.81, "f0_r2": 0.12, "snr_r2": 0.55},
        "cpu_budget": {
            "vad": {
                "baseline": "webrtcvad",
                "cpu_us_per_frame": 0.03,
                "best_k": {"k_bits": 2, "vad_accuracy": 0.87, "cpu_us_per_frame": 0.004},
            },
            "f0": {"baseline": "harvest", "cpu_us_per_frame": 50.0, "best_k": None},
        },
    }
    methods = {
        "webrtcvad": {
            "task": "vad",
            "accuracy": 0.8,
            "cpu_us_per_frame": 3.0,
            "by_snr_db": {"-5": 0.7, "0": 0.8, "5": 0.9},
        },
        "harvest": {
            "task": "f0",
            "r2": 0.6,
            "mae": 20.0,
            "cpu_us_per_frame": 5000.0,
            "by_snr_db": {"-5": -3.0, "0": 0.2, "5": 0.5},
        },
        "logmel_logreg": {
            "task": "noise",
            "accuracy": 0.7,
            "accuracy_by_context": {"1": 0.7, "2": 0.72, "4": 0.75},
            "cpu_us_per_frame": 40.0,
        },
    }
    probes = {"dyncp-25": entry, "dyncp-50": entry, "baselines": {"frames": 300, "methods": methods}}
    curve = {str(k): {"accuracy": 0.5 + k / 100} for k in (2, 4, 8)}
    regression = {str(k): {"r2": k / 10, "mae": 1.0} for k in (2, 4, 8)}
    details = {
        "curve": {"vad": curve, "noise": curve, "f0": regression, "snr": regression},
        "context_curve": {"vad": curve, "noise": curve, "f0": regression, "snr": regression},
        "per_block": {task: list(rng.random(3)) for task in TASKS},
    }
    analysis = {
        "frames": 300,
        "speakers": 4,
        "frames_per_second": 62.5,
        "variants": {"dyncp-25": details, "dyncp-50": details},
    }
    layout = MaskLayout(blocks=3, hidden=16)
    keys = pd.DataFrame({"utt_id": ["u1"] * 50 + ["u2"] * 30, "frame": [*range(50), *range(30)]})
    masks = MaskSet(keys=keys, bits=rng.random((80, layout.bits)) < 0.3, layout=layout)
    return evaluation, probes, analysis, masks


def build(directory: Path) -> Path:
    evaluation, probes, analysis, masks = results()
    figures = standard_figures(evaluation, probes, analysis, masks, "dyncp-25")
    tables = {"The papers and us": paper_comparison(evaluation, probes, "synthetic", "embedded")}
    write_report(directory, "test report", figures, tables, ["a note"])
    return directory / "index.html"


def rendered_dom(page: Path) -> str:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={page.parent / 'chromium-profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def test_every_figure_renders_in_headless_chromium(tmp_path):
    page = build(tmp_path)
    dom = rendered_dom(page)
    images = re.findall(r"<img[^>]*>", dom)
    assert len(images) == 9
    assert all(f'id="{name}"' in dom for name in ("score_context", "score_snr", "pesq_cpu"))
    assert all('data-rendered="true"' in image for image in images), images


def test_a_broken_figure_is_caught(tmp_path):
    page = build(tmp_path)
    text = page.read_text()
    start = text.index("base64,") + len("base64,")
    page.write_text(text[:start] + "AAAA" + text[start + 400 :])
    images = re.findall(r"<img[^>]*>", rendered_dom(page))
    assert 'data-rendered="false"' in images[0] and 'data-rendered="true"' in images[1]


def test_the_page_is_self_contained_and_the_markdown_links_its_figures(tmp_path):
    page = build(tmp_path)
    text = page.read_text()
    assert not re.search(r'(src|href)="(?!data:)', text)
    summary = (tmp_path / "summary.md").read_text()
    for name in re.findall(r"\(figures/([\w]+\.png)\)", summary):
        assert (tmp_path / "figures" / name).stat().st_size > 1000
    assert "| 93 % |" in summary and "VAD accuracy from masks" in summary


def test_the_paper_comparison_describes_the_data_the_run_used():
    evaluation, probes, _, _ = results()
    embedded = {
        row["quantity"]: row["difference"] for row in paper_comparison(evaluation, probes, "synthetic", "embedded")
    }
    vbd = {row["quantity"]: row["difference"] for row in paper_comparison(evaluation, probes, "vbd", "embedded")}
    demand = {row["quantity"]: row["difference"] for row in paper_comparison(evaluation, probes, "synthetic", "demand")}
    drop, noise = "DynCP Φ=0.25: relative PESQ drop vs dense", "Noise-type accuracy from masks"
    assert "embedded" in embedded[drop] and "embedded" not in vbd[drop] and "Same corpus" in vbd[drop]
    assert "synthetic" in embedded[noise] and "logfiles.zip" in vbd[noise] and "DEMAND environments" in demand[noise]
    assert "padding" in embedded["VAD accuracy from masks"] and "padding" not in vbd["VAD accuracy from masks"]


def test_the_slimming_rows_say_whether_routing_beat_the_static_quarter_width():
    evaluation, probes, _, _ = results()
    rows = {row["quantity"]: row for row in paper_comparison(evaluation, probes, "synthetic", "embedded")}
    head_to_head = rows["Routed (target 0.25) vs static UF 1/4: PESQ, MACs per sample"]
    # routed 1.62 at 3392 * 0.3² + 16 = 321 MACs vs static 1.6 at 3392 / 16 = 212: better PESQ, more MACs
    assert head_to_head["difference"].startswith("Not matched: more MACs than the static model even without")
    assert head_to_head["ours"] == "1.620 vs 1.600; 321 vs 212 (+52 % MACs)"
    evaluation["slim-dyn-25"]["macs_per_sample"] = 220.0  # backbone 204 < 212, plus the router's 16
    rows = {row["quantity"]: row for row in paper_comparison(evaluation, probes, "synthetic", "embedded")}
    assert (
        "the router's own 16.0 MACs"
        in rows["Routed (target 0.25) vs static UF 1/4: PESQ, MACs per sample"]["difference"]
    )
    evaluation["slim-dyn-25"]["macs_per_sample"] = 200.0
    rows = {row["quantity"]: row for row in paper_comparison(evaluation, probes, "synthetic", "embedded")}
    matched = rows["Routed (target 0.25) vs static UF 1/4: PESQ, MACs per sample"]["difference"]
    assert matched.startswith("Matched") and "router_epochs" in matched
    evaluation["slim-dyn-25"]["pesq"] = 1.55  # cheaper than the static width, and worse
    rows = {row["quantity"]: row for row in paper_comparison(evaluation, probes, "synthetic", "embedded")}
    cheaper_and_worse = rows["Routed (target 0.25) vs static UF 1/4: PESQ, MACs per sample"]["difference"]
    assert cheaper_and_worse.startswith("Not matched: 0.050 lower PESQ at fewer MACs")
    assert rows["Routed DEMUCS, target UF 0.10: PESQ / average UF"]["ours"] == "1.550 / 0.18"
    assert rows["Slimmable DEMUCS at UF 1/8, 1/4, 1/2, 1: PESQ"]["ours"] == "1.500 / 1.600 / 1.650 / 1.700"


def test_without_slimming_models_there_are_no_slimming_rows():
    evaluation, probes, _, _ = results()
    fsenet_only = {name: entry for name, entry in evaluation.items() if not name.startswith("slim")}
    quantities = [row["quantity"] for row in paper_comparison(fsenet_only, probes, "synthetic", "embedded")]
    assert quantities and not any("DEMUCS" in quantity for quantity in quantities)


def test_the_paper_rows_give_the_score_in_the_papers_snr_range_and_the_cost_against_the_budget():
    evaluation, probes, _, _ = results()
    rows = {row["quantity"]: row for row in paper_comparison(evaluation, probes, "synthetic", "embedded")}
    assert "at 0 dB SNR and above" in rows["VAD accuracy from masks"]["difference"]
    assert "93.5 %" in rows["VAD accuracy from masks"]["difference"]
    cost = rows["Probe cost per frame"]
    assert cost["ours"] == "K = 8: vad 0.01 µs, f0 0.01 µs"
    assert "vad: 0.01 µs, 1/300.0 of webrtcvad (3 µs); within 1/100 at K = 2 (0.87)." in cost["difference"]
    assert "f0: 0.01 µs, 1/500,000.0 of harvest (5000 µs); no K on the curve within 1/100." in cost["difference"]
    probes["dyncp-25"]["from_0db"] = dict.fromkeys(probes["dyncp-25"]["from_0db"])  # no mixture at 0 dB and above
    rows = {row["quantity"]: row for row in paper_comparison(evaluation, probes, "synthetic", "embedded")}
    assert "0 dB" not in rows["VAD accuracy from masks"]["difference"]
    del probes["dyncp-25"]["cpu_budget"], probes["dyncp-25"]["from_0db"]  # metrics from before these keys
    rows = {row["quantity"]: row for row in paper_comparison(evaluation, probes, "synthetic", "embedded")}
    assert "Probe cost per frame" not in rows and "0 dB" not in rows["VAD accuracy from masks"]["difference"]


def test_the_free_lunch_table_sets_each_probe_beside_the_models_of_its_task():
    _, probes, _, _ = results()
    probes["dyncp-25"]["f0_pitch"] = {"voiced_recall": 1.0, "r2_both_voiced": 0.7, "gross_error_rate": 0.2}
    probes["baselines"]["methods"]["harvest"] |= {
        "voiced_recall": 0.9,
        "r2_both_voiced": 0.95,
        "gross_error_rate": 0.01,
    }
    rows = replaced_models_table(probes, "dyncp-25")
    assert [(row["task"], row["method"].split(",")[0]) for row in rows] == [
        ("vad", "probe"),
        ("vad", "webrtcvad"),
        ("noise", "probe"),
        ("noise", "logmel_logreg"),
        ("f0", "probe"),
        ("f0", "harvest"),
    ]
    harvest = rows[-1]
    assert harvest["score"] == 0.6 and harvest["voiced found / R² there / gross errors"] == "0.90 / 0.950 / 0.010"
    assert rows[0]["from 0 dB"] == 0.935 and rows[1]["from 0 dB"] == "" and rows[0]["CPU µs per frame"] == 0.01


def test_the_early_exit_figure_appears_only_when_the_run_trained_nsnet2():
    from maskscope.report.figures import early_exits

    evaluation, *_ = results()
    assert early_exits(evaluation) is None
    for exit_name, macs, pesq in (("gru1", 1000, 1.4), ("gru2", 1800, 1.5), ("final", 2400, 1.6)):
        evaluation[f"nsnet2-joint@{exit_name}"] = {"pesq": pesq, "exit": exit_name, "macs_per_frame": macs}
        evaluation[f"nsnet2-static-{exit_name}"] = {
            "pesq": pesq - 0.05,
            "exit": exit_name,
            "macs_per_frame": macs - 100,
        }
    figure = early_exits(evaluation)
    assert figure.name == "early_exits" and figure.png[:4] == b"\x89PNG"
