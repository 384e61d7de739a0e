"""Templates at rest: AES-GCM sealing, tamper and swap detection, keys, file permissions."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from vector_pipeline import direction, vector_verifier

from enrollment import TemplateStore
from enrollment.crypto import KEY_ENV, TemplateCipher, associated_data, generate_key, load_key, parse_key
from enrollment.enroll import check
from enrollment.errors import StoreKeyError, TemplateIntegrityError
from enrollment.ratelimit import NO_LOCKOUT

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MODEL = ("vector", "1")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def sealed(path: Path) -> Path:
    """A keyed store with alice (face, axis 0) and bob (face, axis 1)."""
    with TemplateStore(path, key=KEY) as store:
        store.add_sample("alice", "face", direction(0), *MODEL)
        store.add_sample("bob", "face", direction(1), *MODEL)
    return path


def raw_rows(path: Path) -> dict[str, tuple]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT identity, embedding, seal, sample_count FROM templates").fetchall()
    return {row[0]: row[1:] for row in rows}


def set_row(path: Path, identity: str, **values) -> None:
    assignments = ", ".join(f"{column} = ?" for column in values)
    with sqlite3.connect(path) as connection:
        connection.execute(f"UPDATE templates SET {assignments} WHERE identity = ?", (*values.values(), identity))


def test_sealed_round_trip_and_nothing_in_clear(sealed: Path) -> None:
    with TemplateStore(sealed, key=KEY) as store:
        assert store.encrypted
        np.testing.assert_array_equal(store.get("alice", "face").embedding_sum, direction(0))
        store.add_sample("alice", "face", direction(2), *MODEL)
        assert store.get("alice", "face").sample_count == 2
    embedding, seal, _ = raw_rows(sealed)["bob"]
    assert len(embedding) == 32 and len(seal) == 28
    assert embedding != direction(1).astype("<f4").tobytes()


def test_tampered_ciphertext_is_refused_and_never_scored(sealed: Path) -> None:
    embedding, _, _ = raw_rows(sealed)["alice"]
    set_row(sealed, "alice", embedding=bytes([embedding[0] ^ 1]) + embedding[1:])
    with TemplateStore(sealed, key=KEY) as store:
        with pytest.raises(TemplateIntegrityError, match=r"'alice' \(face\) failed authentication .* not used"):
            store.get("alice", "face")
        with pytest.raises(TemplateIntegrityError):
            check(store, vector_verifier(), "alice", direction(0), policy=NO_LOCKOUT)
        assert store.get("bob", "face").sample_count == 1  # other rows still open


def test_rows_swapped_between_identities_are_detected(sealed: Path) -> None:
    """An attacker with write access copies bob's sealed template into alice's row."""
    rows = raw_rows(sealed)
    set_row(sealed, "alice", embedding=rows["bob"][0], seal=rows["bob"][1])
    with TemplateStore(sealed, key=KEY) as store, pytest.raises(TemplateIntegrityError, match="'alice'"):
        check(store, vector_verifier(), "alice", direction(1), policy=NO_LOCKOUT)


@pytest.mark.parametrize(
    "change",
    [{"sample_count": 5}, {"model_version": "2"}, {"modality": "voice"}, {"seal": b"\x00" * 28}, {"seal": b"short"}],
    ids=["count", "model", "modality", "zero-seal", "short-seal"],
)
def test_edited_bound_fields_are_detected(sealed: Path, change: dict) -> None:
    set_row(sealed, "alice", **change)
    modality = change.get("modality", "face")
    with TemplateStore(sealed, key=KEY) as store, pytest.raises(TemplateIntegrityError, match="'alice'"):
        store.get("alice", modality)


def test_plain_row_planted_in_a_keyed_store_is_refused(sealed: Path) -> None:
    set_row(sealed, "alice", embedding=direction(5).astype("<f4").tobytes(), seal=None)
    with TemplateStore(sealed, key=KEY) as store:
        with pytest.raises(TemplateIntegrityError, match="is not encrypted although the store has a key"):
            store.get("alice", "face")


def test_sealed_store_needs_its_key(sealed: Path) -> None:
    with TemplateStore(sealed) as store, pytest.raises(StoreKeyError, match=r"is encrypted: give the store key"):
        store.list_templates()
    with pytest.raises(StoreKeyError, match="not the key of enrollment store"):
        TemplateStore(sealed, key=OTHER_KEY)


def test_associated_data_separates_fields() -> None:
    assert associated_data("ab", "face", "m", "1", 8, 1) != associated_data("a", "bface", "m", "1", 8, 1)
    cipher = TemplateCipher(KEY)
    ciphertext, seal = cipher.seal(b"x" * 8, b"aad")
    assert cipher.open(ciphertext, seal, b"aad", "row") == b"x" * 8
    assert cipher.seal(b"x" * 8, b"aad")[1][:12] != seal[:12]  # fresh nonce every time
    assert "key hidden" in repr(cipher)


# --- keys --------------------------------------------------------------------------------------
def test_key_from_env_or_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert load_key() is None
    key_text = generate_key()
    monkeypatch.setenv(KEY_ENV, key_text)
    assert load_key() == base64.b64decode(key_text)
    key_file = tmp_path / "key"
    key_file.write_text(base64.b64encode(KEY).decode() + "\n")
    assert load_key(key_file) == KEY  # the file wins over the environment


@pytest.mark.parametrize(
    ("text", "message"),
    [("not base64!", "is not valid base64"), (base64.b64encode(b"short").decode(), "is 5 bytes; AES-256 needs 32")],
)
def test_malformed_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(StoreKeyError, match=message):
        parse_key(text, "$VERIFY_STORE_KEY")


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreKeyError, match=r"cannot read key file .*nokey"):
        load_key(tmp_path / "nokey")


# --- file permissions -------------------------------------------------------------------------
def test_store_and_its_wal_and_shm_files_are_private(path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        with TemplateStore(path, key=KEY) as store:
            store.add_sample("alice", "face", direction(0), *MODEL)
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(file.exists() for file in files)
            assert {stat.S_IMODE(file.stat().st_mode) for file in files} == {0o600}
    finally:
        os.umask(old_umask)


def test_enroll_through_the_pipeline_seals(path: Path) -> None:
    from enrollment.enroll import enroll

    with TemplateStore(path, key=KEY) as store:
        enroll(store, vector_verifier(), "alice", direction(0))
        assert check(store, vector_verifier(), "alice", direction(0), policy=NO_LOCKOUT).accepted
    assert raw_rows(path)["alice"][1] is not None
