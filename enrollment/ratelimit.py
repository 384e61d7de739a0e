"""Brute-force protection: lockouts after failed checks, and a throttle on 1:N identification.

State lives in the enrollment store (``lockouts`` and ``attempts`` tables), so both hold across
processes and CLI runs.

Lockout (1:1): a failure is a check that scored but was not accepted (rejected or retry);
unreadable samples and missing faces are logged but do not count, since they tell an attacker
nothing about the template. Failures count from the latest of: the start of the window, the last
accepted check, and the end of the last lockout.

Throttle (1:N): identification searches every template, so a caller who could ask it without
limit would hold a score oracle against the whole gallery. Each caller (an app session or client
address, a CLI user) gets at most ``max_attempts`` identifications per window.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from enrollment.audit import Attempt, record_attempt
from enrollment.errors import LockedOutError, ThrottledError
from enrollment.store import TemplateStore
from enrollment.template import validate_identity, validate_modality
from verify.errors import ConfigError, VerifyError
from verify.scoring import Decision


@dataclass(frozen=True)
class LockoutPolicy:
    """``max_failures`` failed checks within ``window_seconds`` lock out for ``lockout_seconds``.

    ``max_failures = 0`` disables lockouts (attempts are still logged).
    """

    max_failures: int = 5
    window_seconds: float = 300.0
    lockout_seconds: float = 900.0

    def __post_init__(self) -> None:
        count = self.max_failures
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"max_failures must be an integer >= 0, got {count!r}")
        for name in ("window_seconds", "lockout_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")

    @property
    def enabled(self) -> bool:
        """Whether failures can lock an identity out."""
        return self.max_failures > 0


DEFAULT_POLICY = LockoutPolicy()
NO_LOCKOUT = LockoutPolicy(max_failures=0)


@dataclass(frozen=True)
class ThrottlePolicy:
    """At most ``max_attempts`` 1:N identifications per caller within ``window_seconds``.

    ``max_attempts = 0`` disables the throttle (attempts are still logged).
    """

    max_attempts: int = 20
    window_seconds: float = 60.0

    def __post_init__(self) -> None:
        count, window = self.max_attempts, self.window_seconds
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"max_attempts must be an integer >= 0, got {count!r}")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not math.isfinite(window) or window <= 0:
            raise ConfigError(f"window_seconds must be a positive number of seconds, got {window!r}")

    @property
    def enabled(self) -> bool:
        """Whether identifications can be throttled."""
        return self.max_attempts > 0


DEFAULT_THROTTLE = ThrottlePolicy()


def _locked_until(connection: sqlite3.Connection, identity: str, modality: str) -> float:
    row = connection.execute(
        "SELECT until FROM lockouts WHERE identity = ? AND modality = ?", (identity, modality)
    ).fetchone()
    return float(row[0]) if row else 0.0


def _locked_error(identity: str, modality: str, until: float, now: float) -> LockedOutError:
    minutes = max(1, math.ceil((until - now) / 60))
    clock = datetime.fromtimestamp(until, timezone.utc).strftime("%H:%M:%S UTC")
    return LockedOutError(
        f"{identity!r} ({modality}) is locked out after too many failed checks;"
        f" try again in {minutes} minute(s), at {clock}",
        until,
    )


def _failures_since(connection: sqlite3.Connection, identity: str, modality: str, since: float) -> int:
    return connection.execute(
        "SELECT count(*) FROM attempts WHERE identity = ? AND modality = ? AND time > ?"
        " AND decision IN ('rejected', 'retry') AND action = 'verify'",
        (identity, modality, since),
    ).fetchone()[0]


def _count_start(connection: sqlite3.Connection, identity: str, modality: str, policy: LockoutPolicy, now: float) -> float:
    last_success = connection.execute(
        "SELECT max(time) FROM attempts WHERE identity = ? AND modality = ? AND decision = 'accepted'"
        " AND action = 'verify'",
        (identity, modality),
    ).fetchone()[0]
    return max(now - policy.window_seconds, last_success or 0.0, _locked_until(connection, identity, modality))


def ensure_not_locked(
    store: TemplateStore, identity: str, modality: str, policy: LockoutPolicy = DEFAULT_POLICY,
    now: float | None = None, caller: str = "",
) -> None:
    """Raise :class:`LockedOutError` (and log a ``locked`` attempt) if ``identity`` is locked out."""
    now = time.time() if now is None else now
    if not policy.enabled:
        return
    with store.transaction(write=True) as connection:
        until = _locked_until(connection, identity, modality)
        if until <= now:
            return
        record_attempt(connection, Attempt(now, identity, modality, "locked", None, "LockedOutError", caller=caller))
    raise _locked_error(identity, modality, until, now)


def record_results(
    store: TemplateStore,
    identity: str,
    modality: str,
    results: Sequence[Decision | VerifyError],
    policy: LockoutPolicy = DEFAULT_POLICY,
    now: float | None = None,
    caller: str = "",
) -> list[Decision | VerifyError]:
    """Log each result (made for ``caller``) and apply the lockout policy, in one transaction.

    Returns the results, with every decision made while the identity is (or becomes) locked out
    replaced by a :class:`LockedOutError`: its score is never revealed or acted on.
    """
    now = time.time() if now is None else now
    answered: list[Decision | VerifyError] = []
    with store.transaction(write=True) as connection:
        for result in results:
            until = _locked_until(connection, identity, modality) if policy.enabled else 0.0
            if until > now and isinstance(result, Decision):
                record_attempt(connection, Attempt(now, identity, modality, "locked", None, "LockedOutError",
                                                   caller=caller))
                answered.append(_locked_error(identity, modality, until, now))
                continue
            record_attempt(connection, _as_attempt(result, identity, modality, now, "verify", caller))
            answered.append(result)
            if policy.enabled and isinstance(result, Decision) and not result.accepted:
                start = _count_start(connection, identity, modality, policy, now)
                if _failures_since(connection, identity, modality, start) >= policy.max_failures:
                    connection.execute(
                        "INSERT OR REPLACE INTO lockouts VALUES (?, ?, ?)",
                        (identity, modality, now + policy.lockout_seconds),
                    )
    return answered


def _as_attempt(result: Decision | VerifyError, identity: str, modality: str, now: float, action: str,
                caller: str) -> Attempt:
    if isinstance(result, Decision):
        return Attempt(now, identity, modality, result.outcome, float(result.score), result.reason, action, caller)
    return Attempt(now, identity, modality, "error", None, type(result).__name__, action, caller)


def ensure_not_throttled(
    store: TemplateStore, caller: str, modality: str, policy: ThrottlePolicy = DEFAULT_THROTTLE,
    now: float | None = None,
) -> None:
    """Raise :class:`ThrottledError` (and log a ``throttled`` attempt) if ``caller`` has used up its
    identifications of the current window."""
    now = time.time() if now is None else now
    if not policy.enabled:
        return
    with store.transaction(write=True) as connection:
        times = [row[0] for row in connection.execute(
            "SELECT time FROM attempts WHERE action = 'identify' AND caller = ? AND time > ?"
            " AND decision != 'throttled' ORDER BY time",
            (caller, now - policy.window_seconds),
        )]
        if len(times) < policy.max_attempts:
            return
        record_attempt(connection, Attempt(now, "", modality, "throttled", None, "ThrottledError", "identify", caller))
    retry_after = times[len(times) - policy.max_attempts] + policy.window_seconds - now
    raise ThrottledError(
        f"too many identifications from this client ({policy.max_attempts} per {policy.window_seconds:g} s);"
        f" try again in {max(1, math.ceil(retry_after))} s",
        retry_after,
    )


def record_identification(
    store: TemplateStore, caller: str, modality: str, named: str | None, result: Decision | VerifyError,
    now: float | None = None,
) -> None:
    """Log one 1:N identification: the person ``named`` (``None``: nobody) and the best match's decision."""
    now = time.time() if now is None else now
    with store.transaction(write=True) as connection:
        record_attempt(connection, _as_attempt(result, named or "", modality, now, "identify", caller))


def record_identifications(
    store: TemplateStore, caller: str, modality: str,
    searches: Sequence[tuple[str | None, Decision | VerifyError]], now: float | None = None,
) -> None:
    """Log many 1:N identifications ``(named, result)`` of one bulk job in one transaction."""
    now = time.time() if now is None else now
    with store.transaction(write=True) as connection:
        for named, result in searches:
            record_attempt(connection, _as_attempt(result, named or "", modality, now, "identify", caller))


def clear_lockout(store: TemplateStore, identity: str, modality: str, now: float | None = None) -> bool:
    """Lift an active lockout (an operator's decision); failures count afresh from ``now``.

    Returns whether a lockout was active.
    """
    now = time.time() if now is None else now
    identity, modality = validate_identity(identity), validate_modality(modality)
    with store.transaction(write=True) as connection:
        return connection.execute(
            "UPDATE lockouts SET until = ? WHERE identity = ? AND modality = ? AND until > ?",
            (now, identity, modality, now),
        ).rowcount > 0
