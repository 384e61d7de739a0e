"""The 1:N gallery: every current template of one modality in a search index, kept in step with the store.

A :class:`Gallery` holds the scoring vector of every template of one modality made by one model,
in identity order, with its cohort statistics (what S-norm needs), and a
:class:`~verify.search.VectorIndex` over the vectors: exact search up to
``GalleryConfig.index.exact_max`` templates (the shortlist is then the whole gallery, so answers
are those of brute force), a FAISS PQ fast-scan above it (the shortlist is the top
``GalleryConfig.shortlist`` by exact inner product among the scan's candidates, which
:mod:`enrollment.identify` then scores).

The gallery reflects one :class:`~enrollment.changes.StoreVersion`. :meth:`Gallery.refresh`
compares it with the store's (one indexed read) and applies the templates written or deleted
since, or rebuilds when the store's history does not contain its version. Galleries of at least
``save_min`` templates are saved beside the store (:mod:`enrollment.gallery_file`): sealed with the
store's key when it has one, 0600 always, rewritten whenever a refresh removes a vector (a
deleted person's vector does not stay on disk), and rebuilt instead of used when they fail any
check.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enrollment.changes import StoreVersion, changed_since, in_history, store_version
from enrollment.errors import StoreError
from enrollment.gallery_file import GalleryFileError, gallery_path, load_gallery, save_gallery
from enrollment.store import TemplateStore
from enrollment.template import Template
from verify.errors import ConfigError
from verify.normalization import CohortStats
from verify.scoring import l2_normalize
from verify.search import IndexConfig, VectorIndex

log = logging.getLogger(__name__)
_PAGE = 5_000  # templates read per query while building
_MAX_VARIABLES = 500  # identities per IN (...) while refreshing


@dataclass(frozen=True)
class GalleryConfig:
    """How galleries are indexed and kept.

    Attributes:
        index: exact search up to ``index.exact_max`` templates, PQ fast-scan settings above it.
        shortlist: templates a PQ search hands to the scorer.
        save_min: galleries of at least this many templates are saved beside the store.
        rebuild_fraction: a PQ index whose share of removed rows exceeds this is rebuilt.
    """

    index: IndexConfig = field(default_factory=IndexConfig)
    shortlist: int = 100
    save_min: int = 10_000
    rebuild_fraction: float = 0.2

    def __post_init__(self) -> None:
        for name in ("shortlist", "save_min"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"gallery setting {name} must be an integer >= 1, got {value!r}")
        if not 0.0 < self.rebuild_fraction < 1.0:
            raise ConfigError(f"gallery rebuild_fraction must be in (0, 1), got {self.rebuild_fraction!r}")


@dataclass(frozen=True)
class Shortlist:
    """Templates to score a probe against, in identity order.

    Attributes:
        identities: ``K`` names.
        vectors: ``(K, D)`` their scoring vectors, as stored.
        unit: ``(K, D)`` the same rows through :func:`~verify.scoring.l2_normalize`, as cosine
            scoring normalises them.
        stats: ``K`` cohort statistics, as stored (``None`` where the template has none).
    """

    identities: list[str]
    vectors: np.ndarray
    unit: np.ndarray
    stats: list[CohortStats | None]


@dataclass(frozen=True)
class GalleryKey:
    """Which templates a gallery holds: one modality, made by one model version."""

    modality: str
    model_id: str
    model_version: str

    def holds(self, template: Template) -> bool:
        """Whether ``template`` belongs in this gallery (rather than in its ``skipped``)."""
        return (template.model_id, template.model_version) == (self.model_id, self.model_version)


class Gallery:
    """The current templates of one modality and model, searchable; see the module docstring.

    Open with :meth:`open` (saved or built) or :meth:`build` (in memory only). Thread-safe.
    """

    def __init__(self, key: GalleryKey, config: GalleryConfig, identities: list[str], stats: list[CohortStats | None],
                 index: VectorIndex, version: StoreVersion, skipped: set[str], path: Path | None = None) -> None:
        self.key, self.config, self.version, self.path = key, config, version, path
        self.index = index
        self._identities = identities
        self._stats = stats
        self._skipped = skipped
        alive = index.alive(np.arange(len(index))).tolist()
        self._rows = {name: row for row, name in enumerate(identities) if alive[row]}
        self._lock = threading.RLock()
        self._unit: np.ndarray | None = None  # l2_normalize(every row) of an exact index, made once

    # --- opening ----------------------------------------------------------------------------
    @classmethod
    def build(cls, store: TemplateStore, key: GalleryKey, config: GalleryConfig = GalleryConfig(),
              path: Path | None = None) -> Gallery:
        """Index every template of ``key`` in ``store`` (saved to ``path`` when large enough)."""
        with store.transaction() as connection:
            version = store_version(connection)
            current, skipped = [], set()
            for template in _all_templates(store, connection, key.modality):
                (current.append((template.identity, template.embedding, template.cohort_stats)) if key.holds(template)
                 else skipped.add(template.identity))
        gallery = cls(key, config, [name for name, _, _ in current], [stats for _, _, stats in current],
                      _index(current, config.index), version, skipped, path)
        gallery._persist(store)
        return gallery

    @classmethod
    def open(cls, store: TemplateStore, key: GalleryKey, config: GalleryConfig = GalleryConfig()) -> Gallery:
        """The gallery saved beside ``store`` brought up to date, or a new one when none can be used."""
        path = gallery_path(store.path, key.modality)
        try:
            gallery = cls.load(store, path, config)
        except GalleryFileError as error:
            if path.exists():
                log.warning("rebuilding the %s gallery index: %s", key.modality, error)
            return cls.build(store, key, config, path)
        if gallery.key != key:
            log.info("rebuilding the %s gallery index: it was made for another model", key.modality)
            return cls.build(store, key, config, path)
        gallery.refresh(store)
        return gallery

    @classmethod
    def load(cls, store: TemplateStore, path: Path, config: GalleryConfig = GalleryConfig()) -> Gallery:
        """The gallery saved at ``path``, as saved (call :meth:`refresh` before use).

        Raises:
            GalleryFileError: the file is missing or fails a check.
        """
        header, (names, *index_sections) = load_gallery(path, store)
        try:
            listed = json.loads(bytes(names))
            key = GalleryKey(header["modality"], header["model_id"], header["model_version"])
            version = StoreVersion(*header["version"])
            index = VectorIndex.from_bytes(b"".join(bytes(section) for section in index_sections), config.index)
            stats = [None if row is None else CohortStats(*row) for row in listed["stats"]]
        except (ValueError, KeyError, TypeError) as error:
            raise GalleryFileError(f"{path} holds a damaged index: {error}") from None
        if not len(listed["identities"]) == len(stats) == len(index):
            raise GalleryFileError(f"{path} names {len(listed['identities'])} rows for {len(index)} vectors")
        return cls(key, config, listed["identities"], stats, index, version, set(listed["skipped"]), path)

    @classmethod
    def sync_saved(cls, store: TemplateStore, modality: str, config: GalleryConfig = GalleryConfig()) -> None:
        """Bring the gallery saved beside ``store`` up to date (after a delete: erase the vector from disk)."""
        path = gallery_path(store.path, modality)
        if not path.exists():
            return
        try:
            cls.load(store, path, config).refresh(store)
        except GalleryFileError as error:
            log.warning("removing the unusable %s gallery index: %s", modality, error)
            path.unlink(missing_ok=True)

    # --- keeping up with the store ------------------------------------------------------------
    def refresh(self, store: TemplateStore) -> bool:
        """Apply the template writes made since this gallery's version; returns whether any were.

        Rebuilds when the store's history no longer holds this version (another store, a store
        restored from an older copy, or more changes than the store logs).
        """
        with self._lock:
            with store.transaction() as connection:
                now = store_version(connection)
                if now == self.version:
                    return False
                if not in_history(connection, self.version):
                    log.info("rebuilding the %s gallery index: the store's history does not hold its version",
                             self.key.modality)
                    fresh = None
                else:
                    names = changed_since(connection, self.version, self.key.modality)
                    fresh = {template.identity: template for template in _templates_of(store, connection,
                                                                                       self.key.modality, names)}
            if fresh is None:
                self._take(Gallery.build(store, self.key, self.config, self.path))
                return True
            self._apply(names, fresh, now, store)
            return True

    def _apply(self, names: set[str], fresh: dict[str, Template], now: StoreVersion, store: TemplateStore) -> None:
        removed = [self._rows.pop(name) for name in sorted(names) if name in self._rows]
        self._skipped -= names
        added = [(name, template.embedding, template.cohort_stats) for name, template in sorted(fresh.items())
                 if self.key.holds(template)]
        self._skipped |= {name for name, template in fresh.items() if not self.key.holds(template)}
        count = self.index.count - len(removed) + len(added)
        self.index.remove(removed)
        rebuild = (self.index.kind == "exact" or self.config.index.kind_for(count) != self.index.kind
                   or self.index.removed_fraction > self.config.rebuild_fraction)
        if rebuild:
            kept = sorted(self._rows.values())
            listed = [self._identities[row] for row in kept] + [name for name, _, _ in added]
            stats = [self._stats[row] for row in kept] + [found for _, _, found in added]
            vectors = [self.index.vectors[kept]] if kept else []
            vectors += [np.stack([vector for _, vector, _ in added])] if added else []
            order = sorted(range(len(listed)), key=listed.__getitem__)
            self._identities = [listed[row] for row in order]
            self._stats = [stats[row] for row in order]
            self.index = VectorIndex.build(np.concatenate(vectors)[order] if listed else np.empty((0, 0), np.float32),
                                           self.config.index)
            self._rows = {name: row for row, name in enumerate(self._identities)}
        elif added:
            for (name, _, found), row in zip(added, self.index.add(np.stack([v for _, v, _ in added]))):
                self._identities.append(name)
                self._stats.append(found)
                self._rows[name] = int(row)
        self.version, self._unit = now, None
        unsaved = self.path is not None and self.count >= self.config.save_min and not self.path.exists()
        if removed or (rebuild and not self.exact) or unsaved:
            self._persist(store)  # a file behind by additions only is brought up to date when loaded

    def _take(self, other: Gallery) -> None:
        self.index, self.version, self._unit = other.index, other.version, None
        self._identities, self._stats, self._skipped, self._rows = (other._identities, other._stats, other._skipped,
                                                                    other._rows)

    # --- searching ----------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Templates in the gallery."""
        return len(self._rows)

    @property
    def exact(self) -> bool:
        """Whether the shortlist is the whole gallery (exact search)."""
        return self.index.kind == "exact"

    @property
    def skipped(self) -> tuple[str, ...]:
        """Identities of this modality whose template another model made (re-enroll them), sorted."""
        return tuple(sorted(self._skipped))

    def shortlist(self, vector: np.ndarray) -> Shortlist:
        """The templates to score ``vector`` ``(D,)`` against, in identity order.

        Every template when the search is exact; otherwise the top ``config.shortlist`` by inner
        product among the PQ scan's candidates.
        """
        with self._lock:
            if self.exact:
                if self._unit is None or len(self._unit) != len(self.index):
                    self._unit = l2_normalize(self.index.vectors) if len(self.index) else self.index.vectors
                return Shortlist(list(self._identities), self.index.vectors, self._unit, list(self._stats))
            _, rows = self.index.search(vector, self.config.shortlist)
            rows = sorted(rows.tolist(), key=self._identities.__getitem__)
            vectors = self.index.vectors[rows]
            return Shortlist([self._identities[row] for row in rows], vectors, l2_normalize(vectors),
                             [self._stats[row] for row in rows])

    # --- saving ---------------------------------------------------------------------------------
    def _persist(self, store: TemplateStore) -> None:
        """Save when large enough; otherwise remove a saved file (it could hold removed vectors)."""
        if self.path is None:
            return
        try:
            self._save(store)
        except (StoreError, OSError) as error:  # searching from memory still works; the next open rebuilds
            log.warning("the %s gallery index is not saved: %s", self.key.modality, error)

    def _save(self, store: TemplateStore) -> None:
        if self.count < self.config.save_min:
            self.path.unlink(missing_ok=True)
            return
        header = {"modality": self.key.modality, "model_id": self.key.model_id, "model_version": self.key.model_version,
                  "version": [self.version.version, self.version.stamp], "count": self.count, "kind": self.index.kind}
        stats = [None if found is None else [found.mean, found.std, found.top_k, found.cohort_id] for found in self._stats]
        names = json.dumps({"identities": self._identities, "stats": stats,
                            "skipped": sorted(self._skipped)}).encode("utf-8")
        save_gallery(self.path, header, [memoryview(names), *self.index.to_buffers()], store)


def _index(rows: list[tuple[str, np.ndarray, CohortStats | None]], config: IndexConfig) -> VectorIndex:
    if not rows:
        return VectorIndex.build(np.empty((0, 0), np.float32), config)
    return VectorIndex.build(np.stack([vector for _, vector, _ in rows]), config)


def _all_templates(store: TemplateStore, connection, modality: str) -> Iterable[Template]:
    """Every template of ``modality`` in identity order, a page at a time."""
    last = ""
    while True:
        page = store.select_templates(
            connection, "WHERE rowid IN (SELECT rowid FROM templates WHERE modality = ? AND identity > ?"
            " ORDER BY identity LIMIT ?)", (modality, last, _PAGE))
        yield from page
        if len(page) < _PAGE:
            return
        last = page[-1].identity


def _templates_of(store: TemplateStore, connection, modality: str, names: set[str]) -> list[Template]:
    ordered, found = sorted(names), []
    for start in range(0, len(ordered), _MAX_VARIABLES):
        chunk = ordered[start : start + _MAX_VARIABLES]
        marks = ", ".join("?" * len(chunk))
        found += store.select_templates(connection, f"WHERE modality = ? AND identity IN ({marks})", (modality, *chunk))
    return found

