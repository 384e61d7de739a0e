"""The Ray engine: a pool of Ray actors (model loaded once each) reads and embeds the listed files.

Without an address it starts a Ray on this machine (``local_cpus`` CPUs, no dashboard) and shuts it
down when done; with one it joins that cluster, whose nodes must have this project installed
(``pip install -e '.[scale]'``, same version). Each actor takes one CPU and embeds with one
thread, or one GPU when the cluster has GPUs. The dataset is the list of files; each actor reads
its batch itself, as binary (a local file through the pipeline's own decoding threads, a file on
another filesystem through pyarrow with a few reading threads), so no separate read tasks compete
with the actors for the cores. Per-file errors (unreadable, no face, ...) come back as errors,
never as a failed job, and the results come back in the files' order, in the same chunks as the
local engine's.

Only embeddings leave the workers; the store and its key never reach them.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from verify.embedding import Embedding, embed_passing_errors, name_source
from verify.engines.files import FileList, read_file
from verify.engines.local import Chunk
from verify.engines.records import from_record, to_record
from verify.errors import ConfigError, DecodeError, VerifyError

log = logging.getLogger(__name__)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_SECRET_ENV = frozenset({"VERIFY_STORE_KEY"})

RAY_USAGE_STATS = "RAY_USAGE_STATS_ENABLED"
READ_THREADS = 8
"""Files an actor reads at once from a filesystem other than the local one (object stores answer
each read after a delay; the threads overlap the delays)."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs.

    Attributes:
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ...); ``None`` starts a
            local Ray for the job.
        workers: actors embedding at once; ``None``: one per GPU of the cluster, else one per CPU.
        batch_size: files per actor call (and per chunk of results). Each call is a Ray task, with
            its scheduling and transfers: with 64 files and the actors reading their own files,
            2 workers gave 1.69-1.73x one worker's throughput on 2 cores (read tasks: 1.55-1.62x
            the same day; ``python benchmarks/batch_scale.py``).
        local_cpus: CPUs of the local Ray started without ``address``.
        object_store_bytes: object store of that local Ray.
    """

    address: str | None = None
    workers: int | None = None
    batch_size: int = 64
    local_cpus: int = 2
    object_store_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        for name in ("workers", "batch_size", "local_cpus"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"Ray {name.replace('_', ' ')} must be an integer >= 1, got {value!r}")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("the Ray engine needs ray[data]: pip install -e '.[scale]'") from None
    return ray


class _Embedder:
    """A Ray actor: one pipeline, loaded once, embedding batches of files ``{"path": location}``.

    ``filesystem``: the files' pyarrow filesystem; ``None``: local paths, which the pipeline reads.
    """

    def __init__(self, modality: str, device: str, threads: int | None, filesystem=None) -> None:
        from verify.models import load_pipeline

        options = {"cpu_threads": threads} if threads else {}
        self.pipeline = load_pipeline(modality, device, **options)
        self.filesystem = filesystem
        self._readers = ThreadPoolExecutor(READ_THREADS) if filesystem is not None else None

    def __call__(self, batch: dict):
        import pyarrow as pa

        paths = [str(path) for path in batch["path"]]
        sources = list(self._readers.map(self._read, paths)) if self._readers else paths
        records = [to_record(path, name_source(result, path) if isinstance(result, VerifyError) else result)
                   for path, result in zip(paths, embed_passing_errors(self._embed_all, sources))]
        return pa.Table.from_pylist(records, schema=_schema())

    def _read(self, location: str) -> bytes | VerifyError:
        try:
            return read_file(self.filesystem, location, location)
        except VerifyError as error:
            return error

    def _embed_all(self, sources: list[str | bytes]) -> list[Embedding | VerifyError]:
        try:
            return self.pipeline.embed_many(sources)
        except Exception:  # noqa: BLE001 - one bad file must not fail the batch: retry one by one
            return [self._embed_one(source) for source in sources]

    def _embed_one(self, source: str | bytes) -> Embedding | VerifyError:
        try:
            return self.pipeline.embed(source)
        except VerifyError as error:
            return error
        except Exception as error:  # noqa: BLE001 - reported as this file's error row
            return VerifyError(f"unexpected {type(error).__name__}: {error}")


def _schema():
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("vector", pa.list_(pa.float32())), ("quality", pa.list_(pa.string())),
                      ("notes", pa.list_(pa.string())), ("measures", pa.string()), ("error_type", pa.string()),
                      ("error", pa.string())])


@contextmanager
def _local_cluster_environment() -> Iterator[None]:
    """The environment a local Ray starts in: its processes, and the workers they spawn, inherit the
    environment of the moment (``runtime_env`` adds, never removes). The store key is withheld, and
    Ray's usage statistics, which Ray reports online by default, are off unless the user set
    ``RAY_USAGE_STATS_ENABLED`` (``ray/_common/usage/usage_lib.py``)."""
    held = {name: os.environ.pop(name) for name in _SECRET_ENV if name in os.environ}
    added = {RAY_USAGE_STATS: "0"} if RAY_USAGE_STATS not in os.environ else {}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
        os.environ.update(held)


def _worker_env() -> dict[str, str]:
    """What a local cluster's workers need: this checkout first on the path, the ``VERIFY_*`` settings
    (never the store key)."""
    env = {name: value for name, value in os.environ.items() if name.startswith("VERIFY_") and name not in _SECRET_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, os.environ.get("PYTHONPATH"))))
    return env


class RayEngine:
    """Embeds files on Ray actors; use as a context manager (starts and stops a local Ray if needed).

    Args:
        modality: ``"face"`` or ``"voice"``.
        device: ``"auto"`` uses the cluster's GPUs when it has some; ``"cpu"`` never does.
        options: cluster address, workers, batch size.
    """

    name = "ray"

    def __init__(self, modality: str, device: str = "auto", options: RayOptions = RayOptions()) -> None:
        self.modality = modality
        self.device = device
        self.options = options
        self._owned = False

    def __enter__(self) -> RayEngine:
        ray = _import_ray()
        if not ray.is_initialized():
            common = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}
            if self.options.address is None:
                with _local_cluster_environment():
                    ray.init(num_cpus=self.options.local_cpus, include_dashboard=False,
                             object_store_memory=self.options.object_store_bytes, **common)
            else:
                ray.init(address=self.options.address, **common)
            self._owned = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down the Ray this engine started (joined clusters keep running)."""
        if self._owned:
            _import_ray().shutdown()
            self._owned = False

    def plan(self) -> tuple[int, dict]:
        """``(workers, Ray resources per worker)`` on the connected cluster."""
        ray = _import_ray()
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if self.device != "cpu" else 0
        workers = self.options.workers or max(1, gpus or int(resources.get("CPU", 1)))
        return workers, ({"num_gpus": 1} if gpus else {"num_cpus": 1})

    def embed(self, files: FileList) -> Iterator[Chunk]:
        """``(path, embedding or error)`` of every file, in the list's order, a chunk at a time."""
        if not len(files):
            return
        ray = _import_ray()
        from ray.data import ActorPoolStrategy

        workers, resources = self.plan()
        size = self.options.batch_size
        workers = min(workers, math.ceil(len(files) / size))  # more actors than batches would idle
        remote = dict(resources)
        if self.options.address is None:  # workers of a joined cluster use the nodes' own install
            remote["runtime_env"] = {"env_vars": _worker_env()}
        on_gpu = "num_gpus" in resources
        dataset = ray.data.from_items(
            [{"path": location} for location in files.locations], override_num_blocks=math.ceil(len(files) / size),
        ).map_batches(
            _Embedder, fn_constructor_kwargs={"modality": self.modality, "device": "cuda" if on_gpu else "cpu",
                                              "threads": None if on_gpu else 1, "filesystem": files.filesystem},
            batch_size=size, compute=ActorPoolStrategy(size=workers), **remote,
        )
        yield from _in_order(files, dataset.iter_batches(batch_size=None, batch_format="pyarrow"), size)


