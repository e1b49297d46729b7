from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT

from maskscope.core.errors import ParamsError
from maskscope.pipeline.config import (
    Params,
    load_params,
    params_schema,
    params_slice,
    preset_params,
    render_params,
    validate_params,
    write_params,
)

PRESETS = ROOT / "pipelines" / "presets"


def test_committed_params_are_the_embedded_default():
    assert (ROOT / "params.yaml").read_text() == render_params(Params())


def test_rendered_params_round_trip():
    assert validate_params(yaml.safe_load(render_params(Params()))) == Params()


def test_exported_schema_is_in_sync():
    exported = json.loads((ROOT / "workflow/schemas/params.schema.json").read_text())
    assert exported == params_schema()


def test_unknown_key_names_key_and_allowed_keys():
    data = Params().model_dump(mode="json")
    data["mix"]["snr"] = [0]
    with pytest.raises(ParamsError) as error:
        validate_params(data, "params.yaml")
    message = str(error.value)
    assert "params.yaml" in message and "'mix.snr'" in message and "snrs_db" in message


def test_bad_value_names_key_value_and_rule():
    data = Params().model_dump(mode="json")
    data["noises"]["classes"] = ["white", "thunder"]
    with pytest.raises(ParamsError) as error:
        validate_params(data, "p.yaml")
    message = str(error.value)
    assert "'noises.classes'" in message and "'thunder'" in message and "'white'" in message


def test_cross_field_rule():
    data = Params().model_dump(mode="json")
    data["labels"]["f0_floor_hz"] = 600.0
    with pytest.raises(ParamsError, match=r"labels\.f0_floor_hz"):
        validate_params(data)


@pytest.mark.parametrize(
    "probes, message",
    [
        ({"fit_split": "test"}, r"probes\.fit_split' \(test\) is also in probes\.splits"),
        ({"inverse_penalties": [0.0]}, "positive"),
    ],
)
def test_probes_are_never_scored_on_what_they_were_fitted_on(probes, message):
    data = Params().model_dump(mode="json")
    data["probes"].update(probes)
    with pytest.raises(ParamsError, match=message):
        validate_params(data)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: [1,\n")
    with pytest.raises(ParamsError, match=str(path)):
        load_params(path)


def test_smoke_preset_overlays_defaults():
    smoke = preset_params(PRESETS, "smoke")
    assert smoke.preset == "smoke"
    assert smoke.corpus.synthetic_speakers < Params().corpus.synthetic_speakers
    assert smoke.mix.snrs_db == Params().mix.snrs_db  # untouched keys keep their defaults


def test_default_preset_is_a_no_op():
    assert preset_params(PRESETS, "default") == Params()


def test_unknown_preset_lists_available():
    with pytest.raises(ParamsError, match="smoke"):
        preset_params(PRESETS, "nope")


def test_preset_with_unknown_key_fails(tmp_path):
    (tmp_path / "bad.yaml").write_text("corpus:\n  speakers: 3\n")
    with pytest.raises(ParamsError, match=r"corpus\.speakers"):
        preset_params(tmp_path, "bad")


def test_write_params_is_valid_and_atomic(tmp_path):
    path = tmp_path / "params.yaml"
    write_params(preset_params(PRESETS, "smoke"), path)
    assert load_params(path).preset == "smoke"
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]


def test_params_slice_keeps_only_declared_keys():
    sliced = params_slice(Params(), ["seed", "noises.classes"])
    assert set(sliced) == {"seed", "noises"}
    assert set(sliced["noises"]) == {"classes"}


