"""The Gradio interface: tabs, components and events wired to the gradio-free handlers."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from enrollment.service import Service
from verify.config import SECURITY_LEVELS
from verify.errors import VerifyError
from verify.io import read_heif_with_pillow
from verify_app import handlers
from verify_app.batch import ROW_HEADERS, BatchLimits, batch_check, write_csv
from verify_app.live_tab import caller_of, live_tab
from verify_app.media import MediaFiles

INTRO = """# Face & voice check
**1. Enroll** a person once, from one photo and/or one voice clip. **2. Verify** later that a
photo, the live webcam or a voice clip is that person, or ask *Who is this?*.
Only numbers computed from the samples are kept, never the photos or recordings."""
PRIVATE = {"api_visibility": "private"}
PAGE_HEAD = """<script>
(() => {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia) return;
  const getUserMedia = media.getUserMedia.bind(media);
  media.getUserMedia = (constraints) => {
    if (constraints && constraints.audio) {
      const audio = constraints.audio === true ? {} : constraints.audio;
      constraints = {...constraints, audio: {...audio, autoGainControl: false, noiseSuppression: false,
                                             echoCancellation: false}};
    }
    return getUserMedia(constraints);
  };
})();
</script>"""
"""The page's ``<head>`` addition, given to Gradio wherever the app is served (``launch(head=...)``,
``mount_gradio_app(head=...)``): it asks the browser for the microphone's sound as recorded, without
the automatic gain, noise suppression and echo cancellation made for calls. Through Chromium's, a
live voice lost so much of its likeness that the genuine speaker was rejected
(``tests/app/test_browser.py``)."""


def _user_errors(fn: Callable) -> Callable:
    """Show a :class:`VerifyError` as a readable message (``gr.Error``), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VerifyError as error:
            raise gr.Error(str(error), print_exception=False) from None

    return wrapper


def build_app(service: Service, concurrency: int = 2, batch_limits: BatchLimits = BatchLimits()) -> gr.Blocks:
    """The whole app over ``service``; models load on first use and are shared by every user.

    Args:
        service: the use cases, store and settings (key, lockout, throttle, default level).
        concurrency: requests processed at once (the queue's default concurrency limit).
        batch_limits: file-count and size limits of the Batch tab.
    """
    default_level = service.settings.level
    media = MediaFiles()
    read_heif_with_pillow()  # Gradio opens uploaded photos with Pillow before a handler sees them
    with gr.Blocks(title="Face & voice check", analytics_enabled=False) as demo:  # offline: no usage reports
        gr.Markdown(INTRO)
        with gr.Row():
            level = gr.Radio(list(SECURITY_LEVELS), value=default_level, label="Security level",
                             info="higher lets fewer impostors in, but asks genuine people to retry more often",
                             elem_id="security-level", scale=1)
            level_info = gr.Markdown(handlers.thresholds_summary(service, default_level), elem_id="level-info")
        level.change(functools.partial(handlers.thresholds_summary, service), level, level_info, **PRIVATE)
        with gr.Tabs():
            enrolled = _enroll_tab(service, media)
            verify_identity = _verify_tab(service, level, media)
            gallery_identity, gallery_table, gallery_changed = _gallery_tab(service)
            batch_identity = _batch_tab(service, level, batch_limits)
            settings = _settings_tab(service)
        refresh = _refresher(service)
        for event in (enrolled, *gallery_changed):
            event.then(refresh, None, [verify_identity, batch_identity, gallery_identity, gallery_table], **PRIVATE)
        demo.load(refresh, None, [verify_identity, batch_identity, gallery_identity, gallery_table], **PRIVATE)
        demo.load(functools.partial(handlers.settings_markdown, service), None, settings, **PRIVATE)
    demo.queue(default_concurrency_limit=concurrency)
    demo.service = service  # the shared models and store, for tests and shutdown
    return demo


def _refresher(service: Service) -> Callable:
    """Identity choices of every dropdown and the gallery rows, after a change to the store."""

    def refresh() -> tuple:
        names = service.identities()
        return (gr.update(choices=[handlers.WHO_IS_THIS] + names), gr.update(choices=names),
                gr.update(choices=names), handlers.gallery_rows(service))

    return refresh


def _face_input(elem_id: str, label: str, upload_first: bool = False) -> gr.Image:
    sources = ["upload", "webcam"] if upload_first else ["webcam", "upload"]
    # image_mode=None hands over the uploaded file untouched: converting it (to RGB by default) re-saved
    # it to one content-addressed path, rewritten in place while a concurrent request read it.
    return gr.Image(sources=sources, type="filepath", image_mode=None, label=label, elem_id=elem_id, height=320)


def _voice_input(elem_id: str, label: str, upload_first: bool = False) -> gr.Audio:
    sources = ["upload", "microphone"] if upload_first else ["microphone", "upload"]
    return gr.Audio(sources=sources, type="filepath", label=label, elem_id=elem_id)


