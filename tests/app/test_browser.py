"""The app in headless Chromium with a fake webcam (a shipped face) and fake microphone (a shipped voice).

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` pip package (used only as a
driver; never ``playwright install``); ``$VERIFY_APP_CHROMIUM`` names another binary. Skips cleanly
without them. Set ``VERIFY_APP_ARTIFACTS=1`` to copy the screenshots into ``tests/app/artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile

from verify.io import decode_image

pytestmark = pytest.mark.browser
CHROMIUM = Path(os.environ.get("VERIFY_APP_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from app import build_app  # noqa: E402
from enrollment.service import Service  # noqa: E402
from verify_app import handlers  # noqa: E402


def write_y4m(path: Path, photo: Path, frames: int = 10, vary: bool = True) -> Path:
    """A 640x480 10 fps fake webcam of ``photo``; ``vary`` shifts and brightens each frame a little."""
    face = cv2.cvtColor(cv2.resize(decode_image(photo), (300, 300)), cv2.COLOR_RGB2BGR).astype(int)
    rng = np.random.default_rng(0)
    with open(path, "wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            shift, brightness = (int(rng.integers(-6, 7)), int(rng.integers(-10, 11))) if vary else (0, 0)
            frame = np.full((480, 640, 3), 90, np.uint8)
            frame[90 + shift : 390 + shift, 170 + shift : 470 + shift] = np.clip(face + brightness, 0, 255)
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def write_wav(path: Path, clip: Path) -> Path:
    """``clip`` as 16-bit PCM WAV, as Chromium's fake microphone wants."""
    samples, rate = soundfile.read(clip)
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def running_app(tmp_path, face_pipeline, voice_pipeline):
    pipelines = {"face": face_pipeline, "voice": voice_pipeline}
    demo = build_app(Service(tmp_path / "enrollments.db", device="cpu", pipelines=pipelines))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo
    finally:
        demo.close()
        demo.service.close()


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


def start_live_verification(page, identity: str, strict: bool) -> None:
    page.get_by_role("tab", name="2. Verify").click()
    dropdown = page.locator("#verify-identity input")
    dropdown.fill(identity)
    dropdown.press("Enter")
    if strict:
        page.locator("#live-strict input").check()
    webcam = page.locator("#live-webcam")
    webcam.get_by_text("Click to Access Webcam").click()
    page.wait_for_function("document.querySelector('#live-webcam video').readyState >= 2")
    webcam.locator("button", has_text="Record").click()  # its accessible name is "capture photo"


def watch_status(page, selector: str, seconds: float, stop_on: str | None = None) -> list[str]:
    """Every text shown in ``selector`` during ``seconds`` (stops early once ``stop_on`` shows)."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = page.locator(selector).inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if stop_on and stop_on in text:
            break
        page.wait_for_timeout(200)
    return seen


def test_enroll_from_webcam_and_microphone_then_verify_live(running_app, tmp_path, face_files, voice_files):
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
            start_live_verification(page, "Andy", strict=False)
            seen = watch_status(page, "#live-status", 60, stop_on="Accepted")
            save_screenshot(page, tmp_path, "verify-live.png")
        finally:
            browser.close()
    assert "Accepted" in seen[-1], seen
    assert "Andy: score" in seen[-1]


def test_strict_mode_does_not_accept_a_static_webcam_image(running_app, tmp_path, face_files, voice_files):
    handlers.enroll_samples(running_app.service, "Andy", face=str(face_files[0]))
    webcam = write_y4m(tmp_path / "still.y4m", face_files[0], frames=2, vary=False)
    microphone = write_wav(tmp_path / "voice.wav", voice_files[0])
    with sync_api.sync_playwright() as playwright:
        browser, page = open_page(playwright, running_app.local_url, webcam, microphone)
        try:
            start_live_verification(page, "Andy", strict=True)
            seen = watch_status(page, "#live-status", 45, stop_on="static image suspected")
            seen += watch_status(page, "#live-status", 3)
            save_screenshot(page, tmp_path, "verify-strict-static.png")
        finally:
            browser.close()
    assert any("static image suspected" in text for text in seen), seen
    assert not any("Accepted" in text for text in seen), seen
