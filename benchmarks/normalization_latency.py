"""Time S-norm + calibration + decision added to one check, against the 1 ms budget.

    python benchmarks/normalization_latency.py [--repeats 2000] [--out benchmarks/results/normalization_latency.json]

Per check: the probe's top-k cohort statistics (one ``(C, D) @ (D,)`` product and a partial
sort), the S-norm with the template's stored statistics, the calibrated LLR with three quality
measures, and the decision. Synthetic unit vectors; cohort sizes and dimensions of the shipped
models and the budget's worst case (C 3000, D 384). Then the shipped voice scorer's whole
decision (``Verifier.decide``: compensation, S-norm, calibration), with the template alone and
with the low-cut copies of template and probe weighed too (:mod:`verify.low_cut`: two copies,
their statistics, two more LLRs).
NumPy's OpenBLAS gets one thread, as in ``benchmarks/speed.py``. Median and p99 over ``--repeats``
checks after warm-up.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.calibration import ScoreCalibration, Thresholds  # noqa: E402
from verify.embedding import Embedding  # noqa: E402
from verify.models import model_spec  # noqa: E402
from verify.normalization import Cohort  # noqa: E402
from verify.quality_measures import default_features  # noqa: E402
from verify.verifier import Verifier  # noqa: E402

CASES = [(327, 256, 200), (2893, 256, 200), (3000, 384, 300)]  # (C, D, top_k)
MEASURES = {"speech_seconds": 2.5, "snr_db": 18.0, "clipped_fraction": 0.001}
VOICE_MEASURES = {**MEASURES, "decay_db": -15.0, "high_band_db": -20.0}


def calibration_for(cohort: Cohort) -> ScoreCalibration:
    """A calibration with three quality features and interactions (weights are arbitrary)."""
    features = default_features(MEASURES)
    thresholds = Thresholds("bench", {1e-1: 0.0, 1e-2: 2.0, 1e-3: 4.0, 1e-4: 6.0})
    return ScoreCalibration(
        "bench", features, 2.0, -3.0, (0.1, -0.2, 0.3), (0.05, 0.1, 0.2), thresholds,
        references={"speech_seconds": 4.0, "snr_db": 25.0, "clipped_fraction": 0.0},
        limits={"speech_seconds": 0.5, "snr_db": 0.0, "clipped_fraction": 0.1},
        cohort_id=cohort.cohort_id, top_k=cohort.effective_k,
    )


def time_case(size: int, dim: int, top_k: int, repeats: int) -> dict[str, float]:
    """Median and p99 milliseconds of the stages of one check."""
    rng = np.random.default_rng(0)
    cohort = Cohort(rng.normal(size=(size, dim)), top_k, "bench")
    calibration = calibration_for(cohort)
    template = rng.normal(size=dim).astype(np.float32)
    template_stats = cohort.stats(template)  # done once at enrolment
    probes = rng.normal(size=(repeats + 50, dim)).astype(np.float32)
    stats_ms, total_ms = [], []
    for index, probe in enumerate(probes):
        start = time.perf_counter()
        probe_stats = cohort.stats(probe)
        middle = time.perf_counter()
        cosine = float(template @ probe / (np.linalg.norm(template) * np.linalg.norm(probe)))
        calibration.decide(cosine, "medium", MEASURES, template=template_stats, probe=probe_stats)
        end = time.perf_counter()
        if index >= 50:  # warm-up
            stats_ms.append((middle - start) * 1e3)
            total_ms.append((end - start) * 1e3)
    return {
        "cohort": size, "dim": dim, "top_k": top_k,
        "probe_stats_median_ms": round(float(np.median(stats_ms)), 4),
        "total_median_ms": round(float(np.median(total_ms)), 4),
        "total_p99_ms": round(float(np.percentile(total_ms, 99)), 4),
    }


def time_shipped_voice(repeats: int) -> dict[str, dict[str, float]]:
    """Median and p99 milliseconds of the shipped voice scorer's decision, without and with the
    low-cut copies of template and probe."""
    shipped = model_spec("voice").scorer
    alone = shipped.replaced(low_cut=None)
    rng = np.random.default_rng(0)
    dim = shipped.cohort.vectors.shape[1]
    template = rng.normal(size=dim).astype(np.float32)
    template /= np.linalg.norm(template)
    probes = rng.normal(size=(repeats + 50, dim)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    results = {}
    for name, scorer in (("template alone", alone), ("with the low-cut copies", shipped)):
        verifier = Verifier(None, scorer)
        stats = scorer.template_stats(template)  # done once at enrolment
        times = []
        for index, probe in enumerate(probes):
            start = time.perf_counter()
            verifier.decide(template, Embedding(probe, measures=VOICE_MEASURES), stats)
            if index >= 50:  # warm-up
                times.append((time.perf_counter() - start) * 1e3)
        results[name] = {"median_ms": round(float(np.median(times)), 4),
                         "p99_ms": round(float(np.percentile(times, 99)), 4)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_before": os.getloadavg()[0]},
        "cases": [time_case(size, dim, top_k, args.repeats) for size, dim, top_k in CASES],
        "shipped_voice_decision": time_shipped_voice(args.repeats),
    }
    results["machine"]["load_after"] = os.getloadavg()[0]
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
