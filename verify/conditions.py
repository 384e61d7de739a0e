"""Samples met in other conditions than their enrollment: embedded sets and the trials among them.

Calibration (``scripts/calibrate.py``), the condition benchmark (``benchmarks/conditions.py``)
and meta-training draw on the same pieces: every file of a set of people is decoded, degraded
under each named condition with a generator seeded by (seed, condition, file), and embedded by
the shipped pipeline. Trials then enroll from a clean sample and probe with a sample of
another file (genuine: same person; impostor: anyone else) in one condition, as a person meets
the product: enrolled once at home, checked later somewhere else.

Conditions are broad families, not single settings: the people and degradations the product is
judged on are not in this repository.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from verify.calibration import QualityTerms, Thresholds
from verify.config import SECURITY_LEVELS
from verify.embedding import Embedding, Pipeline
from verify.errors import VerifyError
from verify.face import degrade as face_degrade
from verify.fusion import ModalityTrials, chimeric_pairs
from verify.io import decode_audio, decode_image
from verify.narrowband import NarrowbandRoute
from verify.quality_measures import trial_measures
from verify.scorer import CalibratedScorer
from verify.scoring import calibrated_outcomes
from verify.voice import degrade as voice_degrade

Sample = np.ndarray
Condition = Callable[[Sample, np.random.Generator, Sequence[Sample]], Sample]
"""``(clean sample, rng, clips of other people) -> degraded sample`` (the clips feed babble)."""

CLEAN = "clean"


def _face(degradation: face_degrade.Degradation) -> Condition:
    return lambda image, rng, others: degradation(image, rng)


def _voice(degradation: voice_degrade.Degradation) -> Condition:
    return lambda speech, rng, others: degradation(speech, rng)


def _short_babble(speech: Sample, rng: np.random.Generator, others: Sequence[Sample],
                  seconds: tuple[float, float], snr_db: tuple[float, float]) -> Sample:
    short = voice_degrade.cut(speech, rng, seconds)
    return voice_degrade.add_babble(short, rng, others, snr_db=snr_db)


def any_voice(speech: Sample, rng: np.random.Generator, others: Sequence[Sample]) -> Sample:
    """One of the broad family of voice degradations, babble included (a quarter of the time)."""
    if rng.random() < 0.25:
        return _short_babble(speech, rng, others, (1.0, 4.0), (0.0, 20.0))
    return voice_degrade.random_degradation(rng)(speech, rng)


FACE_CONDITIONS: dict[str, Condition | None] = {
    CLEAN: None,
    "webcam": _face(face_degrade.webcam_like),
}
"""What the face benchmark reports: clean photos and webcam-like probes (30-60 % resolution, blur,
JPEG, exposure, contrast, noise, mirror in random mixes)."""

VOICE_CONDITIONS: dict[str, Condition | None] = {
    CLEAN: None,
    "1-3 s": _voice(partial(voice_degrade.cut, seconds=(1.0, 3.0))),
    "1-2 s + babble 5-10 dB": partial(_short_babble, seconds=(1.0, 2.0), snr_db=(5.0, 10.0)),
    "white noise 0-15 dB": _voice(partial(voice_degrade.add_noise, kind="white", snr_db=(0.0, 15.0))),
    "telephone": _voice(voice_degrade.telephone),
    "level changes": _voice(voice_degrade.change_level),
}
"""What the voice benchmark reports (the issue's conditions)."""

VOICE_ROOM: dict[str, Condition | None] = {
    "room RT60 0.4-0.9 s": _voice(partial(voice_degrade.reverberate, rt60_seconds=(0.4, 0.9))),
}
"""A reverberant room, reported by the voice benchmark beside :data:`VOICE_CONDITIONS` (kept apart
from them, which also draw the meta-learning sets)."""

FACE_UNSEEN: dict[str, Condition | None] = {
    CLEAN: None,
    "tilted 10-25°": _face(face_degrade.tilt),
    "partly covered": _face(face_degrade.cover),
    "light from one side": _face(face_degrade.side_light),
    "far (15-30 % scale)": _face(partial(face_degrade.downscale, factor=(0.15, 0.3))),
    "larger photo (2-4x the pixels a side)": _face(face_degrade.upscale),
}
"""Face conditions that no calibration, cohort or training here draws on, to see how the shipped
levels carry to degradations they were not fitted to (``benchmarks/conditions.py --unseen``); the
clean photos are the enrollments."""

VOICE_UNSEEN: dict[str, Condition | None] = {
    CLEAN: None,
    "MP3 / Opus 8-45 kbit/s": _voice(voice_degrade.codec),
    "far field (room, pink noise, quieter)": _voice(voice_degrade.compose(
        partial(voice_degrade.reverberate, rt60_seconds=(0.3, 0.7)),
        partial(voice_degrade.add_noise, kind="pink", snr_db=(5.0, 15.0)),
        partial(voice_degrade.change_level, gain_db=(-25.0, -10.0)))),
    "other phone channels (150-400 Hz to 2.8-3.8 kHz, line noise)": _voice(voice_degrade.phone_channel),
    "another microphone (high-pass, shelves, presence peak)": _voice(voice_degrade.microphone),
    "a DC offset of 0.5-5 % of full scale": _voice(voice_degrade.dc_offset),
}
"""Voice conditions no calibration, cohort or training here draws on: a lossy codec; a room, noise
and distance together (calibration draws one degradation at a time); phone channels of other band
edges and slopes than the one telephone band calibration and the phone-line route are fitted on,
with line noise; another microphone's frequency response (a probe recorded on another device than
the enrollment); another sound card's constant offset."""

CALIBRATION_CONDITIONS: dict[str, dict[str, Condition | None]] = {
    "face": {CLEAN: None, "webcam": _face(face_degrade.webcam_like)},
    "voice": {CLEAN: None, "short": _voice(partial(voice_degrade.cut, seconds=(0.75, 4.0))),
              "any": any_voice, "any again": any_voice},
}
"""What calibration sees: clean samples and broad random families of degradations, several draws
per file for voices (their conditions vary more), and clean voices cut short on their own: each
level's threshold holds its FAR in every one of these conditions."""


class RevisedPipeline(Pipeline, Protocol):
    """A pipeline that names its front end's revision, as :func:`embed_cached` needs."""

    front_end_revision: int
    """Bumped when the front end changes what a sample embeds to with the same weights, so that
    embeddings kept between runs are made again."""


@dataclass(frozen=True, eq=False)
class EmbeddedSamples:
    """Files of a set of people embedded under named conditions.

    Attributes:
        vectors: ``(M, D)`` unit embeddings.
        people: ``(M,)`` person of each sample (``"<data set>/<person>"``).
        files: ``(M,)`` source file of each sample (relative to the data root).
        conditions: ``(M,)`` condition of each sample.
        measures: measure name -> ``(M,)`` values, for measures every sample reported.
        flagged: ``(M,)`` True where the front end raised a quality issue (the product answers
            "retry" rather than "rejected" for such a sample).
        failed: condition -> files that could not be embedded (no face, too little speech).
        copies: ``(M, D)`` narrowband copies kept with the templates, as a voice enrollment keeps
            them (rows of NaN where none, :func:`with_narrowband_copies`); ``None``: not made.
    """

    vectors: np.ndarray
    people: np.ndarray
    files: np.ndarray
    conditions: np.ndarray
    measures: Mapping[str, np.ndarray]
    flagged: np.ndarray
    failed: Mapping[str, int] = field(default_factory=dict)
    copies: np.ndarray | None = None

    def select(self, keep: np.ndarray) -> EmbeddedSamples:
        """The samples of a boolean ``(M,)`` mask."""
        return EmbeddedSamples(self.vectors[keep], self.people[keep], self.files[keep], self.conditions[keep],
                               {name: values[keep] for name, values in self.measures.items()},
                               self.flagged[keep], self.failed, None if self.copies is None else self.copies[keep])


def save_samples(path: Path, samples: EmbeddedSamples) -> None:
    """Write embedded samples to an ``.npz`` file (embeddings and measures only, never the samples)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=samples.vectors, people=samples.people, files=samples.files,
             conditions=samples.conditions, flagged=samples.flagged, failed=json.dumps(dict(samples.failed)),
             **{f"measure_{key}": values for key, values in samples.measures.items()})


def load_samples(path: Path) -> EmbeddedSamples:
    """Read what :func:`save_samples` wrote."""
    with np.load(path, allow_pickle=False) as stored:
        measures = {key[len("measure_"):]: stored[key] for key in stored.files if key.startswith("measure_")}
        return EmbeddedSamples(stored["vectors"], stored["people"], stored["files"], stored["conditions"],
                               measures, stored["flagged"], json.loads(str(stored["failed"])))


def embed_cached(
    pipeline: RevisedPipeline,
    root: Path,
    files: Sequence[tuple[str, str]],
    conditions: Mapping[str, Condition | None],
    seed: int,
    cache: Path | None,
    progress: Callable[[int], None] = lambda done: None,
) -> EmbeddedSamples:
    """:func:`embed_under_conditions`, kept in the folder ``cache`` (None: not kept) between runs.

    The file name carries the model, its version, its front end's revision and a digest of the
    files, the condition names and the seed, so a run over other people or conditions, or after a
    front-end change, never reads another run's embeddings.
    """
    if cache is None:
        return embed_under_conditions(pipeline, root, files, conditions, seed, progress=progress)
    key = json.dumps([[list(item) for item in files], sorted(conditions), seed]).encode()
    name = f"{pipeline.model_id}-{pipeline.model_version}-r{pipeline.front_end_revision}-{hashlib.sha256(key).hexdigest()[:16]}"
    path = cache / f"{name}.npz"
    if path.exists():
        return load_samples(path)
    samples = embed_under_conditions(pipeline, root, files, conditions, seed, progress=progress)
    save_samples(path, samples)
    return samples


def decode_sample(modality: str, path: Path) -> Sample:
    """``(H, W, 3)`` uint8 RGB image, or ``(T,)`` float32 audio at the data's rate (16 kHz)."""
    if modality == "face":
        return decode_image(path)
    samples, rate = decode_audio(path)
    if rate != voice_degrade.SAMPLE_RATE:
        raise VerifyError(f"{path}: {rate} Hz; the condition sets read 16 kHz data")
    return samples


def embed_under_conditions(
    pipeline: Pipeline,
    root: Path,
    files: Sequence[tuple[str, str]],
    conditions: Mapping[str, Condition | None],
    seed: int = 0,
    batch: int = 32,
    progress: Callable[[int], None] = lambda done: None,
) -> EmbeddedSamples:
    """Embed every ``(person, relative path)`` of ``files`` under every condition.

    Babble for a person's voice clips is drawn from the clean clips of the other people of ``files``.
    """
    modality = pipeline.modality
    clean = {path: decode_sample(modality, root / path) for _, path in files}
    by_person: dict[str, list[str]] = {}
    for person, path in files:
        by_person.setdefault(person, []).append(path)
    embedded: list[tuple[str, str, str, Embedding]] = []
    failed: dict[str, int] = {}
    for name, condition in conditions.items():
        jobs = []
        for person, path in files:
            sample = clean[path]
            if condition is not None:
                rng = face_degrade.seeded_rng(seed, f"{name}:{path}")
                others = ([clean[other] for who, paths in by_person.items() if who != person for other in paths]
                          if modality == "voice" else [])
                sample = condition(sample, rng, others)
            jobs.append((person, path, sample if modality == "face" else (sample, voice_degrade.SAMPLE_RATE)))
        for start in range(0, len(jobs), batch):
            chunk = jobs[start : start + batch]
            for (person, path, _), result in zip(chunk, pipeline.embed_many([job[2] for job in chunk])):
                if isinstance(result, VerifyError):
                    failed[name] = failed.get(name, 0) + 1
                else:
                    embedded.append((person, path, name, result))
            progress(len(chunk))
    shared = set.intersection(*(set(item[3].measures) for item in embedded)) if embedded else set()
    return EmbeddedSamples(
        np.stack([item[3].vector for item in embedded]),
        np.array([item[0] for item in embedded]),
        np.array([item[1] for item in embedded]),
        np.array([item[2] for item in embedded]),
        {key: np.array([float(item[3].measures[key]) for item in embedded]) for key in sorted(shared)},
        np.array([bool(item[3].quality_issues) for item in embedded]),
        failed,
    )


def with_narrowband_copies(pipeline: Pipeline, route: NarrowbandRoute, root: Path,
                           samples: EmbeddedSamples) -> EmbeddedSamples:
    """``samples`` with the narrowband copy of each clean sample, as a voice enrollment keeps it
    (:meth:`verify.verifier.Verifier.narrowband_copy`: none for a sample ``route`` finds band-limited
    already); rows of NaN for the others."""
    clean = np.nonzero((samples.conditions == CLEAN) & ~route.band_limited(samples.measures))[0]
    copies = np.full(samples.vectors.shape, np.nan, np.float32)
    for row, embedded in zip(clean, pipeline.embed_many([root / samples.files[row] for row in clean])):
        if not isinstance(embedded, VerifyError):
            copies[row] = pipeline.embed_narrowband(embedded.preview)
    return replace(samples, copies=copies)


def condition_trials(samples: EmbeddedSamples, condition: str, max_impostors: int | None = None,
                     seed: int = 0, flagged_enroll: bool = False,
                     enroll_condition: str = CLEAN) -> tuple[np.ndarray, np.ndarray]:
    """``(enroll, probe)`` indices into ``samples``: every enrollment (a sample of
    ``enroll_condition``, clean by default) against every probe of ``condition`` from another file;
    at most ``max_impostors`` impostor trials (a seeded draw).

    A sample the front end flagged (too little speech, noise, blur...) enrolls only with
    ``flagged_enroll``: enrollment refuses it unless told otherwise, and the person is asked for
    another sample.
    """
    enrolls = samples.conditions == enroll_condition
    enroll_ids = np.nonzero(enrolls if flagged_enroll else enrolls & ~samples.flagged)[0]
    probe_ids = np.nonzero(samples.conditions == condition)[0]
    enroll, probe = np.meshgrid(enroll_ids, probe_ids, indexing="ij")
    enroll, probe = enroll.ravel(), probe.ravel()
    keep = samples.files[enroll] != samples.files[probe]
    enroll, probe = enroll[keep], probe[keep]
    genuine = samples.people[enroll] == samples.people[probe]
    if max_impostors is not None and (~genuine).sum() > max_impostors:
        rng = np.random.default_rng(seed)
        impostors = rng.choice(np.nonzero(~genuine)[0], max_impostors, replace=False)
        chosen = np.sort(np.concatenate([np.nonzero(genuine)[0], impostors]))
        enroll, probe = enroll[chosen], probe[chosen]
    return enroll, probe


@dataclass(frozen=True)
class TrialScores:
    """What the shipped scoring makes of trials, vectorised: ``(N,)`` arrays.

    Attributes:
        labels: True for genuine trials.
        llr: calibrated log-likelihood ratios.
        outcomes: level -> ``"accepted"``, ``"retry"`` or ``"rejected"``, as the product answers.
        quality_gain: LLR the probe's quality costs (:attr:`QualityTerms.quality_gain`).
        supported: False where the probe's quality is worse than the calibration's limits.
        flagged: True where the front end flagged the probe (blurry, dark, short, noisy).
    """

    labels: np.ndarray
    llr: np.ndarray
    outcomes: Mapping[str, np.ndarray]
    quality_gain: np.ndarray
    supported: np.ndarray
    flagged: np.ndarray

    def take(self, rows: np.ndarray) -> TrialScores:
        """The trials at ``rows`` (indices or a boolean mask), in that order."""
        return TrialScores(self.labels[rows], self.llr[rows], {level: answer[rows] for level, answer in
                                                               self.outcomes.items()},
                           self.quality_gain[rows], self.supported[rows], self.flagged[rows])


def compensated_probes(scorer: CalibratedScorer, samples: EmbeddedSamples,
                       probe: np.ndarray) -> tuple[EmbeddedSamples, np.ndarray]:
    """``samples`` with the probes of ``probe`` appended as ``scorer`` scores them (compensated for
    their conditions, :meth:`~verify.scorer.CalibratedScorer.compensated`), and their rows there;
    ``(samples, probe)`` themselves when it compensates nothing. Enrollments keep their rows, as
    templates are never compensated."""
    compensation = scorer.compensation
    if compensation is None:
        return samples, probe
    vectors, rows, probe = compensation.appended_probes(samples.vectors, samples.measures, probe)
    return appended_rows(samples, rows, vectors[len(samples.vectors):]), probe


def appended_rows(samples: EmbeddedSamples, rows: np.ndarray, vectors: np.ndarray) -> EmbeddedSamples:
    """``samples`` with new samples appended: ``vectors`` ``(R, D)`` in place of the vectors of
    ``rows`` ``(R,)``, everything else (person, file, condition, measures, flag) theirs, no copies."""
    copies = None if samples.copies is None else np.vstack([samples.copies, np.full((len(rows), samples.copies.shape[1]),
                                                                                    np.nan, np.float32)])
    return EmbeddedSamples(
        np.vstack([samples.vectors, vectors]).astype(np.float32),
        np.concatenate([samples.people, samples.people[rows]]),
        np.concatenate([samples.files, samples.files[rows]]),
        np.concatenate([samples.conditions, samples.conditions[rows]]),
        {name: np.concatenate([values, values[rows]]) for name, values in samples.measures.items()},
        np.concatenate([samples.flagged, samples.flagged[rows]]),
        samples.failed,
        copies,
    )


def route_trials(route: NarrowbandRoute, samples: EmbeddedSamples, enroll: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Which ``(enroll, probe)`` trials ``route`` takes: band-limited probes nearer their template's
    narrowband copy (``samples.copies``; none where a template has no copy) than the template."""
    template_cosines, copy_cosines = (np.einsum("ij,ij->i", vectors[enroll], samples.vectors[probe])
                                      for vectors in (samples.vectors, samples.copies))
    return route.chooses_many({name: values[probe] for name, values in samples.measures.items()}, template_cosines,
                              copy_cosines)


def trial_terms(scorer: CalibratedScorer, samples: EmbeddedSamples, enroll: np.ndarray, probe: np.ndarray,
                cohort_codes: Mapping[str, int] | None = None, routed: np.ndarray | None = None) -> QualityTerms:
    """The shipped calibration's terms of every ``(enroll, probe)`` trial: cosine, S-norm, LLR; the
    probes as the scorer takes them already (:func:`compensated_probes`).

    ``cohort_codes`` (person -> label in the cohort) is for samples of the cohort's own people:
    both people of a trial are then left out of the cohort (:meth:`Cohort.trial_statistics`).
    A trial where ``routed`` is True is scored against its template's narrowband copy
    (``samples.copies``) instead of the template.
    """
    vectors, templates, people, copies = samples.vectors, enroll, samples.people, samples.copies
    if routed is not None and routed.any():
        if copies is None:
            raise ValueError("routed trials need the samples' narrowband copies")
        kept = np.isfinite(copies[:, 0])
        if not kept[enroll[routed]].all():
            raise ValueError("a routed trial's template has no narrowband copy")
        copy_rows = np.full(len(kept), -1)
        copy_rows[kept] = len(vectors) + np.arange(int(kept.sum()))
        vectors = np.vstack([vectors, copies[kept]]).astype(np.float32)
        people = np.concatenate([people, people[kept]])
        templates = np.where(routed, copy_rows[enroll], enroll)
    cosines = np.einsum("ij,ij->i", vectors[templates], vectors[probe]).astype(np.float64)
    scores = cosines
    if scorer.cohort is not None:
        identities = None if cohort_codes is None else np.array([cohort_codes[person] for person in people])
        scores = scorer.cohort.s_norm_trials(cosines, vectors, templates, probe, identities)
    probe_measures = {name: values[probe] for name, values in samples.measures.items()}
    return scorer.calibration.terms(scores, trial_measures(probe_measures, cosines))


def low_cut_terms(scorer: CalibratedScorer, samples: EmbeddedSamples, enroll: np.ndarray, probe: np.ndarray,
                  cohort_codes: Mapping[str, int] | None = None) -> tuple[QualityTerms, QualityTerms]:
    """The calibration's terms of every trial with the template's low-cut copy against the probe,
    then with the template against the probe's low-cut copy (:mod:`verify.low_cut`); the probes as
    the scorer takes them already (:func:`compensated_probes`)."""
    with_template_copies, template_copies = with_low_cut_copies(scorer, samples, enroll)
    with_probe_copies, probe_copies = with_low_cut_copies(scorer, samples, probe)
    return (trial_terms(scorer, with_template_copies, template_copies, probe, cohort_codes),
            trial_terms(scorer, with_probe_copies, enroll, probe_copies, cohort_codes))


def with_low_cut_copies(scorer: CalibratedScorer, samples: EmbeddedSamples,
                        rows: np.ndarray) -> tuple[EmbeddedSamples, np.ndarray]:
    """``samples`` with the low-cut copy of each sample of ``rows`` appended (:func:`appended_rows`),
    and where each of ``rows`` has its copy there."""
    unique, inverse = np.unique(rows, return_inverse=True)
    return (appended_rows(samples, unique, scorer.low_cut.copies(samples.vectors[unique])),
            len(samples.vectors) + inverse)


def score_trials(scorer: CalibratedScorer, samples: EmbeddedSamples, enroll: np.ndarray, probe: np.ndarray,
                 levels: Sequence[str] = tuple(SECURITY_LEVELS),
                 cohort_codes: Mapping[str, int] | None = None) -> TrialScores:
    """The product's LLR and answer at each level for every ``(enroll, probe)`` trial.

    Same rules as :func:`verify.scoring.decide_calibrated`, vectorised: a probe the front end
    flagged (blurry, dark, short, noisy) that is not accepted gets "retry", not "rejected"; probes
    are compensated for their conditions first (:func:`compensated_probes`).
    ``cohort_codes``: see :func:`trial_terms`. With ``samples.copies``, a probe against a template
    with a copy takes the scorer's narrowband route when the route chooses it, as
    :meth:`verify.verifier.Verifier.decide` does; every other trial also weighs the template's and
    the probe's low-cut copies when the scorer has a map for them
    (:meth:`~verify.scorer.CalibratedScorer.decide_with_copies`).
    """
    samples, probe = compensated_probes(scorer, samples, probe)
    route = scorer.narrowband
    routed = np.zeros(len(enroll), bool)
    if samples.copies is not None and route is not None:
        routed = route_trials(route, samples, enroll, probe)
    terms = trial_terms(scorer, samples, enroll, probe, cohort_codes, routed)
    llr, slope, gain = terms.llr, terms.slope, terms.quality_gain
    if routed.any():
        llr, slope, gain = (np.where(routed, mapped, plain)
                            for mapped, plain in zip(route.mapped_many(llr, slope, gain), (llr, slope, gain)))
    if scorer.low_cut is not None:
        for copied in low_cut_terms(scorer, samples, enroll, probe, cohort_codes):
            copy_llr = copied.llr - scorer.low_cut.penalty
            chosen = ~routed & (copy_llr > llr)
            llr, slope, gain = (np.where(chosen, copy, plain) for copy, plain in
                                zip((copy_llr, copied.slope, copied.quality_gain), (llr, slope, gain)))
    flagged = samples.flagged[probe]
    outcomes = {}
    for level in levels:
        answer = calibrated_outcomes(llr, slope, gain, scorer.operating_point(level), terms.supported)
        if routed.any():
            answer = np.where(routed, calibrated_outcomes(llr, slope, gain, route.thresholds.operating_point(level),
                                                          terms.supported), answer)
        outcomes[level] = np.where((answer == "rejected") & flagged, "retry", answer)
    return TrialScores(samples.people[enroll] == samples.people[probe], llr, outcomes, gain, terms.supported, flagged)


def llr_sum_trials(parts: Sequence[TrialScores], thresholds: Thresholds,
                   levels: Sequence[str] = tuple(SECURITY_LEVELS),
                   floors: Sequence[float] | None = None) -> TrialScores:
    """Answers of the LLR-sum rule on paired trials (row ``i`` of every part is one trial), as
    :func:`verify.fusion.fuse_llr` gives them: the summed LLR held at the fused ``thresholds``,
    with each part's veto below its floor (one per part) when ``floors`` are given."""
    llr = np.sum([part.llr for part in parts], axis=0)
    gain = np.sum([part.quality_gain for part in parts], axis=0)
    supported = np.all([part.supported for part in parts], axis=0)
    flagged = np.any([part.flagged for part in parts], axis=0)
    outcomes = {}
    for level in levels:
        answer = calibrated_outcomes(llr, np.ones_like(llr), gain, thresholds.operating_point(level), supported)
        outcomes[level] = np.where((answer == "rejected") & flagged, "retry", answer)
        if floors is not None:
            vetoed = np.any([part.llr < floor for part, floor in zip(parts, floors, strict=True)], axis=0)
            outcomes[level] = np.where(vetoed, "rejected", outcomes[level])
    return TrialScores(parts[0].labels, llr, outcomes, gain, supported, flagged)


def and_rule_trials(parts: Sequence[TrialScores]) -> TrialScores:
    """Answers of the AND rule on paired trials, as :func:`verify.fusion.fuse_and` gives them."""
    outcomes = {}
    for level in parts[0].outcomes:
        answers = np.array([part.outcomes[level] for part in parts])
        outcomes[level] = np.where((answers == "rejected").any(axis=0), "rejected",
                                   np.where((answers == "accepted").all(axis=0), "accepted", "retry"))
    return TrialScores(parts[0].labels, np.sum([part.llr for part in parts], axis=0), outcomes,
                       np.sum([part.quality_gain for part in parts], axis=0),
                       np.all([part.supported for part in parts], axis=0),
                       np.any([part.flagged for part in parts], axis=0))


def chimeric_scores(first: tuple[CalibratedScorer, EmbeddedSamples, str],
                    second: tuple[CalibratedScorer, EmbeddedSamples, str],
                    draws: int = 1, seed: int = 0,
                    cohort_codes: tuple[Mapping[str, int] | None, Mapping[str, int] | None] = (None, None),
                    ) -> tuple[TrialScores, TrialScores]:
    """Paired trials of chimeric people of two modalities: row ``i`` of both results is one trial.

    Each side is ``(scorer, samples, condition)``, with its ``cohort_codes`` when its people
    are the cohort's own (see :func:`score_trials`). In each of ``draws`` seeded draws, as many
    people as the smaller side has are taken from each side and paired one to one
    (:func:`verify.fusion.chimeric_pairs`); every clean enrollment is tried against every probe
    of the side's condition (:func:`condition_trials`).
    """
    rng = np.random.default_rng(seed)
    people = [np.unique(samples.people) for _, samples, _ in (first, second)]
    count = min(len(names) for names in people)
    drawn: tuple[list[TrialScores], list[TrialScores]] = ([], [])
    for _ in range(draws):
        sides = []
        for (scorer, samples, condition), names, known in zip((first, second), people, cohort_codes):
            subset = samples.select(np.isin(samples.people, rng.choice(names, count, replace=False)))
            enroll, probe = condition_trials(subset, condition)
            _, codes = np.unique(subset.people, return_inverse=True)
            scores = score_trials(scorer, subset, enroll, probe, cohort_codes=known)
            sides.append((scores, codes[enroll], codes[probe]))
        rows, pick = chimeric_pairs(*(ModalityTrials(scores.llr, enrolled, probed)
                                      for scores, enrolled, probed in sides), seed=int(rng.integers(2**31)))
        drawn[0].append(sides[0][0].take(rows))
        drawn[1].append(sides[1][0].take(pick))
    return concatenate_scores(drawn[0]), concatenate_scores(drawn[1])


def concatenate_scores(parts: Sequence[TrialScores]) -> TrialScores:
    """One :class:`TrialScores` of several, in order."""
    return TrialScores(np.concatenate([part.labels for part in parts]), np.concatenate([part.llr for part in parts]),
                       {level: np.concatenate([part.outcomes[level] for part in parts]) for level in parts[0].outcomes},
                       np.concatenate([part.quality_gain for part in parts]),
                       np.concatenate([part.supported for part in parts]),
                       np.concatenate([part.flagged for part in parts]))
