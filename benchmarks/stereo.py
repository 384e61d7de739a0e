"""Genuine voices recorded in stereo: the product's downmix against the downmixes before it.

    python benchmarks/stereo.py [--root ../shared/data] [--speakers 40] [--lags 0 3 7 15 40]
        [--out benchmarks/results/stereo.json]

The first ``--speakers`` LibriSpeech evaluation speakers (``benchmarks/pairs/splits.json``) enroll
from their first file; their second file is checked as a two-channel recording, each channel with
its own faint noise (seeded, 50 dB below full scale):

- ``lags``: two microphones a little apart, the second hearing the voice ``lag`` samples later (16 kHz:
  3 samples is 6 cm of path, a phone's two microphones about 15 cm apart give up to 7);
- ``channels``: the second channel under white noise as loud as the voice or 5 dB below it (a
  covered or rubbing microphone), both under noise 10 dB below the voice, and the second holding
  another evaluation speaker (their last file) as loud as this one.

Counted: genuine checks accepted at ``medium`` through the product's downmix
(:func:`verify.io.downmix`), through session 14's (every channel aligned, then averaged) and
through the plain mean of the channels (before session 14).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.io import ALIGNMENT_WINDOW, MAX_CHANNEL_DELAY, align_channels, decode_audio, downmix  # noqa: E402
from verify.models import load_pipeline, shipped_verifier  # noqa: E402

SEED = 3
NOISE = 0.003  # per channel, about 50 dB below full scale


def delayed(speech: np.ndarray, lag: int) -> np.ndarray:
    """``speech`` heard ``lag`` samples later (zeros first)."""
    later = np.zeros_like(speech)
    later[lag:] = speech[:len(speech) - lag]
    return later


def every_channel_aligned(channels: np.ndarray, rate: int) -> np.ndarray:
    """Session 14's downmix: every channel aligned on the loudest, then all of them averaged."""
    loudest = int(np.argmax(np.mean(np.square(channels), axis=0)))
    aligned, _ = align_channels(channels, loudest, int(MAX_CHANNEL_DELAY * rate), int(ALIGNMENT_WINDOW * rate))
    return aligned.mean(axis=1)


def channel_cases(rng: np.random.Generator) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Name -> ``(voice, another voice) -> (T, 2)`` channels."""
    def noise(voice: np.ndarray, below_db: float) -> np.ndarray:
        return voice.std() * 10 ** (-below_db / 20) * rng.standard_normal(len(voice))

    return {
        "second channel under noise as loud as the voice": lambda voice, other: np.stack([voice, voice + noise(voice, 0)], 1),
        "second channel under noise 5 dB below the voice": lambda voice, other: np.stack([voice, voice + noise(voice, 5)], 1),
        "both channels under noise 10 dB below the voice": lambda voice, other: np.stack(
            [voice + noise(voice, 10), voice + noise(voice, 10)], 1),
        "another speaker, as loud, on the second channel": lambda voice, other: np.stack(
            [voice, np.resize(other, len(voice)) * voice.std() / other.std()], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--speakers", type=int, default=40)
    parser.add_argument("--lags", type=int, nargs="+", default=[0, 3, 7, 15, 40])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "stereo.json")
    args = parser.parse_args()
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]
    pipeline = load_pipeline("voice", "cpu")
    verifier = shipped_verifier(pipeline)
    people = sorted(split["evaluation"])[:args.speakers]
    checks = []
    for index, person in enumerate(people):
        enrollment, probe = sorted((args.root / split["folder"] / person).iterdir())[:2]
        other = sorted((args.root / split["folder"] / people[(index + 1) % len(people)]).iterdir())[-1]
        checks.append((pipeline.embed(enrollment).vector, decode_audio(probe), decode_audio(other)[0]))
    rng = np.random.default_rng(SEED)
    downmixes = {"product's downmix": downmix, "every channel aligned (session 14)": every_channel_aligned,
                 "plain mean": lambda channels, rate: channels.mean(axis=1)}
    cases = {f"lag of {lag} samples": (lambda lag: lambda voice, other: np.stack([voice, delayed(voice, lag)], 1))(lag)
             for lag in args.lags}
    cases.update(channel_cases(rng))
    report = {"command": "python " + " ".join(sys.argv), "speakers": len(checks), "cases": {}}
    print("| second channel | " + " | ".join(f"accepted, {name}" for name in downmixes) + " |")
    print("|---" * (len(downmixes) + 1) + "|")
    for case, make in cases.items():
        accepted = dict.fromkeys(downmixes, 0)
        for template, (speech, rate), other in checks:
            channels = make(speech, other)
            channels = (channels + NOISE * rng.standard_normal(channels.shape)).astype(np.float32)
            for name, mix in downmixes.items():
                mono = np.ascontiguousarray(mix(channels, rate), dtype=np.float32)
                accepted[name] += verifier.decide(template, pipeline.embed((mono, rate))).outcome == "accepted"
        report["cases"][case] = accepted
        print(f"| {case} | " + " | ".join(f"{count} of {len(checks)}" for count in accepted.values()) + " |", flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
