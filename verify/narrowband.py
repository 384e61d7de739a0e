"""Voices over a phone line held against a band-matched template.

A probe through a telephone channel has no sound above 3.4 kHz nor below 300 Hz; against a
template of full-band speech its score is low for the right speaker too, so the shipped
thresholds refused nine in ten such genuine voices at ``medium``. A voice enrollment therefore
also keeps the embedding of a telephone-band copy of its sample (:func:`narrowband_copy`). A probe
the front end finds band-limited (``high_band_db`` under :attr:`NarrowbandRoute.max_high_band_db`)
that is also nearer the copy than the template (raw cosine, :meth:`NarrowbandRoute.chooses`) is
scored against the copy: S-normalised and calibrated as shipped, then mapped by ``scale * llr +
offset`` (a logistic recalibration fitted on such trials) and held at LLR thresholds of its own,
set on such trials of the calibration people (``scripts/calibrate_narrowband.py``). Band-limited
audio that kept its bass (a low-bitrate codec, an 8 kHz recording) is nearer the template, and
keeps the shipped path, as does every other probe and every template without a copy (1:N
identification: :mod:`enrollment.identify`).

``<model_id>.narrowband.json``: ``{"format", "format_version", "model_id", "max_high_band_db",
"scale", "offset", "thresholds": {"<far>": llr}, "provenance": {...}}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from verify.calibration import Thresholds
from verify.errors import WeightsError
from verify.scoring import CalibratedScore
from verify.weights import read_model_document, write_model_document

ROUTE_FORMAT = "verify-narrowband-route"
ROUTE_FORMAT_VERSION = 1
MEASURE = "high_band_db"
TELEPHONE_BAND = (300.0, 3400.0)  # Hz, the band of a telephone channel (ITU-T G.712)
BAND_ORDER = 4
CHANNEL_RATE = 8_000  # Hz: a telephone channel carries nothing above half of it


@dataclass(frozen=True)
class NarrowbandRoute:
    """When a probe is held against the band-matched template, and at which LLR thresholds.

    Attributes:
        model_id: the voice model it was fitted for.
        max_high_band_db: a probe whose ``high_band_db`` is below it may take this route.
        scale, offset: the band-matched LLR is ``scale * llr + offset`` of the shipped calibration's.
        thresholds: LLR thresholds per target FAR on the mapped LLR.
        provenance: data, command and figures of the fit.
    """

    model_id: str
    max_high_band_db: float
    scale: float
    offset: float
    thresholds: Thresholds
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def unfitted(cls, model_id: str, max_high_band_db: float) -> NarrowbandRoute:
        """A route that only says which probes it takes (no mapping, no thresholds yet): for fitting one."""
        return cls(model_id, max_high_band_db, 1.0, 0.0, Thresholds(model_id, {}))

    def band_limited(self, measures: Mapping[str, Any]) -> np.ndarray:
        """Whether each sample of these front-end measures (scalars or ``(N,)`` arrays) is band-limited."""
        return np.asarray(measures[MEASURE], dtype=np.float64) < self.max_high_band_db

    def takes(self, measures: Mapping[str, float]) -> bool:
        """Whether a sample with these front-end measures is band-limited (a face, or a voice
        measured without the band, is not)."""
        return MEASURE in measures and bool(self.band_limited(measures))

    def chooses(self, measures: Mapping[str, float], template_cosine: float, copy_cosine: float) -> bool:
        """Whether a probe takes this route: band-limited, and nearer the template's narrowband copy
        than the template itself."""
        return self.takes(measures) and copy_cosine > template_cosine

    def chooses_many(self, measures: Mapping[str, np.ndarray], template_cosines: np.ndarray,
                     copy_cosines: np.ndarray) -> np.ndarray:
        """:meth:`chooses` for ``(N,)`` arrays (NaN copy cosines: no copy, never chosen)."""
        return self.band_limited(measures) & (np.asarray(copy_cosines) > np.asarray(template_cosines))

    def mapped(self, result: CalibratedScore) -> CalibratedScore:
        """``result`` with its LLR, slope and quality gain in this route's units."""
        llr, slope, gain = self.mapped_many(result.llr, result.slope, result.quality_gain)
        return dataclasses.replace(result, llr=float(llr), slope=float(slope), quality_gain=float(gain))

    def mapped_many(self, llr: Any, slope: Any, quality_gain: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LLRs, slopes and quality gains of the shipped calibration (scalars or ``(N,)`` arrays) in
        this route's units."""
        llr, slope, quality_gain = (np.asarray(values, dtype=np.float64) for values in (llr, slope, quality_gain))
        return self.scale * llr + self.offset, self.scale * slope, self.scale * quality_gain


def save_route(path: Path, route: NarrowbandRoute) -> None:
    """Write a route as JSON (format in the module docstring)."""
    write_model_document(path, ROUTE_FORMAT, ROUTE_FORMAT_VERSION, route.model_id, {
        "max_high_band_db": route.max_high_band_db,
        "scale": route.scale,
        "offset": route.offset,
        "thresholds": {f"{far:g}": round(value, 6) for far, value in sorted(route.thresholds.by_far.items())},
        "provenance": dict(route.provenance),
    })


def load_route(path: Path, model_id: str) -> NarrowbandRoute:
    """Read a route written by :func:`save_route` for ``model_id``.

    Raises:
        WeightsError: unreadable, malformed, of another format or fitted for another model.
    """
    try:
        document = read_model_document(path, ROUTE_FORMAT, ROUTE_FORMAT_VERSION, model_id)
        by_far = {float(far): float(value) for far, value in document["thresholds"].items()}
        numbers = [float(document[name]) for name in ("max_high_band_db", "scale", "offset")]
        if not all(np.isfinite(numbers + list(by_far.values()))) or numbers[1] <= 0:
            raise ValueError("its numbers must be finite and its scale positive")
        return NarrowbandRoute(model_id, *numbers, Thresholds(model_id, by_far), document.get("provenance", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise WeightsError(
            f"cannot read the band-limited voice route {path}: {error}. Refit with: python scripts/calibrate_narrowband.py"
        ) from error


def narrowband_copy(speech: np.ndarray, rate: int = 16_000) -> np.ndarray:
    """Prepared speech through a telephone band: the copy a voice enrollment keeps the embedding of.

    The magnitude response of an order-:data:`BAND_ORDER` Butterworth band-pass over
    :data:`TELEPHONE_BAND`, applied in the frequency domain (zero phase), with nothing left above
    half of :data:`CHANNEL_RATE`. NumPy only, so an enrollment imports no SciPy. Deterministic.
    """
    samples = np.asarray(speech, dtype=np.float64)
    frequencies = np.fft.rfftfreq(len(samples), 1.0 / rate)
    low, high = TELEPHONE_BAND
    with np.errstate(divide="ignore"):  # 0 Hz: no gain at all
        detuning = (frequencies**2 - low * high) / (frequencies * (high - low))
    gain = np.where(frequencies < CHANNEL_RATE / 2, 1.0 / np.sqrt(1.0 + detuning ** (2 * BAND_ORDER)), 0.0)
    return np.fft.irfft(np.fft.rfft(samples) * gain, n=len(samples)).astype(np.float32)
