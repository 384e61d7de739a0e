"""Export and import of the enrollment store: round trip, validation before writing, models."""

from __future__ import annotations

import base64
import json
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from vector_pipeline import direction

from enrollment import TemplateStore
from enrollment.backup import export_store, import_store, read_export
from enrollment.errors import BackupError
from verify.errors import ModelMismatchError
from verify.normalization import CohortStats

MODEL = ("vector", "1")
MODELS = {"face": MODEL, "voice": MODEL}
KEY = bytes(range(32))
NAN_SUM = base64.b64encode(np.full(8, np.nan, "<f4").tobytes()).decode()
STATS = CohortStats(0.1, 0.05, 10, "cohort")
BAND_STATS = CohortStats(0.2, 0.04, 10, "cohort")


@pytest.fixture
def source(tmp_path: Path) -> TemplateStore:
    with TemplateStore(tmp_path / "source.db") as store:
        store.add_sample("alice", "face", direction(0), *MODEL)
        store.add_sample("alice", "face", direction(1), *MODEL)
        voice = store.add_sample("alice", "voice", direction(2), *MODEL, narrowband=direction(5))
        store.set_cohort_stats(voice, STATS, BAND_STATS)
        store.add_sample("李小龙 '); DROP TABLE templates;--", "face", direction(3), *MODEL)
        yield store


@pytest.fixture
def exported(source: TemplateStore, tmp_path: Path) -> Path:
    path = tmp_path / "backup.json"
    assert export_store(source, path) == 3
    return path


@pytest.fixture
def target(tmp_path: Path):
    with TemplateStore(tmp_path / "target.db") as store:
        yield store


def test_round_trip_is_exact_and_the_file_is_private(source, exported: Path, target) -> None:
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    assert import_store(target, exported, MODELS) == 3
    assert target.list_templates() == source.list_templates()
    assert not list(exported.parent.glob(".*partial"))


def test_import_into_a_keyed_store_seals_every_template(source, exported: Path, tmp_path: Path) -> None:
    with TemplateStore(tmp_path / "sealed.db", key=KEY) as store:
        import_store(store, exported, MODELS)
        assert store.get("alice", "face").sample_count == 2
    with TemplateStore(tmp_path / "sealed.db", key=KEY) as store:
        assert store.list_templates() == source.list_templates()


def test_the_narrowband_copy_and_its_statistics_are_exported(exported: Path, target) -> None:
    document = json.loads(exported.read_text(encoding="utf-8"))
    face, voice = document["templates"][:2]
    assert document["format_version"] == 3 and face["narrowband_sum"] is None and face["narrowband_stats"] is None
    assert base64.b64decode(voice["narrowband_sum"]) == direction(5).astype("<f4").tobytes()
    assert voice["narrowband_stats"]["mean"] == BAND_STATS.mean
    import_store(target, exported, MODELS)
    imported = target.get("alice", "voice")
    np.testing.assert_array_equal(imported.narrowband_sum, direction(5))
    assert (imported.cohort_stats, imported.narrowband_stats) == (STATS, BAND_STATS)


def test_a_version_2_file_imports_without_copies(source, exported: Path, target) -> None:
    def version_2(document: dict) -> None:
        document["format_version"] = 2
        for record in document["templates"]:
            del record["narrowband_sum"], record["narrowband_stats"]

    assert import_store(target, edited(exported, version_2), MODELS) == 3
    voice = target.get("alice", "voice")
    assert voice.narrowband_sum is None and voice.narrowband_stats is None and voice.cohort_stats == STATS
    assert voice.embedding_sum.tobytes() == source.get("alice", "voice").embedding_sum.tobytes()


def test_export_is_one_snapshot_while_others_write(source, tmp_path: Path) -> None:
    stop = threading.Event()

    def writer() -> None:
        with TemplateStore(source.path) as other:
            while not stop.is_set():
                other.add_sample("busy", "face", direction(4), *MODEL)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for round_ in range(5):
            path = tmp_path / f"snap{round_}.json"
            export_store(source, path)
            templates = read_export(path, MODELS)
            assert {t.identity for t in templates} >= {"alice"}
            for template in templates:  # sum and count of the same commit
                if template.identity == "busy":
                    assert template.embedding_sum[4] == template.sample_count
    finally:
        stop.set()
        thread.join(timeout=30)


