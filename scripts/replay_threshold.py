"""Measure a shipped model's near-identical (replay) cosine threshold on ../shared/data.

The threshold must never fire on two *different* genuine samples of one person. It is the
largest cosine over the genuine pairs of different files of the calibration identities
(benchmarks/pairs/splits.json), plus a margin of half the remaining gap to 1 (at least
``--min-margin``). The evaluation identities (and ORL, evaluation only) are then checked: the
file records how many of their genuine pairs reach it (should be none). Pairs of files whose
decoded content is identical (the same photo stored twice) are not different samples: they are
counted and left out. Altered copies of some calibration files (re-encoded, resized, shifted,
brighter, noisier; for voices quieter, telephone band, noisier, trimmed, 8-bit) show what the
threshold catches beyond byte-identical copies. Writes assets/models/<model_id>.replay.json.

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

import cv2
import numpy as np
from scipy.signal import resample_poly

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


FACE_COPIES = {
    "jpeg_q70": lambda image: cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], -1),
    "resized_0.8": lambda image: cv2.resize(cv2.resize(image, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA),
                                            image.shape[1::-1], interpolation=cv2.INTER_LINEAR),
    "shifted_3px": lambda image: np.roll(image, (3, 3), axis=(0, 1)),
    "brighter_10": lambda image: np.clip(image.astype(int) + 10, 0, 255).astype(np.uint8),
    "noise_sigma3": lambda image: np.clip(image + np.random.default_rng(0).normal(0, 3, image.shape), 0, 255).astype(np.uint8),
}
VOICE_COPIES = {
    "gain_0.5": lambda clip: clip * 0.5,
    "telephone_8k": lambda clip: resample_poly(resample_poly(clip, 1, 2), 2, 1),
    "noise_40db": lambda clip: clip + np.random.default_rng(0).normal(0, np.sqrt(np.mean(clip**2)) / 100, clip.shape),
    "trimmed_100ms": lambda clip: clip[1600:],
    "quantised_8bit": lambda clip: np.round(clip * 127) / 127,
}
COPY_FILES = 100


def copies_caught(features: FeatureSet, people: set[str], data: Path, modality: str, threshold: float,
                  device: str) -> dict:
    """Fraction of altered copies of calibration files at or above ``threshold`` with their original."""
    from verify.models import load_pipeline

    rows = [row for row in range(len(features)) if features.identities[row] in people][:: max(1, len(people) // 50)]
    rows = rows[:COPY_FILES]
    pipeline = load_pipeline(modality, device)
    altered = FACE_COPIES if modality == "face" else VOICE_COPIES
    caught = {}
    for name, alter in altered.items():
        if modality == "face":
            sources = [alter(decode_image(data / features.paths[row])) for row in rows]
        else:
            sources = [(alter(decode_audio(data / features.paths[row])[0]).astype(np.float32), 16_000) for row in rows]
        cosines = [float(result.vector @ features.vectors[row]) for row, result in
                   zip(rows, pipeline.embed_many(sources)) if not isinstance(result, Exception)]
        caught[name] = {"files": len(cosines), "caught": round(float(np.mean(np.asarray(cosines) >= threshold)), 4),
                        "median_cosine": round(float(np.median(cosines)), 5)}
    return caught


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
    first = DATASETS[args.modality][0]
    copies = copies_caught(load_features(first, args.data, device=args.device), set(splits[first]["calibration"]),
                           args.data, args.modality, threshold, args.device)
    provenance = {
        "rule": "largest genuine cosine of different calibration files + max(min_margin, half the gap to 1)",
        "largest_calibration_cosine": round(largest, 6), "margin": round(margin, 6),
        "calibration": {name: summary(m) for name, m in calibration.items()},
        "evaluation_check": {name: summary(m, threshold) for name, m in evaluation.items()},
        f"altered_copies_of_{first}_calibration_files": copies,
        "model_version": spec.version,
        "command": f"python scripts/replay_threshold.py --modality {args.modality}",
        "date": datetime.date.today().isoformat(),
    }
    result = ReplayThreshold(spec.model_id, threshold, provenance)
    save_replay_threshold(replay_threshold_path(spec.model_id), result)
    print(json.dumps({"near_identical_cosine": round(threshold, 6), **provenance}, indent=1))


if __name__ == "__main__":
    main()
