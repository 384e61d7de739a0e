"""The running app driven through its HTTP API with gradio_client: enroll, verify, identify."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from serving import free_port  # noqa: E402

from app import build_app  # noqa: E402
from enrollment.service import Service  # noqa: E402
from verify_app.handlers import WHO_IS_THIS  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory, face_pipeline, voice_pipeline):
    store = tmp_path_factory.mktemp("app") / "enrollments.db"
    demo = build_app(Service(store, device="cpu", pipelines={"face": face_pipeline, "voice": voice_pipeline}))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                max_file_size="50mb")
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()
        demo.service.close()


def test_enroll_then_verify_genuine_and_impostor(client, face_files, voice_files):
    message = client.predict("Andy", handle_file(str(face_files[0])), handle_file(str(voice_files[0])), False,
                             api_name="/enroll")
    assert "Enrolled</span> **Andy**" in message
    _, genuine = client.predict("Andy", handle_file(str(face_files[1])), handle_file(str(voice_files[1])),
                                   "medium", api_name="/verify")
    assert genuine["outcome"] == "accepted" and set(genuine["modalities"]) == {"face", "voice"}
    _, impostor = client.predict("Andy", handle_file(str(face_files[3])), None, "medium", api_name="/verify")
    assert impostor["outcome"] == "rejected"
    _, voice_impostor = client.predict("Andy", None, handle_file(str(voice_files[6])), "medium", api_name="/verify")
    assert voice_impostor["outcome"] == "rejected"


def test_a_phones_heic_photo_and_m4a_memo_verify_through_the_app(client, face_files, voice_files, tmp_path):
    """Gradio opens uploaded photos with Pillow before the app does: the app lets it read HEIC."""
    from tests.verify.test_containers import CONTAINERS, encode, resampled
    from verify.io import decode_audio

    container_format, codec, rate = CONTAINERS["m4a"]
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(encode(resampled(decode_audio(voice_files[1])[0], 16_000, rate), rate, container_format, codec))
    heic = face_files[0].parents[2] / "formats" / "Andy_Roddick_1.heic"
    client.predict("Phone", handle_file(str(face_files[0])), handle_file(str(voice_files[0])), False, api_name="/enroll")

    _, answer = client.predict("Phone", handle_file(str(heic)), handle_file(str(memo)), "medium", api_name="/verify")

    assert answer["outcome"] == "accepted" and set(answer["modalities"]) == {"face", "voice"}


def test_answers_carry_no_files(client):
    """The API returns text and JSON only: the aligned face and the trimmed speech are for the page."""
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [r["component"] for r in endpoints["/enroll"]["returns"]] == ["Markdown"]
    assert [r["component"] for r in endpoints["/verify"]["returns"]] == ["Markdown", "Json"]


def test_who_is_this_and_errors_over_the_api(client, face_files):
    client.predict("Angela", handle_file(str(face_files[3])), None, False, api_name="/enroll")
    _, found = client.predict(WHO_IS_THIS, handle_file(str(face_files[4])), None, "medium", api_name="/verify")
    assert found["identity"] == "Angela"
    with pytest.raises(Exception, match="give a face photo, a voice clip, or both"):
        client.predict("Angela", None, None, False, api_name="/enroll")
    table = client.predict(api_name="/gallery")
    assert {row[0] for row in table["data"]} >= {"Angela"}


def test_kiosks_feed_frames_over_http_and_a_still_photo_is_never_accepted(client, face_files, tmp_path):
    client.predict("Andy", handle_file(str(face_files[0])), None, False, api_name="/enroll")
    photo = tmp_path / "frame.png"  # a frontal photo of Andy in a webcam-sized frame
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[90:390, 170:470] = cv2.resize(cv2.imread(str(face_files[2])), (300, 300))
    cv2.imwrite(str(photo), frame)
    answers = []
    for _ in range(8):
        answers.append(client.predict(handle_file(str(photo)), "Andy", "medium", api_name="/live_feed"))
        time.sleep(0.3)
    assert {answer["outcome"] for answer in answers} == {"pending"}
    assert not any(answer["held"] for answer in answers)  # only a final answer holds
    assert answers[0]["prompt"] == "look straight at the camera and hold still" and answers[0]["steps"] >= 2
    moves = {"turn your head to your left", "turn your head to your right", "look up", "look down",
             "come closer to the camera"}
    assert answers[-1]["prompt"] in moves and answers[-1]["step"] == 0  # the session lives across calls
    assert "moves" not in answers[-1]  # the moves to come are never sent
