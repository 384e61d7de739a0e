"""Registry of the shipped models: modality -> pipeline factory and calibrated thresholds."""

from __future__ import annotations

from pathlib import Path

import torch

from verify.calibration import Thresholds, load_thresholds
from verify.config import check_modality
from verify.embedding import Pipeline
from verify.weights import MODELS_DIR


def load_pipeline(modality: str, device: str | torch.device = "auto") -> Pipeline:
    """Build the shipped pipeline of a modality (``"face"`` or ``"voice"``) on ``device``."""
    if check_modality(modality) == "face":
        from verify.face.pipeline import FacePipeline

        return FacePipeline(device=device)
    from verify.voice.pipeline import VoicePipeline

    return VoicePipeline(device=device)


def thresholds_path(model_id: str) -> Path:
    """Where the calibrated thresholds of ``model_id`` ship."""
    return MODELS_DIR / f"{model_id}.thresholds.json"


def model_thresholds(model_id: str) -> Thresholds:
    """Calibrated thresholds shipped for ``model_id``."""
    return load_thresholds(thresholds_path(model_id))
