"""How much of another microphone's cost a low-cut copy of the enrollment would take back (a
measurement for a design not in the product).

    python benchmarks/voice_low_cut.py [--root ../shared/data] [--corners 100 150 200]
        [--out benchmarks/results/voice_low_cut.json]

The microphone condition (``verify.voice.degrade.microphone``: a high-pass at 60-250 Hz, shelves, a
presence peak) costs the most of the voice conditions no calibration saw, and its high-pass costs
nearly all of it. Every LibriSpeech clip of each half of ``benchmarks/pairs/splits.json`` is
enrolled clean and probed by every other clip, clean and through a seeded microphone; scores are
raw cosines (no cohort, no calibration), each half on its own. Templates compared:

- ``plain``: the clip's embedding, as shipped;
- ``best of plain and low-cut``: the score is the higher of the probe's cosines to the plain
  embedding and to the embedding of the clip through a 4th-order Butterworth high-pass at the
  corner (the template would keep both, as it keeps a narrowband copy);
- ``mean of plain and low-cut``: one template, the normalised mean of the two.

For each: the EER and the FRR at the threshold that lets 0.1 % of that scoring's own impostor
trials through (the ``medium`` level's FAR), clean and microphone probes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import signal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from score_ceiling import frr_at_far  # noqa: E402

from verify.io import decode_audio  # noqa: E402
from verify.metrics import equal_error_rate  # noqa: E402
from verify.models import load_pipeline  # noqa: E402
from verify.voice import degrade  # noqa: E402

SEED = 11
FAR = 0.001


def figures(scores: np.ndarray, genuine: np.ndarray) -> dict:
    """EER and the FRR at the threshold that accepts ``FAR`` of the impostor scores (fractions)."""
    return {"eer": round(equal_error_rate(scores, genuine.astype(float))[0], 5),
            "frr_at_far_0.1%": round(frr_at_far(scores, genuine, FAR), 5)}


def measure_half(pipeline, root: Path, half: str, corners: list[float]) -> dict:
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]
    files = [(person, path) for person in sorted(split[half])
             for path in sorted((root / split["folder"] / person).iterdir()) if path.is_file()]
    clips = [decode_audio(path)[0] for _, path in files]
    people = np.array([person for person, _ in files])
    trials = ~np.eye(len(files), dtype=bool)  # every enrollment against every other clip
    genuine = (people[:, None] == people[None, :])[trials]

    def embed(samples: list[np.ndarray]) -> np.ndarray:
        return np.stack([result.vector for result in pipeline.embed_many([(clip, degrade.SAMPLE_RATE) for clip in samples])])

    plain = embed(clips)
    probes = {"clean": plain,
              "microphone": embed([degrade.microphone(clip, np.random.default_rng([SEED, index]))
                                   for index, clip in enumerate(clips)])}
    report = {"people": len(set(people)), "files": len(files), "genuine": int(genuine.sum()),
              "impostor": int((~genuine).sum()), "templates": {}}
    report["templates"]["plain"] = {name: figures((plain @ probe.T)[trials], genuine) for name, probe in probes.items()}
    for corner in corners:
        sections = signal.butter(4, corner, btype="highpass", fs=degrade.SAMPLE_RATE, output="sos")
        low_cut = embed([signal.sosfilt(sections, clip).astype(np.float32) for clip in clips])
        mean = plain + low_cut
        mean /= np.linalg.norm(mean, axis=1, keepdims=True)
        report["templates"][f"best of plain and low-cut {corner:.0f} Hz"] = {
            name: figures(np.maximum(plain @ probe.T, low_cut @ probe.T)[trials], genuine) for name, probe in probes.items()}
        report["templates"][f"mean of plain and low-cut {corner:.0f} Hz"] = {
            name: figures((mean @ probe.T)[trials], genuine) for name, probe in probes.items()}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--corners", type=float, nargs="+", default=[100.0, 150.0, 200.0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "voice_low_cut.json")
    args = parser.parse_args()
    pipeline = load_pipeline("voice", "cpu")
    report = {"command": "python " + " ".join(sys.argv), "seed": SEED, "halves": {}}
    print("| half | template | clean: EER / FRR @ FAR 0.1 % | microphone: EER / FRR @ FAR 0.1 % |")
    print("|---|---|---|---|")
    for half in ("calibration", "evaluation"):
        found = report["halves"][half] = measure_half(pipeline, args.root, half, args.corners)
        for template, rows in found["templates"].items():
            cells = " | ".join(f"{rows[name]['eer']:.2%} / {rows[name]['frr_at_far_0.1%']:.2%}" for name in ("clean", "microphone"))
            print(f"| {half} | {template} | {cells} |", flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
