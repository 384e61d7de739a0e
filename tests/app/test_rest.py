"""The REST API through FastAPI's test client: every status code, token scopes, the CLI's rules."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from enrollment.service import Service
from verify_app.rest import ApiConfig, build_api
from verify_cli.main import main as cli


@pytest.fixture
def service(tmp_path, face_pipeline, voice_pipeline):
    with Service(tmp_path / "people.db", device="cpu", max_failures=2, identify_limit=2,
                 pipelines={"face": face_pipeline, "voice": voice_pipeline}) as opened:
        yield opened


@pytest.fixture
def tokens(service) -> dict[str, dict[str, str]]:
    """Authorization headers of an admin and a verify-only token."""
    return {scope: {"Authorization": f"Bearer {service.tokens.create(f'{scope}-token', scope).secret}"}
            for scope in ("admin", "verify")}


@pytest.fixture
def api(service) -> TestClient:
    return TestClient(build_api(service, ApiConfig(max_body_bytes=2 * 2**20)))


def enroll(api, tokens, face, name="Andy", voice=None):
    files = {"face": face.read_bytes()}
    if voice is not None:
        files["voice"] = voice.read_bytes()
    return api.post("/api/v1/enroll", data={"name": name}, files=files, headers=tokens["admin"])


def verify(api, tokens, face, name="Andy", **fields):
    return api.post("/api/v1/verify", data={"name": name, **fields}, files={"face": face.read_bytes()},
                    headers=tokens["verify"])


def test_enroll_verify_identify_list_delete(api, tokens, face_files, voice_files):
    enrolled = enroll(api, tokens, face_files[0], voice=voice_files[0])
    assert enrolled.status_code == 200
    assert enrolled.json()["enrolled"]["face"]["samples"] == 1 and set(enrolled.json()["enrolled"]) == {"face", "voice"}
    genuine = verify(api, tokens, face_files[1]).json()
    assert genuine["outcome"] == "accepted" and genuine["level"] == "medium"
    assert genuine["score"] >= genuine["threshold"] == genuine["modalities"]["face"]["threshold"]
    impostor = verify(api, tokens, face_files[3], level="high").json()
    assert (impostor["outcome"], impostor["level"]) == ("rejected", "high")
    found = api.post("/api/v1/identify", files={"face": face_files[2].read_bytes()}, headers=tokens["verify"]).json()
    assert found["identity"] == "Andy" and found["modalities"]["face"]["candidates"][0]["identity"] == "Andy"
    listed = api.get("/api/v1/identities", headers=tokens["admin"]).json()["identities"]
    assert [(i["identity"], sorted(i["modalities"])) for i in listed] == [("Andy", ["face", "voice"])]
    assert api.delete("/api/v1/identities/Andy?modality=voice", headers=tokens["admin"]).json()["deleted"] == 1
    assert api.delete("/api/v1/identities/Andy", headers=tokens["admin"]).json() == {"identity": "Andy", "deleted": 1}
    assert api.get("/api/v1/identities", headers=tokens["admin"]).json() == {"identities": []}


def test_a_raw_body_is_a_sample_too(api, tokens, face_files, voice_files):
    enroll(api, tokens, face_files[0], voice=voice_files[0])
    face = api.post("/api/v1/verify?name=Andy", content=face_files[1].read_bytes(),
                    headers={**tokens["verify"], "Content-Type": "image/jpeg"})
    assert face.status_code == 200 and list(face.json()["modalities"]) == ["face"]
    voice = api.post("/api/v1/verify?name=Andy&modality=voice", content=voice_files[1].read_bytes(),
                     headers={**tokens["verify"], "Content-Type": "application/octet-stream"})
    assert voice.status_code == 200 and voice.json()["outcome"] == "accepted"
    assert list(voice.json()["modalities"]) == ["voice"]


def test_tokens_and_scopes(api, tokens, service, face_files):
    no_token = api.post("/api/v1/verify", data={"name": "Andy"}, files={"face": face_files[1].read_bytes()})
    assert no_token.status_code == 401 and no_token.headers["WWW-Authenticate"] == "Bearer"
    assert no_token.json()["error"] == "InvalidTokenError"
    wrong = {"Authorization": "Bearer vfy_0123456789abcdef_not-the-secret"}
    assert api.get("/api/v1/info", headers=wrong).status_code == 401
    assert api.get("/api/v1/info", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401
    for method, path in (("post", "/api/v1/enroll"), ("get", "/api/v1/identities"), ("delete", "/api/v1/identities/Andy")):
        answer = getattr(api, method)(path, headers=tokens["verify"])
        assert answer.status_code == 403 and answer.json()["error"] == "TokenScopeError", path
    assert enroll(api, tokens, face_files[0]).status_code == 200
    assert api.get("/api/v1/info", headers=tokens["admin"]).status_code == 200  # admin includes verify
    service.tokens.revoke("verify-token")
    revoked = verify(api, tokens, face_files[1])
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]
    assert api.get("/api/v1/health").json()["status"] == "ok"  # no token needed


@pytest.mark.parametrize(("send", "status", "error"), [
    (lambda api, t, f: verify(api, t, f["blank"]), 400, "NoFaceError"),
    (lambda api, t, f: verify(api, t, f["corrupt"]), 400, "DecodeError"),
    (lambda api, t, f: verify(api, t, f["face"], level="paranoid"), 400, "ConfigError"),
    (lambda api, t, f: api.post("/api/v1/verify", files={"face": b"x"}, headers=t["verify"]), 400, "FieldError"),
    (lambda api, t, f: verify(api, t, f["face"], levle="high"), 400, "FieldError"),
    (lambda api, t, f: api.post("/api/v1/verify", data={"name": "Andy"}, headers=t["verify"]), 400, "MissingSampleError"),
    (lambda api, t, f: api.post("/api/v1/verify?name=Andy", content=b"abc", headers=t["verify"]), 400, "FieldError"),
    (lambda api, t, f: api.post("/api/v1/verify", data={"name": "Andy", "face": "text"}, headers=t["verify"]), 400,
     "FieldError"),
    (lambda api, t, f: verify(api, t, f["face"], name="Nobody"), 404, "UnknownIdentityError"),
    (lambda api, t, f: api.delete("/api/v1/identities/Nobody", headers=t["admin"]), 404, "UnknownIdentityError"),
    (lambda api, t, f: api.get("/api/v1/nothing", headers=t["admin"]), 404, "NotFound"),
    (lambda api, t, f: api.post("/api/v1/verify", data={"name": "Andy"}, files={"face": b"\0" * (3 * 2**20)},
                                headers=t["verify"]), 413, "InputTooLargeError"),
])
def test_error_statuses(api, tokens, face_files, blank_photo, corrupt_file, send, status, error):
    enroll(api, tokens, face_files[0])
    answer = send(api, tokens, {"face": face_files[1], "blank": blank_photo, "corrupt": corrupt_file})
    assert (answer.status_code, answer.json()["error"]) == (status, error), answer.json()
    assert answer.json()["message"]


def test_a_body_over_the_limit_is_refused_as_it_streams(api, tokens):
    def chunks():  # no Content-Length: the limit applies to the bytes received
        for _ in range(40):
            yield b"\0" * 2**16

    answer = api.post("/api/v1/verify?name=Andy", content=chunks(), headers={**tokens["verify"], "Content-Type": "image/jpeg"})
    assert answer.status_code == 413 and "over the limit of 2 MiB" in answer.json()["message"]


def test_lockout_and_audit_as_the_cli(api, tokens, face_files, service, capsys):
    enroll(api, tokens, face_files[0])
    assert [verify(api, tokens, face_files[3]).json()["outcome"] for _ in range(2)] == ["rejected", "rejected"]
    locked = verify(api, tokens, face_files[1])
    assert locked.status_code == 423 and locked.json()["error"] == "LockedOutError"
    assert 800 <= int(locked.headers["Retry-After"]) <= 900
    assert cli(["--store", str(service.settings.store_path), "audit", "--json"]) == 0
    attempts = json.loads(capsys.readouterr().out)
    assert [(a["decision"], a["caller"]) for a in attempts] == [("locked", "api:token:verify-token")] + [
        ("rejected", "api:token:verify-token")] * 2
    assert cli(["--store", str(service.settings.store_path), "check", "Andy", "--face", str(face_files[1])]) == 2
    assert "locked out" in capsys.readouterr().err  # the same lockout for the command line


def test_identify_is_throttled_per_token(api, tokens, face_files, service):
    enroll(api, tokens, face_files[0])
    other = {"Authorization": f"Bearer {service.tokens.create('kiosk', 'verify').secret}"}
    for _ in range(2):
        assert api.post("/api/v1/identify", files={"face": face_files[1].read_bytes()}, headers=tokens["verify"]).status_code == 200
    throttled = api.post("/api/v1/identify", files={"face": face_files[1].read_bytes()}, headers=tokens["verify"])
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert api.post("/api/v1/identify", files={"face": face_files[1].read_bytes()}, headers=other).status_code == 200


def test_decisions_are_the_cli_s_for_the_same_files(api, tokens, face_files, voice_files, tmp_path, capsys):
    store = str(tmp_path / "cli.db")  # its own store: a file checked twice in one store is a replay
    for modality, files in (("face", face_files), ("voice", voice_files)):
        assert cli(["--store", store, "enroll", "Andy", f"--{modality}", str(files[0])]) == 0
        assert api.post("/api/v1/enroll", data={"name": "Andy"}, files={modality: files[0].read_bytes()},
                        headers=tokens["admin"]).status_code == 200
    capsys.readouterr()
    for modality, files in (("face", face_files), ("voice", voice_files)):
        for path in (files[1], files[2], files[4]):
            code = cli(["--store", store, "--max-failures", "0", "check", "Andy", f"--{modality}", str(path)])
            printed = capsys.readouterr().out.split()
            answer = api.post("/api/v1/verify", data={"name": "Andy"}, files={modality: path.read_bytes()},
                              headers=tokens["verify"]).json()
            assert (answer["outcome"], f"{answer['score']:.3f}") == (printed[0], printed[2]), path
            assert code == (0 if answer["outcome"] == "accepted" else 1)


def test_openapi_describes_every_endpoint(api):
    schema = api.get("/api/v1/openapi.json").json()
    assert set(schema["paths"]) == {"/api/v1/enroll", "/api/v1/verify", "/api/v1/identify", "/api/v1/identities",
                                    "/api/v1/identities/{name}", "/api/v1/info", "/api/v1/health"}
    body = schema["paths"]["/api/v1/verify"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*", "audio/*"} <= set(body)
    assert "423" in schema["paths"]["/api/v1/verify"]["post"]["responses"]
    assert api.get("/api/v1/docs").status_code == 200


def test_info_names_models_thresholds_and_auth(api, tokens):
    info = api.get("/api/v1/info", headers=tokens["verify"]).json()
    assert info["auth"] == "token" and info["max_body_bytes"] == 2 * 2**20
    assert set(info["models"]) == {"face", "voice"}
    medium = info["models"]["face"]["thresholds"]["medium"]
    assert medium["target_far"] == 0.001 and medium["retry_threshold"] < medium["threshold"]


def test_without_tokens_the_caller_is_the_client_address(service, face_files, capsys):
    api = TestClient(build_api(service, ApiConfig(require_token=False)))
    assert api.post("/api/v1/enroll", data={"name": "Andy"}, files={"face": face_files[0].read_bytes()}).status_code == 200
    assert api.post("/api/v1/verify", data={"name": "Andy"}, files={"face": face_files[1].read_bytes()}).status_code == 200
    assert service.audit()[0].caller == "api:testclient"
