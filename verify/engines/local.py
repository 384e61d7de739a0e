"""The local engine: this process's pipeline (or its lanes) embeds the files, a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator

from verify.embedding import Embedding, Pipeline, name_source
from verify.engines.files import FileList
from verify.errors import VerifyError
from verify.lanes import Lanes

Chunk = list[tuple[str, Embedding | VerifyError]]


class LocalEngine:
    """Embeds files with one pipeline, or with :class:`~verify.lanes.Lanes`, in this process.

    The files are streamed through the lanes, so they keep embedding the next chunk while the
    caller decides on this one.

    Args:
        pipeline: the modality's pipeline or lanes (already loaded).
        chunk: files per chunk: progress and decisions advance a chunk at a time.
    """

    name = "local"

    def __init__(self, pipeline: Pipeline, chunk: int = 32) -> None:
        self.pipeline = pipeline
        self.chunk = chunk

    def embed(self, files: FileList) -> Iterator[Chunk]:
        """``(path, embedding or error)`` of every file, in the list's order, a chunk at a time."""
        lanes = self.pipeline if isinstance(self.pipeline, Lanes) else Lanes([self.pipeline])
        try:
            results = lanes.stream(_read(files, index) for index in range(len(files)))
            for start in range(0, len(files), self.chunk):
                paths = files.paths[start : start + self.chunk]
                yield [(path, name_source(result, path) if isinstance(result, VerifyError) else result)
                       for path, result in zip(paths, results)]
        finally:
            if lanes is not self.pipeline:
                lanes.close()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


def _read(files: FileList, index: int) -> bytes | str | VerifyError:
    try:
        return files.read(index)
    except VerifyError as error:
        return error
