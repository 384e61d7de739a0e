"""The "Live webcam and microphone" tab: streamed frames and audio chunks, the challenge, face + voice together.

Webcam frames stream to a :class:`~enrollment.live.LiveSession` (the head-move challenge when the
settings keep it on), microphone chunks to a :class:`~enrollment.live_voice.LiveVoiceSession`;
each user's sessions live in ``gr.State``. With both in use, the two final decisions are combined
by the AND rule. Kiosks that post frames over HTTP use ``/live_feed`` (one frame per call, the
session kept per client), since streaming events cannot be called from ``gradio_client``.
"""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from enrollment.service import Service
from verify.errors import VerifyError
from verify_app import handlers
from verify_app.frames import process_frame
from verify_app.live_voice import process_chunk, together_message, voice_message
from verify_app.media import MediaFiles

PRIVATE = {"api_visibility": "private"}
MIRROR_WEBCAM = True
"""The browser mirrors the live webcam, and the frames it streams: the person's left is on the image's left."""


def caller_of(request: gr.Request | None) -> str:
    """Who a request's attempts are logged and throttled for: its client address."""
    client = getattr(request, "client", None)
    return f"app:{getattr(client, 'host', None) or 'unknown'}"


class FrameGate:
    """Sessions whose webcam frame is being processed: a frame arriving meanwhile is dropped, not queued."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def try_begin(self, key: str) -> bool:
        """Mark ``key`` (a session) busy; False if it already is (the caller drops its frame)."""
        with self._lock:
            if key in self._busy:
                return False
            self._busy.add(key)
            return True

    def end(self, key: str) -> None:
        """Mark ``key`` free again."""
        with self._lock:
            self._busy.discard(key)


def _claimed(who: str | None) -> str | None:
    return None if who in (None, "", handlers.WHO_IS_THIS) else who


def _start_message(service: Service) -> str:
    if service.settings.live_challenge:
        return ("Press **Record** under the webcam, look at the camera, then follow the prompts (turn your head, "
                "look up or down, come closer): a photo cannot do them.")
    return "Press **Record** under the webcam to start."


def live_tab(service: Service, identity: gr.Dropdown, level: gr.Radio, media: MediaFiles) -> None:
    """The tab's components and streaming events, verifying the person picked in ``identity`` at ``level``."""
    with gr.Tab("Live webcam and microphone"):
        strict = gr.Checkbox(False, label="Strict mode: also refuse frames that do not vary naturally",
                             elem_id="live-strict")
        with gr.Row():
            webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live-webcam",
                              height=360, webcam_options=gr.WebcamOptions(mirror=MIRROR_WEBCAM))
            annotated = gr.Image(label="What the system sees", interactive=False, elem_id="live-annotated", height=360)
        face_status = gr.Markdown(_start_message(service), elem_id="live-status")
        microphone = gr.Audio(sources=["microphone"], streaming=True, type="numpy", elem_id="live-mic",
                              label="Microphone: speak for a few seconds (optional; with the webcam both must match)")
        voice_status = gr.Markdown(elem_id="live-voice-status")
        together = gr.Markdown(elem_id="live-together")
        face_state, voice_state = gr.State(None), gr.State(None)  # this user's sessions
        with gr.Row(visible=False):  # /live_feed: one frame per HTTP call, for kiosks
            kiosk_frame = gr.Image(type="numpy")
            kiosk_answer = gr.JSON()
            kiosk_button = gr.Button()
        kiosk_state = gr.State(None)

    gate = FrameGate()

    def live(frame, who, level_value, strict_value, session, voice_session, request: gr.Request):
        key = getattr(request, "session_hash", None) or "anonymous"
        if frame is None or not gate.try_begin(key):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()  # drop this frame: the last one is still processed
        try:
            if session is None:
                session = service.live_session(_claimed(who), level=level_value, caller=caller_of(request),
                                               strict=bool(strict_value), mirrored=MIRROR_WEBCAM)
            view = process_frame(session, frame)
            last_voice = voice_session.last if voice_session is not None else None
            return media.image(view.image, "jpeg"), view.message, together_message(session.last, last_voice), session
        except VerifyError as error:
            return gr.skip(), f"### {handlers.badge('retry')}\n{error}", gr.skip(), None
        finally:
            gate.end(key)

    webcam.stream(live, [webcam, identity, level, strict, face_state, voice_state],
                  [annotated, face_status, together, face_state],
                  # "multiple" (gradio's default for streams): "always_last" stalls the stream after one
                  # frame in gradio 6.31; frames that arrive while one is processed are dropped above.
                  stream_every=0.5, time_limit=600, trigger_mode="multiple", concurrency_limit=4,
                  show_progress="hidden", api_name="live_frame")

    def listen(chunk, who, level_value, session, face_session, request: gr.Request):
        if chunk is None:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            if session is None:
                session = service.live_voice_session(_claimed(who), level=level_value, caller=caller_of(request))
            result = process_chunk(session, chunk)
            last_face = face_session.last if face_session is not None else None
            return voice_message(result), together_message(last_face, result), session
        except VerifyError as error:
            return f"### {handlers.badge('retry')}\n{error}", gr.skip(), None

    microphone.stream(listen, [microphone, identity, level, voice_state, face_state],
                      [voice_status, together, voice_state], stream_every=0.5, time_limit=120,
                      concurrency_limit=4, show_progress="hidden", api_name="live_audio")
    microphone.start_recording(lambda: None, None, voice_state, **PRIVATE)  # a new recording, a new attempt
    for control in (identity, strict, level):  # a new claim, level or mode starts new sessions
        control.change(lambda: (None, None, None), None, [face_state, voice_state, kiosk_state], **PRIVATE)

    def kiosk(frame, who, level_value, session, request: gr.Request) -> tuple[dict[str, Any], Any]:
        if frame is None:
            raise gr.Error("send a frame", print_exception=False)
        try:
            if session is None:
                session = service.live_session(_claimed(who), level=level_value, caller=caller_of(request))
            result = session.feed(frame)
        except VerifyError as error:
            raise gr.Error(str(error), print_exception=False) from None
        return kiosk_json(result), session

    kiosk_button.click(kiosk, [kiosk_frame, identity, level, kiosk_state], [kiosk_answer, kiosk_state],
                       api_name="live_feed", concurrency_limit=4)


def kiosk_json(result) -> dict[str, Any]:
    """A frame's answer for ``/live_feed``: outcome, prompt, step and progress (never the moves to come),
    identity, score, reason, and whether it is an earlier frame's answer held while the face stays in view."""
    challenge = result.challenge
    return {
        "outcome": result.outcome, "prompt": result.prompt, "identity": result.identity,
        "score": None if result.decision is None else round(result.decision.score, 4),
        "threshold": None if result.decision is None else round(result.decision.threshold, 4),
        "reason": result.reason, "box": result.location,
        "step": None if challenge is None else challenge.step, "steps": 0 if challenge is None else len(challenge.moves),
        "progress": None if challenge is None else round(challenge.progress, 3),
        "latency_ms": round(result.latency_ms, 1), "held": result.held,
    }
