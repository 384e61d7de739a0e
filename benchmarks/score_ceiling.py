"""How far any threshold could take the shipped embeddings: FRR at a fixed FAR, the threshold set on
the very trials it is measured on (an oracle), for each scoring of the same embeddings.

    python benchmarks/score_ceiling.py [--modality voice] [--root ../shared/data] [--seed 7]
        [--max-people N] [--cache .cache/conditions] [--out benchmarks/results/score_ceiling_voice.json]

The trials are those of ``benchmarks/conditions.py`` (evaluation people, one clean enrollment that
enrollment accepts against every other file, clean or degraded, the same seed). Scorings: the raw
cosine, and the cosine normalised against the shipped cohort on the enrollment's side (Z-norm), on
the probe's side (T-norm) and on both (adaptive S-norm, what ships before its calibration). For
each, the FRR at the threshold that lets exactly ``FAR`` of these impostor trials through, at the
FARs of the ``medium`` (0.1 %) and ``low`` (1 %) levels. The shipped scoring, with its
calibration's own thresholds, can only do worse than its oracle row; an FRR no scoring reaches
here is beyond any threshold or calibration of these embeddings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conditions import CONDITIONS, DATASETS, evaluation_files  # noqa: E402

from verify.conditions import condition_trials, embed_cached  # noqa: E402
from verify.models import load_pipeline, model_scorer  # noqa: E402
from verify.normalization import s_norm_many  # noqa: E402

FARS = {"medium": 0.001, "low": 0.01}


def frr_at_far(scores: np.ndarray, genuine: np.ndarray, far: float) -> float:
    """FRR at the lowest threshold that accepts at most ``far`` of the impostor scores."""
    impostors = np.sort(scores[~genuine])[::-1]
    threshold = impostors[int(far * len(impostors))]
    return float((scores[genuine] <= threshold).mean())


def scorings(samples, enroll: np.ndarray, probe: np.ndarray, means: np.ndarray, stds: np.ndarray) -> dict:
    """Each scoring's ``(N,)`` scores of the trials ``(enroll, probe)``."""
    cosines = np.einsum("ij,ij->i", samples.vectors[enroll], samples.vectors[probe]).astype(np.float64)
    return {
        "cosine": cosines,
        "z-norm": (cosines - means[enroll]) / stds[enroll],
        "t-norm": (cosines - means[probe]) / stds[probe],
        "s-norm": s_norm_many(cosines, means[enroll], stds[enroll], means[probe], stds[probe]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=sorted(DATASETS), default="voice")
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-people", type=int, default=None)
    parser.add_argument("--max-impostors", type=int, default=300_000)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    dataset = DATASETS[args.modality][0]
    files = evaluation_files(args.root, dataset, args.max_people)
    samples = embed_cached(load_pipeline(args.modality, "cpu"), args.root, files, CONDITIONS[args.modality],
                           args.seed, args.cache)
    cohort = model_scorer(args.modality).cohort
    means, stds = cohort.statistics(samples.vectors)
    report = {"command": "python benchmarks/score_ceiling.py --modality " + args.modality, "dataset": dataset,
              "fars": FARS, "conditions": {}}
    lines = ["| condition | " + " | ".join(f"{name}: FRR @ FAR {far:.1%}" for name, far in FARS.items()) + " |"]
    for condition in CONDITIONS[args.modality]:
        enroll, probe = condition_trials(samples, condition, args.max_impostors, args.seed)
        genuine = samples.people[enroll] == samples.people[probe]
        found = {scoring: {level: round(frr_at_far(scores, genuine, far), 5) for level, far in FARS.items()}
                 for scoring, scores in scorings(samples, enroll, probe, means, stds).items()}
        report["conditions"][condition] = {"genuine": int(genuine.sum()), "impostor": int((~genuine).sum()),
                                           "frr": found}
        cells = [" / ".join(f"{found[scoring][level]:.2%}" for scoring in found) for level in FARS]
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    print("FRR of " + " / ".join(report["conditions"][next(iter(report["conditions"]))]["frr"]) + "\n" + "\n".join(lines))
    out = args.out or REPO / "benchmarks" / "results" / f"score_ceiling_{args.modality}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
