"""Train the shipped noise-robust voice encoder ``assets/models/ge2e-robust.safetensors``.

Usage: ``python scripts/train_robust_voice.py --data ../shared/data [--epochs 8] [--output PATH]``.

Teacher-student fine-tuning of Resemblyzer's GE2E (:mod:`training.robust_voice`) on the clips of
the LibriSpeech *calibration* people of ``benchmarks/pairs/splits.json``: the evaluation people
of the README and of ``benchmarks/conditions.py`` are never read. Prints the loss of every
epoch and the sha256 of the file, which belongs in ``verify.voice.encoder.GE2E_WEIGHTS``. CPU
training runs in about 2 min on 2 cores; the result depends on the thread count (float
reductions), so the sha256 is that of the shipped run, not one every machine reproduces.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from calibrate import calibration_files
from convert_ge2e import serialize

from training.robust_voice import StudentConfig, train_student, training_clips
from verify.conditions import decode_sample
from verify.voice.encoder import GE2E_WEIGHTS, RESEMBLYZER_WEIGHTS
from verify.voice.ge2e import resemblyzer_encoder
from verify.voice.vad import SileroVad
from verify.weights import MODELS_DIR, sha256_of

DATASET = "librispeech"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the identity-labelled data sets (../shared/data)")
    parser.add_argument("--epochs", type=int, default=StudentConfig.epochs)
    parser.add_argument("--seed", type=int, default=StudentConfig.seed)
    parser.add_argument("--output", type=Path, default=MODELS_DIR / GE2E_WEIGHTS.filename)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = calibration_files(args.data, DATASET)
    vad = SileroVad()
    clips = training_clips([decode_sample("voice", args.data / path) for _, path in files],
                           [person for person, _ in files], vad)
    config = StudentConfig(epochs=args.epochs, seed=args.seed)
    history: list[float] = []
    student = train_student(resemblyzer_encoder(), clips, config, vad,
                            on_epoch=lambda epoch, loss, _: history.append(round(loss, 5)))
    metadata = {
        "format": "pt",
        "source": f"teacher-student fine-tune of {RESEMBLYZER_WEIGHTS.filename} (sha256 {RESEMBLYZER_WEIGHTS.sha256})",
        "license": "Apache-2.0 (derived from Resemblyzer's weights)",
        "architecture": "GE2E: LSTM(40, 256, 3 layers) + Linear(256, 256) + ReLU + L2 norm",
        "input": "(B, 160, 40) mel power frames, 16 kHz, 25 ms window, 10 ms hop, no log",
        "training": json.dumps({"data": f"{DATASET} calibration people of benchmarks/pairs/splits.json",
                                "speakers": len(set(clips.speakers)), "clips": len(clips.clean),
                                "config": asdict(config),
                                "loss_per_epoch": history, "torch_threads": torch.get_num_threads(),
                                "command": "python scripts/train_robust_voice.py --data ../shared/data"},
                               sort_keys=True),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(serialize({name: value.detach().contiguous() for name, value in student.state_dict().items()}, metadata))
    print(f"{len(clips.clean)} clips of {len(set(clips.speakers))} speakers; loss per epoch {history}")
    print(f"wrote {args.output} sha256 {sha256_of(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
