"""Micro-batching: ``embed`` calls from many threads share one ``embed_many`` call.

A server answering many clients at once calls ``embed`` once per request, each in its own
thread. :class:`BatchingPipeline` queues those calls; a worker thread takes whatever is queued
(waiting up to ``window_s`` for more after the first) and runs one batched ``embed_many``, so
concurrent requests share the networks' forward passes. Given :class:`~verify.lanes.Lanes`, each
copy of the pipeline has its own worker, taking batches from the same queue. The queue is
bounded: a call that finds it full raises :class:`BusyError` at once instead of waiting behind
work it cannot catch up with.
An optional ``prepare`` step (:func:`sample_decoder`: decoding) runs in the calling thread, so
callers decode in parallel while the worker runs the networks.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

from verify.embedding import Embedding, Pipeline
from verify.errors import BusyError, ConfigError, VerifyError
from verify.io import decode_audio, decode_image
from verify.lanes import Lanes


@dataclass(frozen=True)
class BatchingConfig:
    """How calls are collected into batches.

    Attributes:
        window_s: after the first queued call, how long to wait for more, in seconds (0: take
            only what is already queued).
        max_batch: most samples per ``embed_many`` call.
        max_pending: most calls queued; one more raises :class:`BusyError`.
    """

    window_s: float = 0.0
    max_batch: int = 8
    max_pending: int = 256

    def __post_init__(self) -> None:
        if not 0 <= self.window_s <= 1:
            raise ConfigError(f"window_s must be between 0 and 1 s, got {self.window_s!r}")
        if self.max_batch < 1 or self.max_pending < 1:
            raise ConfigError(f"max_batch and max_pending must be at least 1, got {self.max_batch}, {self.max_pending}")


class _Call:
    __slots__ = ("future", "source")

    def __init__(self, source: Any) -> None:
        self.source = source
        self.future: Future[Embedding | VerifyError] = Future()


_STOP = object()


def sample_decoder(pipeline: Pipeline) -> Callable[[Any], Any]:
    """What ``pipeline`` does first to a sample: decode it under its limits (a face to an ``(H, W, 3)``
    RGB array, a voice to ``(samples, rate)``). Decoding again what this returns changes nothing."""
    decode = decode_image if pipeline.modality == "face" else decode_audio
    limits = getattr(pipeline.pipelines[0] if isinstance(pipeline, Lanes) else pipeline, "limits", None)
    return decode if limits is None else partial(decode, limits=limits)


class BatchingPipeline:
    """Wraps a :class:`~verify.embedding.Pipeline`; thread-safe; ``embed`` calls are batched.

    ``embed_many`` runs on the lanes as they free up (it already is a batch). Use as a context
    manager or call :meth:`close` to stop the worker threads (and the lanes).

    Args:
        pipeline: the pipeline doing the work, or lanes of copies of it (one worker each).
        config: how calls are collected.
        prepare: run on each sample in the calling thread before it is queued (e.g.
            :func:`sample_decoder`); its :class:`VerifyError` is raised to that caller.
    """

    def __init__(self, pipeline: Pipeline, config: BatchingConfig = BatchingConfig(),
                 prepare: Callable[[Any], Any] | None = None) -> None:
        self.pipeline = pipeline
        self.config = config
        self.prepare = prepare
        self.modality = pipeline.modality
        self.model_id = pipeline.model_id
        self.model_version = pipeline.model_version
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=config.max_pending)
        self._lock = threading.Lock()
        self._closed = False
        self.batch_sizes: list[int] = []  # of the last batches, for measurements
        self._lanes = pipeline if isinstance(pipeline, Lanes) else Lanes([pipeline])
        self._workers = [threading.Thread(target=self._serve, name=f"batching-{self.modality}-{lane}", daemon=True)
                         for lane in range(self._lanes.count)]
        for worker in self._workers:
            worker.start()

    def embed(self, source: Any) -> Embedding:
        """Embed one sample in the next batch, raising its :class:`VerifyError` if it fails.

        Raises:
            BusyError: ``max_pending`` calls are already waiting, or the pipeline was closed.
        """
        call = _Call(self.prepare(source) if self.prepare is not None else source)
        with self._lock:
            if self._closed:
                raise BusyError(f"the {self.modality} pipeline is shutting down")
            try:
                self._queue.put_nowait(call)
            except queue.Full:
                raise BusyError(f"{self.config.max_pending} {self.modality} samples are already waiting; "
                                "try again shortly") from None
        result = call.future.result()
        if isinstance(result, VerifyError):
            raise result
        return result

    def embed_many(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        """Embed a batch on the lanes, beside the workers' batches."""
        return self._lanes.embed_many(sources)

    def embed_narrowband(self, speech: Any) -> Any:
        """A voice sample's narrowband copy, on a free lane (the voice pipeline's ``embed_narrowband``)."""
        return self._lanes.embed_narrowband(speech)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            calls = [first]
            stop = self._collect(calls)
            self._run(calls)
            if stop:
                return

    def _collect(self, calls: list[_Call]) -> bool:
        """Add queued calls to ``calls`` up to ``max_batch``, waiting up to ``window_s``; True on stop."""
        deadline = time.monotonic() + self.config.window_s
        while len(calls) < self.config.max_batch:
            remaining = deadline - time.monotonic()
            try:
                call = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False
            if call is _STOP:
                return True
            calls.append(call)
        return False

    def _run(self, calls: list[_Call]) -> None:
        self.batch_sizes = (self.batch_sizes + [len(calls)])[-1000:]
        try:
            with self._lanes.borrow() as pipeline:
                results = pipeline.embed_many([call.source for call in calls])
        except BaseException as error:  # noqa: BLE001 - a crash must reach every waiting caller, not the worker
            for call in calls:
                call.future.set_exception(error)
            return
        for call, result in zip(calls, results):
            call.future.set_result(result)

    def close(self) -> None:
        """Finish the queued calls, then stop the workers. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._workers:
                self._queue.put(_STOP)
        for worker in self._workers:
            worker.join()
        self._lanes.close()

    def __enter__(self) -> BatchingPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
