"""Images and sounds the page shows, written to files no other request can overwrite.

Gradio saves an array it is given to a cache path named by the content's hash, writing the file
in place: two requests with the same output (the same probe verified at once) wrote one path while
the first response was still streaming it, and that response was cut short. A file path returned
instead is copied into the cache under a temporary name and renamed, or reused as it is when an
identical copy is already there, so a served file is never rewritten. Each output here gets its
own file; files older than ``keep_seconds`` are removed as new ones are written (Gradio has copied
them by then).
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

SPEECH_RATE = 16_000
"""Sample rate of the trimmed speech the voice pipeline keeps as its preview, in Hz."""


class MediaFiles:
    """A private temporary folder of uniquely named output files.

    Args:
        keep_seconds: age after which a written file is removed.
        folder: where to write (default: a new folder in the system's temporary folder, which
            Gradio is allowed to serve from).
    """

    def __init__(self, keep_seconds: float = 300.0, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="verify-media-"))
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._last_sweep = 0.0

    def image(self, pixels: np.ndarray | None, format: str = "png") -> str | None:
        """``(H, W, 3)`` uint8 RGB pixels as a new PNG (or JPEG) file; ``None`` stays ``None``."""
        if pixels is None:
            return None
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format=format)
        return self._write(buffer.getvalue(), "." + format.lower().replace("jpeg", "jpg"))

    def speech(self, samples: np.ndarray | None, rate: int = SPEECH_RATE) -> str | None:
        """``(T,)`` float audio in [-1, 1] as a new 16-bit WAV file; ``None`` stays ``None``."""
        if samples is None:
            return None
        buffer = io.BytesIO()
        soundfile.write(buffer, np.clip(samples, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
        return self._write(buffer.getvalue(), ".wav")

    def _write(self, data: bytes, suffix: str) -> str:
        self._sweep()
        descriptor, path = tempfile.mkstemp(suffix=suffix, dir=self.folder)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        return path

    def _sweep(self) -> None:
        """Remove files older than ``keep_seconds``, at most once per ``keep_seconds / 10``."""
        now = time.time()
        with self._lock:
            if now - self._last_sweep < self.keep_seconds / 10:
                return
            self._last_sweep = now
        for entry in os.scandir(self.folder):
            try:
                if now - entry.stat().st_mtime > self.keep_seconds:
                    os.unlink(entry.path)
            except FileNotFoundError:  # another thread's sweep got there first
                continue
