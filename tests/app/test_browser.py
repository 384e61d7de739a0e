"""The app in headless Chromium with a fake webcam (a shipped face) and fake microphone (a shipped voice).

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` pip package (used only as a
driver; never ``playwright install``); ``$VERIFY_APP_CHROMIUM`` names another binary. Skips cleanly
without them. Set ``VERIFY_APP_ARTIFACTS=1`` to copy the screenshots into ``tests/app/artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import soundfile

from verify.io import decode_image

pytestmark = pytest.mark.browser
CHROMIUM = Path(os.environ.get("VERIFY_APP_CHROMIUM", "/usr/bin/chromium"))
FPS = 10
SEED = 4  # the app prompts (look up, turn left), every attempt
ARTIFACTS = Path(__file__).parent / "artifacts"
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from posed_faces import measure, pick_poses, segments, webcam_frame  # noqa: E402
from serving import served  # noqa: E402

from enrollment.service import Service  # noqa: E402
from verify_app import handlers  # noqa: E402

MOVES = ("look_up", "turn_left")  # what SEED draws (tests/enrollment/test_live_real_faces.py checks it)


def write_frames(path: Path, frames: list[np.ndarray], fps: int = FPS) -> Path:
    """A 640x480 fake webcam (.y4m, looped by Chromium) of RGB ``frames`` at ``fps``."""
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def write_y4m(path: Path, photo: Path, frames: int = 10) -> Path:
    """A fake webcam of ``photo`` held up to the camera: shifted and brightened a little each frame."""
    face = cv2.resize(decode_image(photo), (300, 300)).astype(int)
    rng = np.random.default_rng(0)
    images = []
    for _ in range(frames):
        shift, brightness = int(rng.integers(-6, 7)), int(rng.integers(-10, 11))
        frame = np.full((480, 640, 3), 90, np.uint8)
        frame[90 + shift : 390 + shift, 170 + shift : 470 + shift] = np.clip(face + brightness, 0, 255)
        images.append(frame)
    return write_frames(path, images)


def write_wav(path: Path, clip: Path) -> Path:
    """``clip`` as 16-bit PCM WAV, as Chromium's fake microphone wants."""
    samples, rate = soundfile.read(clip)
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


@pytest.fixture
def running_app(tmp_path, face_pipeline, voice_pipeline):
    """The app as ``app.py`` serves it (REST API and web app in one uvicorn): ``local_url`` and ``service``."""
    service = Service(tmp_path / "enrollments.db", device="cpu",
                      pipelines={"face": face_pipeline, "voice": voice_pipeline}, challenge_seed=SEED)
    try:
        with served(service) as url:
            yield SimpleNamespace(local_url=f"{url}/", service=service)
    finally:
        service.close()


def open_page(playwright, url: str, webcam: Path, microphone: Path):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
        "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={webcam}", f"--use-file-for-fake-audio-capture={microphone}",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    ])
    context = browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(url)
    return browser, page


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("VERIFY_APP_ARTIFACTS"):
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(path, ARTIFACTS / name)
    return path


def start_live_verification(page, identity: str) -> None:
    page.get_by_role("tab", name="2. Verify").click()
    dropdown = page.locator("#verify-identity input")
    dropdown.fill(identity)
    dropdown.press("Enter")
    webcam = page.locator("#live-webcam")
    webcam.get_by_text("Click to Access Webcam").click()
    page.wait_for_function("document.querySelector('#live-webcam video').readyState >= 2")
    webcam.locator("button", has_text="Record").click()  # its accessible name is "capture photo"


