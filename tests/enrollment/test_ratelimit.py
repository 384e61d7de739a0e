"""Lockout after repeated failed checks, the audit log, and the lookalike warning at enrollment."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from vector_pipeline import direction, vector_verifier

from enrollment import TemplateStore
from enrollment.audit import Attempt, recent_attempts, record_attempt
from enrollment.enroll import check, check_many, enroll
from enrollment.errors import InvalidIdentityError, LockedOutError
from enrollment.ratelimit import NO_LOCKOUT, LockoutPolicy, clear_lockout
from verify.errors import ConfigError, NoFaceError

POLICY = LockoutPolicy(max_failures=3, window_seconds=60.0, lockout_seconds=600.0)
GENUINE, IMPOSTOR, BORDERLINE = direction(0), direction(1), direction(0, lean=1.5)  # 1.0, 0.0, ~0.55


@pytest.fixture
def store(tmp_path: Path):
    with TemplateStore(tmp_path / "store.db") as opened:
        enroll(opened, vector_verifier(), "alice", GENUINE)
        yield opened


def attempts(store: TemplateStore) -> list[tuple[str, str]]:
    return [(a.identity, a.decision) for a in reversed(recent_attempts(store, 1000))]


def test_the_fixture_scores_are_what_the_tests_assume(store) -> None:
    verifier = vector_verifier()
    assert check(store, verifier, "alice", GENUINE, policy=POLICY, now=1.0).outcome == "accepted"
    assert check(store, verifier, "alice", IMPOSTOR, policy=POLICY, now=2.0).outcome == "rejected"
    assert check(store, verifier, "alice", BORDERLINE, policy=POLICY, now=3.0).outcome == "retry"


def test_failures_lock_out_even_the_genuine_sample(store) -> None:
    verifier = vector_verifier()
    for second in range(3):
        assert check(store, verifier, "alice", IMPOSTOR, policy=POLICY, now=100.0 + second).outcome == "rejected"
    with pytest.raises(LockedOutError, match=r"'alice' \(face\) is locked out .* try again in 10 minute") as caught:
        check(store, verifier, "alice", GENUINE, policy=POLICY, now=110.0)
    assert caught.value.until == pytest.approx(102.0 + 600.0)
    assert attempts(store)[-4:] == [("alice", "rejected")] * 3 + [("alice", "locked")]


def test_the_lockout_holds_across_store_connections_and_ends(store, tmp_path: Path) -> None:
    verifier = vector_verifier()
    for second in range(3):
        check(store, verifier, "alice", IMPOSTOR, policy=POLICY, now=100.0 + second)
    with TemplateStore(store.path) as other_process:
        with pytest.raises(LockedOutError):
            check(other_process, verifier, "alice", GENUINE, policy=POLICY, now=700.0)
        assert check(other_process, verifier, "alice", GENUINE, policy=POLICY, now=703.0).accepted
        # failures before the lockout ended do not count again
        assert check(other_process, verifier, "alice", IMPOSTOR, policy=POLICY, now=704.0).outcome == "rejected"


def test_retry_counts_as_a_failure_and_unreadable_samples_do_not(store) -> None:
    verifier = vector_verifier()
    for second in range(5):
        with pytest.raises(NoFaceError):
            check(store, verifier, "alice", "no face", policy=POLICY, now=100.0 + second)
    check(store, verifier, "alice", BORDERLINE, policy=POLICY, now=110.0)
    check(store, verifier, "alice", BORDERLINE, policy=POLICY, now=111.0)
    assert check(store, verifier, "alice", IMPOSTOR, policy=POLICY, now=112.0).outcome == "rejected"
    with pytest.raises(LockedOutError):
        check(store, verifier, "alice", GENUINE, policy=POLICY, now=113.0)
    decisions = [decision for _, decision in attempts(store)]
    assert decisions == ["error"] * 5 + ["retry", "retry", "rejected", "locked"]


def test_failures_outside_the_window_or_before_a_success_do_not_count(store) -> None:
    verifier = vector_verifier()
    for now in (0.0, 50.0, 61.0, 112.0):  # never three within 60 s
        check(store, verifier, "alice", IMPOSTOR, policy=POLICY, now=now)
    assert check(store, verifier, "alice", GENUINE, policy=POLICY, now=113.0).accepted
    check(store, verifier, "alice", IMPOSTOR, policy=POLICY, now=114.0)
    check(store, verifier, "alice", IMPOSTOR, policy=POLICY, now=115.0)
    assert check(store, verifier, "alice", GENUINE, policy=POLICY, now=116.0).accepted


def test_lockouts_are_per_identity_and_modality(store) -> None:
    enroll(store, vector_verifier(), "bob", IMPOSTOR)
    enroll(store, vector_verifier("voice"), "alice", GENUINE)
    for second in range(3):
        check(store, vector_verifier(), "alice", IMPOSTOR, policy=POLICY, now=100.0 + second)
    assert check(store, vector_verifier(), "bob", IMPOSTOR, policy=POLICY, now=105.0).accepted
    assert check(store, vector_verifier("voice"), "alice", GENUINE, policy=POLICY, now=105.0).accepted


def test_a_batch_is_cut_off_once_the_identity_locks(store) -> None:
    results = check_many(store, vector_verifier(), "alice", [IMPOSTOR] * 5 + [GENUINE], policy=POLICY, now=100.0)
    assert [r.outcome for r in results[:3]] == ["rejected"] * 3
    assert all(isinstance(r, LockedOutError) for r in results[3:])  # the genuine one too: no score leaks
    with pytest.raises(LockedOutError):
        check_many(store, vector_verifier(), "alice", [GENUINE], policy=POLICY, now=101.0)


def test_disabled_policy_never_locks_but_still_logs(store) -> None:
    for second in range(10):
        check(store, vector_verifier(), "alice", IMPOSTOR, policy=NO_LOCKOUT, now=100.0 + second)
    assert check(store, vector_verifier(), "alice", GENUINE, policy=NO_LOCKOUT, now=120.0).accepted
    assert len(attempts(store)) == 11


def test_clear_lockout_lets_checks_through_and_restarts_the_count(store) -> None:
    for second in range(3):
        check(store, vector_verifier(), "alice", IMPOSTOR, policy=POLICY, now=100.0 + second)
    assert clear_lockout(store, "alice", "face", now=110.0)
    assert not clear_lockout(store, "alice", "face", now=111.0)
    assert check(store, vector_verifier(), "alice", IMPOSTOR, policy=POLICY, now=112.0).outcome == "rejected"
    assert check(store, vector_verifier(), "alice", GENUINE, policy=POLICY, now=113.0).accepted
    with pytest.raises(InvalidIdentityError):
        clear_lockout(store, "", "face")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_failures": -1}, "max_failures must be an integer >= 0, got -1"),
        ({"max_failures": 2.5}, "max_failures must be an integer"),
        ({"window_seconds": 0}, "window_seconds must be a positive number of seconds, got 0"),
        ({"lockout_seconds": float("nan")}, "lockout_seconds must be a positive"),
        ({"lockout_seconds": True}, "lockout_seconds must be a positive"),
    ],
)
def test_policy_validation(arguments, message) -> None:
    with pytest.raises(ConfigError, match=message):
        LockoutPolicy(**arguments)


# --- audit log --------------------------------------------------------------------------------
def test_audit_rows_hold_the_decision_and_score_but_never_the_sample(store) -> None:
    check(store, vector_verifier(), "alice", IMPOSTOR, policy=POLICY, now=100.0)
    with pytest.raises(NoFaceError):
        check(store, vector_verifier(), "alice", "no face", policy=POLICY, now=101.0)
    newest, oldest = recent_attempts(store)
    assert oldest == Attempt(100.0, "alice", "face", "rejected", 0.0, "score below threshold")
    assert newest == Attempt(101.0, "alice", "face", "error", None, "NoFaceError")
    assert newest.as_dict()["decision"] == "error"
    with store.transaction() as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(attempts)")]
    assert columns == ["id", "time", "identity", "modality", "decision", "score", "detail", "action", "caller"]


def test_recent_attempts_filters_and_limits(store) -> None:
    enroll(store, vector_verifier(), "bob", IMPOSTOR)
    for second in range(4):
        check(store, vector_verifier(), "alice" if second % 2 else "bob", GENUINE, policy=NO_LOCKOUT, now=float(second))
    assert [a.time for a in recent_attempts(store, 2)] == [3.0, 2.0]
    assert [a.time for a in recent_attempts(store, identity="bob")] == [2.0, 0.0]
    with pytest.raises(ConfigError, match="positive integer, got 0"):
        recent_attempts(store, 0)
    with pytest.raises(ConfigError, match="unknown attempt decision 'maybe'"):
        with store.transaction(write=True) as connection:
            record_attempt(connection, Attempt(1.0, "alice", "face", "maybe", None, ""))


# --- lookalike warning ------------------------------------------------------------------------
def test_enrolling_a_lookalike_of_another_identity_warns_but_stores(store) -> None:
    near = direction(0, lean=0.3)  # cosine 0.96 with alice
    assert enroll(store, vector_verifier(), "alice", near).warnings == ()  # own template
    result = enroll(store, vector_verifier(), "mallory", near)
    assert len(result.warnings) == 1
    assert re.match(r"'mallory' looks like the already enrolled 'alice' \(face: it would be accepted at the high"
                    r" security level\)", result.warnings[0])
    assert store.get("mallory", "face").sample_count == 1
    assert enroll(store, vector_verifier(), "carol", IMPOSTOR).warnings == ()
    assert enroll(store, vector_verifier("voice"), "dave", GENUINE).warnings == ()


def test_the_lookalike_check_uses_the_verifiers_scorer_at_the_high_level(store) -> None:
    below_high = direction(0, lean=1.0)  # cosine 0.71 with alice: medium (0.6) would accept, high (0.8) not
    assert enroll(store, vector_verifier(level="low"), "twin", below_high).warnings == ()
    np.testing.assert_allclose(store.get("twin", "face").embedding, below_high)
