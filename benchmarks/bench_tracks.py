"""What `maskscope enhance --tracks` adds to the enhance pass, measured (never asserted).

    python benchmarks/bench_tracks.py [--bundle data/probes/bundles/dyncp-25] [--utterances 20] [--repeats 5]

On the first test mixtures of the last pipeline run (`data/mix`), with the bundle's own model and
probes: CPU time per frame of the streaming enhance pass (STFT, sparse kernel, iSTFT), and of the
tracks read from that pass's gates (the four weight tables and the noise class's running mean), each
the least of `--repeats` runs per utterance after a warm-up; and the operations the probes add per
frame (additions over open selected gates at the measured open fraction, decisions, running mean).
One thread. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from maskscope.analysis.baselines import timed
from maskscope.core.audio import SAMPLE_RATE, decode_audio
from maskscope.core.constants import MODEL_FILE
from maskscope.core.io import read_shards
from maskscope.evaluation.tracks import frame_tracks, read_probes
from maskscope.models.checkpoint import load_model
from maskscope.models.streaming import StreamingFSENet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("data/probes/bundles/dyncp-25"))
    parser.add_argument("--mix", type=Path, default=Path("data/mix"))
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = read_probes(args.bundle)
    model, _ = load_model(args.bundle / MODEL_FILE)
    streaming = StreamingFSENet.from_model(model)
    rows = read_shards(args.mix, "test", ["utt_id", "noisy"]).to_pylist()[: args.utterances]
    audio = [decode_audio(row["noisy"], row["utt_id"]) for row in rows]
    streaming.enhance_with_gates(audio[0][:4096])  # compile outside the timing
    frame_tracks(bundle, streaming.enhance_with_gates(audio[0])[1], SAMPLE_RATE)
    enhance_seconds = tracks_seconds = 0.0
    frames = 0
    open_bits = {task: 0.0 for task in bundle.probes}
    for noisy in audio:
        enhanced = timed(lambda noisy=noisy: streaming.enhance_with_gates(noisy), args.repeats)
        gates = enhanced.value[1]
        enhance_seconds += enhanced.cpu_seconds
        tracks_seconds += timed(lambda gates=gates: frame_tracks(bundle, gates, SAMPLE_RATE), args.repeats).cpu_seconds
        frames += len(gates)
        bits = gates.reshape(len(gates), -1)
        for task, probe in bundle.probes.items():
            open_bits[task] += float(bits[:, probe.bits].sum())
    added_ops = {
        task: round(probe.ops_per_frame(open_bits[task] / (frames * len(probe.bits))), 1)
        for task, probe in bundle.probes.items()
    }
    added_ops["noise"] += bundle.probes["noise"].running_mean_ops()
    result = {
        "machine": platform.processor() or platform.machine(),
        "bundle": str(args.bundle),
        "utterances": len(audio),
        "frames": frames,
        "k_bits": {task: len(probe.bits) for task, probe in bundle.probes.items()},
        "enhance_us_per_frame": round(1e6 * enhance_seconds / frames, 2),
        "tracks_us_per_frame": round(1e6 * tracks_seconds / frames, 2),
        "tracks_added_percent": round(100 * tracks_seconds / enhance_seconds, 2),
        "added_ops_per_frame": added_ops,
        "added_ops_per_frame_total": round(sum(added_ops.values()), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
