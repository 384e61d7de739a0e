"""Synthetic condition-shift data: people as random unit directions, degraded samples pulled along
one shared direction, enrollment copies half-way there (for tests of training.shift_*)."""

from __future__ import annotations

import numpy as np

from verify.conditions import EmbeddedSamples

DIM = 16
CONDITIONS = ("clean", "webcam", "copy 0", "copy 1", "copy 2")


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def shift_samples(people: int = 40, files: int = 3, seed: int = 0, noise: float = 0.35) -> EmbeddedSamples:
    """``people`` x ``files`` samples under :data:`CONDITIONS`; people are named ``p00``, ``p01``, ..."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((people, DIM)))
    drift = unit(rng.standard_normal(DIM))
    vectors, names, paths, conditions, sharpness = [], [], [], [], []
    for person in range(people):
        for index in range(files):
            clean = centres[person] + noise * rng.standard_normal(DIM) / np.sqrt(DIM)
            for condition in CONDITIONS:
                pull = {"clean": 0.0, "webcam": 0.8}.get(condition, 0.4)
                vectors.append(unit(clean + pull * drift + 0.5 * pull * rng.standard_normal(DIM) / np.sqrt(DIM)))
                names.append(f"p{person:02d}")
                paths.append(f"p{person:02d}/{index}.jpg")
                conditions.append(condition)
                sharpness.append(1.0 - pull + 0.1 * rng.random())
    count = len(vectors)
    return EmbeddedSamples(np.array(vectors, np.float32), np.array(names), np.array(paths), np.array(conditions),
                           {"sharpness": np.array(sharpness)}, rng.random(count) < 0.05)
