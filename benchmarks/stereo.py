"""Genuine voices recorded in stereo by two microphones a little apart: the product's downmix
against the plain mean of the channels.

    python benchmarks/stereo_delay.py [--root ../shared/data] [--speakers 40] [--lags 0 3 7 15 40]
        [--out benchmarks/results/stereo_delay.json]

The first ``--speakers`` LibriSpeech evaluation speakers (``benchmarks/pairs/splits.json``) enroll
from their first file; their second file is checked as a two-channel recording whose second
channel hears the voice ``lag`` samples later (16 kHz: 3 samples is 6 cm of path, a phone's two
microphones about 15 cm apart give up to 7), each channel with its own faint noise (seeded, 50 dB
below full scale). Counted: genuine checks accepted at ``medium`` when the channels go through
the product's downmix (:func:`verify.io.downmix`, aligned first) and when they are averaged as
they are (before session 14).
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

SEED = 3
NOISE = 0.003  # per channel, about 50 dB below full scale


def delayed(speech: np.ndarray, lag: int) -> np.ndarray:
    """``speech`` heard ``lag`` samples later (zeros first)."""
    later = np.zeros_like(speech)
    later[lag:] = speech[:len(speech) - lag]
    return later


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--speakers", type=int, default=40)
    parser.add_argument("--lags", type=int, nargs="+", default=[0, 3, 7, 15, 40])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "stereo_delay.json")
    args = parser.parse_args()
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]
    pipeline = load_pipeline("voice", "cpu")
    verifier = shipped_verifier(pipeline)
    pairs = []
    for person in sorted(split["evaluation"])[:args.speakers]:
        enrollment, probe = sorted((args.root / split["folder"] / person).iterdir())[:2]
        pairs.append((pipeline.embed(enrollment).vector, decode_audio(probe)))
    rng = np.random.default_rng(SEED)
    report = {"command": "python " + " ".join(sys.argv), "speakers": len(pairs), "lags": {}}
    print("| lag (samples at 16 kHz) | accepted, product's downmix | accepted, plain mean |")
    print("|---|---|---|")
    for lag in args.lags:
        accepted = {"downmix": 0, "plain mean": 0}
        for template, (speech, rate) in pairs:
            channels = np.stack([speech, delayed(speech, lag)], axis=1)
            channels = (channels + NOISE * rng.standard_normal(channels.shape)).astype(np.float32)
            for way, sample in (("downmix", (channels, rate)), ("plain mean", (channels.mean(axis=1), rate))):
                accepted[way] += verifier.decide(template, pipeline.embed(sample)).outcome == "accepted"
        report["lags"][str(lag)] = accepted
        print(f"| {lag} | {accepted['downmix']} of {len(pairs)} | {accepted['plain mean']} of {len(pairs)} |", flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
