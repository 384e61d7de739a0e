"""Set the face + voice LLR-sum thresholds on chimeric people of the calibration halves.

Each face person of the calibration half of LFW is paired with a voice person of the calibration
half of LibriSpeech (no data set has both; five random pairings); a chimeric trial sums the calibrated LLRs of a face
trial and a voice trial between partners, under every pair of calibration conditions (voices
enrolled with their narrowband copy, as the product enrolls them). Each level's threshold holds
its FAR in every pair of conditions. Writes
``assets/models/fusion-<face model>+<voice model>.thresholds.json``.

    python scripts/calibrate_fusion.py [--data ../shared/data] [--cache .cache/calibration] [--seed 0]

Embeddings come from scripts/calibrate.py's cache when it is there (same seed), else are made.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from calibrate import FIT_SETS, IDENTITIES_NOTE, cohort_codes, embedded_set  # noqa: E402  (scripts/calibrate.py)

from verify.calibration import CALIBRATED_FARS, Thresholds, save_thresholds  # noqa: E402
from verify.calibration_fit import thresholds_in_every_condition  # noqa: E402
from verify.conditions import chimeric_scores, with_narrowband_copies  # noqa: E402
from verify.models import fusion_thresholds_path, load_pipeline, model_scorer  # noqa: E402

DRAWS = 5  # random pairings of face and voice people, pooled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=None, help="folder of scripts/calibrate.py's embeddings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sides = {}
    codes = {modality: cohort_codes(args.data, modality) for modality in ("face", "voice")}
    for modality in ("face", "voice"):
        pipeline, scorer = load_pipeline(modality, "cpu"), model_scorer(modality)
        (dataset,) = FIT_SETS[modality]
        samples = embedded_set(pipeline, args.data, dataset, args.seed, args.cache)
        if scorer.narrowband is not None:
            samples = with_narrowband_copies(pipeline, scorer.narrowband, args.data, samples)
        sides[modality] = (scorer, samples)
    llrs, labels, pairs = [], [], []
    for face_condition in np.unique(sides["face"][1].conditions):
        for voice_condition in np.unique(sides["voice"][1].conditions):
            face, voice = chimeric_scores((*sides["face"], str(face_condition)), (*sides["voice"], str(voice_condition)),
                                          DRAWS, args.seed, (codes["face"], codes["voice"]))
            llrs.append(face.llr + voice.llr)
            labels.append(face.labels)
            pairs.append(np.full(face.llr.size, f"{face_condition} + {voice_condition}"))
    llrs, labels, pairs = np.concatenate(llrs), np.concatenate(labels), np.concatenate(pairs)
    by_far = thresholds_in_every_condition(llrs, labels, CALIBRATED_FARS, pairs)
    path = fusion_thresholds_path()
    provenance = {
        "rule": "sum of the calibrated face and voice LLRs",
        "data": {modality: FIT_SETS[modality] for modality in sides},
        "identities": IDENTITIES_NOTE + "; face and voice people paired at random (chimeric)",
        "conditions": sorted(set(pairs.tolist())),
        "trials": {"genuine": int(labels.sum()), "impostor": int((~labels).sum())},
        "command": f"python scripts/calibrate_fusion.py --seed {args.seed}",
        "date": datetime.date.today().isoformat(),
    }
    save_thresholds(path, Thresholds(path.name.removesuffix(".thresholds.json"), by_far, provenance))
    print(path, {far: round(value, 3) for far, value in by_far.items()})


if __name__ == "__main__":
    main()
