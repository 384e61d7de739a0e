"""DET curve plot (matplotlib, imported only when a plot is asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from verify.metrics import det_points


def plot_det(scores: np.ndarray, labels: Sequence[bool], path: Path, title: str = "") -> None:
    """Draw the DET curve (FRR against FAR on normal-deviate axes) to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    far, frr = det_points(np.asarray(scores), np.asarray(labels))
    ticks = np.array([0.0001, 0.001, 0.01, 0.05, 0.2, 0.5])
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(far, frr)
    axes.set_xticks(norm.ppf(ticks), [f"{t:.2%}" for t in ticks])
    axes.set_yticks(norm.ppf(ticks), [f"{t:.2%}" for t in ticks])
    axes.set_xlim(norm.ppf([1e-4, 0.5]))
    axes.set_ylim(norm.ppf([1e-4, 0.5]))
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("false reject rate")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
