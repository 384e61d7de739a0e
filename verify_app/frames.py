"""One live webcam frame -> the session's answer drawn on the frame (free of gradio)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import cv2
import numpy as np

from enrollment.live import FrameResult, LiveSession
from verify_app.handlers import HEADLINES, badge

COLOURS = {"accepted": (30, 170, 60), "rejected": (210, 40, 40), "retry": (235, 160, 0), "pending": (30, 95, 190)}  # RGB


@dataclass(frozen=True)
class FrameView:
    """An annotated ``(H, W, 3)`` RGB frame, the outcome, a Markdown message and the latency (ms)."""

    image: np.ndarray
    outcome: str
    message: str
    latency_ms: float


def process_frame(session: LiveSession, frame: np.ndarray, time_s: float | None = None) -> FrameView:
    """Feed one webcam frame (taken at ``time_s`` seconds, default now) to ``session`` and draw its answer.

    Raises:
        InputError: ``frame`` is not an image array.
    """
    result = session.feed(frame, time_s)
    image = annotate(frame, result.location, _label(result), COLOURS[result.outcome])
    if result.challenge is not None:
        image = draw_prompt(image, _prompt_line(result), result.challenge.progress, COLOURS[result.outcome])
    return FrameView(image, result.outcome, _message(result), result.latency_ms)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()  # cv2 draws ASCII only


def _label(result: FrameResult) -> str:
    parts = [HEADLINES[result.outcome].upper()]
    if result.decision is not None and result.identity:
        parts.append(f"{_ascii(result.identity)} {result.decision.score:.2f}")
    parts.append(f"{result.latency_ms:.0f} ms")
    return "  ".join(parts)


def _prompt_line(result: FrameResult) -> str:
    """``[x] [>] [ ]  TURN YOUR HEAD TO YOUR LEFT``: the moves' progress marks and what to do now."""
    status = result.challenge
    text = status.prompt if result.outcome == "pending" else (result.reason or status.prompt)
    return f"{status.marks}  {_ascii(text).upper()}"


def _message(result: FrameResult) -> str:
    who = result.identity or "nobody recognised"
    if result.outcome == "pending":
        status = result.challenge
        step = (f"step {min(status.step + 1, len(status.moves))} of {len(status.moves)} `{status.marks}`"
                if status.phase != "neutral" else "getting ready")
        return (f"### {badge('pending', 'Follow the prompt')}: **{result.prompt}**\n{step}  \n"
                f"<small>{result.latency_ms:.0f} ms per frame</small>")
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


def draw_prompt(image: np.ndarray, text: str, progress: float, colour: tuple[int, int, int]) -> np.ndarray:
    """``image`` (drawn on in place) with a prompt bar along the top and the move's progress under it."""
    width = image.shape[1]
    thickness = max(1, width // 400)
    scale = max(0.45, width / 1100)
    (_, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    bar = text_height + 16
    cv2.rectangle(image, (0, 0), (width, bar), colour, -1)
    cv2.putText(image, text, (8, bar - 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    cv2.rectangle(image, (0, bar), (int(width * min(max(progress, 0.0), 1.0)), bar + 6), (255, 255, 255), -1)
    return image
