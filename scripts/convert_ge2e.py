"""Convert Resemblyzer's ``pretrained.pt`` to ``assets/models/ge2e-resemblyzer.safetensors``.

Usage: ``python scripts/convert_ge2e.py [--source PATH] [--output PATH]``. The source defaults to
the ``pretrained.pt`` inside the installed ``resemblyzer`` package. The output is deterministic
(same source, same bytes); its sha256 is printed and belongs in ``verify.voice.ge2e.GE2E_WEIGHTS``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from verify.voice.ge2e import SpeakerEncoder  # noqa: E402  (needs the repo root on sys.path)
from verify.weights import MODELS_DIR, sha256_of  # noqa: E402

# Resemblyzer keeps the GE2E loss scale and offset in the model state; inference does not use them.
TRAINING_ONLY_KEYS = ("similarity_weight", "similarity_bias")
# Resemblyzer's names map one to one onto SpeakerEncoder's.
LSTM_KEYS = [
    f"lstm.{kind}_l{layer}"
    for layer in range(3)
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
]
KEY_MAP = {name: name for name in LSTM_KEYS + ["linear.weight", "linear.bias"]}


def default_source() -> Path:
    """``pretrained.pt`` of the installed ``resemblyzer`` package (found without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("resemblyzer is not installed: pass --source PATH/TO/pretrained.pt")
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"


def convert(source: Path) -> dict[str, torch.Tensor]:
    """Load Resemblyzer's checkpoint and return SpeakerEncoder's state dict, checked strictly."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    model_state = checkpoint["model_state"]
    unexpected = set(model_state) - set(KEY_MAP) - set(TRAINING_ONLY_KEYS)
    if unexpected:
        raise SystemExit(f"{source} has unexpected keys {sorted(unexpected)}")
    state = {
        target: model_state[name].to(torch.float32).contiguous().clone() for name, target in KEY_MAP.items()
    }
    SpeakerEncoder().load_state_dict(state, strict=True)
    return state


def serialize(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """Safetensors bytes with the JSON header's keys sorted (the library orders metadata at random)."""
    raw = save(state, metadata=metadata)
    header_size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_size])
    sorted_header = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    sorted_header += b" " * (-len(sorted_header) % 8)  # keep the tensor data 8-byte aligned
    return len(sorted_header).to_bytes(8, "little") + sorted_header + raw[8 + header_size :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="Resemblyzer pretrained.pt")
    parser.add_argument("--output", type=Path, default=MODELS_DIR / "ge2e-resemblyzer.safetensors")
    args = parser.parse_args(argv)
    source = args.source or default_source()
    if not source.is_file():
        raise SystemExit(f"source checkpoint not found: {source}")
    state = convert(source)
    metadata = {
        "format": "pt",
        "source": "Resemblyzer (resemble-ai/Resemblyzer) resemblyzer/pretrained.pt, model_state",
        "source_sha256": sha256_of(source),
        "license": "Apache-2.0",
        "architecture": "GE2E: LSTM(40, 256, 3 layers) + Linear(256, 256) + ReLU + L2 norm",
        "input": "(B, 160, 40) mel power frames, 16 kHz, 25 ms window, 10 ms hop, no log",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(serialize(state, metadata))
    print(f"source {source} sha256 {metadata['source_sha256']}")
    print(f"wrote {args.output} sha256 {sha256_of(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
