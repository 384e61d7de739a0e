"""Building blocks of ``voice_conditions.py``: degraded clip sets, their embeddings, cohort
score normalisation and the figures of a set of trials.

A *clip set* is every LibriSpeech segment of one half of the identity split, each passed
through one degradation with its own seeded generator; its embeddings keep failed clips as NaN
rows (scored ``-inf``: a failed genuine trial is a false reject).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import soundfile

from verify.errors import VerifyError
from verify.metrics import equal_error_rate, min_dcf, tar_at_far, threshold_at_far
from verify.voice import degrade
from verify.voice.pipeline import VoicePipeline

Builder = Callable[[Sequence[np.ndarray]], degrade.Degradation]
"""Makes a condition's degradation from the clips of the *other* speakers (for babble)."""

CONDITIONS: dict[str, Builder] = {
    "clean": lambda others: lambda samples, rng: samples,
    "cut_1_2s": lambda others: partial(degrade.cut, seconds=(1.0, 2.0)),
    "cut_1_2s_babble_5_10db": lambda others: degrade.compose(
        partial(degrade.cut, seconds=(1.0, 2.0)), partial(degrade.add_babble, others=others, snr_db=(5.0, 10.0))
    ),
    "white_0_15db": lambda others: partial(degrade.add_noise, kind="white", snr_db=(0.0, 15.0)),
    "telephone": lambda others: degrade.telephone,
    "level": lambda others: partial(degrade.change_level, gain_db=(-30.0, 20.0)),
}

@dataclass(frozen=True)
class Clips:
    """The segments of one half: ``(T,)`` float32 16 kHz samples and their speaker labels."""

    samples: list[np.ndarray]
    speakers: np.ndarray

    def others(self, index: int) -> list[np.ndarray]:
        """Every clip of a speaker other than clip ``index``'s."""
        return [clip for clip, who in zip(self.samples, self.speakers) if who != self.speakers[index]]


@dataclass(frozen=True)
class EmbeddedSet:
    """Embeddings ``(N, 256)`` (NaN rows for failed clips), per-clip measures and quality issues,
    and the speech that was embedded (kept on request, None for failed clips)."""

    vectors: np.ndarray
    measures: dict[str, np.ndarray] = field(default_factory=dict)
    issues: list[tuple[str, ...]] = field(default_factory=list)
    previews: list[np.ndarray | None] = field(default_factory=list)

    @property
    def failed(self) -> np.ndarray:
        return np.isnan(self.vectors[:, 0])


def load_clips(root: Path, folder: str, speakers: Sequence[str]) -> Clips:
    """Every ``<root>/<folder>/<speaker>/*.flac`` of ``speakers``, sorted."""
    samples, labels = [], []
    for speaker in sorted(speakers):
        for path in sorted((root / folder / speaker).glob("*.flac")):
            audio, rate = soundfile.read(path, dtype="float32")
            if rate != degrade.SAMPLE_RATE:
                raise ValueError(f"{path} is at {rate} Hz, expected {degrade.SAMPLE_RATE}")
            samples.append(audio)
            labels.append(speaker)
    if not samples:
        raise FileNotFoundError(f"no clips of {len(speakers)} speakers under {root / folder}: pass --root")
    return Clips(samples, np.array(labels))


def degrade_clips(clips: Clips, condition: str, seed: Sequence[int]) -> list[np.ndarray]:
    """Each clip through ``CONDITIONS[condition]``, generator seeded by ``(*seed, clip index)``."""
    out = []
    for index, samples in enumerate(clips.samples):
        degradation = CONDITIONS[condition](clips.others(index) if "babble" in condition else ())
        out.append(degradation(samples, np.random.default_rng([*seed, index])).astype(np.float32))
    return out


def embed_set(pipeline: VoicePipeline, clips: Sequence[np.ndarray], keep_previews: bool = False) -> EmbeddedSet:
    """Embed 16 kHz clips; a failed clip gets a NaN row, NaN measures and its error as its issue."""
    results = pipeline.embed_many([(clip, degrade.SAMPLE_RATE) for clip in clips])
    vectors = np.full((len(clips), 256), np.nan, np.float32)
    names = sorted({name for result in results if not isinstance(result, VerifyError) for name in result.measures})
    measures = {name: np.full(len(clips), np.nan) for name in names}
    issues: list[tuple[str, ...]] = []
    previews: list[np.ndarray | None] = []
    for row, result in enumerate(results):
        if isinstance(result, VerifyError):
            issues.append((f"error: {result}",))
            previews.append(None)
            continue
        vectors[row] = result.vector
        for name, value in result.measures.items():
            measures[name][row] = value
        issues.append(result.quality_issues)
        previews.append(result.preview if keep_previews else None)
    return EmbeddedSet(vectors, measures, issues, previews)


