"""Fitting a :class:`~verify.compensation.ProbeCompensation` on degraded copies of clean recordings."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from verify.compensation import Ramp
from verify.conditions import CLEAN, EmbeddedSamples


def shifts(samples: EmbeddedSamples) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(N, D)`` shift of every degraded sample from the clean sample of its file, and the degraded
    samples' measures (``(N,)`` each); files without a clean sample are left out."""
    clean = {path: row for row, (path, condition) in enumerate(zip(samples.files, samples.conditions))
             if condition == CLEAN}
    rows = np.array([row for row, (path, condition) in enumerate(zip(samples.files, samples.conditions))
                     if condition != CLEAN and path in clean], dtype=np.int64)
    origins = np.array([clean[path] for path in samples.files[rows]], dtype=np.int64)
    moved = samples.vectors[rows].astype(np.float64) - samples.vectors[origins].astype(np.float64)
    return moved, {name: values[rows] for name, values in samples.measures.items()}


def fit_directions(moved: np.ndarray, measures: Mapping[str, np.ndarray], ramps: Sequence[Ramp]) -> np.ndarray:
    """``(K, D)`` directions ``d`` minimising ``sum ||moved - W d||^2`` over the samples, ``W`` their
    ``(N, K)`` ramp weights: the least-squares shift per unit of each ramp.

    Raises:
        ValueError: a ramp weighs no sample (its direction would be undetermined).
    """
    weights = np.stack([ramp.weights(measures[ramp.measure]) for ramp in ramps], axis=1)
    for ramp, column in zip(ramps, weights.T):
        if not column.any():
            raise ValueError(f"no sample has any weight on the {ramp.measure} ramp: nothing to fit it on")
    return np.linalg.lstsq(weights, moved, rcond=None)[0]


def shift_profile(moved: np.ndarray, measures: Mapping[str, np.ndarray], direction: np.ndarray,
                  measure: str, edges: Sequence[float]) -> list[dict[str, float]]:
    """How far the samples moved along ``direction`` (its unit vector), by bins of ``measure``
    between consecutive ``edges``: what places a ramp's ends."""
    along = moved @ (direction / np.linalg.norm(direction))
    values = measures[measure]
    profile = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (values >= low) & (values < high)
        if inside.any():
            profile.append({"from": low, "to": high, "samples": int(inside.sum()),
                            "shift": round(float(along[inside].mean()), 4)})
    return profile
