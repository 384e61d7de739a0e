"""One live webcam frame -> face box, decision and an annotated frame (free of gradio)."""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass

import cv2
import numpy as np

from enrollment.enroll import enrolled_template
from enrollment.ratelimit import ensure_not_locked
from enrollment.identify import identify
from verify.embedding import Embedding
from verify.errors import FaceTooSmallError, NoFaceError, VerifyError
from verify.face.detect import Detection
from verify.io import check_image_array
from verify.liveness import LivenessCheck
from verify.scoring import Decision
from verify_app.handlers import HEADLINES, WHO_IS_THIS, badge
from verify_app.services import Services

COLOURS = {"accepted": (30, 170, 60), "rejected": (210, 40, 40), "retry": (235, 160, 0)}  # RGB


@dataclass(frozen=True)
class FrameResult:
    """An annotated ``(H, W, 3)`` RGB frame, the outcome, a Markdown message and the latency (ms)."""

    image: np.ndarray
    outcome: str
    message: str
    latency_ms: float


def _embed_face(services: Services, frame: np.ndarray) -> tuple[Detection | None, Embedding | str]:
    """Detect, align and embed the main face of a frame; a string explains a missing face."""
    face, sample = services.pipeline("face").embed_with_face(frame)
    if isinstance(sample, NoFaceError):
        return None, "no face found: look at the camera"
    if isinstance(sample, FaceTooSmallError):
        return face, "face too small: come closer"
    if isinstance(sample, VerifyError):
        raise sample
    return face, sample


def _decide(services: Services, identity: str, level: str, sample: Embedding) -> tuple[Decision, str]:
    """The decision and whom it is about: the claimed or recognised person, or the closest one."""
    verifier = services.verifier("face", level)
    if identity == WHO_IS_THIS:
        found = identify(services.store, verifier, sample)
        return found.decision, found.identity or f"nobody recognised (closest: {found.candidates[0].identity})"
    template = enrolled_template(services.store, verifier.pipeline, identity)
    # A locked-out identity cannot be verified live either; single frames are not counted as
    # attempts (a stranger in view would lock the owner out within seconds).
    ensure_not_locked(services.store, template.identity, "face")
    return verifier.decide(template.embedding, sample), identity


def process_frame(services: Services, frame: np.ndarray, identity: str | None, level: str,
                  liveness: LivenessCheck | None = None) -> FrameResult:
    """Verify one webcam frame against ``identity`` (or identify with ``WHO_IS_THIS``).

    With ``liveness`` (strict mode) an accepted frame only counts once the liveness window shows
    natural variation; a frozen image is rejected as "static image suspected".
    """
    start = time.perf_counter()
    frame = check_image_array(frame, "webcam frame")
    if not identity:
        return _result(frame, None, "retry", "choose who to verify first", start)
    try:
        box, sample = _embed_face(services, frame)
        if isinstance(sample, str):
            if liveness is not None:
                liveness.update(None, False)
            return _result(frame, box, "retry", sample, start)
        decision, name = _decide(services, identity, level, sample)
    except VerifyError as error:
        return _result(frame, None, "retry", str(error), start)
    outcome, reason = decision.outcome, decision.reason
    if liveness is not None:
        status = liveness.update(sample.vector, decision.accepted)
        if decision.accepted and status.state != "live":
            outcome, reason = ("retry" if status.state == "collecting" else "rejected"), status.message
    detail = f"{name}: score {decision.score:.3f} (needs ≥ {decision.threshold:.3f})"
    detail += f" — {reason}" if reason else ""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # cv2 draws ASCII only
    return _result(frame, box, outcome, detail, start, f"{ascii_name.split(' (')[0]} {decision.score:.2f}")


def _result(frame: np.ndarray, box: Detection | None, outcome: str, detail: str, start: float,
            label: str = "") -> FrameResult:
    latency = (time.perf_counter() - start) * 1000
    text = f"{HEADLINES[outcome].upper()}  {label}  {latency:.0f} ms".replace("    ", "  ")
    image = annotate(frame, box, text, COLOURS[outcome])
    message = f"### {badge(outcome)}\n{detail}  \n<small>{latency:.0f} ms per frame</small>"
    return FrameResult(image, outcome, message, latency)


def annotate(frame: np.ndarray, box: Detection | None, label: str, colour: tuple[int, int, int]) -> np.ndarray:
    """A copy of ``frame`` with the face box and a label bar along the bottom, in ``colour`` (RGB)."""
    image = np.ascontiguousarray(frame.copy())
    height = image.shape[0]
    thickness = max(2, image.shape[1] // 200)
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
    scale = max(0.5, image.shape[1] / 900)
    (width, text_height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = height - text_height - 18
    cv2.rectangle(image, (0, top), (width + 16, height), colour, -1)
    white = (255, 255, 255)
    cv2.putText(image, label, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, white, thickness, cv2.LINE_AA)
    return image