def test_a_preset_adds_variants_and_keeps_the_default_ones():
    slimming = preset_params(PRESETS, "slimming")
    assert list(slimming.variants)[: len(Params().variants)] == list(Params().variants)
    assert slimming.variants["slim-dyn-10"].kind == "slim-dyn" and slimming.variants["slim-dyn-10"].target_usage == 0.1


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"slim-dyn-25": {"kind": "slim-dyn", "target_usage": 0.25}}, "starts from variant 'slim-static'"),
        ({"dense": {"kind": "dense"}, "d25": {"kind": "dyncp"}}, r"variants\.d25\.target_usage' is required"),
        ({"dense": {"kind": "static", "target_usage": 0.5}}, r"variants\.dense\.kind' must be 'dense'"),
        ({"dense": {"kind": "dense"}, "wide": {"kind": "slim-static"}}, "must be named 'slim-static'"),
        ({"Dyn.25": {"kind": "dense"}}, "lowercase letters, digits and '-' only"),
        ({"noisy": {"kind": "dense"}}, "'noisy' is taken"),
        ({"dyncp-50": {"kind": "dyncp", "target_usage": 0.4}}, r"the name says 0\.5, the value is 0\.4"),
    ],
)
def test_variants_that_the_pipeline_cannot_train_are_refused(variants, message):
    data = Params().model_dump(mode="json")
    focus = {"dense": {"kind": "dense"}, "dyncp-25": {"kind": "dyncp", "target_usage": 0.25}}
    data["variants"] = {**focus, **variants}
    with pytest.raises(ParamsError, match=message):
        validate_params(data, "params.yaml")


def test_the_reports_focus_variant_is_required():
    data = Params().model_dump(mode="json")
    data["variants"] = {"slim-static": {"kind": "slim-static"}}
    with pytest.raises(ParamsError, match=r"'variants\.dyncp-25' must be a dyncp variant"):
        validate_params(data, "params.yaml")


@pytest.mark.parametrize(
    ("slimming", "key"),
    [
        ({"widths": [0.25, 0.5]}, "slimming.widths"),
        ({"widths": [1.0, 0.5]}, "slimming.widths"),
        ({"kernel": 2, "stride": 4}, "slimming.kernel"),
        ({"gru": "grouped", "gru_groups": 3}, "slimming.gru_groups"),
        ({"segment_samples": 1000}, "slimming.segment_samples"),
        ({"segment_samples": 32768}, "slimming.segment_samples"),
    ],
)
def test_slimming_settings_the_model_would_refuse_are_named_up_front(slimming, key):
    data = Params().model_dump(mode="json")
    data["slimming"].update(slimming)
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        validate_params(data, "params.yaml")


@pytest.mark.parametrize(
    ("variants", "nsnet2", "message"),
    [
        ({"ee": {"kind": "nsnet2", "topology": "plain"}}, {}, r"variants\.ee\.regime' is required"),
        ({"ee": {"kind": "nsnet2-static"}}, {}, r"variants\.ee\.exit' is required"),
        ({"ee": {"kind": "nsnet2-static", "exit": "dec1"}}, {}, r"'dec1' is not one of nsnet2\.exits"),
        ({"d": {"kind": "dense", "topology": "plain"}}, {}, r"variants\.d\.topology' is only for kind nsnet2;"),
        ({"dense": {"kind": "nsnet2", "regime": "joint", "topology": "plain"}}, {}, r"dense\.kind' must be 'dense'"),
        (
            {"ee": {"kind": "nsnet2", "regime": "joint", "topology": "plain", "target_usage": 0.5}},
            {},
            r"variants\.ee\.target_usage' is not used",
        ),
        (
            {"ee": {"kind": "nsnet2", "regime": "layerwise", "topology": "plain"}},
            {"epochs": 2},
            "leaves exits untrained",
        ),
        ({}, {"exits": ["gru2", "gru1"]}, r"nsnet2\.exits"),
        ({}, {"exits": ["gru3", "final"]}, r"nsnet2\.exits"),
        ({}, {"exit_weights": [1.0, 1.0]}, r"nsnet2\.exit_weights"),
    ],
)
def test_nsnet2_variants_and_settings_the_model_would_refuse_are_named_up_front(variants, nsnet2, message):
    data = Params().model_dump(mode="json")
    data["variants"] = {**data["variants"], **variants}
    data["nsnet2"].update(nsnet2)
    with pytest.raises(ParamsError, match=message):
        validate_params(data, "params.yaml")


def test_the_earlyexit_preset_renders_each_variant_with_the_fields_its_kind_uses():
    params = preset_params(PRESETS, "earlyexit")
    rendered = render_params(params)
    assert '"nsnet2-joint": ' not in rendered  # keys are YAML, values JSON
    assert 'nsnet2-static-gru1: {"kind": "nsnet2-static", "target_usage": null, "exit": "gru1"}' in rendered
    assert 'dense: {"kind": "dense", "target_usage": null}' in rendered
    assert validate_params(yaml.safe_load(rendered)).variants == params.variants
