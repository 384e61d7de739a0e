"""Locate, hash-check and load the weights that ship in ``assets/models``.

Offline by default: nothing here touches the network. A missing or mismatched file raises
:class:`~verify.errors.WeightsError` naming the paths searched and the command that fixes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verify.errors import WeightsError

if TYPE_CHECKING:  # torch is imported by the loaders only, so locating weights stays light
    import torch

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
MODELS_DIR = ASSETS_DIR / "models"
WEIGHTS_DIR_ENV = "VERIFY_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightsFile:
    """A shipped weights file and how to rebuild it."""

    filename: str
    sha256: str
    rebuild_command: str


def sha256_of(path: Path) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_model_document(path: Path, document_format: str, version: int, model_id: str, fields: dict,
                         indent: int = 2) -> None:
    """Write a JSON document :func:`read_model_document` reads back: its format, version and model,
    then ``fields`` in their order."""
    document = {"format": document_format, "format_version": version, "model_id": model_id, **fields}
    Path(path).write_text(json.dumps(document, indent=indent) + "\n", encoding="utf-8")


def read_model_document(path: Path, document_format: str, version: int, model_id: str) -> dict:
    """The JSON document at ``path``, checked to be ``document_format`` at ``version`` and fitted for
    ``model_id`` (the scoring files ``scripts/calibrate_*.py`` write beside a model).

    Raises:
        OSError, ValueError, KeyError, TypeError, AttributeError: unreadable, not that format and
            version, or fitted for another model; callers name the file and the command to refit it.
    """
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if document.get("format") != document_format or document.get("format_version") != version:
        raise ValueError(f"not a {document_format} file of version {version}")
    if document["model_id"] != model_id:
        raise ValueError(f"fitted for {document['model_id']!r}, not {model_id!r}")
    return document


def search_dirs() -> list[Path]:
    """Folders searched for weights: ``$VERIFY_WEIGHTS_DIR`` (if set), then ``assets/models``."""
    dirs = [Path(os.environ[WEIGHTS_DIR_ENV])] if os.environ.get(WEIGHTS_DIR_ENV) else []
    return dirs + [MODELS_DIR]


def locate(weights: WeightsFile) -> Path:
    """Return the first existing copy of ``weights`` whose sha256 matches.

    Raises:
        WeightsError: no copy exists, or every copy has the wrong hash.
    """
    candidates = [folder / weights.filename for folder in search_dirs()]
    mismatched = []
    for path in candidates:
        if not path.is_file():
            continue
        actual = sha256_of(path)
        if actual == weights.sha256:
            return path
        mismatched.append(f"{path} (sha256 {actual[:12]}..., expected {weights.sha256[:12]}...)")
    detail = "; ".join(mismatched) if mismatched else "searched " + ", ".join(map(str, candidates))
    raise WeightsError(
        f"weights file {weights.filename!r} not found or corrupt: {detail}. "
        f"Rebuild it with: {weights.rebuild_command}"
    )


def load_state_dict(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """Locate, verify and load a safetensors state dict on the CPU."""
    from safetensors.torch import load_file

    path = locate(weights)
    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # safetensors raises several types for a malformed file
        raise WeightsError(f"cannot read weights {path}: {error}") from error


def load_into(module: torch.nn.Module, weights: WeightsFile) -> torch.nn.Module:
    """Load verified weights into ``module`` with ``strict=True``; return the module in eval mode."""
    state = load_state_dict(weights)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsError(f"{weights.filename} does not match {type(module).__name__}: {error}") from error
    return module.eval()
