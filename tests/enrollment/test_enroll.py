"""Tests of enrollment.enroll with the shipped pipelines: enroll, add samples, check, refuse."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from enrollment import TemplateStore, UnknownIdentityError
from enrollment.enroll import check, check_many, enroll, enrolled_template
from verify.errors import DecodeError, ModelMismatchError, QualityError
from verify.io import decode_image
from verify.models import shipped_verifier
from verify.verifier import Verifier


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "enrollments.db"


@pytest.fixture
def store(store_path: Path):
    with TemplateStore(store_path) as opened:
        yield opened


@pytest.fixture(scope="module")
def face_verifier(face_pipeline) -> Verifier:
    return shipped_verifier(face_pipeline, "medium")


@pytest.fixture(scope="module")
def voice_verifier(voice_pipeline) -> Verifier:
    return shipped_verifier(voice_pipeline, "medium")


@pytest.fixture(scope="module")
def blurred_face(face_files) -> np.ndarray:
    return cv2.GaussianBlur(decode_image(face_files[0]), (0, 0), 4)


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


# --- enroll -----------------------------------------------------------------------------------
def test_enroll_from_one_sample_stores_its_embedding(store, face_pipeline, face_files, face_embeddings) -> None:
    result = enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[0])
    template = result.template
    assert (template.identity, template.modality, template.sample_count) == ("Andy", "face", 1)
    assert (template.model_id, template.model_version) == (face_pipeline.model_id, face_pipeline.model_version)
    np.testing.assert_allclose(template.embedding, face_embeddings[0].vector, atol=1e-4)
    np.testing.assert_allclose(result.sample.vector, face_embeddings[0].vector, atol=1e-4)
    assert store.get("Andy", "face") == template


def test_a_second_enroll_adds_a_sample(store, face_pipeline, face_files, face_embeddings) -> None:
    first = enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[0]).template
    second = enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[1]).template
    assert second.sample_count == 2 and second.created_at == first.created_at
    expected = unit(face_embeddings[0].vector + face_embeddings[1].vector)
    np.testing.assert_allclose(second.embedding, expected, atol=1e-4)
    assert store.get("Andy", "face").sample_count == 2
    assert len(store.list_templates()) == 1


def test_face_and_voice_templates_of_one_identity_are_separate(store, face_pipeline, voice_pipeline, face_files, voice_files) -> None:
    enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[0])
    enroll(store, shipped_verifier(voice_pipeline), "Andy", voice_files[0])
    assert [t.modality for t in store.find("Andy")] == ["face", "voice"]


def test_a_blurred_sample_is_refused_unless_low_quality_is_allowed(store, face_pipeline, blurred_face) -> None:
    with pytest.raises(QualityError, match=r"cannot enroll from this sample: face is blurry"):
        enroll(store, shipped_verifier(face_pipeline), "Andy", blurred_face)
    with pytest.raises(UnknownIdentityError):
        store.get("Andy", "face")  # nothing was stored
    result = enroll(store, shipped_verifier(face_pipeline), "Andy", blurred_face, allow_low_quality=True)
    assert result.template.sample_count == 1
    assert any("blurry" in issue for issue in result.sample.quality_issues)


def test_an_unreadable_sample_stores_nothing(store, face_pipeline, tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="no such file"):
        enroll(store, shipped_verifier(face_pipeline), "Andy", tmp_path / "missing.jpg")
    assert store.list_templates() == []


# --- check ------------------------------------------------------------------------------------
def test_check_accepts_a_genuine_face_and_rejects_an_impostor(store, face_pipeline, face_verifier, face_files) -> None:
    enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[0])
    genuine = check(store, face_verifier, "Andy", face_files[2])
    assert genuine.accepted and genuine.outcome == "accepted" and genuine.score >= genuine.threshold
    impostor = check(store, face_verifier, "Andy", face_files[4])
    assert impostor.outcome == "rejected" and impostor.reason == "score below threshold"


def test_check_accepts_a_genuine_voice(store, voice_pipeline, voice_verifier, voice_files) -> None:
    enroll(store, shipped_verifier(voice_pipeline), "103", voice_files[0])
    assert check(store, voice_verifier, "103", voice_files[1]).outcome == "accepted"
    assert check(store, voice_verifier, "103", voice_files[4]).outcome == "rejected"


def test_a_low_quality_impostor_probe_asks_for_a_retry(store, face_pipeline, face_verifier, face_files) -> None:
    enroll(store, shipped_verifier(face_pipeline), "Angela", face_files[3])
    decision = check(store, face_verifier, "Angela", cv2.GaussianBlur(decode_image(face_files[0]), (0, 0), 4))
    assert decision.outcome == "retry" and "blurry" in decision.reason


def test_check_many_mixes_decisions_and_errors(store, face_pipeline, face_verifier, face_files, tmp_path: Path) -> None:
    enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[0])
    results = check_many(store, face_verifier, "Andy", [face_files[1], tmp_path / "missing.jpg", face_files[7]])
    assert results[0].outcome == "accepted"
    assert isinstance(results[1], DecodeError)
    assert results[2].outcome == "rejected"


def test_a_template_of_another_model_version_is_refused(store, face_pipeline, face_verifier, face_embeddings, face_files) -> None:
    store.add_sample("Andy", "face", face_embeddings[0].vector, face_pipeline.model_id, "0123456789ab")
    with pytest.raises(ModelMismatchError, match=r"'Andy' was enrolled with .* 0123456789ab.*re-enroll 'Andy'"):
        check(store, face_verifier, "Andy", face_files[1])
    with pytest.raises(ModelMismatchError, match="0123456789ab"):
        enrolled_template(store, face_pipeline, "Andy")
    with pytest.raises(ModelMismatchError, match="re-enroll"):
        enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[1])
    assert store.get("Andy", "face").sample_count == 1


def test_an_unknown_identity_is_reported(store, face_pipeline, face_verifier, voice_verifier, face_files, voice_files) -> None:
    with pytest.raises(UnknownIdentityError, match="no face template enrolled for 'Nobody'"):
        check(store, face_verifier, "Nobody", face_files[0])
    enroll(store, shipped_verifier(face_pipeline), "Andy", face_files[0])
    with pytest.raises(UnknownIdentityError, match="no voice template enrolled for 'Andy'"):
        check(store, voice_verifier, "Andy", voice_files[0])


# --- privacy: the store keeps embeddings only --------------------------------------------------
def store_files(store_path: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in store_path.parent.iterdir() if path.is_file()}


def test_the_store_holds_no_raw_sample(store_path: Path, face_pipeline, voice_pipeline, face_files, voice_files) -> None:
    with TemplateStore(store_path) as store:
        for path in face_files[:3]:
            enroll(store, shipped_verifier(face_pipeline), "Andy", path)
        for path in voice_files[:3]:
            enroll(store, shipped_verifier(voice_pipeline), "Andy", path)
        enroll(store, shipped_verifier(face_pipeline), "Angela", face_files[3])
    before = store_files(store_path)
    assert store_path in before
    assert sum(before.values()) <= 96 * 1024, before  # 3 KiB of sums in ~23 pages of tables, indexes, change log
    for path, size in before.items():
        data = path.read_bytes()
        for magic in (b"\xff\xd8\xff", b"fLaC", b"RIFF", b"\x89PNG"):
            assert magic not in data, f"{path.name} holds {magic!r}"
    # more samples of an enrolled identity change the stored sum, not the file size
    with TemplateStore(store_path) as store:
        for path in face_files[:3]:
            enroll(store, shipped_verifier(face_pipeline), "Andy", path)
        assert store.get("Andy", "face").sample_count == 6
    assert sum(store_files(store_path).values()) == sum(before.values())


# --- phone lines ------------------------------------------------------------------------------
def phone_line(path: Path) -> tuple[np.ndarray, int]:
    """The clip at ``path`` through a telephone channel (300-3400 Hz, 8 kHz, mu-law)."""
    from verify.io import decode_audio
    from verify.voice.degrade import telephone
    from verify.voice.frontend import resample

    samples, rate = decode_audio(path)
    clip = resample(samples, rate, 16_000)
    return telephone(clip, np.random.default_rng(0), mu_law_probability=1.0), 16_000


def test_a_voice_enrolls_with_its_narrowband_copy_and_a_phone_line_is_held_against_it(
        store, voice_pipeline, voice_verifier, voice_files) -> None:
    route = voice_verifier.scorer.narrowband
    enrolled = enroll(store, voice_verifier, "103", voice_files[0]).template
    assert enrolled.narrowband is not None and enrolled.narrowband_stats is not None
    assert float(enrolled.narrowband @ enrolled.embedding) < 0.99  # a copy, not the sample again

    phoned = voice_pipeline.embed(phone_line(voice_files[1]))
    assert route.takes(phoned.measures)
    over_the_phone = check(store, voice_verifier, "103", phone_line(voice_files[1]))
    assert over_the_phone.llr_threshold == route.thresholds.operating_point("medium").threshold
    assert over_the_phone.accepted  # the same speaker, another utterance
    impostor = check(store, voice_verifier, "103", phone_line(voice_files[4]))
    assert not impostor.accepted
    wide = check(store, voice_verifier, "103", voice_files[1])
    assert wide.llr_threshold == voice_verifier.operating_point.threshold


def test_a_template_enrolled_before_copies_were_kept_answers_a_phone_line_as_before(
        store, voice_pipeline, voice_verifier, voice_files) -> None:
    sample = voice_pipeline.embed(voice_files[0])
    store.add_sample("103", "voice", sample.vector, voice_pipeline.model_id, voice_pipeline.model_version)

    decision = check(store, voice_verifier, "103", phone_line(voice_files[1]))

    assert decision.llr_threshold == voice_verifier.operating_point.threshold
    assert enrolled_template(store, voice_pipeline, "103").narrowband is None
