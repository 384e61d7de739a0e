"""Condition-shift episodes: enroll from one clean sample, meet degraded probes.

One task is one person. Support: the clean embedding of one of their files, the embeddings of
that file's enrollment copies (sample-space augmentations) and feature-space augmentations of it
(positives), and an impostor cohort (negatives). Queries: degraded probes of the person from
*other* files (positives) and degraded probes of other people (negatives), as a person meets
the product: enrolled once at home, checked later elsewhere.

    people = PeopleRows.build(samples, task_people, is_probe)
    sampler = ShiftTaskSampler(people, cohort, AugmentConfig(), ShiftShape(), seed=0)
    tasks = sampler.sample(16)        # dict of tensors with a leading task axis
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.condition_sets import COPY_PREFIX
from verify.adaptation import AugmentConfig, augment
from verify.conditions import CLEAN, EmbeddedSamples
from verify.errors import ConfigError


@dataclass(frozen=True)
class ShiftShape:
    """Sizes of one task.

    Attributes:
        query_positives: degraded probes of the person per task (drawn with replacement).
        query_negatives: degraded probes of other people per task.
    """

    query_positives: int = 4
    query_negatives: int = 32

    def __post_init__(self) -> None:
        if self.query_positives < 1 or self.query_negatives < 1:
            raise ConfigError(f"need >= 1 query of each kind, got {self.query_positives}, {self.query_negatives}")


def copy_names(samples: EmbeddedSamples) -> list[str]:
    """The enrollment-copy conditions of ``samples``, in order (``copy 0``, ``copy 1``, ...)."""
    names = sorted({str(name) for name in np.unique(samples.conditions) if str(name).startswith(COPY_PREFIX)})
    return sorted(names, key=lambda name: int(name[len(COPY_PREFIX):]))


def enrollment_rows(samples: EmbeddedSamples, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Clean rows ``(E,)`` of ``samples`` (within ``keep`` when given) and the rows of each one's
    copies ``(E, C)``; a copy that could not be embedded is replaced by the clean row itself."""
    clean = np.nonzero((samples.conditions == CLEAN) & (keep if keep is not None else True))[0]
    names = copy_names(samples)
    copies = np.repeat(clean[:, None], len(names), axis=1)
    for column, name in enumerate(names):
        rows = np.nonzero(samples.conditions == name)[0]
        where = {str(file): row for file, row in zip(samples.files[rows], rows)}
        for index, file in enumerate(samples.files[clean]):
            copies[index, column] = where.get(str(file), clean[index])
    return clean, copies


@dataclass(frozen=True, eq=False)
class PeopleRows:
    """Rows of ``samples`` by person: enrollments with their copies, and degraded probes.

    Attributes:
        vectors: ``(M, D)`` all embeddings.
        names: the people, sorted; a person needs two files with a clean row, and a degraded
            probe of a file other than some enrollment's.
        enroll: per person, clean rows ``(E_p,)``; ``copies``: ``(E_p, C)`` their copy rows.
        probes: per person, degraded probe rows; ``probe_files``: their files.
        enroll_files: per person, the file of each enrollment row.
    """

    vectors: np.ndarray
    names: tuple[str, ...]
    enroll: tuple[np.ndarray, ...]
    copies: tuple[np.ndarray, ...]
    enroll_files: tuple[np.ndarray, ...]
    probes: tuple[np.ndarray, ...]
    probe_files: tuple[np.ndarray, ...]

    @classmethod
    def build(cls, samples: EmbeddedSamples, people: Sequence[str], is_probe: Callable[[str], bool]) -> PeopleRows:
        """Index ``samples`` for ``people``; probes are the rows whose condition ``is_probe``."""
        wanted = np.isin(samples.people, list(people))
        clean, copies = enrollment_rows(samples, wanted)
        probe_mask = wanted & np.array([is_probe(str(name)) for name in samples.conditions])
        fields: dict[str, list] = {key: [] for key in ("names", "enroll", "copies", "enroll_files", "probes",
                                                       "probe_files")}
        for name in sorted(set(map(str, samples.people[wanted]))):
            mine = samples.people[clean] == name
            rows = np.nonzero(probe_mask & (samples.people == name))[0]
            files = samples.files[clean[mine]]
            if len(np.unique(files)) < 2 or not any(np.any(samples.files[rows] != file) for file in files):
                continue
            for key, value in (("names", name), ("enroll", clean[mine]), ("copies", copies[mine]),
                               ("enroll_files", files), ("probes", rows), ("probe_files", samples.files[rows])):
                fields[key].append(value)
        if len(fields["names"]) < 2:
            raise ConfigError(f"condition-shift tasks need >= 2 people with two files and degraded probes; "
                              f"got {len(fields['names'])} of {len(people)}")
        return cls(samples.vectors.astype(np.float32), **{key: tuple(value) for key, value in fields.items()})

    @property
    def copy_count(self) -> int:
        """Enrollment copies per enrollment (C)."""
        return int(self.copies[0].shape[1])


class ShiftTaskSampler:
    """Batches of condition-shift tasks (see the module docstring), seeded."""

    def __init__(self, people: PeopleRows, cohort: torch.Tensor, augment_config: AugmentConfig, shape: ShiftShape,
                 seed: int) -> None:
        self.people, self.cohort, self.augment_config, self.shape = people, cohort, augment_config, shape
        self.vectors = torch.from_numpy(people.vectors)
        self.owner = np.concatenate([np.full(len(rows), index) for index, rows in enumerate(people.probes)])
        self.pool = np.concatenate(people.probes)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def _draw(self, person: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        people = self.people
        while True:
            pick = int(self.rng.integers(len(people.enroll[person])))
            others = people.probes[person][people.probe_files[person] != people.enroll_files[person][pick]]
            if len(others):
                break
        positives = self.rng.choice(others, size=self.shape.query_positives)
        strangers = self.pool[self.owner != person]
        negatives = self.rng.choice(strangers, size=self.shape.query_negatives, replace=len(strangers) < self.shape.query_negatives)
        return int(people.enroll[person][pick]), people.copies[person][pick], positives, negatives

    def sample(self, count: int) -> dict[str, torch.Tensor]:
        """``count`` tasks: ``template (T, D)``, ``copies (T, C, D)``, ``fit (T, A, D)`` feature-space
        augmentations, ``query_pos (T, P, D)``, ``query_neg (T, Q, D)``."""
        draws = [self._draw(int(person)) for person in self.rng.integers(len(self.people.names), size=count)]
        template = self.vectors[np.array([draw[0] for draw in draws])]
        held = self.augment_config.count - self.augment_config.holdout
        return {
            "template": template,
            "copies": self.vectors[np.stack([draw[1] for draw in draws])],
            "fit": augment(template, self.cohort, self.augment_config, self.generator)[:, :held],
            "query_pos": self.vectors[np.stack([draw[2] for draw in draws])],
            "query_neg": self.vectors[np.stack([draw[3] for draw in draws])],
        }
