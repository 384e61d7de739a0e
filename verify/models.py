"""The shipped models: one :class:`ModelSpec` per modality, and the only code naming pipeline classes.

Every shipped artefact follows one convention: it lies in ``assets/models`` (or
``$VERIFY_WEIGHTS_DIR``) with its sha256 checked on load and a model card ``<stem>.md`` beside it.
A model's scoring is its impostor cohort ``<model_id>.cohort.json`` (+ ``.npz``) and its LLR
calibration ``<model_id>.calibration.json``, both written by ``scripts/calibrate.py`` from the
calibration identities only. A voice model may also ship ``<model_id>.narrowband.json``, the route of
band-limited probes (:mod:`verify.narrowband`, ``scripts/calibrate_narrowband.py``), and
``<model_id>.compensation.json``, the shifts noisy and echoing probes are moved back along
(:mod:`verify.compensation`, ``scripts/calibrate_compensation.py``), and ``<model_id>.low_cut.json``,
the map to its templates' low-cut copies (:mod:`verify.low_cut`, ``scripts/fit_low_cut.py``).

Pipeline classes are imported on first use, so reading a spec loads neither torch nor a network.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify.calibration import Thresholds, load_calibration, load_thresholds
from verify.config import DEFAULT_SECURITY_LEVEL, check_modality
from verify.embedding import Pipeline
from verify.errors import ConfigError
from verify.compensation import load_compensation
from verify.low_cut import load_copy
from verify.narrowband import load_route
from verify.normalization import load_cohort
from verify.scorer import CalibratedScorer
from verify.verifier import Verifier
from verify.weights import MODELS_DIR, WeightsFile, locate

if TYPE_CHECKING:  # torch: imported only when an adapter is loaded
    from verify.adaptation import Adapter


@dataclass(frozen=True)
class ModelSpec:
    """Everything that ships for one modality.

    Attributes:
        modality: ``"face"`` or ``"voice"``.
        model_id: the embedding model's name, stored with every template it makes.
        pipeline: ``"module:Class"`` of the :class:`~verify.embedding.Pipeline` that embeds samples.
        calibration: file name of the score -> LLR calibration in ``assets/models``.
        cohort: file name of the impostor cohort's manifest (``None``: scores are not S-normalised).
        adapter: the per-user adaptation checkpoint, where one beat the plain model on validation.
        narrowband: file name of the band-limited probes' route (``None``: they take the plain path).
        compensation: file name of the probes' condition compensation (``None``: none).
        low_cut: file name of the map to templates' low-cut copies (``None``: none are weighed).
    """

    modality: str
    model_id: str
    pipeline: str
    calibration: str
    cohort: str | None = None
    adapter: WeightsFile | None = None
    narrowband: str | None = None
    compensation: str | None = None
    low_cut: str | None = None

    @cached_property
    def pipeline_class(self) -> type:
        """The pipeline class (imports its module, and with it torch)."""
        module, name = self.pipeline.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def version(self) -> str:
        """The model version stored with templates (a prefix of the weights' sha256)."""
        return self.pipeline_class.model_version

    def build(self, device: Any = "auto", **options: Any) -> Pipeline:
        """The pipeline on ``device`` (``"auto"``: CUDA when present); ``options`` go to its constructor."""
        return self.pipeline_class(device=device, **options)

    def calibration_path(self) -> Path:
        """Where the score calibration ships."""
        return MODELS_DIR / self.calibration

    def cohort_path(self) -> Path | None:
        """Where the impostor cohort's manifest ships (``None`` when there is none)."""
        return None if self.cohort is None else MODELS_DIR / self.cohort

    def compensation_path(self) -> Path | None:
        """Where the probes' condition compensation ships (``None`` when there is none)."""
        return None if self.compensation is None else MODELS_DIR / self.compensation

    @cached_property
    def scorer(self) -> CalibratedScorer:
        """Cosine -> S-norm -> calibrated LLR -> decision, as shipped (loaded once per process).

        Raises:
            WeightsError: a file is missing or malformed, or the cohort is not the calibration's.
        """
        cohort_path = self.cohort_path()
        cohort = None if cohort_path is None else load_cohort(cohort_path, self.model_id)
        route = None if self.narrowband is None else load_route(MODELS_DIR / self.narrowband, self.model_id)
        compensation_path = self.compensation_path()
        compensation = None if compensation_path is None else load_compensation(compensation_path, self.model_id)
        low_cut = None if self.low_cut is None else load_copy(MODELS_DIR / self.low_cut, self.model_id)
        return CalibratedScorer(load_calibration(self.calibration_path(), self.model_id), cohort, route, compensation,
                                low_cut)

    def load_adapter(self) -> Adapter:
        """The shipped, hash-checked per-user adaptation.

        Raises:
            ConfigError: none ships for this modality.
            WeightsError: the shipped file is missing or its sha256 does not match.
        """
        if self.adapter is None:
            raise ConfigError(
                f"no per-user adaptation ships for {self.modality}: it did not beat the plain model on validation"
            )
        from verify.adaptation import Adapter

        return Adapter.load(locate(self.adapter))


SHIPPED: dict[str, ModelSpec] = {
    "face": ModelSpec(
        modality="face",
        model_id="face-fusion-reid0095-sface",
        pipeline="verify.face.pipeline:FacePipeline",
        calibration="face-fusion-reid0095-sface.calibration.json",
        cohort="face-fusion-reid0095-sface.cohort.json",
    ),
    "voice": ModelSpec(
        modality="voice",
        model_id="ge2e-robust",
        pipeline="verify.voice.pipeline:VoicePipeline",
        calibration="ge2e-robust.calibration.json",
        cohort="ge2e-robust.cohort.json",
        narrowband="ge2e-robust.narrowband.json",
        compensation="ge2e-robust.compensation.json",
        low_cut="ge2e-robust.low_cut.json",
    ),
}


def model_spec(modality: str) -> ModelSpec:
    """The shipped model of ``modality``.

    Raises:
        ConfigError: ``modality`` is neither ``"face"`` nor ``"voice"``.
    """
    return SHIPPED[check_modality(modality)]


def load_pipeline(modality: str, device: Any = "auto", **options: Any) -> Pipeline:
    """Build the shipped pipeline of ``modality`` on ``device``."""
    return model_spec(modality).build(device, **options)


def model_scorer(modality: str) -> CalibratedScorer:
    """The shipped scoring of the model of ``modality`` (see :attr:`ModelSpec.scorer`)."""
    return model_spec(modality).scorer


def shipped_verifier(pipeline: Pipeline, level: str = DEFAULT_SECURITY_LEVEL) -> Verifier:
    """A verifier of ``pipeline`` with the shipped scoring of its modality, at ``level``."""
    return Verifier(pipeline, model_scorer(pipeline.modality), level)


def fusion_model_id(face_model_id: str, voice_model_id: str) -> str:
    """The name of a face and a voice model's LLR-sum thresholds (their file's stem and model id)."""
    return f"fusion-{face_model_id}+{voice_model_id}"


def fusion_thresholds_path() -> Path:
    """Where the LLR-sum thresholds of the shipped face and voice models are (scripts/calibrate_fusion.py)."""
    return MODELS_DIR / f"{fusion_model_id(SHIPPED['face'].model_id, SHIPPED['voice'].model_id)}.thresholds.json"


def fusion_thresholds() -> Thresholds:
    """The shipped face + voice LLR-sum thresholds (:func:`verify.fusion.fuse_llr`).

    Raises:
        WeightsError: the file is missing or corrupt.
    """
    return load_thresholds(fusion_thresholds_path())
