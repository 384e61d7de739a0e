"""Optional authenticated encryption of template embeddings at rest (AES-256-GCM).

The key is 32 random bytes, given base64-encoded in ``$VERIFY_STORE_KEY`` or in a key file.
Each embedding is sealed with a fresh 96-bit nonce; the associated data binds the row's identity,
modality, model, dimension and sample count, so a ciphertext copied into another row, or a row
whose identity or count was edited, fails authentication instead of being used.

AES-GCM keeps the ciphertext the length of the plaintext, so the sealed embedding fits the same
column; the nonce and the 16-byte tag are kept beside it (``seal`` = nonce + tag).

``cryptography`` is imported only when a key is used.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Mapping

from enrollment.errors import StoreKeyError, TemplateIntegrityError

KEY_ENV = "VERIFY_STORE_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEAL_BYTES = NONCE_BYTES + TAG_BYTES
_DOMAIN = b"verify-template-v1"
_KEY_CHECK_PLAINTEXT = b"verify-store-key-check"


def generate_key() -> str:
    """A new random key, base64-encoded, for ``$VERIFY_STORE_KEY`` or a key file."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_key(text: str | bytes, origin: str) -> bytes:
    """Decode a base64 key of exactly 32 bytes; ``origin`` names where it came from.

    Raises:
        StoreKeyError: not base64, or not 32 bytes once decoded.
    """
    if isinstance(text, str):
        text = text.encode("ascii", errors="replace")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise StoreKeyError(f"the key in {origin} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise StoreKeyError(
            f"the key in {origin} is {len(key)} bytes; AES-256 needs {KEY_BYTES} random bytes,"
            " base64-encoded (python -c 'from enrollment.crypto import generate_key; print(generate_key())')"
        )
    return key


def load_key(key_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key from ``key_file`` if given, else from ``$VERIFY_STORE_KEY`` (of ``environ``, by default
    the process environment), else ``None``.

    Raises:
        StoreKeyError: the file cannot be read or either source holds a malformed key.
    """
    if key_file is not None:
        path = Path(key_file).expanduser()
        try:
            return parse_key(path.read_bytes(), f"key file {path}")
        except OSError as error:
            raise StoreKeyError(f"cannot read key file {path}: {error.strerror or error}") from None
    text = (os.environ if environ is None else environ).get(KEY_ENV, "")
    return parse_key(text, f"${KEY_ENV}") if text.strip() else None


def associated_data(
    identity: str, modality: str, model_id: str, model_version: str, dim: int, sample_count: int
) -> bytes:
    """The bytes a sealed embedding is bound to: everything that says whose template it is."""
    fields = (identity, modality, model_id, model_version, str(dim), str(sample_count))
    return _DOMAIN + b"".join(b"\x00" + field.encode("utf-8") for field in fields)


class TemplateCipher:
    """Seals and opens embedding blobs with AES-256-GCM under one key."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise StoreKeyError(f"the template key must be {KEY_BYTES} bytes")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "TemplateCipher(<key hidden>)"

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Encrypt ``plaintext``: returns (ciphertext of the same length, nonce + tag)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, aad)
        return sealed[:-TAG_BYTES], nonce + sealed[-TAG_BYTES:]

    def open(self, ciphertext: bytes, seal: bytes, aad: bytes, what: str) -> bytes:
        """Decrypt and authenticate; ``what`` names the row in the error.

        Raises:
            TemplateIntegrityError: wrong key, or the ciphertext, seal or bound fields changed.
        """
        from cryptography.exceptions import InvalidTag

        if not isinstance(seal, bytes) or len(seal) != SEAL_BYTES:
            raise TemplateIntegrityError(f"{what} has a damaged seal; it was not used")
        nonce, tag = seal[:NONCE_BYTES], seal[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext + tag, aad)
        except InvalidTag:
            raise TemplateIntegrityError(
                f"{what} failed authentication (tampered, moved from another row, or sealed"
                " with another key); it was not used: re-enroll or restore a backup"
            ) from None

    def key_check(self) -> str:
        """A sealed constant, kept in the store so that a wrong key is named as such."""
        ciphertext, seal = self.seal(_KEY_CHECK_PLAINTEXT, _DOMAIN)
        return base64.b64encode(seal + ciphertext).decode("ascii")

    def matches(self, key_check: str) -> bool:
        """Whether ``key_check`` (from :meth:`key_check`) was made with this key."""
        try:
            raw = base64.b64decode(key_check, validate=True)
            opened = self.open(raw[SEAL_BYTES:], raw[:SEAL_BYTES], _DOMAIN, "key check")
        except (binascii.Error, ValueError, TemplateIntegrityError):
            return False
        return opened == _KEY_CHECK_PLAINTEXT
