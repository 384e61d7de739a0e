"""Many gradio_client users verifying the same photo at once: every response arrives whole.

Identical probes give identical output images; Gradio once wrote each to one content-addressed
cache path, rewriting it while another request was still streaming it (h11 "Too little data for
declared Content-Length", a response cut short).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file
from serving import free_port

from app import build_app
from enrollment.service import Service

CLIENTS, CALLS = 8, 5


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, face_pipeline, voice_pipeline):
    store = tmp_path_factory.mktemp("app") / "enrollments.db"
    service = Service(store, device="cpu", max_failures=0, pipelines={"face": face_pipeline, "voice": voice_pipeline})
    demo = build_app(service)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()
        service.close()


def test_identical_probes_from_many_clients_all_answered(app_url, face_files):
    Client(app_url, verbose=False).predict("Andy", handle_file(str(face_files[0])), None, False, api_name="/enroll")

    def user(_: int) -> list[str]:
        client = Client(app_url, verbose=False)
        outcomes = []
        for _ in range(CALLS):
            try:
                result = client.predict("Andy", handle_file(str(face_files[3])), None, "medium", api_name="/verify")
                outcomes.append(result[-1]["outcome"])
            except Exception as error:  # noqa: BLE001 - every failure is what the test counts
                outcomes.append(f"{type(error).__name__}: {error}")
        return outcomes

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [outcome for outcomes in pool.map(user, range(CLIENTS)) for outcome in outcomes]
    assert outcomes == ["rejected"] * CLIENTS * CALLS  # another person's photo (an accepted one repeated is a replay)