def _enroll_tab(service: Service, media: MediaFiles):
    with gr.Tab("1. Enroll"):
        gr.Markdown("Type the person's name, then take a photo **or** record a few seconds of speech "
                    "(or both). One of each is enough; enrolling again adds samples.")
        name = gr.Textbox(label="Name", placeholder="e.g. Alice Martin", elem_id="enroll-name")
        with gr.Row():
            face = _face_input("enroll-face", "Face: webcam snapshot or photo")
            voice = _voice_input("enroll-voice", "Voice: record or upload 2-5 s of speech")
        allow_low = gr.Checkbox(False, label="Accept a low-quality sample anyway (not recommended)")
        button = gr.Button("Enroll", variant="primary", elem_id="enroll-button")
        status = gr.Markdown(elem_id="enroll-status")
        with gr.Row():
            crop = gr.Image(label="What was enrolled (shown here, not stored): aligned face", interactive=False, height=200, elem_id="enroll-crop")
            speech = gr.Audio(label="What was enrolled (shown here, not stored): speech without silence", interactive=False)
        previews = gr.State(None)  # (crop, speech) arrays: shown by the page, never part of the API's answer

    @_user_errors
    def run(name_value, face_path, voice_path, allow):
        result = handlers.enroll_samples(service, name_value, face_path, voice_path, bool(allow))
        return result.message, (result.face_crop, result.speech)

    def show(shown):
        face_crop, speech_samples = shown or (None, None)
        return media.image(face_crop), media.speech(speech_samples)

    enrolled = button.click(run, [name, face, voice, allow_low], [status, previews], api_name="enroll")
    enrolled.success(show, previews, [crop, speech], **PRIVATE)
    return enrolled


def _verify_tab(service: Service, level: gr.Radio, media: MediaFiles) -> gr.Dropdown:
    with gr.Tab("2. Verify"):
        identity = gr.Dropdown([handlers.WHO_IS_THIS], value=handlers.WHO_IS_THIS, allow_custom_value=True,
                               label="Who should this be?", info="pick a name, or 'Who is this?' to search everyone",
                               elem_id="verify-identity")
        with gr.Tabs():
            live_tab(service, identity, level, media)
            with gr.Tab("Photo or voice clip"):
                with gr.Row():
                    face = _face_input("verify-face", "Face photo", upload_first=True)
                    voice = _voice_input("verify-voice", "Voice clip", upload_first=True)
                button = gr.Button("Verify", variant="primary", elem_id="verify-button")
                status = gr.Markdown(elem_id="verify-status")
                with gr.Row():
                    crop = gr.Image(label="Face compared", interactive=False, height=200)
                    details = gr.JSON(label="Details (scores and thresholds)", elem_id="verify-json")
                compared = gr.State(None)  # the aligned face: shown by the page, never part of the API's answer

    @_user_errors
    def run(who, face_path, voice_path, level_value, request: gr.Request):
        result = handlers.verify_samples(service, who, face_path, voice_path, level_value, caller_of(request))
        return result.message, result.details, result.face_crop

    verified = button.click(run, [identity, face, voice, level], [status, details, compared], api_name="verify")
    verified.success(media.image, compared, crop, **PRIVATE)
    return identity


def _gallery_tab(service: Service):
    with gr.Tab("Enrolled people"):
        table = gr.Dataframe(headers=handlers.GALLERY_HEADERS, interactive=False, elem_id="gallery-table",
                             label="Everyone enrolled")
        refresh_button = gr.Button("Refresh list", size="sm")
        with gr.Row():
            name = gr.Dropdown([], allow_custom_value=True, label="Person", elem_id="gallery-identity")
            modality = gr.Radio(["all", "face", "voice"], value="all", label="Which samples")
        with gr.Accordion("Delete", open=False):
            delete_button = gr.Button("Delete this person's samples", variant="stop", elem_id="delete-button")
        with gr.Accordion("Re-enroll (replace the stored samples by a new one)", open=False):
            with gr.Row():
                face = _face_input("reenroll-face", "New face photo", upload_first=True)
                voice = _voice_input("reenroll-voice", "New voice clip", upload_first=True)
            reenroll_button = gr.Button("Re-enroll", elem_id="reenroll-button")
        status = gr.Markdown(elem_id="gallery-status")

    def rows():
        return handlers.gallery_rows(service)

    delete = delete_button.click(_user_errors(functools.partial(handlers.delete_identity, service)),
                                 [name, modality], status, api_name="delete")

    @_user_errors
    def run_reenroll(who, face_path, voice_path):
        return handlers.reenroll(service, who, face_path, voice_path).message

    reenrolled = reenroll_button.click(run_reenroll, [name, face, voice], status, api_name="reenroll")
    refreshed = refresh_button.click(rows, None, table, api_name="gallery")
    return name, table, (delete, reenrolled, refreshed)


def _batch_tab(service: Service, level: gr.Radio, limits: BatchLimits) -> gr.Dropdown:
    with gr.Tab("Batch"):
        gr.Markdown(f"Check many photos or clips against one person at once. Upload files or a .zip "
                    f"(up to {limits.max_files} files, {limits.max_total_bytes // 2**20} MiB in all).")
        with gr.Row():
            identity = gr.Dropdown([], allow_custom_value=True, label="Person", elem_id="batch-identity")
            modality = gr.Radio(["face", "voice"], value="face", label="The files are")
        files = gr.File(file_count="multiple", label="Photos, clips or zip archives", elem_id="batch-files")
        button = gr.Button("Check all", variant="primary", elem_id="batch-button")
        table = gr.Dataframe(headers=ROW_HEADERS, interactive=False, label="Results", elem_id="batch-table")
        download = gr.File(label="Results as CSV", interactive=False)

    @_user_errors
    def run(who, modality_value, paths, level_value, request: gr.Request):
        rows = batch_check(service, who, modality_value, paths or [], level_value, limits, caller_of(request))
        out = write_csv(rows, Path(tempfile.mkdtemp(prefix="verify-batch-")) / "results.csv")
        return rows, str(out)

    button.click(run, [identity, modality, files, level], [table, download], api_name="batch")
    return identity


def _settings_tab(service: Service) -> gr.Markdown:
    with gr.Tab("Settings"):
        info = gr.Markdown(elem_id="settings-info")
        gr.Button("Refresh", size="sm").click(functools.partial(handlers.settings_markdown, service), None, info,
                                              api_name="settings")
    return info
