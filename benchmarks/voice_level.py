"""How much a voice's embedding depends on its recording level, with the shipped level rule and
with every clip brought to the same level.

    python benchmarks/voice_level.py [--root ../shared/data] [--out benchmarks/results/voice_level.json]

The voice front end scales speech quieter than -30 dBFS RMS up to it and leaves louder speech as
it is (``verify.voice.frontend.normalize_level``, as Resemblyzer's ``normalize_volume`` with
``increase_only``), and the encoder reads mel power, not its log: a loud recording therefore
embeds differently from the same recording a few dB quieter. This script measures, for the
shipped rule, for "always" (every clip scaled to -30 dBFS, up or down) and for a ceiling (the
shipped rule, and speech louder than -20 or -25 dBFS brought down to it):

- ``gain_invariance``: the cosine between the embedding of each of the first 60 LibriSpeech
  evaluation files and that of the same file at -20 / -10 / -3 / +3 dB (files a gain would clip
  are left out of that gain), median and 10th percentile;
- ``trials``: raw-cosine EER and genuine trials refused at FAR 0.1 % and 1 % (thresholds set on
  the same trials: no S-norm, no calibration) on both halves of LibriSpeech's people, clean
  enrollments against probes clean, under the level changes of ``verify.conditions`` (-30 to +20
  dB, clipped), cut to 1-3 s, and under white noise (seeds as ``scripts/calibrate.py`` (0) and
  ``benchmarks/conditions.py`` (7) draw them).

The rule is swapped inside this process only; the shipped models, cohort and calibration are
fitted with the shipped rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from calibrate import calibration_files  # noqa: E402
from conditions import evaluation_files  # noqa: E402

import verify.voice.frontend as frontend  # noqa: E402
from verify.conditions import CLEAN, VOICE_CONDITIONS, condition_trials, embed_under_conditions  # noqa: E402
from verify.io import decode_audio  # noqa: E402
from verify.metrics import equal_error_rate  # noqa: E402
from verify.models import load_pipeline  # noqa: E402

GAINS_DB = (-20.0, -10.0, -3.0, 3.0)
INVARIANCE_FILES = 60
CONDITIONS = (CLEAN, "level changes", "1-3 s", "white noise 0-15 dB")
SEEDS = {"calibration": 0, "evaluation": 7}


def to_target_level(samples: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Every clip scaled to ``target_dbfs`` RMS, louder ones down as well as quieter ones up."""
    return samples * float(10 ** ((target_dbfs - frontend.level_dbfs(samples)) / 20))


def under_ceiling(ceiling_dbfs: float):
    """The shipped rule, then speech louder than ``ceiling_dbfs`` RMS brought down to it."""
    shipped = frontend.normalize_level

    def normalize(samples: np.ndarray, target_dbfs: float) -> np.ndarray:
        level = frontend.level_dbfs(samples)
        return samples * float(10 ** ((ceiling_dbfs - level) / 20)) if level > ceiling_dbfs else shipped(samples, target_dbfs)

    return normalize


RULES = {"increase only": None, "always": to_target_level,
         "ceiling -20 dBFS": under_ceiling(-20.0), "ceiling -25 dBFS": under_ceiling(-25.0)}
"""The level rules compared, by name (``None``: the shipped one)."""


@contextmanager
def level_rule(name: str) -> Iterator[None]:
    """The front end's level rule within the block: one of :data:`RULES`."""
    shipped = frontend.normalize_level
    frontend.normalize_level = RULES[name] or shipped
    try:
        yield
    finally:
        frontend.normalize_level = shipped


def refused_at(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """Share of genuine scores at or under the threshold that lets ``far`` of the impostors through."""
    impostors = np.sort(scores[~labels])
    threshold = impostors[int(np.ceil((1 - far) * len(impostors))) - 1]
    return float(np.mean(scores[labels] <= threshold))


def gain_invariance(pipeline, clips: list[tuple[np.ndarray, int]]) -> dict[str, dict[str, float]]:
    """Median and 10th percentile cosine of each clip's embedding to its copy at each gain."""
    plain = [pipeline.embed(clip).vector for clip in clips]
    found = {}
    for gain in GAINS_DB:
        scale = 10 ** (gain / 20)
        kept = [index for index, (samples, _) in enumerate(clips) if np.abs(samples).max() * scale < 1.0]
        cosines = [float(plain[index] @ pipeline.embed((clips[index][0] * scale, clips[index][1])).vector)
                   for index in kept]
        found[f"{gain:+g} dB"] = {"files": len(kept), "median": round(float(np.median(cosines)), 4),
                                  "p10": round(float(np.percentile(cosines, 10)), 4)}
    return found


def trial_figures(pipeline, root: Path, half: str) -> dict[str, dict[str, float]]:
    """Raw-cosine figures of one half's people in each of :data:`CONDITIONS`."""
    files = evaluation_files(root, "librispeech", None) if half == "evaluation" else calibration_files(root, "librispeech")
    samples = embed_under_conditions(pipeline, root, files, {name: VOICE_CONDITIONS[name] for name in CONDITIONS}, SEEDS[half])
    figures = {}
    for name in CONDITIONS:
        enroll, probe = condition_trials(samples, name, 300_000, SEEDS[half])
        scores = np.einsum("ij,ij->i", samples.vectors[enroll], samples.vectors[probe])
        labels = samples.people[enroll] == samples.people[probe]
        figures[name] = {"eer": round(equal_error_rate(scores, labels)[0], 5),
                         "refused_far_0.1%": round(refused_at(scores, labels, 1e-3), 4),
                         "refused_far_1%": round(refused_at(scores, labels, 1e-2), 4)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "voice_level.json")
    args = parser.parse_args()
    pipeline = load_pipeline("voice", "cpu")
    clips = [decode_audio(args.root / path) for _, path in evaluation_files(args.root, "librispeech", None)[:INVARIANCE_FILES]]
    report = {"command": "python " + " ".join(sys.argv), "rules": {}}
    for rule in RULES:
        with level_rule(rule):
            report["rules"][rule] = {"gain_invariance": gain_invariance(pipeline, clips),
                                     "trials": {half: trial_figures(pipeline, args.root, half) for half in SEEDS}}
        print(rule, json.dumps(report["rules"][rule], indent=1), flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