def condition_copies(pipeline: VoicePipeline, clean: EmbeddedSet) -> list[np.ndarray]:
    """``VoicePipeline.embed_condition_copies`` of every clean preview: one ``(N, 256)`` array per
    copy (NaN rows where the clean clip failed)."""
    copies = [np.full(clean.vectors.shape, np.nan, np.float32) for _ in degrade.ENROLLMENT_COPIES]
    for row, preview in enumerate(clean.previews):
        if preview is not None:
            for copy, vector in zip(copies, pipeline.embed_condition_copies(preview)):
                copy[row] = vector
    return copies


def template_mean(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Renormalised mean ``(N, D)`` of several ``(N, D)`` embeddings of the same clips (NaN copies skipped)."""
    mean = np.nanmean(np.stack(vectors), axis=0)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def raw_scores(templates: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Cosine ``(N, M)`` of unit rows; ``-inf`` where either side failed (NaN)."""
    scores = np.nan_to_num(templates) @ np.nan_to_num(probes).T
    failed = np.isnan(templates[:, 0])[:, None] | np.isnan(probes[:, 0])[None, :]
    return np.where(failed, -np.inf, scores)


def cohort_stats(
    vectors: np.ndarray, cohort: np.ndarray, top_k: int | None, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation ``(N,)`` of each vector's ``top_k`` highest cohort scores (all if None).

    ``exclude``: ``(N, M)`` booleans of cohort entries a vector must not be compared with (its
    own speaker, when the cohort and the trials come from the same half).
    """
    scores = np.nan_to_num(vectors) @ cohort.T
    if exclude is not None:
        scores = np.where(exclude, -np.inf, scores)
    ordered = -np.sort(-scores, axis=1)
    usable = int(np.min(np.isfinite(ordered).sum(axis=1)))
    ordered = ordered[:, : min(top_k or usable, usable)]
    return ordered.mean(axis=1), ordered.std(axis=1) + 1e-6


def snorm_scores(
    raw: np.ndarray,
    templates: np.ndarray,
    probes: np.ndarray,
    cohort: np.ndarray,
    top_k: int | None,
    template_exclude: np.ndarray | None = None,
    probe_exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Symmetric (adaptive with ``top_k``) score normalisation of ``raw (N, M)`` against ``cohort (C, D)``."""
    template_mean_, template_std = cohort_stats(templates, cohort, top_k, template_exclude)
    probe_mean, probe_std = cohort_stats(probes, cohort, top_k, probe_exclude)
    with np.errstate(invalid="ignore"):
        normalised = 0.5 * ((raw - template_mean_[:, None]) / template_std[:, None]
                            + (raw - probe_mean[None, :]) / probe_std[None, :])  # fmt: skip
    return np.where(np.isfinite(raw), normalised, -np.inf)


def trial_masks(speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Genuine (same speaker, different clip) and impostor ``(N, N)`` masks over clip pairs."""
    same = speakers[:, None] == speakers[None, :]
    return same & ~np.eye(len(speakers), dtype=bool), ~same


def figures(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    """EER, TAR at FAR 0.1 %, minDCF (P_target 0.01) and both score distributions' spread."""
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])

    def spread(values: np.ndarray) -> dict:
        finite = values[np.isfinite(values)]
        return {"mean": float(finite.mean()), "std": float(finite.std()), "p5": float(np.percentile(finite, 5)),
                "p95": float(np.percentile(finite, 95)), "failed": int((~np.isfinite(values)).sum())}

    return {"genuine_trials": len(genuine), "impostor_trials": len(impostor),
            "eer": equal_error_rate(scores, labels)[0], "tar_at_far_0.1%": tar_at_far(scores, labels, 1e-3),
            "min_dcf": min_dcf(scores, labels), "genuine": spread(genuine), "impostor": spread(impostor)}  # fmt: skip


def thresholds(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """Medium (FAR 0.1 %) and retry-band (FAR 1 %) thresholds of a set of trials."""
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])
    return {"medium": threshold_at_far(scores, labels, 1e-3), "retry": threshold_at_far(scores, labels, 1e-2)}


def at_threshold(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict[str, float]:
    """Share of genuine trials refused and of impostor trials accepted at ``threshold``."""
    return {"refused": float(np.mean(genuine < threshold)), "far": float(np.mean(impostor >= threshold))}
