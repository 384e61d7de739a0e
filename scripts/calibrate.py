"""Calibrate a shipped model's thresholds on the calibration identities of ../shared/data.

Embeds every file of the calibration identities (see benchmarks/pairs/splits.json, written by
scripts/build_pairs.py), scores all pairs within each dataset, and writes one threshold per
target FAR to assets/models/<model_id>.thresholds.json. Evaluation identities are never used.

    python scripts/calibrate.py --modality face|voice [--data ../shared/data] [--device auto]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.calibration import Thresholds, calibrate, save_thresholds  # noqa: E402
from verify.errors import VerifyError  # noqa: E402
from verify.metrics import equal_error_rate  # noqa: E402
from verify.models import load_pipeline, model_spec  # noqa: E402

CALIBRATION_SETS = {"face": ["lfw_gray"], "voice": ["librispeech", "fsdd"]}


def dataset_trials(pipeline, data: Path, people: list[str], folder: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """All-pairs scores and labels among the files of ``people``; plus files and failures counted."""
    files = [(name, path) for name in people for path in sorted((data / folder / name).iterdir())]
    vectors, labels, failures = [], [], 0
    with tqdm(total=len(files), desc=folder, unit="file") as bar:
        for start in range(0, len(files), 64):
            chunk = files[start : start + 64]
            for (name, _), result in zip(chunk, pipeline.embed_many([path for _, path in chunk])):
                if isinstance(result, VerifyError):
                    failures += 1
                else:
                    vectors.append(result.vector)
                    labels.append(name)
            bar.update(len(chunk))
    matrix = np.stack(vectors)
    upper = np.triu_indices(len(matrix), 1)
    scores = (matrix @ matrix.T)[upper]
    names = np.array(labels)
    return scores, names[upper[0]] == names[upper[1]], len(files), failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=sorted(CALIBRATION_SETS), required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    splits = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())
    pipeline = load_pipeline(args.modality, args.device)
    all_scores, all_labels, provenance = [], [], {"datasets": {}}
    for dataset in CALIBRATION_SETS[args.modality]:
        split = splits[dataset]
        scores, labels, files, failures = dataset_trials(pipeline, args.data, split["calibration"], split["folder"])
        all_scores.append(scores)
        all_labels.append(labels)
        provenance["datasets"][dataset] = {
            "identities": len(split["calibration"]), "files": files, "failed_files": failures,
            "genuine_trials": int(labels.sum()), "impostor_trials": int((~labels).sum()),
            "eer": round(equal_error_rate(scores, labels)[0], 5),
        }
    scores, labels = np.concatenate(all_scores), np.concatenate(all_labels)
    provenance.update(
        command=f"python scripts/calibrate.py --modality {args.modality}",
        date=datetime.date.today().isoformat(),
        identities="calibration halves of benchmarks/pairs/splits.json (disjoint from evaluation pairs)",
        pooled_eer=round(equal_error_rate(scores, labels)[0], 5),
    )
    thresholds = Thresholds(pipeline.model_id, calibrate(scores, labels), provenance)
    save_thresholds(model_spec(args.modality).calibration_path(), thresholds)
    print(json.dumps({"thresholds": thresholds.by_far, **provenance}, indent=1))


if __name__ == "__main__":
    main()
