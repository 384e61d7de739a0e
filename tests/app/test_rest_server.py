"""The whole server on loopback: REST API and web app in one uvicorn, micro-batched, many clients at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving import served

from enrollment.service import Service
from verify.batching import BatchingPipeline, sample_decoder
from verify_app.rest import ApiConfig

CLIENTS = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory, face_pipeline, voice_pipeline):
    """``(base url, service, batched pipelines, admin and verify headers)`` of a running server."""
    pipelines = {p.modality: BatchingPipeline(p, prepare=sample_decoder(p)) for p in (face_pipeline, voice_pipeline)}
    service = Service(tmp_path_factory.mktemp("server") / "people.db", device="cpu", max_failures=0,
                      pipelines=pipelines)
    headers = {scope: {"Authorization": f"Bearer {service.tokens.create(scope, scope).secret}"}
               for scope in ("admin", "verify")}
    try:
        with served(service, ApiConfig(max_body_bytes=256 * 1024)) as url:
            yield url, service, pipelines, headers
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
        service.close()


@pytest.fixture(scope="module")
def enrolled(server, face_files, voice_files):
    url, _, _, headers = server
    answer = httpx.post(f"{url}/api/v1/enroll", data={"name": "Andy"}, headers=headers["admin"],
                        files={"face": face_files[0].read_bytes(), "voice": voice_files[0].read_bytes()})
    assert answer.status_code == 200, answer.text
    return server


def test_identical_probes_from_many_clients_at_once(enrolled, face_files):
    url, service, pipelines, headers = enrolled
    expected = service.check("Andy", face=face_files[3])  # another person's: an accepted probe sent again is a replay
    probe = face_files[3].read_bytes()

    def client(_: int) -> list[tuple[int, str, float]]:
        with httpx.Client(headers=headers["verify"], timeout=60) as http:
            answers = [http.post(f"{url}/api/v1/verify", data={"name": "Andy"}, files={"face": probe}) for _ in range(3)]
        return [(a.status_code, a.json()["outcome"], a.json()["score"]) for a in answers]

    pipelines["face"].batch_sizes.clear()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [answer for answers in pool.map(client, range(CLIENTS)) for answer in answers]
    assert answers == [(200, expected.outcome, pytest.approx(expected.score, abs=1e-5))] * CLIENTS * 3
    assert max(pipelines["face"].batch_sizes) > 1  # requests shared forward passes


def test_mixed_probes_at_once_each_get_their_own_decision(enrolled, face_files, voice_files):
    url, service, _, headers = enrolled
    # other people's samples: an accepted probe sent twice would be refused the second time as a replay
    probes = [("face", path) for path in face_files[3:]] + [("voice", path) for path in voice_files[3:]]
    expected = [service.check("Andy", **{modality: path}) for modality, path in probes]

    def send(item):
        modality, path = item
        return httpx.post(f"{url}/api/v1/verify?name=Andy&modality={modality}", content=path.read_bytes(),
                          headers=headers["verify"], timeout=60).json()

    with ThreadPoolExecutor(len(probes)) as pool:
        answers = list(pool.map(send, probes * 2))
    assert [(a["outcome"], round(a["score"], 4)) for a in answers] == [
        (e.outcome, round(e.score, 4)) for e in expected] * 2


def test_status_codes_over_http(enrolled, face_files):
    url, _, _, headers = enrolled
    assert httpx.get(f"{url}/api/v1/health").json()["status"] == "ok"
    assert httpx.get(f"{url}/api/v1/info").status_code == 401
    assert httpx.post(f"{url}/api/v1/enroll", data={"name": "X"}, files={"face": face_files[3].read_bytes()},
                      headers=headers["verify"]).status_code == 403
    assert httpx.post(f"{url}/api/v1/verify", data={"name": "Nobody"}, files={"face": face_files[3].read_bytes()},
                      headers=headers["verify"]).status_code == 404
    too_large = httpx.post(f"{url}/api/v1/verify?name=Andy", content=b"\0" * (300 * 1024),
                           headers={**headers["verify"], "Content-Type": "image/jpeg"})
    assert too_large.status_code == 413 and too_large.json()["error"] == "InputTooLargeError"
    assert httpx.get(f"{url}/api/v1/docs").status_code == 200


def test_the_web_app_is_served_beside_the_api(enrolled, face_files):
    from gradio_client import Client, handle_file

    url, _, _, _ = enrolled
    page = httpx.get(f"{url}/").text
    assert "<html" in page
    assert "autoGainControl: false" in page  # the microphone as recorded (verify_app.ui.PAGE_HEAD)
    _, details = Client(f"{url}/", verbose=False).predict("Andy", handle_file(str(face_files[2])), None, "medium",
                                                          api_name="/verify")
    assert details["outcome"] == "accepted" and details["modalities"]["face"]["score"] > 0


def test_a_voice_enrolled_through_the_server_keeps_its_telephone_band_copy(enrolled):
    _, service, _, _ = enrolled
    (voice,) = [template for template in service.store.find("Andy") if template.modality == "voice"]
    assert voice.narrowband is not None and voice.narrowband_stats is not None
