"""Reading the real corpora's archives: DEMAND noise per split, VoiceBank logs, official splits, params."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from maskscope.core.audio import decode_audio, quantize_pcm16, resample
from maskscope.core.errors import InputFormatError, MissingInputError, ParamsError
from maskscope.data.splits import listed_splits
from maskscope.data.voicebank_demand import parse_vbd_log
from maskscope.pipeline.config import Params, validate_params
from maskscope.pipeline.runner import run_stage

SECONDS = 4
TWO_LSB = 2 / 32768  # a 16-bit encode of float audio rounds by up to one step, libsndfile's scaling by another


def demand_archive(path: Path, environment: str, rate: int, seed: int) -> np.ndarray:
    """A DEMAND-shaped archive `<ENV>/ch01.wav … ch03.wav`; returns channel 1."""
    rng = np.random.default_rng(seed)
    channels = [(0.1 * rng.standard_normal(SECONDS * rate)).astype(np.float32) for _ in range(3)]
    with zipfile.ZipFile(path, "w") as archive:
        for number, audio in enumerate(channels, 1):
            buffer = io.BytesIO()
            sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
            archive.writestr(f"{environment}/ch{number:02d}.wav", buffer.getvalue())
    return quantize_pcm16(channels[0])


def test_demand_noises_are_cut_in_time_per_split(tmp_path):
    demand = tmp_path / "data/archives/demand"
    demand.mkdir(parents=True)
    kitchen = demand_archive(demand / "DKITCHEN_16k.zip", "DKITCHEN", 16_000, 1)
    cafe = demand_archive(demand / "SCAFE_48k.zip", "SCAFE", 48_000, 2)  # SCAFE exists only at 48 kHz
    corpus = tmp_path / "data/corpus"
    corpus.mkdir(parents=True)
    speakers = [(f"voice{i}", f"family{i}", "synthetic") for i in range(4)]
    speakers += [(f"real{i}", f"real{i}", "real") for i in range(3)]
    pq.write_table(
        pa.Table.from_pylist([{"speaker": s, "family": f, "kind": k} for s, f, k in speakers]),
        corpus / "manifest.parquet",
    )
    params = Params().model_dump(mode="json")
    params["download"]["corpora"] = ["demand"]
    params["noises"].update(source="demand", classes=["DKITCHEN", "SCAFE"])
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    outs = {"noises": tmp_path / "data/noises"}
    deps = {"corpus": corpus, "archives": tmp_path / "data/archives"}
    run_stage("noises", params_file, ["seed", "splits", "noises"], deps, outs, workers=1)

    rows = pq.read_table(outs["noises"] / "noises.parquet").to_pylist()
    assert {(row["split"], row["noise_class"]) for row in rows} == {
        (split, name) for split in ("train", "valid", "test") for name in ("DKITCHEN", "SCAFE")
    }
    stored = {(row["split"], row["noise_class"]): decode_audio(row["audio"], "row") for row in rows}
    n = SECONDS * 16_000
    expected_kitchen = {"train": kitchen[: int(0.6 * n)], "valid": kitchen[int(0.6 * n) : int(0.75 * n)]}
    expected_kitchen["test"] = kitchen[int(0.75 * n) :]
    for split, segment in expected_kitchen.items():
        np.testing.assert_allclose(stored[(split, "DKITCHEN")], segment, atol=TWO_LSB)
    resampled = resample(cafe, 48_000)
    assert resampled.size == n
    np.testing.assert_allclose(stored[("train", "SCAFE")], quantize_pcm16(resampled[: int(0.6 * n)]), atol=TWO_LSB)
    assert not list((tmp_path / "data").glob(".*tmp-*"))  # no scratch or temporary left


def test_a_missing_demand_archive_names_the_file_and_the_fix(tmp_path):
    from maskscope.data.voicebank_demand import demand_recording

    (tmp_path / "demand").mkdir()
    with pytest.raises(MissingInputError, match=r"TBUS_16k\.zip.*download\.corpora"):
        demand_recording(tmp_path, "TBUS", tmp_path / "out")
    with pytest.raises(MissingInputError, match=r"SCAFE_48k\.zip"):  # published only at 48 kHz
        demand_recording(tmp_path, "SCAFE", tmp_path / "out")


def test_a_scratch_left_by_a_killed_run_goes_when_the_output_is_next_claimed(tmp_path):
    from maskscope.core.io import atomic_output_dir
    from maskscope.data.voicebank_demand import unpacked

    archive = tmp_path / "DKITCHEN_16k.zip"
    demand_archive(archive, "DKITCHEN", 16_000, 3)
    output = tmp_path / "data" / "noises"
    with unpacked(archive, output) as root:
        scratch = root.parent
        assert scratch.parent == output.parent and (root / "DKITCHEN" / "ch01.wav").is_file()
        killed = scratch.parent / (scratch.name + "-killed")  # named like the scratch of a killed run
        killed.mkdir()
    assert killed.is_dir() and not scratch.exists()
    with atomic_output_dir(output):
        assert not killed.exists()


def test_vbd_log_lines_are_parsed_and_a_bad_line_is_named(tmp_path):
    log = tmp_path / "log_testset.txt"
    log.write_text("p232_001 office 17.5\n\np257_002 living 2.5\n")
    assert parse_vbd_log(log) == {"p232_001": ("office", 17.5), "p257_002": ("living", 2.5)}
    log.write_text("p232_001 office 17.5\np232_002 office\n")
    with pytest.raises(InputFormatError, match=r"log_testset\.txt, line 2"):
        parse_vbd_log(log)


def test_listed_splits_put_the_named_speakers_aside():
    splits = listed_splits(["p226", "p287", "p230", "p232"], ["p226", "p287"], ["p232"])
    assert splits == {"p226": "valid", "p287": "valid", "p230": "train", "p232": "test"}
    with pytest.raises(ParamsError, match="p999"):
        listed_splits(["p226", "p232"], ["p999"], ["p232"])
    with pytest.raises(ParamsError, match="share"):
        listed_splits(["p226", "p232"], ["p226"], ["p226"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"corpus": {"source": "vbd"}}, "download.corpora' must include 'vbd'"),
        ({"noises": {"source": "demand"}}, "not demand noise classes"),
        ({"noises": {"classes": ["white", "TBUS"]}}, "not embedded noise classes"),
        ({"mix": {"source": "vbd"}}, "needs corpus.source 'vbd'"),
        ({"splits": {"valid_speakers": ["p226"]}}, "go together"),
    ],
)
def test_real_corpus_settings_that_cannot_work_together_are_refused(change, message):
    data = Params().model_dump(mode="json")
    for section, values in change.items():
        data[section].update(values)
    with pytest.raises(ParamsError, match=message.replace(".", r"\.").replace("(", r"\(")):
        validate_params(data, "params.yaml")