def edited(path: Path, change) -> Path:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def set_first(field: str, value):
    return lambda document: document["templates"][0].__setitem__(field, value)


def set_voice(field: str, value):
    return lambda document: document["templates"][1].__setitem__(field, value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.__setitem__("format", "photos"), "not an export of an enrollment store"),
        (lambda d: d.__setitem__("format_version", 99), "export format version 99"),
        (lambda d: d.__setitem__("templates", {}), "has no list of templates"),
        (lambda d: d["templates"].append(dict(d["templates"][0])), r"holds 'alice' \(face\) twice"),
        (lambda d: d["templates"].append(7), "template #4 is not a template record"),
        (lambda d: d["templates"][2].pop("model_id"), r"template #3 is not a template record \(missing \['model_id'\]\)"),
        (set_first("embedding_sum", "@@@"), "template #1: embedding_sum is not base64"),
        (set_first("embedding_sum", "AAAAAA=="), "embedding_sum has 4 bytes for dim 8"),
        (set_first("dim", "eight"), "for dim 'eight'"),
        (set_first("embedding_sum", NAN_SUM), "NaN or infinite"),
        (set_first("identity", ""), "template #1 is invalid: identity '' is empty"),
        (set_first("sample_count", 0), "sample_count must be an integer >= 1"),
        (set_first("created_at", -5), "created_at must be a finite, non-negative time"),
        (set_first("modality", "iris"), "unknown modality 'iris'"),
        (set_voice("narrowband_sum", "@@@"), "template #2: narrowband_sum is not base64"),
        (set_voice("narrowband_sum", "AAAAAA=="), "template #2: narrowband_sum has 4 bytes for dim 8"),
        (set_voice("narrowband_sum", NAN_SUM), "template #2 is invalid: narrowband_sum holds NaN"),
        (set_voice("narrowband_stats", {"mean": 0.2}), "template #2 is invalid: cannot read cohort statistics"),
        (set_voice("narrowband_sum", None), "template #2 is invalid: narrowband_stats given without"),
    ],
    ids=["format", "version", "templates", "duplicate", "not-a-record", "missing-field", "base64", "length",
         "dim-type", "nan", "identity", "count", "time", "modality", "narrowband-base64", "narrowband-length",
         "narrowband-nan", "narrowband-stats", "narrowband-stats-alone"],
)
def test_invalid_files_are_refused_before_anything_is_written(exported: Path, target, change, message) -> None:
    target.add_sample("zed", "face", direction(7), *MODEL)
    with pytest.raises(BackupError, match=message):
        import_store(target, edited(exported, change), MODELS)
    assert [t.identity for t in target.list_templates()] == ["zed"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is not a JSON export"), (b"\xff\xfe garbage", "is not a JSON export"), (b"[1, 2]", "not an export")],
)
def test_non_json_files_are_refused(tmp_path: Path, target, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(BackupError, match=message):
        import_store(target, path, MODELS)
    with pytest.raises(BackupError, match="cannot read import file"):
        import_store(target, tmp_path / "missing.json", MODELS)


def test_a_template_of_another_model_refuses_the_whole_import(exported: Path, target) -> None:
    models = {"face": MODEL, "voice": ("ge2e", "abc")}
    with pytest.raises(ModelMismatchError, match=r"'alice' \(voice\) was made by vector 1, but the model in use is ge2e abc"):
        import_store(target, exported, models)
    assert target.list_templates() == []


def test_enrolled_names_clash_unless_replace(exported: Path, target) -> None:
    target.add_sample("alice", "voice", direction(6), *MODEL)
    with pytest.raises(BackupError, match=r"already enrolled: 'alice' \(voice\); nothing was imported"):
        import_store(target, exported, MODELS)
    assert len(target.list_templates()) == 1
    assert import_store(target, exported, MODELS, replace=True) == 3
    np.testing.assert_array_equal(target.get("alice", "voice").embedding_sum, direction(2))


def test_export_to_an_unwritable_place_is_a_clear_error(source, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="cannot write export file"):
        export_store(source, tmp_path / "no" / "such" / "dir" / "backup.json")
