"""Lanes: copies of one pipeline on the CPU, each with its share of the cores, for jobs of many samples.

One pipeline given every core leaves a core idle through its serial steps (Python, decoding
bookkeeping, non-maximum suppression, alignment) and its networks' threads do not scale
perfectly. Two copies with one thread each keep both cores busy: on 2 cores, 1.18x the photos
per second of one copy with both (300 LFW photos at 250-800 px) and 1.51x the speech clips (200
LibriSpeech clips), with bit-identical embeddings (``python benchmarks/lanes.py``,
``benchmarks/results/lanes_cpu.json``; the thread count does not change OpenVINO's results here:
``tests/verify/test_lanes.py``). Each copy is used by one thread at a time, so nothing in a
pipeline needs to be thread-safe. A single check keeps one copy with every core, which answers
sooner.

:class:`Lanes` takes parts of a stream of samples as each copy frees up, so no copy waits for
another at the end of a chunk, and gives the results back in the samples' order. A job's first
copy starts on the samples while the second loads beside it (:func:`load_lanes`).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from verify.device import select_device
from verify.embedding import Embedding, Pipeline, embed_one, embed_passing_errors
from verify.errors import ConfigError, VerifyError
from verify.models import load_pipeline

log = logging.getLogger(__name__)

BATCH_LANES = 2
"""Copies of a pipeline that jobs of many samples load on a CPU of two or more cores (measured
on 2 cores; see the module docstring)."""

LANES_MIN_SAMPLES = 48
"""Samples from which a job loads :data:`BATCH_LANES` copies; a smaller job runs in one copy with
every core, since loading the second copy costs more than it saves on fewer samples. On 2 cores
(``python benchmarks/job_lanes.py``, ``benchmarks/results/job_lanes_cpu.json``), ``verify batch``
over 8 / 24 photos took 0.16 / 0.09 s longer in two copies, over 48 / 96 / 192 photos 0.04 /
0.17 / 0.57 s shorter: photos break even near 45 now that the second copy loads while the first
works (before, near 80); speech clips, whose second copy gains more (see the module docstring),
sooner."""

PART = 8
"""Samples a lane embeds together: enough for the networks' batches and for a copy's decoding
thread to run ahead of its networks."""

READ_AHEAD = 2
"""Parts queued per lane beyond the ones running, so a lane that frees up finds work at once."""

Result = Embedding | VerifyError


class Lanes:
    """Several copies of one pipeline embedding parts of a stream of samples at once, in order.

    It is a :class:`~verify.embedding.Pipeline` itself. A source that is already a
    :class:`VerifyError` (a file that could not be read) passes through as its own result.

    Args:
        pipelines: the copies (the same model), each used by one thread at a time.
        part: samples per part.
        later: loaders of more copies, run one after another in a thread of their own while the
            first copies already work; each copy joins the lanes once it has loaded.

    Attributes:
        pipelines: the copies loaded so far.
        count: the copies there will be once every one has loaded.
    """

    def __init__(self, pipelines: Sequence[Pipeline], part: int = PART,
                 later: Sequence[Callable[[], Pipeline]] = ()) -> None:
        if not pipelines:
            raise ConfigError("lanes need at least one pipeline")
        if part < 1:
            raise ConfigError(f"part must be at least 1, got {part}")
        first = pipelines[0]
        self.modality, self.model_id, self.model_version = first.modality, first.model_id, first.model_version
        self.part = part
        self.count = len(pipelines) + len(later)
        self.pipelines: list[Pipeline] = []
        self._free: queue.SimpleQueue[Pipeline] = queue.SimpleQueue()
        for pipeline in pipelines:
            self._add(pipeline)
        self._executor = ThreadPoolExecutor(self.count, thread_name_prefix=f"lane-{self.modality}")
        self._loader = ThreadPoolExecutor(1, thread_name_prefix=f"lane-{self.modality}-loader")
        if later:
            self._loader.submit(self._load, later)

    def _add(self, pipeline: Pipeline) -> None:
        if (pipeline.modality, pipeline.model_id, pipeline.model_version) != (self.modality, self.model_id,
                                                                              self.model_version):
            raise ConfigError("every lane must run the same model")
        self.pipelines.append(pipeline)
        self._free.put(pipeline)

    def _load(self, loaders: Sequence[Callable[[], Pipeline]]) -> None:
        """Load the later copies one after another, each joining the lanes once it is ready. A copy
        that fails to load is left out (logged): the others carry the work."""
        for load in loaders:
            try:
                self._add(load())
            except Exception:
                log.exception("a %s lane failed to load; %d of %d lanes work", self.modality, len(self.pipelines),
                              self.count)

    def stream(self, sources: Iterable[Any]) -> Iterator[Result]:
        """Each source's embedding or error, in order, read from ``sources`` as the lanes need them."""
        pending: deque[Future[list[Result]]] = deque()
        remaining = iter(sources)
        for part in iter(lambda: list(itertools.islice(remaining, self.part)), []):
            pending.append(self._executor.submit(self._embed_part, part))
            if len(pending) > self.count * (1 + READ_AHEAD):
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()

    def embed_many(self, sources: Sequence[Any]) -> list[Result]:
        """Embed many samples across the lanes; a failed sample yields its error."""
        return list(self.stream(sources))

    def embed(self, source: Any) -> Embedding:
        """Embed one sample on a free lane, raising its :class:`VerifyError` if it fails."""
        return embed_one(self, source)

    def embed_narrowband(self, speech: Any) -> Any:
        """A voice sample's narrowband copy on a free lane (the voice pipeline's ``embed_narrowband``)."""
        with self.borrow() as pipeline:
            return pipeline.embed_narrowband(speech)

    @contextmanager
    def borrow(self) -> Iterator[Pipeline]:
        """A copy no other thread uses until the block ends (waiting for one to free up)."""
        pipeline = self._free.get()
        try:
            yield pipeline
        finally:
            self._free.put(pipeline)

    def _embed_part(self, part: list[Any]) -> list[Result]:
        with self.borrow() as pipeline:
            return embed_passing_errors(pipeline.embed_many, part)

    def close(self) -> None:
        """Stop the lanes' threads (after the copies still loading and the parts already given).
        Closing twice is harmless."""
        self._loader.shutdown()
        self._executor.shutdown()


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_lanes(device: Any, cores: int | None = None) -> int:
    """How many lanes a job of many samples runs on ``device``: one on a GPU (it batches on its
    own) or a single core, else :data:`BATCH_LANES`."""
    cores = cores or usable_cores()
    return 1 if select_device(device).type != "cpu" or cores < 2 else min(BATCH_LANES, cores)


def job_lanes(samples: int) -> int | None:
    """The lanes of a job of ``samples`` samples: one below :data:`LANES_MIN_SAMPLES`, else ``None``
    (as many as suit the device, :func:`cpu_lanes`)."""
    return 1 if samples < LANES_MIN_SAMPLES else None


def load_lanes(modality: str, device: Any = "auto", lanes: int | None = None,
               cpu_threads: int | None = None) -> Pipeline:
    """The shipped pipeline of ``modality`` for jobs of many samples: :class:`Lanes` of ``lanes``
    copies (default :func:`cpu_lanes`) sharing the cores, or the plain pipeline for one lane.

    ``cpu_threads``: each copy's threads on the CPU (default: its share of the cores).
    """
    count = cpu_lanes(device) if lanes is None else lanes
    if count < 1:
        raise ConfigError(f"lanes must be at least 1, got {count}")
    if count == 1:
        return load_pipeline(modality, device, cpu_threads=cpu_threads)
    threads = cpu_threads or max(1, usable_cores() // count)

    def load() -> Pipeline:
        return load_pipeline(modality, device, cpu_threads=threads)

    return Lanes([load()], later=[load] * (count - 1))  # the first copy works while the others load
