"""API tokens: the secret shown once, only a digest stored, scopes, revocation, sealed rows."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from enrollment.crypto import generate_key, parse_key
from enrollment.errors import InvalidTokenError, TemplateIntegrityError, TokenError, TokenScopeError
from enrollment.store import TemplateStore
from enrollment.tokens import TokenRegistry
from verify.errors import ConfigError


@pytest.fixture
def store(tmp_path):
    with TemplateStore(tmp_path / "people.db") as opened:
        yield opened


def test_the_store_keeps_a_digest_never_the_secret(store, tmp_path):
    issued = TokenRegistry(store).create("door-1", "verify")
    assert issued.secret.startswith(f"vfy_{issued.token.token_id}_") and issued.secret not in repr(issued)
    with sqlite3.connect(tmp_path / "people.db") as raw:
        (digest,) = raw.execute("SELECT digest FROM api_tokens").fetchone()
    assert digest == hashlib.sha256(issued.secret.encode()).digest()
    assert issued.secret.encode() not in (tmp_path / "people.db").read_bytes()


def test_scopes(store):
    tokens = TokenRegistry(store)
    door, ops = tokens.create("door", "verify").secret, tokens.create("ops", "admin").secret
    assert tokens.authenticate(door, "verify").name == "door"
    assert tokens.authenticate(ops, "verify").name == "ops" and tokens.authenticate(ops, "admin").scope == "admin"
    with pytest.raises(TokenScopeError, match="scope 'verify'; this request needs 'admin'"):
        tokens.authenticate(door, "admin")
    with pytest.raises(ConfigError, match="unknown API token scope 'root'"):
        tokens.create("x", "root")


@pytest.mark.parametrize("presented", [None, "", "Bearer", "vfy_123_abc", "vfy_0123456789abcdef_wrong", "x" * 300])
def test_missing_malformed_and_wrong_tokens_are_invalid(store, presented):
    TokenRegistry(store).create("door", "verify")
    with pytest.raises(InvalidTokenError):
        TokenRegistry(store).authenticate(presented, "verify")


def test_a_wrong_secret_for_a_real_id_is_invalid(store):
    issued = TokenRegistry(store).create("door", "verify")
    with pytest.raises(InvalidTokenError, match="invalid API token"):
        TokenRegistry(store).authenticate(issued.secret[:-2] + "AA", "verify")


def test_revoked_tokens_are_refused_and_the_name_can_be_reused(store):
    tokens = TokenRegistry(store)
    old = tokens.create("door", "verify")
    with pytest.raises(TokenError, match="already named 'door'"):
        tokens.create("door", "admin")
    assert tokens.revoke("door").revoked_at is not None
    with pytest.raises(InvalidTokenError, match="'door' was revoked"):
        tokens.authenticate(old.secret, "verify")
    with pytest.raises(TokenError, match="no active API token is named 'door'"):
        tokens.revoke("door")
    new = tokens.create("door", "verify")
    assert tokens.authenticate(new.secret, "verify").token_id == new.token.token_id
    assert [(t.name, t.active) for t in tokens.list()] == [("door", True), ("door", False)]


@pytest.mark.parametrize("name", ["", "has space", "-leading", "x" * 65, "naïve"])
def test_malformed_names_are_refused(store, name):
    with pytest.raises(TokenError, match="must be 1-64 letters"):
        TokenRegistry(store).create(name, "verify")


def test_with_a_store_key_a_widened_scope_is_refused(tmp_path):
    key = parse_key(generate_key(), "test")
    with TemplateStore(tmp_path / "sealed.db", key=key) as sealed:
        issued = TokenRegistry(sealed).create("door", "verify")
        assert TokenRegistry(sealed).authenticate(issued.secret, "verify").name == "door"
    with sqlite3.connect(tmp_path / "sealed.db") as raw:
        raw.execute("UPDATE api_tokens SET scope = 'admin'")
    with TemplateStore(tmp_path / "sealed.db", key=key) as sealed, pytest.raises(TemplateIntegrityError,
                                                                                  match="API token 'door'"):
        TokenRegistry(sealed).authenticate(issued.secret, "admin")
