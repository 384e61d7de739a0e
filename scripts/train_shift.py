"""Train every per-user method on condition-shift episodes (faces: LFW, voices: LibriSpeech train people).

Embeds the train and validation people clean and degraded (voices also as enrollment copies;
seed 0, cached in .cache/conditions; about 15 min for faces and 4 min for voices at one thread),
then trains each method of training/shift_methods.py into --out (one CPU thread), skipping
those whose checkpoint exists unless --retrain. Validation and test people are never read.
Compare them with the shipped decision path: python benchmarks/meta_shift.py.

    python scripts/train_shift.py [--data ../shared/data] [--modality face voice] [--out runs/shift]
        [--methods adapt0 maml ...] [--retrain] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.condition_sets import TRAIN_SEED, embedded_part  # noqa: E402
from training.episodes import split_identities  # noqa: E402
from training.shift_methods import SHIFT_METHODS, checkpoint, train_method  # noqa: E402
from training.shift_setup import build_setup  # noqa: E402

DATASETS = {"face": "lfw_gray", "voice": "librispeech"}
log = logging.getLogger("train_shift")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--modality", nargs="+", default=["face", "voice"], choices=sorted(DATASETS))
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "shift")
    parser.add_argument("--methods", nargs="+", default=list(SHIFT_METHODS), choices=SHIFT_METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="train again where a checkpoint exists")
    parser.add_argument("--steps", type=int, default=None, help="outer steps of every method (default: each method's own)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    times = {}
    for modality in args.modality:
        dataset = DATASETS[modality]
        samples = embedded_part(dataset, args.data, "calibration", TRAIN_SEED)
        setup = build_setup(samples, modality, split_identities(dataset), args.seed)
        log.info("%s: people %s, cosine start threshold %.3f", modality,
                 {role: len(names) for role, names in setup.groups.items()}, setup.threshold)
        for method in args.methods:
            path = checkpoint(args.out, modality, method)
            if path.exists() and not args.retrain:
                continue
            started = time.perf_counter()
            train_method(setup, method, args.out, modality, args.seed, args.steps)
            times[f"{modality} {method}"] = round(time.perf_counter() - started, 1)
            log.info("%s %s: %.0f s", modality, method, times[f"{modality} {method}"])
    print(json.dumps({"train_seconds": times}, indent=1))


if __name__ == "__main__":
    main()
