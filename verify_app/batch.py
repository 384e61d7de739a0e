"""Batch checks: uploaded files or zip archives -> samples in memory -> one row per file.

Archives are never extracted to disk: only regular members are read, into memory, with limits
on their number and on the bytes actually read (a member's declared size is not trusted), so
zip bombs, symlinks and ``../`` paths cannot do harm.
"""

from __future__ import annotations

import csv
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from enrollment.service import Service
from verify.errors import DecodeError, InputTooLargeError, VerifyError
from verify.scoring import Decision

ROW_HEADERS = ["file", "outcome", "score", "threshold", "reason"]


@dataclass(frozen=True)
class BatchLimits:
    """Limits on one batch: number of files and bytes per file and in total."""

    max_files: int = 500
    max_file_bytes: int = 50 * 2**20
    max_total_bytes: int = 200 * 2**20


class _Budget:
    def __init__(self, limits: BatchLimits) -> None:
        self.limits, self.files, self.bytes = limits, 0, 0

    def take(self, size: int, label: str) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.limits.max_files:
            raise InputTooLargeError(f"more than {self.limits.max_files} files in the batch (at {label})")
        if self.bytes > self.limits.max_total_bytes:
            limit_mib = self.limits.max_total_bytes // 2**20
            raise InputTooLargeError(f"the batch holds more than {limit_mib} MiB (at {label})")


def _zip_members(path: Path, budget: _Budget) -> list[tuple[str, bytes | VerifyError]]:
    samples: list[tuple[str, bytes | VerifyError]] = []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DecodeError(f"{path.name} is not a readable zip archive: {error}") from None
    with archive:
        for info in archive.infolist():
            name = f"{path.name}/{info.filename}"
            file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded none
            parts = PurePosixPath(info.filename).parts
            if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
                continue
            if file_type and file_type != stat.S_IFREG:
                samples.append((name, DecodeError(f"{name} is not a regular file (link or device); skipped")))
                continue
            samples.append((name, _read_member(archive, info, name, budget)))
    return samples


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: _Budget) -> bytes | VerifyError:
    limit = budget.limits.max_file_bytes
    if info.file_size > limit:
        budget.take(0, name)
        return InputTooLargeError(f"{name} is {info.file_size / 2**20:.1f} MiB; the limit is {limit // 2**20} MiB")
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError) as error:
        budget.take(0, name)
        return DecodeError(f"{name} cannot be read from the archive: {error}")
    budget.take(len(data), name)
    if len(data) > limit:
        return InputTooLargeError(f"{name} is larger than the {limit // 2**20} MiB limit")
    return data


def collect_samples(paths: Sequence[str | Path], limits: BatchLimits = BatchLimits()) -> list[tuple[str, Any]]:
    """``(name, sample or error)`` for every uploaded file, expanding ``.zip`` archives in memory.

    Raises:
        InputTooLargeError: the batch exceeds the file-count or total-size limit.
        DecodeError: nothing was uploaded, or an archive is unreadable.
    """
    if not paths:
        raise DecodeError("no files uploaded: add photos, clips or a zip archive")
    budget = _Budget(limits)
    samples: list[tuple[str, Any]] = []
    for raw in paths:
        path = Path(raw)
        if zipfile.is_zipfile(path):
            samples.extend(_zip_members(path, budget))
            continue
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            budget.take(0, path.name)
            samples.append((path.name, InputTooLargeError(f"{path.name} is {size / 2**20:.1f} MiB; the limit is "
                                                          f"{limits.max_file_bytes // 2**20} MiB")))
            continue
        budget.take(size, path.name)
        samples.append((path.name, path))
    return samples


def batch_check(service: Service, identity: str, modality: str, paths: Sequence[str | Path], level: str | None = None,
                limits: BatchLimits = BatchLimits(), caller: str | None = None) -> list[list[Any]]:
    """One row per file (``ROW_HEADERS``): decision against ``identity``, or ``error`` and why."""
    samples = collect_samples(paths, limits)
    sources = [sample for _, sample in samples if not isinstance(sample, VerifyError)]
    results = iter(service.check_many(identity, sources, modality, level=level, caller=caller) if sources else [])
    rows = []
    for name, sample in samples:
        result = sample if isinstance(sample, VerifyError) else next(results)
        rows.append(_row(name, result))
    return rows


def _row(name: str, result: Decision | VerifyError) -> list[Any]:
    if isinstance(result, VerifyError):
        message = str(result).removeprefix("image buffer: ").removeprefix("audio buffer: ")
        return [name, "error", None, None, message]
    return [name, result.outcome, round(result.score, 4), round(result.threshold, 4), result.reason]


def write_csv(rows: Sequence[Sequence[Any]], path: Path) -> Path:
    """Write rows under ``ROW_HEADERS`` as CSV and return ``path``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ROW_HEADERS)
        writer.writerows(rows)
    return path
