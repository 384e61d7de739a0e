"""How much held-out figures of the LLR calibration move with the split of the people.

    python scripts/calibrate.py --modality face --cache .cache/calibration   # writes the embeddings
    python benchmarks/calibration_splits.py .cache/calibration/<model>-<version>-lfw_gray.npz \
        [--seeds 0 1 2 3] [--top-k 200] [--out benchmarks/results/calibration_splits_face.json]

For each seed, the people of one embeddings file (as cached by ``scripts/calibrate.py``) are
split in halves anew; raw-cosine and S-norm calibrations are fitted on one half and measured on
the other (all pairs; the cohort is every sample, leaving both people of each trial out). The
spread across seeds shows the sampling error of a held-out FAR better than a binomial bound,
which assumes independent trials (all-pairs trials share people).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.calibration_fit import FitConfig  # noqa: E402
from verify.calibration_trials import Trials, all_pairs, calibrate_trials  # noqa: E402
from verify.normalization import Cohort  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("embeddings", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--top-k", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with np.load(args.embeddings, allow_pickle=False) as stored:
        vectors, people = stored["vectors"], np.unique(stored["people"], return_inverse=True)[1]
    enroll, probe = all_pairs(people)
    trials = Trials(vectors, people, enroll, probe)
    cohort = Cohort(vectors, args.top_k, "bench", people)
    rows = []
    for seed in args.seeds:
        for name, used in (("cosine", None), ("s-norm", cohort)):
            held_out = calibrate_trials(trials, used, "bench", config=FitConfig(seed=seed)).figures["held_out"]
            levels = {level: {key: round(value, 6) for key, value in rates.items() if key in ("far", "frr")}
                      for level, rates in held_out["levels"].items()}
            rows.append({"seed": seed, "variant": name, "cllr": held_out["cllr"], "eer": held_out["eer"],
                         "genuine": held_out["genuine"], "impostor": held_out["impostor"], "levels": levels})
            print(json.dumps(rows[-1]))
    if args.out:
        args.out.write_text(json.dumps({"embeddings": args.embeddings.name, "top_k": args.top_k, "rows": rows},
                                       indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
