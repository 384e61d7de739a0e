"""Face + voice fusion on chimeric people: the LLR sum against the AND rule, at every level.

Evaluation halves of LFW (faces) and LibriSpeech (voices) are embedded under the condition
benchmark's conditions (benchmarks/conditions.py, same seed and cache); each face person is
paired with a voice person (no data set has both; several random pairings, pooled). A trial
enrolls a clean face and a clean voice and probes with a face and a voice of the conditions
named in the row. Each rule decides every trial: **AND** (each modality at its own level,
both must accept: the product's rule), **LLR sum** (the calibrated LLRs summed and held at the
fused thresholds of scripts/calibrate_fusion.py) and **LLR sum + veto** (the sum, with each
modality rejecting on its own below its `low` level's retry threshold, FAR 10 %).

A second table measures what zero-effort impostors do not: a **spoof of one modality**. The
enrolled person's own face (another photo of them, as a printed photo would be) is paired with an
impostor's voice, and the enrolled person's own voice (as a recording would be) with an
impostor's face; it prints how often each rule accepts such pairs. Prints Markdown tables and
writes benchmarks/results/fusion.json.

    python benchmarks/fusion.py [--root ../shared/data] [--cache .cache/conditions] [--seed 7] [--draws 3]
        [--max-faces N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from conditions import evaluation_files  # noqa: E402  (benchmarks/conditions.py)

from verify.conditions import (  # noqa: E402
    FACE_CONDITIONS,
    VOICE_CONDITIONS,
    TrialScores,
    and_rule_trials,
    chimeric_scores,
    embed_cached,
    llr_sum_trials,
    with_narrowband_copies,
)
from verify.config import SECURITY_LEVELS  # noqa: E402
from verify.metrics import levels_report  # noqa: E402
from verify.models import fusion_thresholds, load_pipeline, model_scorer  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "fusion.json"
SPOOF_PAIRS = 100_000
DATASETS = {"face": "lfw_gray", "voice": "librispeech"}
CONDITION_PAIRS = [("clean", "clean"), ("webcam", "clean"), ("clean", "1-3 s"), ("webcam", "1-3 s"),
                   ("clean", "1-2 s + babble 5-10 dB"), ("webcam", "1-2 s + babble 5-10 dB"),
                   ("webcam", "telephone"), ("webcam", "white noise 0-15 dB")]


def samples_of(modality: str, args: argparse.Namespace, max_people: int | None):
    """The evaluation people of the modality's data set, embedded under the benchmark conditions
    (voices enrolled with their narrowband copy, as the product enrolls them)."""
    dataset, pipeline = DATASETS[modality], load_pipeline(modality, "cpu")
    conditions = FACE_CONDITIONS if modality == "face" else VOICE_CONDITIONS
    samples = embed_cached(pipeline, args.root, evaluation_files(args.root, dataset, max_people), conditions,
                           args.seed, args.cache)
    route = model_scorer(modality).narrowband
    return samples if route is None else with_narrowband_copies(pipeline, route, args.root, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "conditions")
    parser.add_argument("--seed", type=int, default=7, help="seed of the degradations (as benchmarks/conditions.py)")
    parser.add_argument("--draws", type=int, default=3, help="random pairings of face and voice people")
    parser.add_argument("--max-faces", type=int, default=None, help="first N evaluation people of the face set")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    max_people = {"face": args.max_faces, "voice": None}
    sides = {modality: (model_scorer(modality), samples_of(modality, args, max_people[modality]))
             for modality in DATASETS}
    fused = fusion_thresholds()
    floors = [sides[modality][0].operating_point("low").retry_threshold for modality in DATASETS]
    thresholds = {  # in LLR units; AND holds each modality at its own threshold, shown as the lower
        "LLR sum": {level: fused.operating_point(level).threshold for level in SECURITY_LEVELS},
        "AND": {level: min(scorer.operating_point(level).threshold for scorer, _ in sides.values())
                for level in SECURITY_LEVELS},
    }
    thresholds["LLR sum + veto"] = thresholds["LLR sum"]
    rules = {"AND": and_rule_trials,
             "LLR sum": lambda parts: llr_sum_trials(parts, fused),
             "LLR sum + veto": lambda parts: llr_sum_trials(parts, fused, floors=floors)}
    rows, spoofs = [], []
    print("| face + voice probes | rule | genuine / impostor | "
          + " | ".join(f"{level}: FAR / FRR (retry)" for level in SECURITY_LEVELS) + " |")
    print("|---|---|---|" + "---|" * len(SECURITY_LEVELS))
    for face_condition, voice_condition in CONDITION_PAIRS:
        face, voice = chimeric_scores((*sides["face"], face_condition), (*sides["voice"], voice_condition),
                                      args.draws, args.seed)
        spoofs.append({"face": face_condition, "voice": voice_condition,
                       "accepted": spoof_rates(face, voice, rules, np.random.default_rng(args.seed))})
        for rule, fuse in rules.items():
            trials = fuse([face, voice])
            report = levels_report(trials.labels, trials.outcomes, thresholds[rule])
            rows.append({"face": face_condition, "voice": voice_condition, "rule": rule, "levels": report})
            genuine, impostor = int(trials.labels.sum()), int((~trials.labels).sum())
            cells = " | ".join(f"{report[level]['far']:.3%} / {report[level]['frr']:.2%} ({report[level]['retry']:.2%})"
                               for level in SECURITY_LEVELS)
            print(f"| {face_condition} + {voice_condition} | {rule} | {genuine:,} / {impostor:,} | {cells} |",
                  flush=True)
    print("\n| face + voice probes | spoofed | " + " | ".join(f"{rule}: accepted at low / medium / high"
                                                          for rule in rules) + " |")
    print("|---|---|" + "---|" * len(rules))
    for row in spoofs:
        for spoofed in ("face", "voice"):
            cells = " | ".join(" / ".join(f"{row['accepted'][spoofed][rule][level]:.2%}" for level in SECURITY_LEVELS)
                               for rule in rules)
            print(f"| {row['face']} + {row['voice']} | {spoofed} | {cells} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "seed": args.seed,
                                    "draws": args.draws, "floors": floors, "rows": rows, "spoofs": spoofs},
                                   indent=1) + "\n")


def spoof_rates(face: TrialScores, voice: TrialScores, rules: dict, rng: np.random.Generator,
                pairs: int = SPOOF_PAIRS) -> dict:
    """How often each rule accepts a spoofed modality: ``{"face"|"voice": {rule: {level: rate}}}``.

    "face" pairs a genuine face trial (the enrolled person's own photo) with an impostor voice
    trial; "voice" a genuine voice trial with an impostor face trial; ``pairs`` seeded draws each.
    """
    rates = {}
    for spoofed, owner, attacker in (("face", face, voice), ("voice", voice, face)):
        owned = owner.take(rng.choice(np.nonzero(owner.labels)[0], pairs))
        other = attacker.take(rng.choice(np.nonzero(~attacker.labels)[0], pairs))
        parts = [owned, other] if spoofed == "face" else [other, owned]
        rates[spoofed] = {rule: {level: float(np.mean(answer == "accepted"))
                                 for level, answer in fuse(parts).outcomes.items()} for rule, fuse in rules.items()}
    return rates


if __name__ == "__main__":
    main()
