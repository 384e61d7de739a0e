"""Behaviour of the shipped face pipeline on the shipped samples and on doctored copies of them."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from verify.errors import DecodeError, FaceTooSmallError, NoFaceError
from verify.face.pipeline import PARTLY_HIDDEN
from verify.io import decode_image
from verify.models import shipped_verifier
from verify.scoring import cosine_scores


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(cosine_scores(a, b)[0, 0])


def person(path: Path) -> str:
    return path.parent.name


@pytest.fixture(scope="module")
def sample(face_files) -> np.ndarray:
    """Andy_Roddick/0.jpg as (250, 250, 3) uint8 RGB."""
    return decode_image(face_files[0])


@pytest.fixture(scope="module")
def sample_vector(face_embeddings) -> np.ndarray:
    return face_embeddings[0].vector


# --- the shipped samples ----------------------------------------------------------------------
def test_embeddings_are_unit_vectors_with_an_aligned_preview(face_embeddings) -> None:
    for embedding in face_embeddings:
        # re-identification network (256) and SFace (128), fused
        assert embedding.vector.shape == (384,) and embedding.vector.dtype == np.float32
        assert np.linalg.norm(embedding.vector) == pytest.approx(1.0, abs=1e-5)
        assert embedding.preview.shape == (128, 128, 3) and embedding.preview.dtype == np.uint8
        assert embedding.quality_issues == ()


def test_every_genuine_pair_scores_above_every_impostor_pair(face_files, face_embeddings) -> None:
    scores = cosine_scores(np.stack([e.vector for e in face_embeddings]), np.stack([e.vector for e in face_embeddings]))
    people = np.array([person(path) for path in face_files])
    same = people[:, None] == people[None, :]
    off_diagonal = ~np.eye(len(people), dtype=bool)
    genuine, impostor = scores[same & off_diagonal], scores[~same]
    assert len(genuine) == 18 and len(impostor) == 54
    # clearly: a wide gap, not just an ordering
    assert genuine.min() - impostor.max() > 0.15, (genuine.min(), impostor.max())


def test_medium_level_accepts_genuine_and_rejects_impostors(face_pipeline, face_files, face_embeddings) -> None:
    verifier = shipped_verifier(face_pipeline, "medium")
    assert verifier.operating_point.target_far == 1e-3
    templates = {person(path): e.vector for path, e in zip(face_files, face_embeddings) if path.stem == "0"}
    probes = [(path, e) for path, e in zip(face_files, face_embeddings) if path.stem != "0"]
    for claimed, template in templates.items():
        for path, probe in probes:
            decision = verifier.decide(template, probe)
            expected = "accepted" if person(path) == claimed else "rejected"
            assert decision.outcome == expected, (claimed, str(path), decision)
            assert decision.llr_threshold == verifier.operating_point.threshold


# Batched and single forward passes run different CPU kernels (oneDNN picks by batch size and
# thread count); on a 16-core machine they differ by up to about 1e-4 per component.
BATCH_ATOL = 5e-4


def test_batch_equals_one_at_a_time(face_pipeline, face_files, face_embeddings) -> None:
    for path, batched in zip(face_files, face_embeddings):
        single = face_pipeline.embed(path)
        np.testing.assert_allclose(single.vector, batched.vector, atol=BATCH_ATOL)
        assert single.notes == batched.notes and single.quality_issues == batched.quality_issues


def test_bytes_array_and_path_sources_embed_alike(face_pipeline, face_files, sample_vector) -> None:
    from_bytes = face_pipeline.embed(face_files[0].read_bytes())
    from_array = face_pipeline.embed(decode_image(face_files[0]))
    np.testing.assert_allclose(from_bytes.vector, sample_vector, atol=1e-4)
    np.testing.assert_allclose(from_array.vector, sample_vector, atol=1e-4)


# --- detection and quality --------------------------------------------------------------------
def test_blank_grey_image_has_no_face(face_pipeline) -> None:
    with pytest.raises(NoFaceError, match="no face found"):
        face_pipeline.embed(np.full((480, 640, 3), 128, np.uint8))


def test_tiny_face_in_a_large_frame_is_too_small(face_pipeline, sample) -> None:
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[200:240, 300:340] = cv2.resize(sample, (40, 40), interpolation=cv2.INTER_AREA)  # face ~15 px
    with pytest.raises(FaceTooSmallError, match=r"the face is 1\d px wide; at least 24 px is needed: move closer"):
        face_pipeline.embed(canvas)


def test_two_faces_uses_the_larger_central_one_and_says_so(face_pipeline, face_files, face_embeddings, sample) -> None:
    other = decode_image(face_files[6])  # Antonio_Banderas/0.jpg
    canvas = np.full((300, 450, 3), 128, np.uint8)
    canvas[25:275, 0:250] = sample
    canvas[75:225, 280:430] = cv2.resize(other, (150, 150), interpolation=cv2.INTER_AREA)
    embedding = face_pipeline.embed(canvas)
    # 3 with YuNet choosing: it also finds the half face at the left edge of Antonio_Banderas/0.jpg
    assert embedding.notes == ("3 faces found; used the largest, most central one",)
    assert embedding.quality_issues == ()
    assert cosine(embedding.vector, face_embeddings[0].vector) > 0.9
    assert cosine(embedding.vector, face_embeddings[6].vector) < 0.3


def test_heavily_blurred_face_is_flagged_blurry(face_pipeline, sample, sample_vector) -> None:
    embedding = face_pipeline.embed(cv2.GaussianBlur(sample, (0, 0), 4))
    assert any(issue.startswith("face is blurry") for issue in embedding.quality_issues), embedding.quality_issues


def test_very_dark_face_is_flagged_too_dark(face_pipeline, sample) -> None:
    embedding = face_pipeline.embed((sample * 0.15).astype(np.uint8))
    assert any(issue.startswith("face is too dark") for issue in embedding.quality_issues), embedding.quality_issues


def test_a_face_only_one_detector_locates_is_embedded_and_flagged_partly_hidden(
    face_pipeline, sample, sample_vector, monkeypatch
) -> None:
    monkeypatch.setattr(face_pipeline.detectors["mtcnn"], "refine", lambda image, seeds: [])
    embedding = face_pipeline.embed(sample)
    assert embedding.quality_issues == (PARTLY_HIDDEN,) and embedding.measures["alignments"] == 1
    assert cosine(embedding.vector, sample_vector) > 0.9  # from YuNet's alignment alone


def test_a_face_with_its_eyes_hidden_is_flagged_partly_hidden(face_pipeline, face_files) -> None:
    for index in (0, 3):  # Andy_Roddick/0.jpg, Angela_Bassett/0.jpg: centred 250 px portraits
        image = decode_image(face_files[index]).copy()
        image[95:135, 60:190] = 40  # a dark band over both eyes: YuNet still finds a face, MTCNN does not
        assert PARTLY_HIDDEN in face_pipeline.embed(image).quality_issues


def test_a_corrupt_file_in_a_batch_yields_its_error_and_the_others_embed(
    face_pipeline, face_files, face_embeddings, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(face_files[0].read_bytes()[:3000])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a JPEG" * 10)
    sources = [face_files[1], truncated, face_files[4], garbage, tmp_path / "missing.jpg"]
    results = face_pipeline.embed_many(sources)
    assert len(results) == 5
    assert isinstance(results[1], DecodeError) and "truncated or corrupt" in str(results[1])
    assert isinstance(results[3], DecodeError) and "not an image" in str(results[3])
    assert isinstance(results[4], DecodeError) and "no such file" in str(results[4])
    np.testing.assert_allclose(results[0].vector, face_embeddings[1].vector, atol=BATCH_ATOL)
    np.testing.assert_allclose(results[2].vector, face_embeddings[4].vector, atol=BATCH_ATOL)
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        face_pipeline.embed(truncated)


# --- encodings of the same photo --------------------------------------------------------------
def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_exif_rotated_jpeg_embeds_like_the_original(face_pipeline, face_files, sample, sample_vector) -> None:
    stored = Image.open(face_files[0]).transpose(Image.Transpose.ROTATE_90)  # stored on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    data = _encoded(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert decode_image(data).shape == sample.shape  # upright again
    assert cosine(face_pipeline.embed(data).vector, sample_vector) > 0.9


def test_colour_jpeg_embeds_like_the_greyscale_original(face_pipeline, sample, sample_vector) -> None:
    tinted = sample.astype(np.float32) * np.array([1.1, 1.0, 0.85]) + np.array([10, 0, 0])
    data = _encoded(Image.fromarray(np.clip(tinted, 0, 255).astype(np.uint8), "RGB"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "RGB"
    assert cosine(face_pipeline.embed(data).vector, sample_vector) > 0.9


def test_rgba_png_embeds_like_the_original(face_pipeline, sample, sample_vector) -> None:
    rgba = np.dstack([sample, np.full(sample.shape[:2], 200, np.uint8)])  # partly transparent
    data = _encoded(Image.fromarray(rgba, "RGBA"), "PNG")
    assert cosine(face_pipeline.embed(data).vector, sample_vector) > 0.9
    # an in-memory RGBA array is accepted too (alpha dropped)
    assert cosine(face_pipeline.embed(rgba).vector, sample_vector) > 0.99
