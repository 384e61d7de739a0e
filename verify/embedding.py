"""What every modality pipeline returns, and the interface they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from verify.errors import BUFFER_LABELS, VerifyError


@dataclass(frozen=True)
class Embedding:
    """One sample's embedding and what the front end learned about the sample.

    Attributes:
        vector: ``(D,)`` float32 unit vector.
        quality_issues: problems that make the sample unreliable (blur, darkness, clipping);
            an enrollment refuses such a sample, a check answers "retry" unless it accepts.
        notes: facts worth showing that are not problems (e.g. several faces were found).
        preview: what was embedded: the aligned ``(H, W, 3)`` RGB face crop, or the trimmed
            ``(T,)`` 16 kHz speech.
        measures: numeric quality measures of the sample (e.g. ``"speech_seconds"``,
            ``"snr_db"``, ``"face_px"``, ``"sharpness"``) that calibration can weigh.
        location: where the sample was found in the input: the face box ``(x1, y1, x2, y2)`` in
            pixels of the decoded image; ``None`` for voices.
        landmarks: the chosen face's five landmarks ``(5, 2)`` in pixels of the decoded image, in
            MTCNN order (left eye, right eye, nose tip, left and right mouth corner), from the
            detector head pose is measured with (:data:`verify.face.pipeline.POSE_DETECTOR`);
            ``None`` for voices and when that detector did not locate the face.
    """

    vector: np.ndarray
    quality_issues: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    preview: np.ndarray | None = field(default=None, repr=False)
    measures: Mapping[str, float] = field(default_factory=dict)
    location: tuple[float, float, float, float] | None = None
    landmarks: np.ndarray | None = field(default=None, repr=False)


class Pipeline(Protocol):
    """Sample -> embedding for one modality, batched, on one device."""

    modality: str
    model_id: str
    model_version: str

    def embed_many(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        """Embed many samples; a sample that fails yields its error instead of aborting the batch."""

    def embed(self, source: Any) -> Embedding:
        """Embed one sample, raising its :class:`VerifyError` if it fails."""


class BatchedPipeline(ABC):
    """The batching both modality pipelines share: a subclass embeds one chunk of sources."""

    batch_size: int

    def embed(self, source: Any) -> Embedding:
        """Embed one sample, raising its :class:`VerifyError` if it fails."""
        return embed_one(self, source)

    def embed_many(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        """Embed many samples, ``batch_size`` at a time; a failed sample yields its error."""
        results: list[Embedding | VerifyError] = []
        for start in range(0, len(sources), self.batch_size):
            results.extend(self._embed_chunk(sources[start : start + self.batch_size]))
        return results

    @abstractmethod
    def _embed_chunk(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        """Embed at most ``batch_size`` sources together."""


def embed_one(pipeline: Pipeline, source: Any) -> Embedding:
    """Run ``pipeline.embed_many`` on one source and raise its error, if any."""
    (result,) = pipeline.embed_many([source])
    if isinstance(result, VerifyError):
        raise result
    return result


def embed_passing_errors(embed_many: Callable[[list[Any]], list[Embedding | VerifyError]],
                         sources: Sequence[Any]) -> list[Embedding | VerifyError]:
    """``embed_many`` of the sources that are not already a :class:`VerifyError` (a file that could
    not be read), in one call; such a source is its own result, in its place."""
    readable = [source for source in sources if not isinstance(source, VerifyError)]
    embedded = iter(embed_many(readable) if readable else [])
    return [source if isinstance(source, VerifyError) else next(embedded) for source in sources]


def name_source(error: VerifyError, source: Any) -> VerifyError:
    """The same error with the file it came from named first, when the source is a path.

    An error about bytes read from the file (``"image buffer ..."``, ``"audio buffer ..."``) names
    the file in their place.
    """
    if not isinstance(source, (str, Path)):
        return error
    message = str(error)
    for label in BUFFER_LABELS:
        if message.startswith(label):
            return type(error)(f"{source}{message[len(label):]}")
    return error if str(source) in message else type(error)(f"{source}: {message}")
