"""The app applies the same rules as the command line: the store key, audited and throttled 1:N."""

from __future__ import annotations

import json

import cv2
import pytest

import app
from enrollment.crypto import generate_key
from enrollment.service import Service
from verify_app import handlers
from verify_cli.main import main as cli

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from serving import free_port  # noqa: E402


def test_an_app_started_with_a_key_seals_what_the_cli_then_checks(tmp_path, monkeypatch, capsys, face_files):
    store = tmp_path / "sealed.db"
    monkeypatch.setenv("VERIFY_STORE_KEY", generate_key())
    service = app.open_service(app.build_parser().parse_args(["--store", str(store), "--device", "cpu"]))
    try:
        assert service.store.encrypted
        handlers.enroll_samples(service, "Andy", face=str(face_files[0]))
    finally:
        service.close()

    assert cli(["--store", str(store), "--device", "cpu", "check", "Andy", "--face", str(face_files[1])]) == 0
    assert capsys.readouterr().out.startswith("accepted")
    monkeypatch.delenv("VERIFY_STORE_KEY")
    assert cli(["--store", str(store), "--device", "cpu", "check", "Andy", "--face", str(face_files[1])]) == 2
    assert "$VERIFY_STORE_KEY" in capsys.readouterr().err


def test_the_app_sends_gradio_no_usage_reports(tmp_path):
    service = Service(tmp_path / "store.db")
    try:
        assert app.build_app(service).analytics_enabled is False  # on by default in Gradio
    finally:
        service.close()


def test_a_wrong_key_stops_the_app_before_it_serves(tmp_path, monkeypatch, capsys):
    store = tmp_path / "sealed.db"
    Service(store, key=generate_key()).close()
    monkeypatch.setenv("VERIFY_STORE_KEY", generate_key())
    monkeypatch.setattr(app, "build_app", lambda *a, **k: pytest.fail("must not build the app"))
    assert app.main(["--store", str(store)]) == 2
    assert "not the key of enrollment store" in capsys.readouterr().err


def test_who_is_this_in_the_app_is_audited_and_throttled(tmp_path, capsys, face_pipeline, voice_pipeline, face_files):
    store = tmp_path / "enrollments.db"
    service = Service(store, device="cpu", identify_limit=3, pipelines={"face": face_pipeline, "voice": voice_pipeline})
    demo = app.build_app(service)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        client.predict("Angela", handle_file(str(face_files[3])), None, False, api_name="/enroll")
        mirrored = tmp_path / "mirrored.png"  # each photo once: the same file twice would be a replay
        cv2.imwrite(str(mirrored), cv2.imread(str(face_files[4]))[:, ::-1])
        for photo in (face_files[4], face_files[5], mirrored):
            _, found = client.predict(handlers.WHO_IS_THIS, handle_file(str(photo)), None, "medium",
                                      api_name="/verify")
            assert found["identity"] == "Angela"
        with pytest.raises(Exception, match="too many identifications from this client"):
            client.predict(handlers.WHO_IS_THIS, handle_file(str(face_files[4])), None, "medium", api_name="/verify")
    finally:
        demo.close()
        service.close()

    capsys.readouterr()  # what the server printed
    assert cli(["--store", str(store), "audit", "--json"]) == 0
    attempts = [a for a in json.loads(capsys.readouterr().out) if a["action"] == "identify"]
    assert [a["decision"] for a in attempts] == ["throttled", "accepted", "accepted", "accepted"]
    assert {a["caller"] for a in attempts} == {"app:127.0.0.1"}
    assert attempts[1]["identity"] == "Angela"
