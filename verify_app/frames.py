"""One live webcam frame -> the session's answer drawn on the frame (free of gradio)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import cv2
import numpy as np

from enrollment.live import FrameResult, LiveSession
from verify_app.handlers import HEADLINES, badge

COLOURS = {"accepted": (30, 170, 60), "rejected": (210, 40, 40), "retry": (235, 160, 0)}  # RGB


@dataclass(frozen=True)
class FrameView:
    """An annotated ``(H, W, 3)`` RGB frame, the outcome, a Markdown message and the latency (ms)."""

    image: np.ndarray
    outcome: str
    message: str
    latency_ms: float


def process_frame(session: LiveSession, frame: np.ndarray) -> FrameView:
    """Feed one webcam frame to ``session`` and draw its answer.

    Raises:
        InputError: ``frame`` is not an image array.
    """
    result = session.feed(frame)
    return FrameView(annotate(frame, result.location, _label(result), COLOURS[result.outcome]), result.outcome,
                     _message(result), result.latency_ms)


def _label(result: FrameResult) -> str:
    parts = [HEADLINES[result.outcome].upper()]
    if result.decision is not None and result.identity:
        ascii_name = unicodedata.normalize("NFKD", result.identity).encode("ascii", "ignore").decode()  # cv2 draws ASCII only
        parts.append(f"{ascii_name} {result.decision.score:.2f}")
    parts.append(f"{result.latency_ms:.0f} ms")
    return "  ".join(parts)


def _message(result: FrameResult) -> str:
    who = result.identity or "nobody recognised"
    detail = who if result.decision is None else (
        f"{who}: score {result.decision.score:.3f} (needs ≥ {result.decision.threshold:.3f})")
    detail += f" — {result.reason}" if result.reason else ""
    return f"### {badge(result.outcome)}\n{detail}  \n<small>{result.latency_ms:.0f} ms per frame</small>"


def annotate(frame: np.ndarray, box: tuple[float, float, float, float] | None, label: str,
             colour: tuple[int, int, int]) -> np.ndarray:
    """A copy of ``frame`` with the face box and a label bar along the bottom, in ``colour`` (RGB)."""
    image = np.ascontiguousarray(np.array(frame, dtype=np.uint8, copy=True))
    height = image.shape[0]
    thickness = max(2, image.shape[1] // 200)
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
    scale = max(0.5, image.shape[1] / 900)
    (width, text_height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = height - text_height - 18
    cv2.rectangle(image, (0, top), (width + 16, height), colour, -1)
    white = (255, 255, 255)
    cv2.putText(image, label, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, white, thickness, cv2.LINE_AA)
    return image
