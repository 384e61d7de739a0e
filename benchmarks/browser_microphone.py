"""Live voice checks through a real browser's microphone, as a person using the web app makes them.

    python benchmarks/browser_microphone.py [--root ../shared/data] [--speakers 20]
        [--out benchmarks/results/browser_microphone.json]

For each of the first ``--speakers`` LibriSpeech evaluation speakers (benchmarks/pairs/splits.json)
with a file enrollment accepts: enroll that file, then check another of theirs three ways, each
against a store of its own:

- *file*: ``Service.check`` on the file (what ``verify check`` answers);
- *as recorded*: the file played by headless Chromium's fake microphone into the live-microphone
  tab of the app as ``app.py`` serves it (``build_server`` in uvicorn), the page asking for the
  sound without the browser's call processing (``verify_app.ui.PAGE_HEAD``);
- *call processing*: the same, with automatic gain, noise suppression and echo cancellation forced
  on (a script run before the page's own): what the page got before session 12, and what a
  browser that ignores the page's request gives.

Prints and writes each way's final decisions (accepted / retry / rejected) and median score margin
(score minus the score needed). Needs Debian's ``chromium`` and the ``playwright`` pip package.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import soundfile

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import uvicorn  # noqa: E402
from playwright import sync_api  # noqa: E402

from enrollment.service import Service  # noqa: E402
from verify.voice.pipeline import VoicePipeline  # noqa: E402
from verify_app.rest import ApiConfig  # noqa: E402
from verify_app.server import build_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
RESULTS = REPO / "benchmarks" / "results" / "browser_microphone.json"
FINAL = {"Accepted (voice)": "accepted", "Try again (voice)": "retry", "Rejected (voice)": "rejected"}
SCORE = re.compile(r"score (-?[0-9.]+) \(needs ≥ (-?[0-9.]+)\)")
CALL_PROCESSING = """(() => {
  const media = navigator.mediaDevices;
  const getUserMedia = media.getUserMedia.bind(media);
  media.getUserMedia = (constraints) => getUserMedia(constraints && constraints.audio
    ? {...constraints, audio: {...(constraints.audio === true ? {} : constraints.audio),
                               autoGainControl: true, noiseSuppression: true, echoCancellation: true}}
    : constraints);
})();"""
"""Run before the page's scripts, so it sits under the page's own wrapper and has the last word."""


def speaker_files(root: Path, count: int, voice: VoicePipeline) -> list[tuple[str, Path, Path]]:
    """``(speaker, enrollment file, probe file)`` of the first ``count`` evaluation speakers that have a
    file enrollment accepts (no quality issue; it is the enrollment) and another file (the probe)."""
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["librispeech"]
    chosen = []
    for speaker in sorted(split["evaluation"]):
        files = sorted((root / split["folder"] / speaker).glob("*.flac"))
        enrollable = [path for path in files if not voice.embed(str(path)).quality_issues]
        if enrollable:
            chosen.append((speaker, enrollable[0], next(path for path in files if path != enrollable[0])))
        if len(chosen) == count:
            break
    return chosen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(service: Service) -> tuple[uvicorn.Server, threading.Thread, str]:
    """The app as ``app.py`` serves it, on a free loopback port, in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_server(service, ApiConfig(), port=port), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}/"


def live_check(playwright, url: str, identity: str, microphone: Path, call_processing: bool,
               seconds: float = 40.0) -> dict:
    """The live tab's final voice decision for ``identity`` with ``microphone`` playing."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])
    try:
        context = browser.new_context(permissions=["microphone"])
        if call_processing:
            context.add_init_script(CALL_PROCESSING)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.get_by_role("tab", name="2. Verify").click()
        dropdown = page.locator("#verify-identity input")
        dropdown.fill(identity)
        dropdown.press("Enter")
        page.wait_for_timeout(1500)  # Gradio's microphone loads its WAV recorder when it appears: a click before fails
        page.locator("#live-mic").get_by_role("button", name="Record", exact=True).click()
        deadline = time.monotonic() + seconds
        text = ""
        while time.monotonic() < deadline:
            text = page.locator("#live-voice-status").inner_text()
            if any(word in text for word in FINAL):
                break
            page.wait_for_timeout(200)
    finally:
        browser.close()
    outcome = next((FINAL[word] for word in FINAL if word in text), "no decision")
    found = SCORE.search(text)
    row = {"outcome": outcome, "score": float(found[1]) if found else None, "needed": float(found[2]) if found else None}
    return row if outcome != "no decision" else {**row, "last_status": text, "page_errors": errors}


def summary(rows: list[dict]) -> dict:
    margins = [row["score"] - row["needed"] for row in rows if row["score"] is not None]
    outcomes = [row["outcome"] for row in rows]
    return {**{name: outcomes.count(name) for name in ("accepted", "retry", "rejected", "no decision")},
            "median_margin": round(statistics.median(margins), 3) if margins else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    voice = VoicePipeline(device="cpu")
    folder = Path(tempfile.mkdtemp())
    speakers = speaker_files(args.root, args.speakers, voice)
    ways: dict[str, list[dict]] = {"file": [], "as recorded": [], "call processing": []}
    with sync_api.sync_playwright() as playwright:
        for way, rows in ways.items():
            service = Service(folder / f"{way}.db", device="cpu", pipelines={"voice": voice})
            server, thread, url = serve(service) if way != "file" else (None, None, "")
            try:
                for speaker, enrollment, probe in speakers:
                    service.enroll(speaker, voice=str(enrollment))
                    if way == "file":
                        decision = service.check(speaker, voice=str(probe)).decisions["voice"]
                        row = {"outcome": decision.outcome, "score": decision.score, "needed": decision.threshold}
                    else:
                        microphone = folder / f"{speaker}.wav"  # 16-bit PCM, as the fake microphone wants
                        samples, rate = soundfile.read(probe)
                        soundfile.write(microphone, samples, rate, subtype="PCM_16")
                        row = live_check(playwright, url, speaker, microphone, way == "call processing")
                    rows.append({"speaker": speaker, **row})
                    print(way, speaker, row, flush=True)
            finally:
                if server is not None:
                    server.should_exit = True
                    thread.join(30)
                service.close()
    report = {"command": "python benchmarks/browser_microphone.py " + " ".join(sys.argv[1:]),
              "speakers": args.speakers, "summary": {way: summary(rows) for way, rows in ways.items()},
              "trials": ways}
    print(json.dumps(report["summary"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
