"""A gallery index saved beside the store file: header, payload, and its checksum or its seals.

``<store>.<modality>.gallery``, mode 0600, written to a temporary file and renamed, so a reader
sees the old file or the new one. Layout::

    magic (8) | header length (4, little endian) | header (JSON) | payload

The header names the modality, the model and the store version the index reflects, and the
lengths of the payload's sections. The payload holds template vectors, so it is protected like
the store: in a store without a key it is followed by its SHA-256 (corruption is caught, and
whoever can edit the file can edit the store too); in a store with a key it is sealed with the
store's cipher in 64 MiB chunks (AES-256-GCM, each bound to the header and its place), so the
vectors are never in clear on disk. A file that fails any check is not used: the gallery is
rebuilt from the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from enrollment.crypto import SEAL_BYTES
from enrollment.database import StoreDatabase
from enrollment.errors import StoreError, TemplateIntegrityError

log = logging.getLogger(__name__)
MAGIC = b"VRFYGAL1"
FORMAT = 1
CHUNK_BYTES = 64 * 2**20
_DOMAIN = b"verify-gallery-v1"


class GalleryFileError(Exception):
    """A saved gallery cannot be used (missing, damaged, sealed differently, tampered); rebuild it."""


def gallery_path(store_path: Path, modality: str) -> Path:
    """Where the gallery index of ``modality`` is saved for the store at ``store_path``."""
    return store_path.with_name(f"{store_path.name}.{modality}.gallery")


def _chunks(section: memoryview) -> Iterator[memoryview]:
    for start in range(0, len(section), CHUNK_BYTES):
        yield section[start : start + CHUNK_BYTES]


def _aad(header: bytes, index: int) -> bytes:
    return _DOMAIN + hashlib.sha256(header).digest() + struct.pack("<Q", index)


def save_gallery(path: Path, header: dict, sections: Sequence[memoryview], store: StoreDatabase) -> None:
    """Write ``header`` and the payload ``sections`` to ``path`` (mode 0600, atomically).

    Raises:
        StoreError: the file cannot be written.
    """
    sections = [memoryview(section).cast("B") for section in sections]
    header = {**header, "format": FORMAT, "sealed": store.encrypted, "sections": [len(s) for s in sections]}
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(MAGIC + struct.pack("<I", len(header_bytes)) + header_bytes)
            digest = hashlib.sha256(header_bytes)
            chunks = (chunk for section in sections for chunk in _chunks(section))
            for index, chunk in enumerate(chunks):
                if store.encrypted:
                    ciphertext, seal = store.seal(bytes(chunk), _aad(header_bytes, index))
                    handle.write(seal)
                    handle.write(ciphertext)
                else:
                    digest.update(chunk)
                    handle.write(chunk)
            if not store.encrypted:
                handle.write(digest.digest())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise StoreError(f"cannot save the gallery index {path}: {error}") from error


def load_gallery(path: Path, store: StoreDatabase) -> tuple[dict, list[memoryview]]:
    """The header and payload sections of a gallery saved by :func:`save_gallery`.

    Raises:
        GalleryFileError: the file is missing, damaged, tampered with, or sealed otherwise than
            the store (with a key in a store without one, in clear in a store with one).
    """
    try:
        data = memoryview(path.read_bytes())
    except OSError as error:
        raise GalleryFileError(f"cannot read {path}: {error.strerror or error}") from None
    if bytes(data[: len(MAGIC)]) != MAGIC or len(data) < len(MAGIC) + 4:
        raise GalleryFileError(f"{path} is not a saved gallery")
    (length,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4 + length
    header_bytes = bytes(data[len(MAGIC) + 4 : start])
    try:
        header = json.loads(header_bytes)
        sizes = [int(size) for size in header["sections"]]
        sealed, version = bool(header["sealed"]), header["format"]
    except (ValueError, KeyError, TypeError):
        raise GalleryFileError(f"{path} has a damaged header") from None
    if version != FORMAT:
        raise GalleryFileError(f"{path} has format {version!r}, this program reads {FORMAT}")
    if sealed != store.encrypted:
        raise GalleryFileError(f"{path} is {'sealed' if sealed else 'in clear'} but the store "
                               f"{'has no key' if sealed else 'has a key'}")
    payload = _open_sealed(path, data[start:], header_bytes, sizes, store) if sealed else \
        _open_checked(path, data[start:], header_bytes, sum(sizes))
    sections, offset = [], 0
    for size in sizes:
        sections.append(payload[offset : offset + size])
        offset += size
    return header, sections


def _open_checked(path: Path, body: memoryview, header: bytes, size: int) -> memoryview:
    if len(body) != size + 32:
        raise GalleryFileError(f"{path} is truncated or has trailing bytes")
    digest = hashlib.sha256(header)
    digest.update(body[:size])
    if digest.digest() != bytes(body[size:]):
        raise GalleryFileError(f"{path} fails its checksum (damaged)")
    return body[:size]


def _open_sealed(path: Path, body: memoryview, header: bytes, sizes: list[int], store: StoreDatabase) -> memoryview:
    lengths = [min(CHUNK_BYTES, size - start) for size in sizes for start in range(0, size, CHUNK_BYTES)]
    if len(body) != sum(lengths) + SEAL_BYTES * len(lengths):
        raise GalleryFileError(f"{path} is truncated or has trailing bytes")
    payload, offset, position = bytearray(sum(lengths)), 0, 0
    for index, length in enumerate(lengths):
        seal = bytes(body[offset : offset + SEAL_BYTES])
        ciphertext = bytes(body[offset + SEAL_BYTES : offset + SEAL_BYTES + length])
        try:
            what = f"gallery {path}"
            payload[position : position + length] = store.unseal(ciphertext, seal, _aad(header, index), what)
        except TemplateIntegrityError as error:
            raise GalleryFileError(str(error)) from None
        offset += SEAL_BYTES + length
        position += length
    return memoryview(payload)
