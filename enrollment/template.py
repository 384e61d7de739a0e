"""Enrollment templates: the running sum of one identity's unit sample embeddings.

The template used for scoring is the mean of the L2-normalised sample embeddings, renormalised
to unit length (as Resemblyzer's ``embed_speaker``). Keeping the *sum* and the sample count lets a
new sample be added without the earlier ones; raw samples are never kept.

A voice template may also keep the sum of the embeddings of an 8 kHz telephone-band copy of each
sample (``narrowband_sum``), so that a band-limited probe is scored against a band-matched template.
A template whose samples do not all have such a copy keeps none.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from dataclasses import dataclass

import numpy as np

from enrollment.errors import InvalidIdentityError, InvalidTemplateError
from verify.errors import ConfigError
from verify.normalization import CohortStats

MODALITIES = ("face", "voice")
MAX_IDENTITY_LENGTH = 64
MAX_EMBEDDING_DIM = 65536
# Control characters (Cc), lone surrogates (Cs, not encodable) and line/paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def validate_identity(name: str) -> str:
    """Return the identity name stripped of surrounding whitespace and in Unicode NFC form.

    Unicode letters, spaces, quotes, SQL-looking and path-like text are all allowed: a name is
    only ever a bound SQL parameter, never part of a query or a file path.

    Raises:
        InvalidIdentityError: ``name`` is not a string, is empty, is longer than 64 characters
            or holds a control character.
    """
    if not isinstance(name, str):
        raise InvalidIdentityError(f"identity must be a string, got {type(name).__name__}")
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not cleaned:
        raise InvalidIdentityError(f"identity {name!r} is empty")
    if len(cleaned) > MAX_IDENTITY_LENGTH:
        raise InvalidIdentityError(
            f"identity {cleaned[:20]!r}... is {len(cleaned)} characters long;"
            f" the limit is {MAX_IDENTITY_LENGTH}"
        )
    for char in cleaned:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise InvalidIdentityError(
                f"identity {cleaned!r} holds the control character U+{ord(char):04X}"
            )
    return cleaned


def validate_modality(modality: str) -> str:
    """Return ``modality`` if it is ``"face"`` or ``"voice"``.

    Raises:
        ConfigError: any other value.
    """
    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality {modality!r}: use 'face' or 'voice'")
    return modality


def _as_vector(values: object, what: str) -> np.ndarray:
    """Convert ``values`` to a finite float32 vector ``(D,)``; raise InvalidTemplateError."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise InvalidTemplateError(f"{what} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 1 or not 1 <= array.shape[0] <= MAX_EMBEDDING_DIM:
        raise InvalidTemplateError(
            f"{what} must have shape (D,) with 1 <= D <= {MAX_EMBEDDING_DIM},"
            f" got shape {array.shape}"
        )
    with np.errstate(over="ignore"):  # overflow becomes inf, rejected just below
        vector = array.astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise InvalidTemplateError(f"{what} holds NaN or infinite values (as float32)")
    return vector


def unit_embedding(embedding: object) -> np.ndarray:
    """Return one sample embedding ``(D,)`` scaled to unit L2 norm, as float32.

    Raises:
        InvalidTemplateError: not a finite real vector, or its norm is zero.
    """
    vector = _as_vector(embedding, "sample embedding").astype(np.float64)
    norm = float(np.linalg.norm(vector))
    if not norm > 0.0 or not math.isfinite(norm):
        raise InvalidTemplateError(f"sample embedding has norm {norm}; cannot normalise it")
    return (vector / norm).astype(np.float32)


def _check_sum(values: object, what: str) -> np.ndarray:
    """A read-only float32 copy of a template sum ``(D,)``; raise InvalidTemplateError if it has zero norm."""
    vector = _as_vector(values, what).copy()
    if not float(np.linalg.norm(vector.astype(np.float64))) > 0.0:
        raise InvalidTemplateError(f"{what} has zero norm; it cannot be a template")
    vector.setflags(write=False)
    return vector


def _check_stats(value: object, what: str) -> None:
    if value is not None and not isinstance(value, CohortStats):
        raise InvalidTemplateError(f"{what} must be CohortStats, got {type(value).__name__}")


def _normalised(total: np.ndarray) -> np.ndarray:
    """A template sum ``(D,)`` scaled to unit L2 norm, as float32."""
    total = total.astype(np.float64)
    return (total / np.linalg.norm(total)).astype(np.float32)


def _same_vector(first: np.ndarray | None, second: np.ndarray | None) -> bool:
    if first is None or second is None:
        return first is second
    return np.array_equal(first, second)


def _check_text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidTemplateError(f"{what} must be a non-empty string, got {value!r}")


