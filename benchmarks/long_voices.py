"""Decisions on voice probes longer than the 3-4 s clips calibration was fitted on.

    python benchmarks/long_voices.py [--root ../shared/data] [--out benchmarks/results/long_voices.json]

Every evaluation speaker of LibriSpeech (``benchmarks/pairs/splits.json``) with three segments is
enrolled from its first segment and probed, through the shipped scoring at ``medium``, by its
second segment alone (3-4 s of speech) and by its second and third joined (7-8 s: other words
of the same reading), each against every other speaker's probe of the same length for the
impostor trials. Longer speech should never make a genuine decision worse.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.io import decode_audio  # noqa: E402
from verify.models import load_pipeline, shipped_verifier  # noqa: E402

LEVEL = "medium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "long_voices.json")
    args = parser.parse_args()
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]
    folder = args.root / split["folder"]
    speakers = [person for person in sorted(split["evaluation"]) if len(list((folder / person).glob("*.flac"))) == 3]
    pipeline = load_pipeline("voice", "cpu")
    verifier = shipped_verifier(pipeline, LEVEL)
    segments = {person: [decode_audio(folder / person / f"{index}.flac")[0] for index in range(3)] for person in speakers}
    templates = {person: pipeline.embed((segments[person][0], 16_000)).vector for person in speakers}
    probes = {"one segment": {person: pipeline.embed((segments[person][1], 16_000)) for person in speakers},
              "two segments": {person: pipeline.embed((np.concatenate(segments[person][1:]), 16_000)) for person in speakers}}
    report = {"command": "python " + " ".join(sys.argv), "level": LEVEL, "speakers": len(speakers), "probes": {}}
    print(f"| probe | speech (median) | genuine: accepted / retry / rejected | median genuine LLR | impostor trials | FAR at {LEVEL} |")
    print("|---|---|---|---|---|---|")
    for name, embedded in probes.items():
        genuine = [verifier.decide(templates[person], embedded[person]) for person in speakers]
        impostor = [verifier.decide(templates[person], embedded[other]).outcome
                    for person in speakers for other in speakers if other != person]
        outcomes = [decision.outcome for decision in genuine]
        found = report["probes"][name] = {
            "speech_seconds_median": round(float(np.median([embedded[p].measures["speech_seconds"] for p in speakers])), 2),
            **{outcome: outcomes.count(outcome) for outcome in ("accepted", "retry", "rejected")},
            "genuine_llr_median": round(float(np.median([decision.llr for decision in genuine])), 3),
            "impostor_trials": len(impostor), "far": round(impostor.count("accepted") / len(impostor), 6)}
        print(f"| {name} | {found['speech_seconds_median']} s | {found['accepted']} / {found['retry']} / {found['rejected']} | "
              f"{found['genuine_llr_median']:.2f} | {len(impostor):,} | {found['far']:.3%} |", flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
