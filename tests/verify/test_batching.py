"""Micro-batching: concurrent embed calls share embed_many calls, each caller gets its own answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from verify.batching import BatchingConfig, BatchingPipeline, sample_decoder
from verify.embedding import Embedding
from verify.errors import BusyError, ConfigError, DecodeError, NoFaceError, VerifyError
from verify.lanes import Lanes


class SlowPipeline:
    """Embeds integers as one-hot vectors, slowly; negative numbers have no face."""

    modality, model_id, model_version = "face", "fake", "1"

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.batches: list[list] = []
        self.started = threading.Event()  # a batch reached embed_many
        self.gate = threading.Event()  # embed_many goes on once set
        self.gate.set()

    def embed_many(self, sources):
        self.started.set()
        self.gate.wait()
        self.batches.append(list(sources))
        time.sleep(self.delay_s)
        return [NoFaceError(f"no face in {s}") if s < 0 else Embedding(np.eye(64, dtype=np.float32)[s]) for s in sources]

    def embed(self, source):
        raise AssertionError("the wrapper must call embed_many")


def test_concurrent_calls_share_batches_and_each_gets_its_own_answer():
    inner = SlowPipeline()
    with BatchingPipeline(inner) as batched, ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(lambda n: batched.embed(n).vector, range(48)))
    assert all(int(np.argmax(vector)) == n for n, vector in enumerate(vectors))
    assert sorted(s for batch in inner.batches for s in batch) == list(range(48))
    assert max(len(batch) for batch in inner.batches) > 1 and len(inner.batches) < 48


def test_each_lane_serves_batches_from_the_one_queue_and_is_never_shared():
    class ExclusivePipeline(SlowPipeline):
        def __init__(self) -> None:
            super().__init__()
            self.busy = threading.Lock()

        def embed_many(self, sources):
            assert self.busy.acquire(blocking=False), "one copy used by two threads at once"
            try:
                return super().embed_many(sources)
            finally:
                self.busy.release()

    copies = [ExclusivePipeline(), ExclusivePipeline()]
    with BatchingPipeline(Lanes(copies), BatchingConfig(max_batch=2)) as batched, ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(lambda n: batched.embed(n).vector, range(40)))
        assert [batched.embed_many([n])[0].vector.argmax() for n in (3, 4)] == [3, 4]
        closed_workers = batched._workers
    assert all(int(np.argmax(vector)) == n for n, vector in enumerate(vectors))
    assert all(copy.batches for copy in copies)  # both copies served
    assert sorted(s for copy in copies for batch in copy.batches for s in batch) == sorted([*range(40), 3, 4])
    assert not any(worker.is_alive() for worker in closed_workers)


def test_requests_are_served_while_a_later_lane_loads_and_by_both_once_it_has():
    may_load, first, later = threading.Event(), SlowPipeline(), SlowPipeline()

    def load_later() -> SlowPipeline:
        may_load.wait(5)
        return later

    with BatchingPipeline(Lanes([first], later=[load_later])) as batched, ThreadPoolExecutor(8) as pool:
        assert len(batched._workers) == 2  # a worker per lane there will be
        assert [int(np.argmax(v)) for v in pool.map(lambda n: batched.embed(n).vector, range(8))] == list(range(8))
        assert later.batches == []  # still loading: the first copy served every request
        may_load.set()
        vectors = list(pool.map(lambda n: batched.embed(n).vector, range(64)))
    assert [int(np.argmax(vector)) for vector in vectors] == list(range(64))
    assert later.batches  # the second copy joined


def test_one_failed_sample_fails_only_its_caller():
    with BatchingPipeline(SlowPipeline()) as batched, ThreadPoolExecutor(8) as pool:
        futures = {n: pool.submit(batched.embed, n) for n in (-1, 1, -2, 2)}
        with pytest.raises(NoFaceError, match="no face in -1"):
            futures[-1].result()
        assert int(np.argmax(futures[2].result().vector)) == 2


def test_batches_are_bounded_and_the_queue_refuses_when_full():
    inner = SlowPipeline(delay_s=0)
    inner.gate.clear()  # the worker holds its first batch until the queue has filled
    batched = BatchingPipeline(inner, BatchingConfig(max_batch=3, max_pending=4))
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batched.embed, 0)
        assert inner.started.wait(5)
        waiting = [pool.submit(batched.embed, n) for n in range(1, 5)]
        while batched._queue.qsize() < 4:
            time.sleep(0.001)
        with pytest.raises(BusyError, match="4 face samples are already waiting"):
            batched.embed(9)
        inner.gate.set()
        assert [f.result().vector.argmax() for f in [first, *waiting]] == [0, 1, 2, 3, 4]
    assert max(len(batch) for batch in inner.batches) <= 3
    batched.close()
    with pytest.raises(BusyError, match="shutting down"):
        batched.embed(1)


def test_a_window_gathers_calls_that_arrive_soon_after():
    inner = SlowPipeline(delay_s=0)
    with BatchingPipeline(inner, BatchingConfig(window_s=0.2)) as batched, ThreadPoolExecutor(2) as pool:
        first = pool.submit(batched.embed, 1)
        time.sleep(0.05)
        second = pool.submit(batched.embed, 2)
        first.result(), second.result()
    assert inner.batches == [[1, 2]]


def test_prepare_runs_in_the_caller_and_its_error_is_the_callers():
    inner = SlowPipeline(delay_s=0)

    def prepare(source):
        if source == "bad":
            raise DecodeError("cannot read 'bad'")
        return int(source)

    with BatchingPipeline(inner, prepare=prepare) as batched:
        assert int(np.argmax(batched.embed("3").vector)) == 3
        with pytest.raises(DecodeError, match="cannot read 'bad'"):
            batched.embed("bad")
    assert inner.batches == [[3]]


def test_a_crash_reaches_every_waiting_caller_and_the_worker_goes_on():
    inner = SlowPipeline(delay_s=0)
    with BatchingPipeline(inner) as batched:
        inner.embed_many = lambda sources: 1 / 0
        with pytest.raises(ZeroDivisionError):
            batched.embed(1)
        inner.embed_many = SlowPipeline(delay_s=0).embed_many
        assert batched.embed(2).vector.argmax() == 2


def test_settings_are_checked_and_identity_is_kept():
    with pytest.raises(ConfigError, match="window_s"):
        BatchingConfig(window_s=2)
    with pytest.raises(ConfigError, match="at least 1"):
        BatchingConfig(max_batch=0)
    with BatchingPipeline(SlowPipeline()) as batched:
        assert (batched.modality, batched.model_id, batched.model_version) == ("face", "fake", "1")
        assert batched.embed_many([1, -1])[0].vector.argmax() == 1


def test_sample_decoder_decodes_as_the_pipelines_do(face_files, voice_files):
    class Face:
        modality = "face"

    class Voice:
        modality = "voice"

    image = sample_decoder(Face())(face_files[0].read_bytes())
    assert image.dtype == np.uint8 and image.ndim == 3 and (sample_decoder(Face())(image) == image).all()
    samples, rate = sample_decoder(Voice())(str(voice_files[0]))
    again, same_rate = sample_decoder(Voice())((samples, rate))
    assert rate == same_rate and np.array_equal(samples, again)
    with pytest.raises(VerifyError):
        sample_decoder(Face())(b"not an image")


def test_sample_decoder_applies_the_lanes_limits(face_files):
    from verify.config import ImageLimits

    class Face:
        modality, model_id, model_version = "face", "fake", "1"
        limits = ImageLimits(max_pixels=100)

    with pytest.raises(VerifyError, match="pixels"):
        sample_decoder(Lanes([Face(), Face()]))(face_files[0].read_bytes())
