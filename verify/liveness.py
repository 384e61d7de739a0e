"""A static-image check for live webcam verification ("strict" mode).

A live face moves, blinks and catches sensor noise, so its embedding changes a little from frame
to frame. A frozen feed (a still image sent as a fake webcam, a paused video) gives the same
embedding every frame. :class:`LivenessCheck` watches consecutive accepted frames and passes
only when the window shows natural variation: the largest pairwise cosine distance between the
window's embeddings must reach ``min_variation``.

Measured on face-reidentification-retail-0095 with a shipped sample face: identical frames give
distance 0.0; the same frame with mild sensor noise (sigma 3 grey levels) gives 0.003-0.004;
shifts of a few pixels and brightness changes give 0.006-0.04. The default 0.001 sits below all
of these. This does not detect a printed photo moved by hand or a replayed video: it is not
presentation-attack detection.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from verify.errors import ConfigError

LivenessState = Literal["collecting", "live", "static"]


@dataclass(frozen=True)
class LivenessConfig:
    """Strict-mode settings.

    Attributes:
        frames: consecutive accepted frames needed before deciding (at 2 frames/s, 4 = 2 s).
        min_variation: smallest acceptable max pairwise cosine distance over the window.
    """

    frames: int = 4
    min_variation: float = 1e-3

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or self.frames < 2:
            raise ConfigError(f"liveness needs at least 2 frames, got {self.frames!r}")
        if not 0.0 <= self.min_variation < 2.0:
            raise ConfigError(f"min_variation must be in [0, 2), got {self.min_variation!r}")


@dataclass(frozen=True)
class LivenessStatus:
    """Where the check stands after a frame.

    Attributes:
        state: ``"collecting"`` (not enough accepted frames yet), ``"live"`` or ``"static"``.
        frames: accepted frames in the current window.
        variation: max pairwise cosine distance of the window, once it is full.
    """

    state: LivenessState
    frames: int
    variation: float | None = None

    @property
    def message(self) -> str:
        """A sentence for the user."""
        if self.state == "static":
            return "static image suspected: the face does not change between frames"
        if self.state == "live":
            return f"live face confirmed over {self.frames} frames"
        return f"checking liveness: {self.frames} matching frame(s) so far"


def max_pairwise_distance(vectors: np.ndarray) -> float:
    """Largest cosine distance ``1 - cos`` between any two rows of ``(N, D)`` (N >= 2)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return float(np.max(1.0 - units @ units.T))


class LivenessCheck:
    """Consecutive-frame static-image check; feed it every processed frame, in order."""

    def __init__(self, config: LivenessConfig = LivenessConfig()) -> None:
        self.config = config
        self._window: deque[np.ndarray] = deque(maxlen=config.frames)

    def reset(self) -> None:
        """Forget the frames seen so far."""
        self._window.clear()

    def update(self, vector: np.ndarray | None, accepted: bool) -> LivenessStatus:
        """Add one frame's ``(D,)`` embedding; a frame that was not accepted restarts the window.

        Raises:
            ConfigError: an accepted frame comes without an embedding, or with another dimension.
        """
        if not accepted:
            self.reset()
            return LivenessStatus("collecting", 0)
        if vector is None:
            raise ConfigError("an accepted frame needs its embedding for the liveness check")
        vector = np.asarray(vector, dtype=np.float32).ravel()
        if self._window and self._window[0].shape != vector.shape:
            raise ConfigError(f"embedding has shape {vector.shape}, earlier frames {self._window[0].shape}")
        self._window.append(vector)
        if len(self._window) < self.config.frames:
            return LivenessStatus("collecting", len(self._window))
        variation = max_pairwise_distance(np.stack(self._window))
        state: LivenessState = "live" if variation >= self.config.min_variation else "static"
        return LivenessStatus(state, len(self._window), variation)
