"""Errors raised by the enrollment store.

All of them are :class:`verify.errors.VerifyError` subclasses, so the app and the CLI report them
like any other user-facing error. A template made by another model raises
:class:`verify.errors.ModelMismatchError`; an unknown modality raises
:class:`verify.errors.ConfigError`.
"""

from __future__ import annotations

from verify.errors import VerifyError


class StoreError(VerifyError):
    """The enrollment store cannot do what was asked (closed, locked too long, read-only, ...)."""


class UnknownIdentityError(StoreError):
    """No template is enrolled for this identity (and modality)."""


class InvalidIdentityError(StoreError):
    """An identity name is empty, too long or holds control characters."""


class InvalidTemplateError(StoreError):
    """A template or sample embedding has the wrong type, shape or non-finite values."""


class StoreCorruptError(StoreError):
    """The store file is damaged, is not an SQLite file, or belongs to another application."""


class StoreKeyError(StoreError):
    """The template encryption key is missing, malformed, or is not the store's key."""


class TemplateIntegrityError(StoreCorruptError):
    """A stored template failed authentication: tampered, swapped between rows, or unsealed."""


class BackupError(StoreError):
    """An export file cannot be written, or an import file is malformed or does not fit."""


class LockedOutError(VerifyError):
    """Too many failed checks against one identity: checks are refused until ``until``.

    Attributes:
        until: unix time in seconds when checks are allowed again.
    """

    def __init__(self, message: str, until: float = 0.0) -> None:
        super().__init__(message)
        self.until = until


class ThrottledError(VerifyError):
    """Too many 1:N identifications from one caller: refused for ``retry_after`` seconds.

    Attributes:
        retry_after: seconds until the caller may identify again.
    """

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenError(VerifyError):
    """An API token cannot be created, found or revoked as asked (name taken, unknown, invalid)."""


class InvalidTokenError(TokenError):
    """A request's API token is missing, malformed, unknown or revoked."""


class TokenScopeError(TokenError):
    """A valid API token whose scope does not allow the request (a verify token asking to enroll)."""
