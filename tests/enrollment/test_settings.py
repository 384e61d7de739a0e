"""Settings: arguments, then environment, then defaults, the same way for every front end."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrollment.crypto import generate_key, parse_key
from enrollment.errors import StoreKeyError
from enrollment.ratelimit import DEFAULT_POLICY, DEFAULT_THROTTLE
from enrollment.settings import Settings, user_caller
from verify.errors import ConfigError


def test_defaults_without_arguments_or_environment(tmp_path):
    settings = Settings.resolve(environ={"XDG_DATA_HOME": str(tmp_path)})
    assert settings.store_path == tmp_path / "verify" / "enrollments.db"
    assert (settings.key, settings.device, settings.level, settings.adapt) == (None, "auto", "medium", False)
    assert (settings.lockout, settings.throttle) == (DEFAULT_POLICY, DEFAULT_THROTTLE)
    assert settings.caller == user_caller("python")


def test_environment_overrides_defaults_and_arguments_override_both(tmp_path):
    key = generate_key()
    environ = {"VERIFY_STORE": str(tmp_path / "env.db"), "VERIFY_STORE_KEY": key, "VERIFY_LEVEL": "high",
               "VERIFY_DEVICE": "cpu", "VERIFY_MAX_FAILURES": "3", "VERIFY_LOCKOUT_SECONDS": "60",
               "VERIFY_IDENTIFY_LIMIT": "7", "VERIFY_ADAPT": "yes"}
    from_env = Settings.resolve(environ=environ)
    assert from_env.store_path == tmp_path / "env.db" and from_env.key == parse_key(key, "test")
    assert (from_env.level, from_env.device, from_env.adapt) == ("high", "cpu", True)
    assert (from_env.lockout.max_failures, from_env.lockout.lockout_seconds, from_env.throttle.max_attempts) == (3, 60, 7)
    given = Settings.resolve(store=tmp_path / "arg.db", level="low", max_failures=0, adapt=False, caller="me",
                             environ=environ)
    assert (given.store_path, given.level, given.lockout.max_failures, given.adapt, given.caller) == (
        tmp_path / "arg.db", "low", 0, False, "me")


def test_a_key_file_wins_over_the_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(generate_key())
    settings = Settings.resolve(key_file=key_file, environ={"VERIFY_STORE_KEY": generate_key()})
    assert settings.key == parse_key(key_file.read_text(), "test")
    raw = bytes(range(32))
    assert Settings.resolve(key=raw, environ={}).key == raw


@pytest.mark.parametrize(
    ("environ", "error", "match"),
    [
        ({"VERIFY_MAX_FAILURES": "many"}, ConfigError, r"\$VERIFY_MAX_FAILURES has an invalid value 'many'"),
        ({"VERIFY_ADAPT": "maybe"}, ConfigError, r"\$VERIFY_ADAPT has an invalid value"),
        ({"VERIFY_LEVEL": "paranoid"}, ConfigError, "unknown security level 'paranoid'"),
        ({"VERIFY_IDENTIFY_WINDOW": "-1"}, ConfigError, "window_seconds must be a positive number"),
        ({"VERIFY_STORE_KEY": "not base64!"}, StoreKeyError, r"\$VERIFY_STORE_KEY is not valid base64"),
    ],
)
def test_invalid_environment_is_a_clear_error(environ, error, match):
    with pytest.raises(error, match=match):
        Settings.resolve(environ=environ)


def test_settings_are_frozen_and_hide_the_key():
    settings = Settings(Path("x.db"), key=bytes(32))
    with pytest.raises(AttributeError):
        settings.level = "low"  # type: ignore[misc]
    assert "key" not in repr(settings)


def test_one_lane_unless_a_job_asks_for_more(tmp_path, monkeypatch):
    assert Settings.resolve(environ={"XDG_DATA_HOME": str(tmp_path)}).lanes == 1
    assert Settings.resolve(store=tmp_path / "x.db", lanes=None, environ={}).lanes is None
    with pytest.raises(ConfigError, match="lanes must be at least 1"):
        Settings(Path("x.db"), lanes=0)
    from enrollment.service import Service

    loaded = []
    monkeypatch.setattr("enrollment.service.load_lanes", lambda *arguments: loaded.append(arguments) or object())
    with Service(store=tmp_path / "x.db", device="cpu", lanes=None) as service:
        service.pipeline("face")
    assert loaded == [("face", "cpu", None)]
