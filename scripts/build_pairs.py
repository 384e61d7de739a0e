"""Split ../shared/data identities into calibration and evaluation halves and write pairs files.

Calibration identities are used only by ``scripts/calibrate.py`` to set thresholds; evaluation
pairs (``benchmarks/pairs/*.csv``) use only the other identities, so reported figures are on
people the thresholds never saw. Seeded and deterministic.

    python scripts/build_pairs.py [--data ../shared/data] [--out benchmarks/pairs]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = 20261126
# dataset -> (modality, folder under data root)
DATASETS = {
    "lfw_gray": "faces/lfw_gray",
    "orl_att": "faces/orl_att",
    "librispeech": "voices/librispeech_tc100_segments",
    "fsdd": "voices/fsdd",
}


def identities(data: Path, folder: str) -> dict[str, list[str]]:
    """identity -> sorted file paths relative to ``data``."""
    result = {}
    for person in sorted((data / folder).iterdir()):
        files = sorted(str(path.relative_to(data)) for path in person.iterdir() if path.is_file())
        if files:
            result[person.name] = files
    return result


def split(names: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Shuffle and halve: (calibration, evaluation)."""
    names = sorted(names)
    rng.shuffle(names)
    half = len(names) // 2
    return sorted(names[:half]), sorted(names[half:])


def make_pairs(people: dict[str, list[str]], rng: random.Random, max_genuine: int, impostor_ratio: int) -> list[tuple[str, str, int]]:
    """All (or up to ``max_genuine``) same-identity pairs plus ``impostor_ratio`` times as many
    different-identity pairs drawn at random, without repeats."""
    genuine = [(a, b, 1) for files in people.values() for a, b in combinations(files, 2)]
    rng.shuffle(genuine)
    genuine = genuine[:max_genuine]
    names = sorted(people)
    wanted = len(genuine) * impostor_ratio
    impostor: set[tuple[str, str, int]] = set()
    while len(impostor) < wanted:
        first, second = rng.sample(names, 2)
        impostor.add((rng.choice(people[first]), rng.choice(people[second]), 0))
    pairs = genuine + sorted(impostor)
    rng.shuffle(pairs)
    return pairs


def write_pairs(path: Path, pairs: list[tuple[str, str, int]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["enroll_path", "probe_path", "same"])
        writer.writerows(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "pairs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    splits = {}
    # (dataset, genuine cap, impostors per genuine); ORL is small and used for evaluation only.
    plan = {"lfw_gray": (3000, 3), "librispeech": (1000, 3), "fsdd": (3000, 3), "orl_att": (1800, 3)}
    for dataset, (max_genuine, ratio) in plan.items():
        people = identities(args.data, DATASETS[dataset])
        calibration, evaluation = ([], sorted(people)) if dataset == "orl_att" else split(list(people), rng)
        splits[dataset] = {"folder": DATASETS[dataset], "calibration": calibration, "evaluation": evaluation}
        pairs = make_pairs({name: people[name] for name in evaluation}, rng, max_genuine, ratio)
        write_pairs(args.out / f"{dataset}_eval.csv", pairs)
        print(f"{dataset}: {len(calibration)} calibration / {len(evaluation)} evaluation identities, {len(pairs)} eval pairs")
    (args.out / "splits.json").write_text(json.dumps(splits, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