def _check_time(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTemplateError(f"{what} must be a unix time in seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidTemplateError(f"{what} must be a finite, non-negative time, got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class Template:
    """One enrolled identity for one modality.

    Attributes:
        identity: validated identity name (see :func:`validate_identity`).
        modality: ``"face"`` or ``"voice"``.
        embedding_sum: float32 ``(D,)``, sum of the unit-norm sample embeddings (read-only).
        sample_count: number of samples summed, >= 1.
        model_id: name of the embedding model that made the samples.
        model_version: version of that model; samples of another version do not mix.
        created_at: unix time in seconds of the first sample.
        updated_at: unix time in seconds of the latest change.
        cohort_stats: the template's score statistics against the model's impostor cohort
            (S-norm), computed at enrollment; ``None`` until computed (older templates, or a
            sample was just added), then computed on first use.
        narrowband_sum: float32 ``(D,)``, sum of the unit-norm embeddings of the samples'
            8 kHz telephone-band copies, one per sample (read-only); ``None`` when the template
            has none (faces, older templates, or a sample was added without a copy).
        narrowband_stats: cohort statistics of the narrowband template, like ``cohort_stats``;
            only with a ``narrowband_sum``.
    """

    identity: str
    modality: str
    embedding_sum: np.ndarray
    sample_count: int
    model_id: str
    model_version: str
    created_at: float
    updated_at: float
    cohort_stats: CohortStats | None = None
    narrowband_sum: np.ndarray | None = None
    narrowband_stats: CohortStats | None = None

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "identity", validate_identity(self.identity))
        validate_modality(self.modality)
        set_field(self, "embedding_sum", _check_sum(self.embedding_sum, "embedding_sum"))
        count = self.sample_count
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise InvalidTemplateError(f"sample_count must be an integer >= 1, got {count!r}")
        set_field(self, "sample_count", int(count))
        _check_text(self.model_id, "model_id")
        _check_text(self.model_version, "model_version")
        set_field(self, "created_at", _check_time(self.created_at, "created_at"))
        set_field(self, "updated_at", _check_time(self.updated_at, "updated_at"))
        _check_stats(self.cohort_stats, "cohort_stats")
        _check_stats(self.narrowband_stats, "narrowband_stats")
        if self.narrowband_sum is not None:
            narrowband = _check_sum(self.narrowband_sum, "narrowband_sum")
            if narrowband.shape != self.embedding_sum.shape:
                raise InvalidTemplateError(f"narrowband_sum has shape {narrowband.shape};"
                                           f" embedding_sum has shape {self.embedding_sum.shape}")
            set_field(self, "narrowband_sum", narrowband)
        elif self.narrowband_stats is not None:
            raise InvalidTemplateError("narrowband_stats given without a narrowband_sum")

    @classmethod
    def from_sample(
        cls,
        identity: str,
        modality: str,
        embedding: object,
        model_id: str,
        model_version: str,
        now: float,
        narrowband: object | None = None,
    ) -> Template:
        """Start a template from its first sample embedding ``(D,)`` at unix time ``now``.

        ``narrowband`` is the embedding ``(D,)`` of the sample's 8 kHz telephone-band copy, if any.
        """
        return cls(
            identity=identity,
            modality=modality,
            embedding_sum=unit_embedding(embedding),
            sample_count=1,
            model_id=model_id,
            model_version=model_version,
            created_at=now,
            updated_at=now,
            narrowband_sum=None if narrowband is None else unit_embedding(narrowband),
        )

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return int(self.embedding_sum.shape[0])

    @property
    def embedding(self) -> np.ndarray:
        """The scoring template: float32 ``(D,)``, the L2-normalised mean of the samples."""
        return _normalised(self.embedding_sum)

    @property
    def narrowband(self) -> np.ndarray | None:
        """The band-matched template: float32 ``(D,)``, the L2-normalised ``narrowband_sum``, or ``None``."""
        return None if self.narrowband_sum is None else _normalised(self.narrowband_sum)

    def with_sample(self, embedding: object, now: float, narrowband: object | None = None) -> Template:
        """Return a new template with one more sample embedding ``(D,)`` added at time ``now``.

        The sample is L2-normalised before it is added; this template is left unchanged. The
        narrowband copy's embedding ``(D,)`` is added likewise when both this template and the
        sample have one; otherwise the new template has none (its samples do not all have one).

        Raises:
            InvalidTemplateError: the embedding or the narrowband embedding is not a finite
                ``(D,)`` vector of this template's dimension, or has zero norm.
        """
        total = self.embedding_sum.astype(np.float64) + self._unit_sample(embedding, "sample embedding")
        narrowband_sum = None
        if narrowband is not None:
            unit = self._unit_sample(narrowband, "narrowband embedding")
            if self.narrowband_sum is not None:
                narrowband_sum = (self.narrowband_sum.astype(np.float64) + unit).astype(np.float32)
        return dataclasses.replace(
            self,
            embedding_sum=total.astype(np.float32),
            sample_count=self.sample_count + 1,
            updated_at=now,
            cohort_stats=None,  # they described the template without this sample
            narrowband_sum=narrowband_sum,
            narrowband_stats=None,
        )

    def _unit_sample(self, embedding: object, what: str) -> np.ndarray:
        unit = unit_embedding(embedding)
        if unit.shape != self.embedding_sum.shape:
            raise InvalidTemplateError(
                f"{what} has shape {unit.shape}; template {self.identity!r}"
                f" ({self.modality}) has shape {self.embedding_sum.shape}"
            )
        return unit

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        vectors = ("embedding_sum", "narrowband_sum")
        return all(
            getattr(self, field.name) == getattr(other, field.name)
            for field in dataclasses.fields(self)
            if field.name not in vectors
        ) and all(_same_vector(getattr(self, name), getattr(other, name)) for name in vectors)

    __hash__ = None  # type: ignore[assignment]  # holds an array: equal by value, unhashable
