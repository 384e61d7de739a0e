"""Listing folders, the local engine, records crossing processes, and embeddings files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from verify.embedding import Embedding, name_source
from verify.engines import LocalEngine, list_files
from verify.engines.embeddings_file import read_embeddings, write_embeddings
from verify.engines.records import from_record, to_record
from verify.errors import ConfigError, DecodeError, NoFaceError, VerifyError


class BytesPipeline:
    """Embeds a file by its first bytes; a file starting with ``bad`` has no face."""

    modality, model_id, model_version = "face", "bytes", "1"

    def embed_many(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        results: list[Embedding | VerifyError] = []
        for source in sources:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            if data.startswith(b"bad"):
                results.append(NoFaceError("no face found in the image"))
                continue
            vector = np.frombuffer(data[:4].ljust(4, b"\0"), np.uint8).astype(np.float32) + 1
            results.append(Embedding(vector / np.linalg.norm(vector), ("dark",) if data.startswith(b"d") else ()))
        return results


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for name in ("a-c.jpg", "a/b.jpg", "a/z/y.jpg", "b.jpg", ".hidden.jpg", ".cache/x.jpg", "a/.DS_Store"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"bad" if name == "b.jpg" else name.encode())
    return root


def test_files_are_listed_in_path_order_without_hidden_ones(tree: Path):
    files = list_files(tree)
    assert files.paths == tuple(str(p) for p in sorted(p for p in tree.rglob("*") if p.is_file()
                                                          and not any(part.startswith(".") for part in p.relative_to(tree).parts)))
    assert [Path(p).relative_to(tree).as_posix() for p in files.paths] == ["a/b.jpg", "a/z/y.jpg", "a-c.jpg", "b.jpg"]
    assert files.filesystem is None and files.read(0) == files.paths[0]
    with pytest.raises(ConfigError, match="is not a folder"):
        list_files(tree / "missing")


def test_a_uri_is_listed_and_read_through_pyarrow(tree: Path):
    pytest.importorskip("pyarrow")
    uri = f"file://{tree}"
    files = list_files(uri)
    assert files.paths == tuple(f"{uri}/{name}" for name in ("a/b.jpg", "a/z/y.jpg", "a-c.jpg", "b.jpg"))
    assert files.read(0) == b"a/b.jpg"
    assert files.locations[0].endswith("photos/a/b.jpg")
    local = [(Path(p).name, type(r).__name__) for chunk in LocalEngine(BytesPipeline()).embed(list_files(tree)) for p, r in chunk]
    remote = [(Path(p).name, type(r).__name__) for chunk in LocalEngine(BytesPipeline()).embed(files) for p, r in chunk]
    assert remote == local


def test_the_local_engine_embeds_in_order_and_names_failed_files(tree: Path):
    engine = LocalEngine(BytesPipeline(), chunk=3)
    chunks = list(engine.embed(list_files(tree)))
    assert [len(chunk) for chunk in chunks] == [3, 1]
    (path, error), = chunks[1]
    assert isinstance(error, NoFaceError) and str(error) == f"{path}: no face found in the image"


def test_the_local_engine_streams_through_lanes_with_the_same_chunks(tree: Path):
    from verify.lanes import Lanes

    files = list_files(tree)
    plain = [[(p, type(r).__name__) for p, r in chunk] for chunk in LocalEngine(BytesPipeline(), chunk=3).embed(files)]
    lanes = Lanes([BytesPipeline(), BytesPipeline()], part=1)
    laned = [[(p, type(r).__name__) for p, r in chunk] for chunk in LocalEngine(lanes, chunk=3).embed(files)]
    assert laned == plain
    lanes.close()


def test_an_error_names_the_file_it_came_from_once_and_in_place_of_its_bytes():
    assert str(name_source(DecodeError("image buffer is empty"), "s3://bucket/a.jpg")) == "s3://bucket/a.jpg is empty"
    assert str(name_source(DecodeError("audio buffer lasts 2 s"), Path("a.flac"))) == "a.flac lasts 2 s"
    assert str(name_source(NoFaceError("no face found"), "a.jpg")) == "a.jpg: no face found"
    assert str(name_source(NoFaceError("a.jpg: no face found"), "a.jpg")) == "a.jpg: no face found"
    error = DecodeError("image buffer is empty")
    assert name_source(error, b"\xff\xd8") is error


def test_records_carry_embeddings_and_errors_across_processes():
    embedding = Embedding(np.array([0.6, 0.8], np.float32), ("blurry",), ("2 faces",), measures={"face_px": 90.0})
    back = from_record(to_record("x.jpg", embedding))
    assert back.vector.tolist() == pytest.approx([0.6, 0.8]) and back.quality_issues == ("blurry",)
    assert back.notes == ("2 faces",) and back.measures == {"face_px": 90.0}
    error = from_record(to_record("x.jpg", DecodeError("x.jpg is truncated")))
    assert type(error) is DecodeError and str(error) == "x.jpg is truncated"
    unknown = from_record({**to_record("x.jpg", DecodeError("gone")), "error_type": "NotAnError"})
    assert type(unknown) is VerifyError


def test_embeddings_files_round_trip(tmp_path: Path):
    pytest.importorskip("pyarrow")
    results = [("a.jpg", Embedding(np.array([1.0, 0.0], np.float32), ("dark",))),
               ("b.jpg", NoFaceError("b.jpg: no face found")), ("c.jpg", Embedding(np.array([0.0, 1.0], np.float32)))]
    assert write_embeddings(tmp_path / "e.parquet", results, "face", "m", "v1") == 3
    table = read_embeddings(tmp_path / "e.parquet")
    assert table.paths == ("a.jpg", "c.jpg") and table.vectors.shape == (2, 2) and table.quality == (("dark",), ())
    assert (table.modality, table.model_id, table.model_version) == ("face", "m", "v1")
    assert table.failed == (("b.jpg", "b.jpg: no face found"),)
    with pytest.raises(ConfigError, match="not an embeddings file"):
        read_embeddings(tmp_path / "missing.parquet")


class FakeBatch:
    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def to_pylist(self) -> list[dict]:
        return self.records


def test_ray_results_come_back_in_order_in_aligned_chunks_and_lost_files_are_errors(tree: Path):
    from verify.engines.ray_engine import _in_order

    files = list_files(tree)
    record = {location: to_record(location, Embedding(np.ones(2, np.float32))) for location in files.locations}
    broken = to_record(files.locations[1], DecodeError(f"{files.locations[1]} is truncated"))
    batches = [FakeBatch([record[files.locations[2]], broken]), FakeBatch([record[files.locations[0]]])]
    chunks = list(_in_order(files, iter(batches), size=2))  # the last file never came back
    assert [[path for path, _ in chunk] for chunk in chunks] == [list(files.paths[:2]), list(files.paths[2:])]
    error, lost = chunks[0][1][1], chunks[1][1][1]
    assert str(error) == f"{files.paths[1]} is truncated"  # named as listed
    assert isinstance(lost, DecodeError) and str(lost) == f"cannot read {files.paths[3]}"
