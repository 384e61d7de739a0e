"""A stand-in face pipeline for live-session tests: each frame stands for a prepared face.

``PosePipeline.frame(landmarks, vector, box, faces)`` registers a face and returns a small frame
whose first pixel indexes it; ``embed`` of that frame returns the prepared embedding with its
landmarks, box and face count. A frame of index 0 holds no face.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from verify.embedding import Embedding
from verify.errors import NoFaceError, VerifyError


class PosePipeline:
    modality = "face"
    model_id = "pose-stub"
    model_version = "1"

    def __init__(self) -> None:
        self._faces: list[Embedding | None] = [None]

    def frame(self, landmarks: np.ndarray | None, vector: np.ndarray, box: tuple[float, float, float, float] = (
            220.0, 140.0, 420.0, 380.0), faces: int = 1) -> np.ndarray:
        """A frame standing for one face (``vector`` is normalised; ``landmarks`` ``None``: its pose
        could not be measured)."""
        vector = np.asarray(vector, np.float32)
        points = None if landmarks is None else np.asarray(landmarks, np.float32)
        self._faces.append(Embedding(vector / np.linalg.norm(vector), location=tuple(box), landmarks=points,
                                     measures={"faces": float(faces)}))
        return self.indexed(len(self._faces) - 1)

    @staticmethod
    def indexed(index: int) -> np.ndarray:
        frame = np.full((480, 640, 3), 90, np.uint8)
        frame[0, 0] = (index % 256, index // 256, 0)
        return frame

    def embed(self, source: Any) -> Embedding:
        index = int(source[0, 0, 0]) + 256 * int(source[0, 0, 1])
        face = self._faces[index] if isinstance(source, np.ndarray) and index < len(self._faces) else None
        if face is None:
            raise NoFaceError("no face found in the image")
        return face

    def embed_many(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        results: list[Embedding | VerifyError] = []
        for source in sources:
            try:
                results.append(self.embed(source))
            except VerifyError as error:
                results.append(error)
        return results
