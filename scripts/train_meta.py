"""Train every few-shot head and from-scratch baseline used by benchmarks/meta_table.py.

Heads (Siamese, prototypical, relation) on the frozen backbone embeddings of the train identities
(LFW for faces, LibriSpeech for voices), the from-scratch encoders on the raw aligned faces /
log-mels of the same identities, and the ORL reference encoder on 25 ORL people. Validation
identities pick the best epoch; test identities are never read. With ``--ship`` the best head per
modality is copied to assets/models, but only if it beats the plain backbone on validation.

    python scripts/train_meta.py [--modality face voice] [--out runs/meta] [--seed 0] [--ship]

One CPU thread; about 15 minutes in all on 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.episodes import split_identities  # noqa: E402
from training.features import load_raw_inputs  # noqa: E402
from training.heads import HEAD_METHODS  # noqa: E402
from training.heads_train import TRAIN_DATASET, train_head  # noqa: E402
from training.scratch_train import SCRATCH_METHODS, ScratchConfig, save_scratch, train_scratch  # noqa: E402
from verify.weights import MODELS_DIR  # noqa: E402

SCRATCH_EPOCHS = {"face": (5, 100), "voice": (5, 100), "orl": (5, 50)}  # (epochs, steps per epoch)
log = logging.getLogger("train_meta")


def train_scratch_run(modality: str, dataset: str, data: Path, method: str, out: Path, seed: int, name: str) -> None:
    epochs, steps = SCRATCH_EPOCHS["orl" if dataset == "orl_att" else modality]
    raw = load_raw_inputs(dataset, data)
    split = split_identities(dataset, seed)
    config = ScratchConfig(epochs=epochs, steps_per_epoch=steps, seed=seed,
                           n_way=8 if dataset == "orl_att" else ScratchConfig.n_way)
    started = time.time()
    encoder, history = train_scratch(method, modality, raw, split, config, "cpu")
    card = {"method": method, "modality": modality, "dataset": dataset, "seed": seed, "history": history,
            "train_identities": len(split.train), "validation_identities": len(split.validation),
            "train_seconds": round(time.time() - started, 1), "threads": torch.get_num_threads(),
            "command": f"python scripts/train_meta.py --modality {modality} --seed {seed}"}
    save_scratch(out / f"{name}.safetensors", encoder, {"modality": modality, "method": method, "dataset": dataset})
    (out / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    log.info("%s: %.0f s, validation EER by epoch %s", name, card["train_seconds"],
             [round(h["validation_eer"], 4) for h in history])


MIN_GENUINE_GAIN = 5
"""Genuine validation trials a head must accept at FAR 0.1 % beyond the backbone's to ship. Five
more, if none goes the other way, is what a sign test needs (p = 0.5^5 = 0.03); one or two, on the
64 genuine trials of the 22 voice validation speakers, is chance (the voice prototypical head won
by one and was worse on test people)."""


def beats_backbone(head: dict, backbone: dict) -> bool:
    """Whether a head's validation figures beat the backbone's: lower EER, no lower TAR at FAR 1 %,
    and at least :data:`MIN_GENUINE_GAIN` more genuine trials accepted at FAR 0.1 % (the product's
    default level)."""
    gain = round((head["tar_at_far_1e_3"] - backbone["tar_at_far_1e_3"]) * head["genuine"])
    return (head["eer"] < backbone["eer"] and head["tar_at_far_1e_2"] >= backbone["tar_at_far_1e_2"]
            and gain >= MIN_GENUINE_GAIN)


def best_head(modality: str, out: Path) -> tuple[str | None, dict]:
    """The head with the lowest validation EER, if it beats the backbone on validation
    (:func:`beats_backbone`)."""
    cards = {m: json.loads((out / f"{modality}-{m}-head.json").read_text()) for m in HEAD_METHODS
             if (out / f"{modality}-{m}-head.json").is_file()}
    if not cards:
        return None, {}
    method = min(cards, key=lambda m: (cards[m]["validation"]["eer"], -cards[m]["validation"]["tar_at_far_1e_2"]))
    card, plain = cards[method]["validation"], cards[method]["validation_backbone_only"]
    beats = beats_backbone(card, plain)
    keys = ("eer", "tar_at_far_1e_2", "tar_at_far_1e_3")
    summary = {"best_head": method, "validation": {k: round(card[k], 5) for k in keys},
               "backbone_validation": {k: round(plain[k], 5) for k in keys}, "ships": beats,
               "all_heads_validation_eer": {m: round(c["validation"]["eer"], 5) for m, c in cards.items()}}
    return (method if beats else None), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", nargs="+", default=["face", "voice"], choices=["face", "voice"])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="identity-labelled data sets")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "meta")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-heads", action="store_true")
    parser.add_argument("--skip-scratch", action="store_true")
    parser.add_argument("--ship", action="store_true", help="copy the best head to assets/models if it beats the backbone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for modality in args.modality:
        if not args.skip_heads:
            for method in HEAD_METHODS:
                train_head(modality, method, args.data, args.out, seed=args.seed, device="cpu",
                           command=f"python scripts/train_meta.py --modality {modality} --seed {args.seed}")
        if not args.skip_scratch:
            for method in SCRATCH_METHODS:
                train_scratch_run(modality, TRAIN_DATASET[modality], args.data, method, args.out, args.seed,
                                  f"{modality}-scratch-{method}")
            if modality == "face":
                train_scratch_run("face", "orl_att", args.data, "proto", args.out, args.seed, "orl-scratch-proto")
        method, summary = best_head(modality, args.out)
        (args.out / f"{modality}-shipping.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        log.info("%s shipping decision: %s", modality, summary)
        if args.ship and method:
            for suffix in (".safetensors", ".thresholds.json", ".json", ".md"):
                shutil.copy(args.out / f"{modality}-{method}-head{suffix}", MODELS_DIR / f"{modality}-{method}-head{suffix}")


if __name__ == "__main__":
    main()
