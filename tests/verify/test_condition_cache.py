"""Embedded condition sets are kept between runs, and a run over other files never reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from verify.conditions import CLEAN, embed_cached
from verify.embedding import Embedding

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples" / "faces"


class CountingPipeline:
    """A face "pipeline" embedding an image by its mean colour, counting the images it embeds."""

    modality, model_id, model_version = "face", "mean-colour", "1"
    front_end_revision = 1

    def __init__(self) -> None:
        self.embedded = 0

    def embed_many(self, images: list[np.ndarray]) -> list[Embedding]:
        self.embedded += len(images)
        vectors = [image.reshape(-1, 3).mean(axis=0) for image in images]
        return [Embedding(vector / np.linalg.norm(vector), measures={"size": float(image.shape[0])})
                for vector, image in zip(vectors, images)]


def files_of(*people: str) -> list[tuple[str, str]]:
    return [(person, f"{person}/{index}.jpg") for person in people for index in range(3)]


def test_a_second_run_reads_the_cache_and_other_files_do_not(tmp_path):
    pipeline = CountingPipeline()
    conditions = {CLEAN: None}
    first = embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick", "Angela_Bassett"), conditions, 0, tmp_path)
    again = embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick", "Angela_Bassett"), conditions, 0, tmp_path)
    assert pipeline.embedded == 6
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert again.files.tolist() == first.files.tolist()

    fewer = embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick"), conditions, 0, tmp_path)
    other_seed = embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick"), conditions, 1, tmp_path)
    assert pipeline.embedded == 12 and len(fewer.files) == len(other_seed.files) == 3
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_without_a_cache_folder_nothing_is_written(tmp_path):
    pipeline = CountingPipeline()
    embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick"), {CLEAN: None}, 0, None)
    embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick"), {CLEAN: None}, 0, None)
    assert pipeline.embedded == 6 and not list(tmp_path.iterdir())


def test_a_revised_front_end_embeds_again(tmp_path):
    pipeline = CountingPipeline()
    embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick"), {CLEAN: None}, 0, tmp_path)
    pipeline.front_end_revision = 2
    embed_cached(pipeline, SAMPLES, files_of("Andy_Roddick"), {CLEAN: None}, 0, tmp_path)
    assert pipeline.embedded == 6 and len(list(tmp_path.glob("*.npz"))) == 2
