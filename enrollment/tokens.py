"""API tokens of the REST API: created and revoked by an operator, kept as digests in the store.

A token reads ``vfy_<id>_<secret>``: a 16-hex-digit id that finds its row, and 32 random bytes
(base64url). The secret is shown once, when the token is created; the store keeps only the
SHA-256 of the whole token, compared in constant time. A fast hash is enough here, unlike for
passwords: with 256 random bits no guess from a stolen digest can succeed, so scrypt or Argon2
would add nothing but their cost to every request. With a store key, each digest is sealed bound
to its token's id, name and scope, so a row edited to widen its scope, or planted, is refused.

Scopes: ``verify`` may verify and identify; ``admin`` may also enroll, list and delete.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field

from enrollment.errors import InvalidTokenError, TokenError, TokenScopeError
from enrollment.store import TemplateStore
from verify.errors import ConfigError

SCOPES = ("verify", "admin")
PREFIX = "vfy"
ID_HEX_DIGITS = 16
SECRET_BYTES = 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DOMAIN = b"verify-api-token-v1"


@dataclass(frozen=True)
class ApiToken:
    """A token as the store knows it (never its secret).

    Attributes:
        name: the operator's name for it (the caller of its attempts in the audit log).
        scope: ``"verify"`` or ``"admin"``.
        token_id: the public part of the token.
        created_at: unix time in seconds.
        revoked_at: unix time it was revoked, or ``None`` while it is valid.
    """

    name: str
    scope: str
    token_id: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        """Whether the token is still accepted."""
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """Whether this token may make a request needing ``scope`` (``admin`` includes ``verify``)."""
        return self.scope == "admin" or self.scope == scope

    def as_dict(self) -> dict:
        """The token as a JSON-ready dict."""
        return {"name": self.name, "scope": self.scope, "id": self.token_id, "created_at": self.created_at,
                "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: the secret is here once and nowhere else."""

    token: ApiToken
    secret: str = field(repr=False)


def check_scope(scope: str) -> str:
    """``scope`` if it is one of :data:`SCOPES`.

    Raises:
        ConfigError: it is not.
    """
    if scope not in SCOPES:
        raise ConfigError(f"unknown API token scope {scope!r}: use one of {', '.join(SCOPES)}")
    return scope


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _associated_data(token_id: str, name: str, scope: str) -> bytes:
    return b"\x00".join((_DOMAIN, token_id.encode(), name.encode(), scope.encode()))


def _token_id(secret: str) -> str:
    """The id part of a presented token.

    Raises:
        InvalidTokenError: the text is not shaped like a token.
    """
    prefix, _, rest = secret.partition("_")
    token_id, _, random_part = rest.partition("_")
    if prefix != PREFIX or len(token_id) != ID_HEX_DIGITS or not random_part or len(secret) > 200:
        raise InvalidTokenError("invalid API token")
    return token_id


class TokenRegistry:
    """The API tokens of one store."""

    def __init__(self, store: TemplateStore) -> None:
        self.store = store

    def create(self, name: str, scope: str, now: float | None = None) -> IssuedToken:
        """A new token named ``name``; its secret is returned here only.

        Raises:
            TokenError: the name is malformed or already names an active token.
            ConfigError: unknown scope.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TokenError(f"API token name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        check_scope(scope)
        token_id = secrets.token_hex(ID_HEX_DIGITS // 2)
        random_part = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")
        secret = f"{PREFIX}_{token_id}_{random_part}"
        token = ApiToken(name, scope, token_id, time.time() if now is None else now)
        digest, seal = self.store.seal(_digest(secret), _associated_data(token_id, name, scope))
        with self.store.transaction(write=True) as connection:
            if connection.execute("SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone():
                raise TokenError(f"an active API token is already named {name!r}; revoke it first")
            connection.execute(
                "INSERT INTO api_tokens (id, name, scope, digest, seal, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, name, scope, digest, seal, token.created_at),
            )
        return IssuedToken(token, secret)

    def list(self) -> list[ApiToken]:
        """Every token, active and revoked, newest first."""
        with self.store.transaction() as connection:
            rows = connection.execute(
                "SELECT name, scope, id, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC, id"
            ).fetchall()
        return [ApiToken(*row) for row in rows]

    def revoke(self, name: str, now: float | None = None) -> ApiToken:
        """Revoke the active token named ``name``; it is refused from now on (its row stays, for the record).

        Raises:
            TokenError: no active token has that name.
        """
        now = time.time() if now is None else now
        with self.store.transaction(write=True) as connection:
            row = connection.execute(
                "SELECT name, scope, id, created_at FROM api_tokens WHERE name = ? AND revoked_at IS NULL", (name,)
            ).fetchone()
            if row is None:
                raise TokenError(f"no active API token is named {name!r}")
            connection.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (now, row[2]))
        return ApiToken(*row, revoked_at=now)

    def authenticate(self, secret: str | None, scope: str) -> ApiToken:
        """The active token whose secret this is, if it allows ``scope``.

        Raises:
            InvalidTokenError: no token, a malformed, unknown or revoked one, or a wrong secret.
            TokenScopeError: the token does not allow ``scope``.
            TemplateIntegrityError: the token's row fails authentication under the store key.
        """
        check_scope(scope)
        if not secret:
            raise InvalidTokenError("this request needs an API token (header 'Authorization: Bearer <token>')")
        token_id = _token_id(secret)
        with self.store.transaction() as connection:
            row = connection.execute(
                "SELECT name, scope, id, created_at, revoked_at, digest, seal FROM api_tokens WHERE id = ?", (token_id,)
            ).fetchone()
        if row is None:
            raise InvalidTokenError("invalid API token")
        token = ApiToken(*row[:5])
        stored = self.store.unseal(row[5], row[6], _associated_data(token.token_id, token.name, token.scope),
                                   f"API token {token.name!r}")
        if not hmac.compare_digest(stored, _digest(secret)):
            raise InvalidTokenError("invalid API token")
        if not token.active:
            raise InvalidTokenError(f"API token {token.name!r} was revoked")
        if not token.allows(scope):
            raise TokenScopeError(f"API token {token.name!r} has scope {token.scope!r}; this request needs {scope!r}")
        return token
