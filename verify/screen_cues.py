"""Passive screen and print cues of a face region: moire peaks, missing fine detail, glare.

A face shown on a screen or printed and filmed again carries traces of the medium: the screen's
pixel grid or the print's halftone dots alias with the camera's pixels into periodic patterns
(isolated peaks in the spectrum), the re-capture blurs away fine detail, and glossy media
reflect light (saturated patches). Each cue is one number per face region; what separates real
from replayed frames is measured by ``scripts/measure_screen_cues.py`` on replays synthesised
from real photos only (no photos of real screens or prints are available here), so the cues are
evidence, never a decision on their own: the live session uses them, in strict mode only, to
refuse an attempt the challenge accepted, never to accept one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verify.errors import InputError, WeightsError
from verify.weights import MODELS_DIR

REGION_PX = 128
"""Side of the square grey face region the cues are measured on (pixels)."""

BAND = (0.25, 0.5)
"""The fine-detail band of spatial frequencies (cycles per pixel)."""

CUES_FILE = MODELS_DIR / "screen_cues.json"


def face_region(image: np.ndarray, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """The face box of an ``(H, W, 3)`` or ``(H, W)`` uint8 image (the whole image without a box) as
    ``(128, 128)`` float32 grey.

    Raises:
        InputError: the image is not 2-D or 3-channel uint8, or the box holds no pixels.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InputError(f"screen cues need an (H, W) or (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        grey = grey[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
    if grey.size == 0 or min(grey.shape) < 8:
        raise InputError(f"the face region {box} holds no usable pixels")
    return cv2.resize(grey, (REGION_PX, REGION_PX), interpolation=cv2.INTER_AREA).astype(np.float32)


def _spectrum(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude spectrum of the windowed region and each bin's radius (cycles per pixel)."""
    window = np.outer(np.hanning(REGION_PX), np.hanning(REGION_PX)).astype(np.float32)
    magnitude = np.abs(np.fft.fftshift(np.fft.fft2((region - region.mean()) * window)))
    frequencies = np.fft.fftshift(np.fft.fftfreq(REGION_PX))
    radius = np.hypot(*np.meshgrid(frequencies, frequencies))
    return magnitude, radius


def moire_peak(region: np.ndarray) -> float:
    """log10 of the strongest fine-detail peak over the band's median magnitude: periodic patterns."""
    magnitude, radius = _spectrum(region)
    band = magnitude[(radius >= BAND[0]) & (radius <= BAND[1])]
    return float(np.log10((band.max() + 1e-6) / (np.median(band) + 1e-6)))


def fine_detail(region: np.ndarray) -> float:
    """Share of the spectrum's energy in the fine-detail band (above the lowest frequencies)."""
    magnitude, radius = _spectrum(region)
    energy = magnitude**2
    total = energy[(radius >= 0.02) & (radius <= BAND[1])].sum()
    return float(energy[(radius >= BAND[0]) & (radius <= BAND[1])].sum() / (total + 1e-9))


def glare(region: np.ndarray) -> float:
    """Fraction of saturated pixels (grey >= 250)."""
    return float(np.mean(region >= 250))


CUES = {"moire_peak": (moire_peak, "above"), "fine_detail": (fine_detail, "below"), "glare": (glare, "above")}
"""Cue name -> (function, which side of its threshold is suspicious)."""


@dataclass(frozen=True)
class ScreenCues:
    """The cues kept by the measurement and their thresholds (a cue beyond its threshold is suspicious).

    Attributes:
        thresholds: cue name -> threshold, only for the cues that separated on the measured data.
        provenance: how they were measured (data, rates, command).
    """

    thresholds: dict[str, float]
    provenance: dict[str, Any] = field(default_factory=dict)

    def suspicious(self, region: np.ndarray) -> list[str]:
        """The kept cues that find ``region`` (see :func:`face_region`) suspicious, as sentences."""
        found = []
        for name, threshold in self.thresholds.items():
            function, side = CUES[name]
            value = function(region)
            if (value > threshold) if side == "above" else (value < threshold):
                found.append(f"{name.replace('_', ' ')} {value:.3g} {'>' if side == 'above' else '<'} {threshold:.3g}")
        return found


def load_screen_cues(path: Path = CUES_FILE) -> ScreenCues:
    """The shipped cue thresholds.

    Raises:
        WeightsError: the file is missing, unreadable or names an unknown cue.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        thresholds = {str(name): float(value) for name, value in document["thresholds"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise WeightsError(f"cannot read the screen cues {path}: {error}. Measure them with: "
                           "python scripts/measure_screen_cues.py") from error
    unknown = sorted(set(thresholds) - set(CUES))
    if unknown:
        raise WeightsError(f"{path} names unknown screen cues {unknown}; known: {sorted(CUES)}")
    return ScreenCues(thresholds, document.get("measurement", {}))
