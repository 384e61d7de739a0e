"""Lanes: copies of a pipeline embedding parts of a stream at once, in order, one thread per copy."""

from __future__ import annotations

import locale
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from verify.embedding import Embedding
from verify.errors import ConfigError, DecodeError, NoFaceError, VerifyError
from verify.lanes import LANES_MIN_SAMPLES, READ_AHEAD, Lanes, cpu_lanes, job_lanes, load_lanes


class CountingPipeline:
    """Embeds the number ``n`` as ``[n, 1]``; ``-1`` has no face. Records its parts, and fails the
    test if two threads ever use it at once."""

    modality, model_id, model_version = "face", "count", "1"

    def __init__(self, seconds_per_part: float = 0.0) -> None:
        self.seconds_per_part = seconds_per_part
        self.parts: list[list[int]] = []
        self._busy = threading.Lock()

    def embed_many(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        if not self._busy.acquire(blocking=False):
            raise AssertionError("a pipeline was used by two threads at once")
        try:
            self.parts.append(list(sources))
            time.sleep(self.seconds_per_part)
            return [NoFaceError("no face found in the image") if n == -1
                    else Embedding(np.array([n, 1], np.float32)) for n in sources]
        finally:
            self._busy.release()


def test_results_come_back_in_order_with_errors_passed_through():
    lanes = Lanes([CountingPipeline(), CountingPipeline(), CountingPipeline()], part=2)
    unreadable = DecodeError("7.jpg is truncated")
    sources: list[Any] = [0, 1, -1, 3, 4, 5, 6, unreadable, 8, 9, 10]
    results = lanes.embed_many(sources)
    assert [r.vector[0] if isinstance(r, Embedding) else type(r).__name__ for r in results] == \
        [0, 1, "NoFaceError", 3, 4, 5, 6, "DecodeError", 8, 9, 10]
    assert results[7] is unreadable
    assert all(unreadable not in part for pipeline in lanes.pipelines for part in pipeline.parts)
    lanes.close()


def test_every_lane_works_and_no_copy_is_shared_between_threads():
    pipelines = [CountingPipeline(0.02), CountingPipeline(0.02)]
    with_lanes = Lanes(pipelines, part=1)
    start = time.perf_counter()
    results = with_lanes.embed_many(list(range(20)))
    elapsed = time.perf_counter() - start
    assert [r.vector[0] for r in results] == list(range(20))
    assert all(pipeline.parts for pipeline in pipelines)
    assert sorted(n for pipeline in pipelines for part in pipeline.parts for n in part) == list(range(20))
    assert elapsed < 20 * 0.02 * 0.8  # the two copies ran at once: one alone needs 0.4 s
    with_lanes.close()


def test_sources_are_read_only_as_far_ahead_as_the_lanes_need():
    pulled = []

    def sources() -> Iterator[int]:
        for n in range(1000):
            pulled.append(n)
            yield n

    lanes = Lanes([CountingPipeline(), CountingPipeline()], part=4)
    stream = lanes.stream(sources())
    assert next(stream).vector[0] == 0
    assert len(pulled) <= 4 * (2 * (1 + READ_AHEAD) + 1)
    assert [r.vector[0] for r in stream] == list(range(1, 1000))
    lanes.close()


def test_one_sample_embeds_or_raises_its_error():
    lanes = Lanes([CountingPipeline(), CountingPipeline()])
    assert lanes.embed(5).vector.tolist() == [5, 1]
    with pytest.raises(NoFaceError):
        lanes.embed(-1)
    assert lanes.embed_many([]) == []
    lanes.close()


def test_the_first_copy_works_while_a_later_one_loads_then_both_do():
    may_load, first, later = threading.Event(), CountingPipeline(0.01), CountingPipeline(0.01)

    def load_later() -> CountingPipeline:
        may_load.wait(5)
        return later

    lanes = Lanes([first], part=1, later=[load_later])
    assert lanes.count == 2 and lanes.pipelines == [first]
    assert [r.vector[0] for r in lanes.embed_many(list(range(6)))] == list(range(6))  # the second still loading
    assert later.parts == []
    may_load.set()
    lanes.close()  # waits for the load
    assert lanes.pipelines == [first, later]
    lanes = Lanes([first], part=1, later=[lambda: later])
    assert [r.vector[0] for r in lanes.embed_many(list(range(40)))] == list(range(40))
    lanes.close()
    assert later.parts


def test_a_later_copy_that_fails_to_load_leaves_the_others_working(caplog):
    other = CountingPipeline()
    other.model_id = "other"

    def broken() -> CountingPipeline:
        raise RuntimeError("the CPU plugin is unavailable")

    with caplog.at_level("ERROR", logger="verify.lanes"):
        lanes = Lanes([CountingPipeline()], part=1, later=[broken, lambda: other])
        lanes.close()
    assert len(lanes.pipelines) == 1 and caplog.text.count("a face lane failed to load; 1 of 3 lanes work") == 2
    assert "the CPU plugin is unavailable" in caplog.text and "same model" in caplog.text
    lanes = Lanes([CountingPipeline()], part=1, later=[broken])
    assert [r.vector[0] for r in lanes.embed_many(list(range(5)))] == list(range(5))
    lanes.close()


def test_lanes_must_run_one_model():
    other = CountingPipeline()
    other.model_id = "other"
    with pytest.raises(ConfigError, match="same model"):
        Lanes([CountingPipeline(), other])
    with pytest.raises(ConfigError, match="at least one"):
        Lanes([])
    with pytest.raises(ConfigError, match="part"):
        Lanes([CountingPipeline()], part=0)


def test_a_gpu_or_a_single_core_runs_one_lane(monkeypatch):
    from verify.device import Device

    monkeypatch.setattr("verify.lanes.select_device", lambda spec: Device("cuda", 0))
    assert cpu_lanes("cuda:0", cores=16) == 1
    monkeypatch.undo()
    assert cpu_lanes("cpu", cores=1) == 1
    assert cpu_lanes("cpu", cores=2) == 2
    assert cpu_lanes("cpu", cores=16) == 2


def test_a_small_job_runs_in_one_copy_and_a_large_one_in_the_devices_lanes():
    assert job_lanes(0) == job_lanes(LANES_MIN_SAMPLES - 1) == 1
    assert job_lanes(LANES_MIN_SAMPLES) is None and job_lanes(10**6) is None


def test_one_lane_is_the_plain_pipeline(monkeypatch):
    loaded = []
    monkeypatch.setattr("verify.lanes.load_pipeline", lambda *args, **options: loaded.append(options) or CountingPipeline())
    assert isinstance(load_lanes("face", "cpu", 1), CountingPipeline) and loaded == [{"cpu_threads": None}]
    lanes = load_lanes("face", "cpu", 2)
    lanes.close()  # after the second copy has loaded
    assert isinstance(lanes, Lanes) and len(lanes.pipelines) == 2
    assert all(options["cpu_threads"] >= 1 for options in loaded[1:])
    with pytest.raises(ConfigError, match="at least 1"):
        load_lanes("face", "cpu", 0)


@pytest.mark.parametrize("modality", ["face", "voice"])
def test_shipped_lanes_give_the_single_pipelines_embeddings_bit_for_bit(modality, face_files, voice_files,
                                                                         face_embeddings, voice_embeddings):
    files = face_files if modality == "face" else voice_files
    expected = face_embeddings if modality == "face" else voice_embeddings
    encoding = locale.getpreferredencoding(False)
    lanes = load_lanes(modality, "cpu", 2)
    assert isinstance(lanes, Lanes)
    for mine, theirs in zip(lanes.embed_many(files), expected):
        np.testing.assert_array_equal(mine.vector, theirs.vector)
        assert mine.quality_issues == theirs.quality_issues
    lanes.close()
    assert locale.getpreferredencoding(False) == encoding
