"""Audit log of verification attempts, kept in the enrollment store's ``attempts`` table.

One row per attempt: time, identity, modality, decision, score, a short detail (the decision's
reason or the error's class), what was attempted (a 1:1 ``verify`` of a claimed identity or a 1:N
``identify``) and by which caller (an app session, a client address, a CLI user). Never the
sample, its file name or its embedding.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from enrollment.store import TemplateStore
from enrollment.template import validate_identity
from verify.errors import ConfigError

DECISIONS = ("accepted", "rejected", "retry", "error", "locked", "throttled")
ACTIONS = ("verify", "identify")
MAX_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Attempt:
    """One logged attempt.

    Attributes:
        time: unix time in seconds.
        identity: the identity claimed (``verify``), or the one named (``identify``; empty when
            nobody was named).
        modality: ``"face"`` or ``"voice"``.
        decision: one of :data:`DECISIONS`.
        score: the score, or ``None`` when no score was computed (error, locked, throttled).
        detail: the decision's reason or the error's class name.
        action: one of :data:`ACTIONS`.
        caller: who attempted it (e.g. ``"app:<session>"``, ``"cli:<user>"``); may be empty.
    """

    time: float
    identity: str
    modality: str
    decision: str
    score: float | None
    detail: str
    action: str = "verify"
    caller: str = ""

    def as_dict(self) -> dict:
        """The attempt as a JSON-ready dict."""
        return {"time": self.time, "identity": self.identity, "modality": self.modality,
                "decision": self.decision, "score": self.score, "detail": self.detail,
                "action": self.action, "caller": self.caller}  # fmt: skip


def record_attempt(connection: sqlite3.Connection, attempt: Attempt) -> None:
    """Insert one attempt; call inside ``TemplateStore.transaction(write=True)``."""
    if attempt.decision not in DECISIONS:
        raise ConfigError(f"unknown attempt decision {attempt.decision!r}: use one of {', '.join(DECISIONS)}")
    if attempt.action not in ACTIONS:
        raise ConfigError(f"unknown attempt action {attempt.action!r}: use one of {', '.join(ACTIONS)}")
    connection.execute(
        "INSERT INTO attempts (time, identity, modality, decision, score, detail, action, caller)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (attempt.time, attempt.identity, attempt.modality, attempt.decision, attempt.score,
         attempt.detail[:MAX_DETAIL_CHARS], attempt.action, attempt.caller[:MAX_DETAIL_CHARS]),
    )  # fmt: skip


def recent_attempts(store: TemplateStore, limit: int = 50, identity: str | None = None) -> list[Attempt]:
    """The latest ``limit`` attempts, newest first, of every identity or of one.

    Raises:
        ConfigError: ``limit`` is not a positive integer.
        InvalidIdentityError: ``identity`` is not a valid name.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"the number of attempts to show must be a positive integer, got {limit!r}")
    where, args = "", ()
    if identity is not None:
        where, args = "WHERE identity = ?", (validate_identity(identity),)
    with store.transaction() as connection:
        rows = connection.execute(
            "SELECT time, identity, modality, decision, score, detail, action, caller FROM attempts"
            f" {where} ORDER BY time DESC, id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
    return [Attempt(*row) for row in rows]
