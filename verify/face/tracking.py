"""Tracking the face of a live stream: YuNet looks around the last frame's face first.

When the previous frame had exactly one face, the next frame's face is looked for in that face's
box widened by ``TrackingConfig.margin`` on every side, at the scale the whole frame is searched
at (:meth:`~verify.face.yunet.YuNetDetector.detect_region`): the face is seen at the same
resolution, in a fraction of the pixels. The whole frame is searched instead when

- the last frame had no face, or it is the stream's first frame;
- the last search of the whole frame found several faces (the live challenge must see them all);
- the region holds no face, several faces, or a face touching its border (it may be leaving it);
- ``TrackingConfig.redetect_every`` frames have passed since the last whole-frame search, so a
  face that came into view elsewhere is seen within that many frames.

Only where YuNet looks changes: the face found is refined, aligned and embedded by the same
stages and networks as any other (the face pipeline's ``embed_frame``), and
a frame with no detected face still has no decision. A live session that holds an answer only
asks where the face is (the pipeline's ``locate_frame``: the tracked YuNet alone). One tracker
follows one stream; it is not shared between threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

from verify.embedding import Embedding
from verify.errors import ConfigError

if TYPE_CHECKING:
    from verify.face.detect import Detection  # not at run time: a live session imports this without OpenCV

REGION_EDGE_PX = 1.0
"""A tracked face this close (pixels) to a border of its search region that is not the frame's
border may be cut by it: the whole frame is searched instead."""


@dataclass(frozen=True)
class TrackingConfig:
    """How a live stream's face is tracked.

    Attributes:
        margin: the search region is the last face's box widened by this fraction of the box's
            width (height) on the left and right (top and bottom); a face that moved further
            touches the region's border and the whole frame is searched. YuNet's network sees
            the context around a face: at 0.5 a tracked face's landmarks are within a thirtieth of
            the eye distance of the whole frame's, at 0.25 within a tenth.
        redetect_every: every this many frames the whole frame is searched, tracked or not; 1
            searches every frame whole (no tracking).
    """

    margin: float = 0.5
    redetect_every: int = 10

    def __post_init__(self) -> None:
        if not self.margin >= 0:
            raise ConfigError(f"tracking margin must be at least 0, got {self.margin}")
        if self.redetect_every < 1:
            raise ConfigError(f"redetect_every must be at least 1, got {self.redetect_every}")


class RegionDetector(Protocol):
    """A detector that searches whole images and regions of one (YuNet's)."""

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]: ...

    def detect_region(self, image: np.ndarray, region: tuple[int, int, int, int]) -> list[Detection]: ...


class FaceTracker:
    """Detections of consecutive frames of one stream, searched around the last face when possible.

    Has the detectors' interface (:meth:`detect`), so the face pipeline uses it in place of the
    detector it wraps. ``full_searches`` and ``tracked`` count the frames of each kind.
    """

    def __init__(self, detector: RegionDetector, config: TrackingConfig = TrackingConfig()) -> None:
        self.detector = detector
        self.config = config
        self.full_searches = 0
        self.tracked = 0
        self._box: np.ndarray | None = None
        self._since_full = 0

    def reset(self) -> None:
        """Forget the last face: the next frame is searched whole."""
        self._box = None

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detections in each of ``images``, consecutive ``(H, W, 3)`` uint8 RGB frames in stream order."""
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        if self._box is not None and self._since_full + 1 < self.config.redetect_every:
            region = search_region(self._box, image.shape, self.config.margin)
            found = self.detector.detect_region(image, region)
            if len(found) == 1 and not touches_border(found[0].box, region, image.shape):
                self._box = found[0].box
                self._since_full += 1
                self.tracked += 1
                return found
        found = self.detector.detect([image])[0]
        self.full_searches += 1
        self._since_full = 0
        self._box = found[0].box if len(found) == 1 else None
        return found


def search_region(box: np.ndarray, image_shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """``box`` ``(x1, y1, x2, y2)`` widened by ``margin`` of its size on every side, clipped to the
    image, as whole pixels ``(x1, y1, x2, y2)``."""
    height, width = image_shape[:2]
    pad_x, pad_y = margin * (box[2] - box[0]), margin * (box[3] - box[1])
    x1, y1 = max(0, int(np.floor(box[0] - pad_x))), max(0, int(np.floor(box[1] - pad_y)))
    x2, y2 = min(width, int(np.ceil(box[2] + pad_x))), min(height, int(np.ceil(box[3] + pad_y)))
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


def touches_border(box: np.ndarray, region: tuple[int, int, int, int], image_shape: tuple[int, ...]) -> bool:
    """Whether ``box`` reaches a border of ``region`` that lies inside the image."""
    height, width = image_shape[:2]
    x1, y1, x2, y2 = region
    return bool((x1 > 0 and box[0] <= x1 + REGION_EDGE_PX) or (y1 > 0 and box[1] <= y1 + REGION_EDGE_PX)
                or (x2 < width and box[2] >= x2 - REGION_EDGE_PX) or (y2 < height and box[3] >= y2 - REGION_EDGE_PX))


@runtime_checkable
class TrackingPipeline(Protocol):
    """A pipeline that embeds (or only locates) the faces of a stream's frames with a tracker (the face pipeline)."""

    def new_tracker(self, config: TrackingConfig = ...) -> FaceTracker: ...

    def embed_frame(self, frame: Any, tracker: FaceTracker) -> Embedding: ...

    def locate_frame(self, frame: Any, tracker: FaceTracker | None = ...) -> Detection: ...
