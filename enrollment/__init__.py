"""Enrollment: the service every front end calls, and the SQLite store of templates behind it.

    from enrollment import Service
    svc = Service(store="people.db")
    svc.enroll("alice", face="alice.jpg")
    svc.check("alice", face="door.jpg").outcome        # "accepted" | "rejected" | "retry"

Sits on top of :mod:`verify`; importing it loads no model and no torch.
"""

from __future__ import annotations

from enrollment.errors import (
    InvalidIdentityError,
    InvalidTemplateError,
    LockedOutError,
    StoreCorruptError,
    StoreError,
    ThrottledError,
    UnknownIdentityError,
)
from enrollment.results import CheckResult, EnrollResult, IdentifyResult
from enrollment.service import MissingSampleError, Service
from enrollment.settings import Settings
from enrollment.store import SCHEMA_VERSION, TemplateStore, default_store_path
from enrollment.template import MODALITIES, Template, validate_identity, validate_modality

__all__ = [
    "MODALITIES",
    "SCHEMA_VERSION",
    "CheckResult",
    "EnrollResult",
    "IdentifyResult",
    "InvalidIdentityError",
    "InvalidTemplateError",
    "LockedOutError",
    "MissingSampleError",
    "Service",
    "Settings",
    "StoreCorruptError",
    "StoreError",
    "Template",
    "TemplateStore",
    "ThrottledError",
    "UnknownIdentityError",
    "default_store_path",
    "validate_identity",
    "validate_modality",
]
