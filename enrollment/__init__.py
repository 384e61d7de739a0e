"""Enrollment: templates of enrolled identities and the SQLite store that keeps them.

Sits on top of :mod:`verify`; imports neither torch nor any model code.
"""

from __future__ import annotations

from enrollment.errors import (
    InvalidIdentityError,
    InvalidTemplateError,
    StoreCorruptError,
    StoreError,
    UnknownIdentityError,
)
from enrollment.store import SCHEMA_VERSION, TemplateStore, default_store_path
from enrollment.template import MODALITIES, Template, validate_identity, validate_modality

__all__ = [
    "MODALITIES",
    "SCHEMA_VERSION",
    "InvalidIdentityError",
    "InvalidTemplateError",
    "StoreCorruptError",
    "StoreError",
    "Template",
    "TemplateStore",
    "UnknownIdentityError",
    "default_store_path",
    "validate_identity",
    "validate_modality",
]