def _as_listed(result: Embedding | VerifyError, location: str, path: str) -> Embedding | VerifyError:
    """An error names the file as the listing does (a worker only knew its location)."""
    if isinstance(result, VerifyError) and location != path:
        return type(result)(str(result).replace(location, path))
    return result


def _in_order(files: FileList, batches, size: int) -> Iterator[Chunk]:
    """Chunks ``[k * size, (k + 1) * size)`` of results in the files' order, each as soon as it is complete;
    a file that never came back (vanished, unreadable) is an error."""
    position = {location: index for index, location in enumerate(files.locations)}
    done: dict[int, Embedding | VerifyError] = {}
    start = 0
    for batch in batches:
        for record in batch.to_pylist():
            index = position.get(record["path"], position.get(os.path.normpath(record["path"])))
            if index is None:
                log.warning("Ray returned a file that was not listed: %s", record["path"])
                continue
            done[index] = _as_listed(from_record(record), record["path"], files.paths[index])
        while all(index in done for index in range(start, min(start + size, len(files)))) and start < len(files):
            yield [(files.paths[i], done.pop(i)) for i in range(start, min(start + size, len(files)))]
            start += size
    while start < len(files):
        stop = min(start + size, len(files))
        yield [(files.paths[i], done.pop(i, None) or DecodeError(f"cannot read {files.paths[i]}"))
               for i in range(start, stop)]
        start = stop
