"""app.py's command line and build_app's promises: lazy models, shared services, safe defaults."""

from __future__ import annotations

import pytest

import app
from enrollment.service import Service
from verify_app.live_tab import FrameGate
from verify_app.rest import ApiConfig
from verify_app.server import build_server


def test_parse_auth():
    assert app.parse_auth("ann:s3cret:x") == ("ann", "s3cret:x")
    assert app.parse_auth(None) is None and app.parse_auth("") is None
    for bad in ("ann", ":pw", "ann:"):
        with pytest.raises(ValueError, match="USER:PASS"):
            app.parse_auth(bad)


def test_defaults_bind_locally_and_read_auth_from_the_environment(monkeypatch):
    monkeypatch.setenv("VERIFY_APP_AUTH", "ann:pw")
    args = app.build_parser().parse_args([])
    assert (args.host, args.port, args.share, args.auth) == ("127.0.0.1", 7860, "never", "ann:pw")
    assert (args.store, args.key_file, args.device, args.level) == (None, None, None, None)  # $VERIFY_*, then defaults


def test_the_fusion_rule_comes_from_the_option_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VERIFY_FUSION", "sum")
    store = ["--store", str(tmp_path / "people.db")]
    with app.open_service(app.build_parser().parse_args(store)) as service:
        assert service.settings.fusion == "sum"
    with app.open_service(app.build_parser().parse_args([*store, "--fusion", "and"])) as service:
        assert service.settings.fusion == "and"
    monkeypatch.delenv("VERIFY_FUSION")
    with app.open_service(app.build_parser().parse_args(store)) as service:
        assert service.settings.fusion == "and"


def test_public_share_without_login_is_refused(monkeypatch, capsys):
    monkeypatch.delenv("VERIFY_APP_AUTH", raising=False)
    monkeypatch.setattr(app, "build_app", lambda *a, **k: pytest.fail("must not build the app"))
    assert app.main(["--share", "public"]) == 2
    assert "needs --auth" in capsys.readouterr().err
    assert app.main(["--auth", "nopassword"]) == 2


def test_an_api_without_tokens_is_served_on_localhost_only(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(app, "serving_pipelines", lambda *a, **k: pytest.fail("must not load models"))
    assert app.main(["--no-api-auth", "--host", "0.0.0.0", "--store", str(tmp_path / "s.db")]) == 2
    assert "--no-api-auth is only allowed with --host 127.0.0.1 or localhost" in capsys.readouterr().err
    with pytest.raises(ValueError, match="only allowed with a localhost address"):
        build_server(Service(tmp_path / "s.db", device="cpu"), ApiConfig(require_token=False), host="192.168.1.2")


def test_lanes_need_batching_and_at_least_one_copy(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(app, "_serve", lambda *a, **k: pytest.fail("must not serve"))
    store = ["--store", str(tmp_path / "s.db")]
    assert app.main(["--no-batching", "--lanes", "2", *store]) == 2
    assert "--lanes applies to micro-batching" in capsys.readouterr().err
    assert app.main(["--lanes", "0", *store]) == 2
    assert "lanes must be at least 1" in capsys.readouterr().err


def test_build_app_loads_no_model_and_names_its_api(tmp_path):
    demo = app.build_app(Service(tmp_path / "store.db", device="cpu"))
    assert demo.service.loaded() == ()
    api_names = {dep.api_name for dep in demo.fns.values() if dep.api_name and dep.api_visibility == "public"}
    assert {"enroll", "verify", "live_frame", "live_audio", "live_feed", "gallery", "delete", "reenroll", "batch",
            "settings"} <= api_names


def test_a_busy_session_drops_frames():
    gate = FrameGate()
    assert gate.try_begin("session") and not gate.try_begin("session")
    assert gate.try_begin("other session")
    gate.end("session")
    assert gate.try_begin("session")
