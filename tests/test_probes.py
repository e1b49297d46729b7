"""Probes on mask bits: L1-path selection finds the informative bits, folds keep speakers apart,
and the exported weight table predicts exactly what the fitted probe does."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from maskscope.analysis.masks import MaskLayout
from maskscope.analysis.probe_study import ProbeFrames, study_variant
from maskscope.analysis.probes import (
    ABSENT_CLASS_LOGIT,
    TASKS,
    causal_mean,
    context_curve,
    context_windows,
    export_probes,
    fit_probe,
    frame_families,
    held_out_outputs,
    l1_ranking,
    mixture_snrs,
    score_curve,
    scores,
    scores_by_snr,
    speaker_folds,
    task_rows,
    task_target,
    utterance_spans,
)
from maskscope.core.errors import MissingInputError

FRAMES, BITS = 3000, 60


def synthetic(seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Bits 7 and 21 carry VAD, bits 3/4/5 one-hot the noise class, bits 40-47 encode F0."""
    rng = np.random.default_rng(seed)
    bits = rng.random((FRAMES, BITS)) < 0.3
    vad = rng.random(FRAMES) < 0.6
    noise = rng.integers(0, 3, FRAMES)
    f0 = rng.uniform(80, 300, FRAMES)
    flip = lambda x, p: x ^ (rng.random(FRAMES) < p)  # noqa: E731
    bits[:, 7], bits[:, 21] = flip(vad, 0.05), flip(vad, 0.1)
    for c in range(3):
        bits[:, 3 + c] = flip(noise == c, 0.05)
    level = np.round((f0 - 80) / 220 * 255).astype(np.uint8)
    bits[:, 40:48] = np.unpackbits(level[:, None], axis=1).astype(bool)
    labels = pd.DataFrame(
        {
            "vad": vad,
            "voiced": vad,
            "noise_class": np.array(["hum", "pink", "rain"])[noise],
            "f0_hz": f0,
            "snr_db": rng.normal(5, 3, FRAMES),
            "speaker": rng.choice([f"s{i}" for i in range(6)], FRAMES),
        }
    )
    return bits, labels


def task(name: str):
    return next(t for t in TASKS if t.name == name)


def test_the_l1_path_selects_the_informative_bits_first():
    bits, labels = synthetic()
    vad, _ = task_target(labels, task("vad"))
    assert set(l1_ranking(bits, vad, 2, "binary")) == {7, 21}
    noise, classes = task_target(labels, task("noise"))
    assert classes == ["hum", "pink", "rain"]
    assert set(l1_ranking(bits, noise, 3, "multiclass")) == {3, 4, 5}
    f0, _ = task_target(labels, task("f0"))
    assert set(l1_ranking(bits, f0, 4, "regression")) <= set(range(40, 48))


def test_constant_bits_are_never_selected():
    bits, labels = synthetic()
    bits[:, 0] = True
    bits[:, 1] = False
    vad, _ = task_target(labels, task("vad"))
    assert not {0, 1} & set(l1_ranking(bits, vad, 40, "binary"))


def test_masks_without_a_varying_bit_give_a_bias_only_probe():
    """A router that always picks the same width leaves every bit constant: the probe falls back to
    the majority class / the mean instead of failing."""
    bits, labels = synthetic()
    bits[:] = bits[0]
    vad, _ = task_target(labels, task("vad"))
    curve = score_curve(bits, vad, labels["speaker"].to_numpy(), "binary", [1, 4], folds=3)
    majority = max(vad.mean(), 1 - vad.mean())
    assert curve[4]["accuracy"] == pytest.approx(majority, abs=0.02)
    f0, _ = task_target(labels, task("f0"))
    assert score_curve(bits, f0, labels["speaker"].to_numpy(), "regression", [2], folds=3)[2]["r2"] < 0.01


def test_folds_never_put_a_speaker_on_both_sides():
    _, labels = synthetic()
    groups = labels["speaker"].to_numpy()
    folds = speaker_folds(groups, 5)
    assert len(folds) == 5
    for fit, held_out in folds:
        assert not set(groups[fit]) & set(groups[held_out])
    with pytest.raises(ValueError, match="at least 2 voice families"):
        speaker_folds(np.array(["a"] * 10), 5)


def test_scores_rise_with_k_and_reach_the_planted_signal():
    bits, labels = synthetic()
    groups = labels["speaker"].to_numpy()
    noise, _ = task_target(labels, task("noise"))
    curve = score_curve(bits, noise, groups, "multiclass", [1, 3, 10], folds=3)
    assert curve[1]["accuracy"] < curve[3]["accuracy"]
    assert curve[3]["accuracy"] > 0.9
    rows = task_rows(labels, task("f0"))
    f0, _ = task_target(labels[rows], task("f0"))
    f0_curve = score_curve(bits[rows], f0, groups[rows], "regression", [8], folds=3)
    assert f0_curve[8]["r2"] > 0.9


