"""One table maps every typed error to its HTTP status; server faults keep their message to the log."""

from __future__ import annotations

import json
import time

import pytest

from enrollment.errors import (
    InvalidIdentityError,
    InvalidTokenError,
    LockedOutError,
    StoreCorruptError,
    ThrottledError,
    TokenError,
    TokenScopeError,
    UnknownIdentityError,
)
from enrollment.service import MissingSampleError
from verify.errors import (
    BusyError,
    ConfigError,
    DecodeError,
    InputTooLargeError,
    ModelMismatchError,
    NoFaceError,
    WeightsError,
)
from verify_app.api_errors import error_response, status_of


@pytest.mark.parametrize(("error", "status"), [
    (NoFaceError("no face"), 400), (DecodeError("corrupt"), 400), (ConfigError("level"), 400),
    (MissingSampleError("none"), 400), (InvalidIdentityError("name"), 400), (TokenError("taken"), 400),
    (InvalidTokenError("no token"), 401), (TokenScopeError("verify only"), 403),
    (UnknownIdentityError("nobody"), 404), (ModelMismatchError("old model"), 409),
    (InputTooLargeError("big"), 413), (LockedOutError("locked", time.time() + 60), 423),
    (ThrottledError("slow down", 7.2), 429), (BusyError("busy"), 503),
    (StoreCorruptError("/secret/path broken"), 500), (WeightsError("missing"), 500), (RuntimeError("bug"), 500),
])
def test_status_of_each_error(error, status):
    assert status_of(error) == status


def test_answers_name_the_error_and_say_when_to_retry():
    locked = error_response(LockedOutError("locked", time.time() + 61))
    assert json.loads(locked.body) == {"error": "LockedOutError", "message": "locked"}
    assert locked.headers["Retry-After"] in ("61", "62")
    assert error_response(ThrottledError("slow down", 7.2)).headers["Retry-After"] == "8"
    assert error_response(InvalidTokenError("no token")).headers["WWW-Authenticate"] == "Bearer"


def test_server_faults_do_not_leak_their_message(caplog):
    answer = error_response(StoreCorruptError("/secret/path is corrupt"))
    assert answer.status_code == 500 and b"/secret/path" not in answer.body
    assert "/secret/path is corrupt" in caplog.text
