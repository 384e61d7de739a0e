"""Models and the enrollment store, shared by every user of one app, loaded lazily and once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping

import torch

from enrollment.store import TemplateStore
from verify.config import MODALITIES, check_modality
from verify.device import resolve_device
from verify.embedding import Pipeline
from verify.models import load_pipeline, model_thresholds
from verify.verifier import Verifier


class Services:
    """The app's heavy, shared resources.

    Pipelines load on first use under a lock, so concurrent first requests load each model once.
    The store is one thread-safe connection. Per-user state never lives here, except the set of
    sessions whose webcam frame is being processed (used to drop frames rather than queue them).
    """

    def __init__(self, store_path: str | Path, device: str = "auto",
                 pipelines: Mapping[str, Pipeline] | None = None) -> None:
        """``pipelines``: already built pipelines to share (e.g. with another app in the process)."""
        self.store_path = Path(store_path).expanduser()
        self.device: torch.device = resolve_device(device)
        self._lock = threading.Lock()  # model loading
        self._store_lock = threading.Lock()
        self._pipelines: dict[str, Pipeline] = dict(pipelines or {})
        self._store: TemplateStore | None = None
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()

    @property
    def store(self) -> TemplateStore:
        """The enrollment store, opened on first use."""
        with self._store_lock:
            if self._store is None:
                self._store = TemplateStore(self.store_path)
            return self._store

    def pipeline(self, modality: str) -> Pipeline:
        """The shipped pipeline of ``modality`` on the app's device, loaded once."""
        check_modality(modality)
        with self._lock:
            if modality not in self._pipelines:
                self._pipelines[modality] = load_pipeline(modality, self.device)
            return self._pipelines[modality]

    def loaded(self) -> tuple[str, ...]:
        """Modalities whose model is loaded."""
        return tuple(modality for modality in MODALITIES if modality in self._pipelines)

    def verifier(self, modality: str, level: str) -> Verifier:
        """A verifier for ``modality`` at security ``level`` (cheap: the pipeline is shared)."""
        pipeline = self.pipeline(modality)
        return Verifier(pipeline, model_thresholds(pipeline.model_id), level)

    def try_begin(self, key: str) -> bool:
        """Mark ``key`` (a session) busy; False if it already is (the caller drops its frame)."""
        with self._busy_lock:
            if key in self._busy:
                return False
            self._busy.add(key)
            return True

    def end(self, key: str) -> None:
        """Mark ``key`` free again."""
        with self._busy_lock:
            self._busy.discard(key)

    def close(self) -> None:
        """Close the store."""
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
