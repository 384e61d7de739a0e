"""The local engine: this process's pipeline embeds the files, a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator

from verify.embedding import Embedding, Pipeline, name_source
from verify.engines.files import FileList
from verify.errors import VerifyError

Chunk = list[tuple[str, Embedding | VerifyError]]


class LocalEngine:
    """Embeds files with one pipeline in this process.

    Args:
        pipeline: the modality's pipeline (already loaded).
        chunk: files per chunk: progress and decisions advance a chunk at a time.
    """

    name = "local"

    def __init__(self, pipeline: Pipeline, chunk: int = 32) -> None:
        self.pipeline = pipeline
        self.chunk = chunk

    def embed(self, files: FileList) -> Iterator[Chunk]:
        """``(path, embedding or error)`` of every file, in the list's order, a chunk at a time."""
        for start in range(0, len(files), self.chunk):
            indexes = range(start, min(start + self.chunk, len(files)))
            sources: list = []
            for index in indexes:
                try:
                    sources.append(files.read(index))
                except VerifyError as error:
                    sources.append(error)
            readable = [source for source in sources if not isinstance(source, VerifyError)]
            embedded = iter(self.pipeline.embed_many(readable))
            results = [source if isinstance(source, VerifyError) else next(embedded) for source in sources]
            yield [(files.paths[index], name_source(result, files.paths[index]) if isinstance(result, VerifyError)
                    else result) for index, result in zip(indexes, results)]

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None