@pytest.mark.parametrize("name", ["vad", "noise", "snr"])
def test_the_weight_table_predicts_what_the_probe_predicts(name):
    bits, labels = synthetic(1)
    t = task(name)
    target, classes = task_target(labels, t)
    exported = export_probes(bits, target, t, [12], classes)[12]
    probe = fit_probe(bits[:, exported.bits], target, t.kind)
    expected = probe.predict(bits[:, exported.bits].astype(np.float32))
    if t.kind == "regression":
        np.testing.assert_allclose(exported.predict(bits), expected, rtol=1e-4, atol=1e-4)
    else:
        assert np.array_equal(exported.predict(bits), expected)
    # a prediction is the bias plus the weights of the open selected gates
    table = exported.table(hidden=20)
    frame = bits[0]
    first_output = table[table["output"] == table["output"].iloc[0]]
    by_hand = first_output.loc[first_output.bit == -1, "weight"].item() + sum(
        first_output.loc[first_output.bit == b, "weight"].item() for b in exported.bits if frame[b]
    )
    assert by_hand == pytest.approx(exported.raw(bits[:1])[0, 0])
    assert set(table.loc[table.bit >= 0, "block"]) <= set(range(BITS // 20))


def test_operation_count_is_additions_of_open_weights_plus_the_decision():
    bits, labels = synthetic()
    noise, classes = task_target(labels, task("noise"))
    exported = export_probes(bits, noise, task("noise"), [10], classes)[10]
    assert exported.ops_per_frame() == 3 * 10 + 2
    assert exported.ops_per_frame(0.5) == 3 * 5 + 2


def test_two_noise_classes_give_a_two_row_table_whose_argmax_is_the_probe():
    bits, labels = synthetic(2)
    two = labels[labels["noise_class"] != "rain"].reset_index(drop=True)
    rows = (labels["noise_class"] != "rain").to_numpy()
    noise, classes = task_target(two, task("noise"))
    assert classes == ["hum", "pink"]
    exported = export_probes(bits[rows], noise, task("noise"), [6], classes)[6]
    assert exported.weights.shape == (2, 6)
    probe = fit_probe(bits[rows][:, exported.bits], noise, "multiclass")
    predicted = exported.predict(bits[rows])
    assert np.array_equal(predicted, probe.predict(bits[rows][:, exported.bits].astype(np.float32)))
    assert np.mean(predicted == noise) > 0.9  # both classes are predicted, not always the first
    assert set(exported.table(hidden=20)["output"]) == {"hum", "pink"}


def test_folds_keep_the_voices_of_one_family_together(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    speakers = {"kal": "awb", "awb_cg": "awb", "slt": "slt", "slt_hts": "slt", "p226": "p226", "p287": "p287"}
    manifest = pa.table({"speaker": list(speakers), "family": list(speakers.values())})
    pq.write_table(manifest, corpus / "manifest.parquet")
    labels = pd.DataFrame({"speaker": np.repeat(list(speakers), 50)})
    groups = frame_families(labels, corpus)
    for fit, held_out in speaker_folds(groups, 4):
        fit_speakers, held_speakers = set(labels["speaker"][fit]), set(labels["speaker"][held_out])
        for one, other in (("kal", "awb_cg"), ("slt", "slt_hts")):
            assert not ({one, other} & fit_speakers and {one, other} & held_speakers)
    with pytest.raises(MissingInputError, match=r"manifest\.parquet.*'ghost'.*rerun the pipeline"):
        frame_families(pd.DataFrame({"speaker": ["ghost"]}), corpus)


def test_the_causal_mean_averages_the_last_frames_of_each_utterance_only():
    raw = np.array([[1.0], [3.0], [5.0], [7.0], [10.0], [20.0]])
    utterances = np.array(["a", "a", "a", "a", "b", "b"])
    averaged = causal_mean(raw, utterances, 2)
    # frame t sees frames t-1 and t; the first frame of an utterance sees only itself
    np.testing.assert_allclose(averaged[:, 0], [1, 2, 4, 6, 10, 15])
    np.testing.assert_allclose(causal_mean(raw, utterances, 1), raw)
    np.testing.assert_allclose(causal_mean(raw, utterances, 100)[:, 0], [1, 2, 3, 4, 10, 15])


def test_the_causal_mean_refuses_interleaved_utterances_and_empty_windows():
    raw = np.zeros((4, 1))
    with pytest.raises(ValueError, match="not contiguous"):
        causal_mean(raw, np.array(["a", "b", "a", "b"]), 2)
    with pytest.raises(ValueError, match="at least 1"):
        causal_mean(raw, np.array(["a"] * 4), 0)


def test_context_windows_double_up_to_the_longest():
    assert context_windows(32) == [1, 2, 4, 8, 16, 32]
    assert context_windows(12) == [1, 2, 4, 8, 12]
    assert context_windows(1) == [1]


def test_context_lifts_a_property_that_holds_for_the_utterance_and_costs_one_that_does_not():
    """Noise class fixed per utterance, seen through noisy bits: averaging the logits over frames helps.
    VAD switching every frame: averaging over past frames blurs it."""
    rng = np.random.default_rng(3)
    utterances = np.repeat([f"u{i}" for i in range(60)], 50)
    speakers = np.repeat([f"s{i % 6}" for i in range(60)], 50)
    noise = np.repeat(rng.permutation(np.arange(60) % 3), 50)
    vad = rng.random(len(noise)) < 0.5
    bits = rng.random((len(noise), 20)) < 0.5
    for c in range(3):
        bits[:, c] = (noise == c) ^ (rng.random(len(noise)) < 0.3)
    bits[:, 10] = vad ^ (rng.random(len(noise)) < 0.05)
    noise_raw = held_out_outputs(bits, noise, speakers, "multiclass", [5], folds=3)[5]
    noise_curve = context_curve(noise_raw, noise, "multiclass", utterances, 16)
    assert noise_curve[1]["accuracy"] < 0.6 and noise_curve[16]["accuracy"] > 0.85
    assert noise_curve[1] == score_curve(bits, noise, speakers, "multiclass", [5], folds=3)[5]
    vad_raw = held_out_outputs(bits, vad.astype(np.int64), speakers, "binary", [5], folds=3)[5]
    vad_curve = context_curve(vad_raw, vad.astype(np.int64), "binary", utterances, 16)
    assert vad_curve[16]["accuracy"] < vad_curve[1]["accuracy"] - 0.2


def test_a_fold_without_a_class_still_gives_a_column_per_class():
    """Speaker-disjoint folds can hold a class's only speaker out: that fold's probe knows one class
    fewer, and its logits land in the columns of the classes it knows."""
    bits, labels = synthetic(4)
    speakers = labels["speaker"].to_numpy()
    noise = task_target(labels, task("noise"))[0].copy()
    noise[(noise == 2) & (speakers != "s0")] = 0
    noise[speakers == "s0"] = 2
    raw = held_out_outputs(bits, noise, speakers, "multiclass", [6], folds=3)[6]
    assert raw.shape == (len(noise), 3)
    with_s0 = next(held_out for _, held_out in speaker_folds(speakers, 3) if "s0" in set(speakers[held_out]))
    blind = np.zeros(len(noise), dtype=bool)
    blind[with_s0] = True
    assert np.all(raw[blind, 2] == ABSENT_CLASS_LOGIT)
    assert np.all(raw[~blind, 2] > ABSENT_CLASS_LOGIT)
    assert set(np.unique(raw.argmax(axis=1)[blind])) <= {0, 1}
    assert np.mean(raw.argmax(axis=1)[~blind] == noise[~blind]) > 0.8


def test_probes_of_several_k_share_one_l1_path_and_predict_like_one_exported_alone():
    bits, labels = synthetic(5)
    noise, classes = task_target(labels, task("noise"))
    by_k = export_probes(bits, noise, task("noise"), [2, 6], classes)
    assert np.array_equal(by_k[2].bits, by_k[6].bits[:2])
    assert by_k[2].weights.shape == (3, 2) and by_k[6].weights.shape == (3, 6)
    assert np.mean(by_k[6].predict(bits) == noise) > np.mean(by_k[2].predict(bits) == noise)
    # the weight table reads bool masks and 0/1 integers alike
    np.testing.assert_allclose(by_k[6].raw(bits), by_k[6].raw(bits.astype(np.uint8)))


def test_scores_by_snr_split_the_frames_by_their_mixture_and_pool_the_papers_range():
    target = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    predicted = np.array([1, 0, 0, 1, 1, 0, 1, 0])
    snrs = np.array([-5.0, -5.0, -5.0, -5.0, 0.0, 0.0, 2.5, 2.5])
    by_snr, from_0db = scores_by_snr("binary", target, predicted, snrs)
    assert by_snr == {"-5": 0.5, "0": 1.0, "2.5": 0.5}
    assert from_0db == pytest.approx(3 / 4)
    _, none_in_range = scores_by_snr("binary", target[:4], predicted[:4], snrs[:4])
    assert none_in_range is None
    # R² of a constant target is not a number; JSON has none, so it is None
    values = np.array([100.0, 100.0, 120.0, 90.0])
    by_snr, from_0db = scores_by_snr("regression", values, values + 1.0, np.array([-5.0, -5.0, 5.0, 5.0]))
    assert by_snr["-5"] is None and by_snr["5"] == pytest.approx(1 - 2 / 450, abs=1e-4) and from_0db == by_snr["5"]


def test_each_label_row_gets_its_mixtures_snr_and_a_missing_mixture_is_named(tmp_path):
    mix = tmp_path / "mix"
    mix.mkdir()
    pq.write_table(pa.table({"utt_id": ["a", "b"], "snr_db": [-5.0, 10.0]}), mix / "valid-00000.parquet")
    pq.write_table(pa.table({"utt_id": ["c"], "snr_db": [0.0]}), mix / "test-00000.parquet")
    labels = pd.DataFrame({"utt_id": ["a", "a", "b", "c"]})
    assert mixture_snrs(labels, mix, ["valid", "test"]).tolist() == [-5.0, -5.0, 10.0, 0.0]
    with pytest.raises(MissingInputError, match=r"mix: no mixture for label utterances such as \['c'\]"):
        mixture_snrs(labels, mix, ["valid"])


def _frames(seed: int) -> ProbeFrames:
    bits, labels = synthetic(seed)
    labels["utt_id"] = np.repeat([f"u{seed}-{i}" for i in range(FRAMES // 100)], 100)
    return ProbeFrames(
        labels, labels["speaker"].to_numpy(), np.zeros(FRAMES), utterance_spans(labels["utt_id"].to_numpy()), bits
    )


def test_probes_fit_on_one_split_are_scored_on_another_with_exactly_the_tables_written():
    fit, scored = _frames(0), _frames(1)
    settings = SimpleNamespace(k_curve=[2, 8], k_bits=8, folds=3, context_frames=4, inverse_penalties=[0.01, 1.0])
    study = study_variant(MaskLayout(blocks=2, hidden=BITS // 2), fit, scored, settings, {}, "planted")
    table = study.tables["vad"]
    weights = table[table["bit"] >= 0]
    logit = table.loc[table["bit"] == -1, "weight"].item() + scored.bits[:, weights["bit"]] @ weights["weight"]
    accuracy = float(np.mean((logit > 0) == scored.labels["vad"]))
    assert study.metrics["vad_accuracy"] == pytest.approx(accuracy, abs=1e-4) and accuracy > 0.9
    # the penalty is chosen on the fit split: the weak one (C = 1) wins where the signal is planted
    assert study.metrics["cross_validated_on_fit_split"]["inverse_penalty"]["vad"] == 1.0
    assert set(study.metrics["cross_validated_on_fit_split"]) >= {"vad_accuracy", "noise_accuracy", "f0_r2"}


def test_exit_decisions_with_fewer_bits_than_k_and_two_always_set_are_probed():
    """An exit policy's decisions (3 exits, the first two always reached): K = 8 exceeds the bits,
    and the probes still read VAD from the one bit that varies when the policy's depth follows it."""

    def exit_frames(seed: int) -> ProbeFrames:
        frames = _frames(seed)
        deep = frames.labels["vad"].to_numpy() ^ (np.random.default_rng(seed).random(FRAMES) < 0.1)
        bits = np.stack([np.ones(FRAMES, bool), np.ones(FRAMES, bool), deep], axis=1)
        return ProbeFrames(frames.labels, frames.groups, frames.snrs, frames.spans, bits)

    settings = SimpleNamespace(k_curve=[2, 8], k_bits=8, folds=3, context_frames=4, inverse_penalties=[0.01, 1.0])
    study = study_variant(MaskLayout(blocks=3, hidden=1), exit_frames(0), exit_frames(1), settings, {}, "exits")
    assert study.metrics["decision_bits"] == 3
    assert study.metrics["vad_accuracy"] == pytest.approx(0.9, abs=0.03)
    assert set(study.tables["vad"].loc[study.tables["vad"]["bit"] >= 0, "bit"]) <= {0, 1, 2}
    assert np.isfinite(study.metrics["f0_r2"]) and np.isfinite(study.metrics["snr_r2"])


def test_frames_of_a_noise_class_the_probe_never_fitted_count_as_wrong():
    _, labels = synthetic()
    codes, classes = task_target(labels, task("noise"), ["hum", "pink"])
    assert classes == ["hum", "pink"]
    assert np.array_equal(codes == -1, labels["noise_class"].to_numpy() == "rain")
    assert scores("multiclass", codes, np.zeros_like(codes))["accuracy"] == np.mean(labels["noise_class"] == "hum")