def watch_status(page, selector: str, seconds: float, stop_on: str | tuple[str, ...] = ()) -> list[str]:
    """Every text shown in ``selector`` during ``seconds`` (stops early once one of ``stop_on`` shows)."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = page.locator(selector).inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if any(word in text for word in ((stop_on,) if isinstance(stop_on, str) else stop_on)):
            break
        page.wait_for_timeout(200)
    return seen


def test_the_page_loads_nothing_from_outside_the_machine(running_app, tmp_path, face_files, voice_files):
    webcam = write_y4m(tmp_path / "face.y4m", face_files[0])
    microphone = write_wav(tmp_path / "voice.wav", voice_files[0])
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, "about:blank", webcam, microphone)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        try:
            page.goto(running_app.local_url)
            page.locator("#enroll-face").get_by_text("Click to Access Webcam").wait_for(timeout=30_000)
            for tab in ("Verify", "Batch"):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(500)
        finally:
            browser.close()
    local = running_app.local_url.rstrip("/")
    assert len(requested) > 10  # the page, its scripts, styles and fonts
    assert [url for url in requested if not url.startswith((local, "data:", "blob:"))] == []


def test_enroll_from_webcam_and_microphone_then_a_photo_is_not_accepted_live(running_app, tmp_path, face_files, voice_files):
    webcam = write_y4m(tmp_path / "face.y4m", face_files[0])
    microphone = write_wav(tmp_path / "voice.wav", voice_files[0])
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, running_app.local_url, webcam, microphone)
        try:
            page.locator("#enroll-name input, #enroll-name textarea").first.fill("Andy")
            face = page.locator("#enroll-face")
            face.get_by_text("Click to Access Webcam").click()
            page.wait_for_function("document.querySelector('#enroll-face video').readyState >= 2")
            page.wait_for_timeout(500)
            face.get_by_role("button", name="capture photo").click()
            face.locator("img[src]").first.wait_for(timeout=10_000)
            voice = page.locator("#enroll-voice")
            voice.get_by_role("button", name="Record", exact=True).click()
            page.wait_for_timeout(4000)
            voice.locator("button.stop-button").click()
            page.wait_for_timeout(1000)
            page.locator("#enroll-button").click()
            status = page.locator("#enroll-status")
            status.get_by_text("Enrolled").wait_for(timeout=60_000)
            save_screenshot(page, tmp_path, "enroll.png")
            assert "face: 1 sample(s)" in status.inner_text()
            assert "voice: 1 sample(s)" in status.inner_text()
            start_live_verification(page, "Andy")
            seen = watch_status(page, "#live-status", 12)
            save_screenshot(page, tmp_path, "verify-live-photo.png")
        finally:
            browser.close()
    assert any("Follow the prompt" in text for text in seen), seen  # the challenge runs by default ...
    assert not any("Accepted" in text for text in seen), seen  # ... and a photo held up is not accepted
    # the voice enrolled through the browser's microphone verifies another recording of the speaker
    check = running_app.service.check("Andy", voice=str(voice_files[1]))
    assert check.outcome == "accepted", (check.decisions["voice"].score, check.decisions["voice"].threshold)


@pytest.fixture
def posed(shared_data, face_pipeline):
    """Real photos of ORL person s1 picked by their measured pose (tests/posed_faces.py)."""
    photos = measure(face_pipeline, shared_data / "faces" / "orl_att" / "s1")
    return photos, pick_poses(photos, "7.png", MOVES)


def run_challenge(running_app, tmp_path, posed, voice_files, moves, seconds: float) -> list[str]:
    """Enroll s1 (from another frontal photo), stream the moves in a real browser; every status shown."""
    photos, picked = posed
    handlers.enroll_samples(running_app.service, "s1", face=webcam_frame(photos["0.png"]))
    # a long look at the camera, then each move for 1.4 s and 1 s back: only the long look can be the
    # neutral pose (held 1.5 s), so the prompts line up with the loop wherever Chromium starts it; a
    # move missed on a busy CPU fails one attempt, and the next loop tries again
    webcam = write_frames(tmp_path / "moves.y4m", segments(picked, moves, 4.0, 1.4, 1.0, fps=FPS))
    microphone = write_wav(tmp_path / "voice.wav", voice_files[1])
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, running_app.local_url, webcam, microphone)
        try:
            start_live_verification(page, "s1")
            seen = watch_status(page, "#live-status", seconds, stop_on="Accepted")
            save_screenshot(page, tmp_path, f"challenge-{'-'.join(moves)}.png")
        finally:
            browser.close()
    return seen


@pytest.mark.data
def test_a_person_making_the_prompted_moves_is_accepted(running_app, tmp_path, posed, voice_files):
    seen = run_challenge(running_app, tmp_path, posed, voice_files, MOVES, 40)
    assert any("Follow the prompt: look up" in text for text in seen), seen
    assert "Accepted" in seen[-1] and "s1: score" in seen[-1] and "live: 2 moves done" in seen[-1], seen


@pytest.mark.data
def test_the_moves_in_another_order_are_refused(running_app, tmp_path, posed, voice_files):
    seen = run_challenge(running_app, tmp_path, posed, voice_files, tuple(reversed(MOVES)), 20)
    assert not any("Accepted" in text for text in seen), seen
    assert any("step 1 of 2 (look up) failed: you turned to your left instead" in text for text in seen), seen


FINAL_VOICE = ("Accepted (voice)", "Rejected (voice)", "Try again (voice)")  # "Listening" while pending


def test_the_live_microphone_shows_a_running_decision_then_decides(running_app, tmp_path, face_files, voice_files):
    handlers.enroll_samples(running_app.service, "reader", voice=str(voice_files[0]))
    webcam = write_y4m(tmp_path / "face.y4m", face_files[0], frames=2)
    microphone = write_wav(tmp_path / "voice.wav", voice_files[1])  # the same speaker, another recording
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, running_app.local_url, webcam, microphone)
        try:
            page.get_by_role("tab", name="2. Verify").click()
            dropdown = page.locator("#verify-identity input")
            dropdown.fill("reader")
            dropdown.press("Enter")
            page.wait_for_timeout(1500)  # Gradio's microphone loads its WAV recorder when it appears: a click before fails
            page.locator("#live-mic").get_by_role("button", name="Record", exact=True).click()
            seen = watch_status(page, "#live-voice-status", 30, stop_on=FINAL_VOICE)
            save_screenshot(page, tmp_path, "verify-live-microphone.png")
        finally:
            browser.close()
    assert any("running decision:" in text and "reader: score" in text for text in seen), seen
    # the page asks for the sound as recorded: with Chromium's call processing (automatic gain, noise
    # suppression) this genuine pair was rejected live although its files are accepted
    assert "Accepted (voice)" in seen[-1] and "s of speech in the window" in seen[-1], seen
