"""People of a data set embedded clean, degraded and as enrollment copies, cached on disk.

Per-user adaptation is judged on what one-shot users meet: enrolled once from a clean sample,
checked later under other conditions. This module embeds every file of a set of people
(identity split of :mod:`training.episodes`) under named conditions with
:func:`verify.conditions.embed_under_conditions`, and caches the result as
``<cache_dir>/<model_id>-<version>-<dataset>-<part>-<seed>.npz``.

Conditions per modality (:func:`conditions_for`):

* ``clean``: the file as it is (enrollments).
* degraded probes: the broad families of :mod:`verify.conditions` (webcam-like faces; voices in
  every named benchmark condition and the random "any" family).
* ``copy 0..2``: sample-space augmentations of a voice enrollment, the condition copies the voice
  front end defines (:data:`verify.voice.degrade.ENROLLMENT_COPIES`). Faces take none by default:
  three more embeddings of every file cost about 30 min on one CPU thread; face adaptation uses
  feature-space augmentations only.

Seeds: 0 for the calibration people (the draws ``scripts/calibrate.py`` fitted the shipped
calibration on), 7 for the evaluation people (those of ``benchmarks/conditions.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from training.episodes import split_identities
from training.features import DATASETS, REPO_ROOT, dataset_modality
from verify.conditions import (
    CALIBRATION_CONDITIONS,
    CLEAN,
    FACE_CONDITIONS,
    VOICE_CONDITIONS,
    Condition,
    EmbeddedSamples,
    load_samples,
    save_samples,
)
from verify.errors import ConfigError

DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "conditions"
TRAIN_SEED = 0
TEST_SEED = 7
COPIES = {"face": 0, "voice": 3}
COPY_PREFIX = "copy "
ANY_PREFIX = "any"
PARTS = ("calibration", "test")  # calibration = train + validation people; test = the README evaluation people

log = logging.getLogger(__name__)


def _face_copy(index: int, image: np.ndarray, rng: np.random.Generator, others: Sequence[np.ndarray]) -> np.ndarray:
    from verify.face.degrade import enrollment_copy

    return enrollment_copy(image, rng, index)


def _voice_copy(index: int, speech: np.ndarray, rng: np.random.Generator, others: Sequence[np.ndarray]) -> np.ndarray:
    from verify.voice.degrade import ENROLLMENT_COPIES

    return ENROLLMENT_COPIES[index](speech, rng)


def conditions_for(modality: str, copies: int | None = None) -> dict[str, Condition | None]:
    """Conditions embedded for ``modality``: clean, degraded probes and ``copies`` enrollment copies
    (default :data:`COPIES`)."""
    if modality == "face":
        named: dict[str, Condition | None] = dict(FACE_CONDITIONS)
        copy = _face_copy
    elif modality == "voice":
        named = {**VOICE_CONDITIONS, "any": CALIBRATION_CONDITIONS["voice"]["any"],
                 "any again": CALIBRATION_CONDITIONS["voice"]["any again"]}
        copy = _voice_copy
    else:
        raise ConfigError(f"unknown modality {modality!r}: choose face or voice")
    count = COPIES[modality] if copies is None else copies
    return {**named, **{f"{COPY_PREFIX}{index}": partial(copy, index) for index in range(count)}}


def is_probe_condition(name: str) -> bool:
    """True for the degraded probe conditions (not clean, not an enrollment copy)."""
    return name != CLEAN and not name.startswith(COPY_PREFIX)


def is_training_probe_condition(modality: str, name: str) -> bool:
    """Probe conditions meta-training draws from: the broad random families only (webcam-like
    faces, the "any" voice family), so the named voice conditions of validation stay unseen."""
    if not is_probe_condition(name):
        return False
    return modality == "face" or name.startswith(ANY_PREFIX)


def part_files(dataset: str, data_root: Path, part: str) -> list[tuple[str, str]]:
    """``(person, relative path)`` of every file of the ``part`` people of ``dataset``.

    ``calibration``: the train and validation people of :func:`split_identities`; ``test``: its test people.
    """
    if part not in PARTS:
        raise ConfigError(f"unknown part {part!r}: choose one of {PARTS}")
    split = split_identities(dataset)
    people = sorted(split.train + split.validation) if part == "calibration" else sorted(split.test)
    folder = Path(data_root) / DATASETS[dataset][1]
    if not folder.is_dir():
        raise ConfigError(f"dataset folder {folder} does not exist; set --data to the shared data root")
    return [(person, str(path.relative_to(data_root))) for person in people
            for path in sorted((folder / person).iterdir()) if path.is_file()]


def cache_file(model_id: str, version: str, dataset: str, part: str, seed: int, cache_dir: Path) -> Path:
    """Where one embedded set is cached."""
    return Path(cache_dir) / f"{model_id}-{version}-{dataset}-{part}-{seed}.npz"


def embedded_part(
    dataset: str,
    data_root: Path,
    part: str,
    seed: int = TRAIN_SEED,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    device: str = "cpu",
    cpu_threads: int | None = 1,
    conditions: Mapping[str, Condition | None] | None = None,
) -> EmbeddedSamples:
    """The ``part`` people of ``dataset`` embedded under :func:`conditions_for` (cached).

    Persons are labelled by their bare identity name (as in :mod:`training.episodes`).
    """
    from verify.conditions import embed_under_conditions
    from verify.models import load_pipeline, model_spec

    modality = dataset_modality(dataset)
    spec = model_spec(modality)
    path = cache_file(spec.model_id, spec.version, dataset, part, seed, cache_dir)
    if path.exists():
        return load_samples(path)
    files = part_files(dataset, data_root, part)
    chosen = conditions_for(modality) if conditions is None else conditions
    pipeline = load_pipeline(modality, device, cpu_threads=cpu_threads)
    started, done = time.perf_counter(), [0]

    def progress(count: int) -> None:
        done[0] += count
        if done[0] % 512 < count:
            log.info("%s %s: %d / %d samples", dataset, part, done[0], len(files) * len(chosen))

    samples = embed_under_conditions(pipeline, Path(data_root), files, chosen, seed, progress=progress)
    seconds = time.perf_counter() - started
    save_samples(path, samples)
    log.info("%s %s: %d samples embedded in %.0f s, failures %s", dataset, part, len(samples.vectors), seconds,
             dict(samples.failed))
    return samples
