"""Measure a shipped model's near-identical (replay) cosine threshold on ../shared/data.

The threshold must never fire on two *different* genuine samples of one person. It is the
largest cosine over the genuine pairs of different files of the calibration identities
(benchmarks/pairs/splits.json), plus a margin of half the remaining gap to 1 (at least
``--min-margin``). The evaluation identities (and ORL, evaluation only) are then checked: the
file records how many of their genuine pairs reach it (should be none). Pairs of files whose
decoded content is identical (the same photo stored twice) are not different samples: they are
counted and left out. Writes assets/models/<model_id>.replay.json.

    python scripts/replay_threshold.py --modality face|voice [--data ../shared/data] [--device auto]

Embeddings are cached by training.features in .cache/features (delete it after a model change).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.features import FeatureSet, load_features  # noqa: E402
from verify.io import decode_audio, decode_image  # noqa: E402
from verify.models import model_spec  # noqa: E402
from verify.replay import ReplayThreshold, replay_threshold_path, save_replay_threshold  # noqa: E402

DATASETS = {"face": ["lfw_gray", "orl_att"], "voice": ["librispeech", "fsdd"]}
TOP_PAIRS = 5


def content_key(path: Path, modality: str) -> str:
    """sha256 of a file's decoded pixels or samples: equal for the same content stored twice."""
    data = decode_image(path) if modality == "face" else decode_audio(path)[0]
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()


def genuine_pairs(features: FeatureSet, people: set[str], data: Path, modality: str) -> dict:
    """Cosines of every pair of different files of one person among ``people``, highest first."""
    cosines, pairs, duplicates = [], [], 0
    for person in sorted(people):
        rows = np.flatnonzero(features.identities == person)
        if len(rows) < 2:
            continue
        keys = [content_key(data / features.paths[row], modality) for row in rows]
        matrix = features.vectors[rows] @ features.vectors[rows].T
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                if keys[i] == keys[j]:
                    duplicates += 1
                    continue
                cosines.append(float(matrix[i, j]))
                pairs.append((features.paths[rows[i]], features.paths[rows[j]]))
    order = np.argsort(cosines)[::-1]
    return {"cosines": np.asarray(cosines)[order], "pairs": [pairs[k] for k in order], "duplicates": duplicates}


def summary(measured: dict, threshold: float | None = None) -> dict:
    cosines = measured["cosines"]
    row = {"genuine_pairs": int(len(cosines)), "identical_content_pairs_left_out": measured["duplicates"],
           "max_cosine": round(float(cosines[0]), 6) if len(cosines) else None,
           "p99_cosine": round(float(np.quantile(cosines, 0.99)), 6) if len(cosines) else None,
           "top_pairs": [[a, b, round(float(c), 6)] for (a, b), c in zip(measured["pairs"][:TOP_PAIRS], cosines)]}
    if threshold is not None:
        row["pairs_at_or_above_threshold"] = int(np.sum(cosines >= threshold))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=sorted(DATASETS), required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--min-margin", type=float, default=0.002)
    args = parser.parse_args()
    splits = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())
    calibration, evaluation = {}, {}
    for dataset in DATASETS[args.modality]:
        features = load_features(dataset, args.data, device=args.device)
        for half, into in (("calibration", calibration), ("evaluation", evaluation)):
            if splits[dataset][half]:
                into[dataset] = genuine_pairs(features, set(splits[dataset][half]), args.data, args.modality)
    largest = max(float(m["cosines"][0]) for m in calibration.values() if len(m["cosines"]))
    margin = max(args.min_margin, (1.0 - largest) / 2)
    threshold = min(largest + margin, 1.0)
    spec = model_spec(args.modality)
    provenance = {
        "rule": "largest genuine cosine of different calibration files + max(min_margin, half the gap to 1)",
        "largest_calibration_cosine": round(largest, 6), "margin": round(margin, 6),
        "calibration": {name: summary(m) for name, m in calibration.items()},
        "evaluation_check": {name: summary(m, threshold) for name, m in evaluation.items()},
        "model_version": spec.version,
        "command": f"python scripts/replay_threshold.py --modality {args.modality}",
        "date": datetime.date.today().isoformat(),
    }
    result = ReplayThreshold(spec.model_id, threshold, provenance)
    save_replay_threshold(replay_threshold_path(spec.model_id), result)
    print(json.dumps({"near_identical_cosine": round(threshold, 6), **provenance}, indent=1))


if __name__ == "__main__":
    main()
