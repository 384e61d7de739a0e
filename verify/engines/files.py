"""The files of a folder, local or on any filesystem pyarrow reads (``s3://``, ``gs://``, ``hdfs://``...).

Hidden files and folders (a name starting with ``.``) are skipped. The order is the order of the
path's parts, the order ``verify batch`` has always written its rows in; every engine keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from verify.errors import ConfigError, DecodeError


@dataclass(frozen=True)
class FileList:
    """Files to embed.

    Attributes:
        root: the folder as given.
        paths: each file as results name it (under ``root`` as given), in order.
        locations: each file on ``filesystem`` (absolute local paths when it is ``None``).
        filesystem: a ``pyarrow.fs.FileSystem`` for a URI, ``None`` for a local folder.
    """

    root: str
    paths: tuple[str, ...]
    locations: tuple[str, ...]
    filesystem: Any = None

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> bytes | str:
        """What a pipeline embeds for file ``index``: its local path, or its bytes from the filesystem.

        Raises:
            DecodeError: the file cannot be read.
        """
        if self.filesystem is None:
            return self.paths[index]
        return read_file(self.filesystem, self.locations[index], self.paths[index])


def read_file(filesystem: Any, location: str, name: str) -> bytes:
    """The bytes of the file at ``location`` on a pyarrow ``filesystem``, named ``name`` in errors.

    Raises:
        DecodeError: the file cannot be read.
    """
    try:
        with filesystem.open_input_file(location) as handle:
            return handle.readall()
    except OSError as error:
        raise DecodeError(f"cannot read {name}: {error}") from None


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") for part in parts)


def list_files(root: str | Path) -> FileList:
    """Every non-hidden file under ``root`` (recursively), in order.

    Raises:
        ConfigError: ``root`` is not a folder, or its URI names no filesystem pyarrow knows.
    """
    text = str(root)
    if "://" not in text:
        folder = Path(text)
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder")
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p.relative_to(folder).parts))
        return FileList(text, tuple(map(str, files)), tuple(str(p.absolute()) for p in files))
    return _list_uri(text)


def _list_uri(uri: str) -> FileList:
    try:
        from pyarrow import fs
    except ImportError:
        raise ConfigError(f"reading {uri} needs pyarrow: pip install -e '.[scale]'") from None
    try:
        filesystem, base = fs.FileSystem.from_uri(uri)
        infos = filesystem.get_file_info(fs.FileSelector(base, recursive=True))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot list {uri}: {error}") from None
    found = []
    for info in infos:
        relative = PurePosixPath(info.path).relative_to(PurePosixPath(base)).parts
        if info.type == fs.FileType.File and not _hidden(relative):
            found.append((relative, info.path))
    found.sort()
    prefix = uri.rstrip("/")
    return FileList(uri, tuple(f"{prefix}/{'/'.join(parts)}" for parts, _ in found), tuple(loc for _, loc in found),
                    filesystem)
