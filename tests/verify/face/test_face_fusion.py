"""Fusion of alignments and networks into one vector: its arithmetic, its identity, its fallbacks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from verify.config import FaceFusionConfig
from verify.errors import ConfigError, FaceTooSmallError, NoFaceError
from verify.face.align import align_face
from verify.face.detect import FaceDetector, choose_face
from verify.face.pipeline import (
    FACE_MODEL_ID,
    FACE_MODEL_VERSION,
    LEGACY_FUSION,
    FacePipeline,
    fuse_embeddings,
    fusion_identity,
)
from verify.face.reid import FACE_REID_WEIGHTS
from verify.io import decode_image
from verify.scoring import l2_normalize


# --- arithmetic ---------------------------------------------------------------------------------
def test_fusing_two_networks_by_hand() -> None:
    fused = fuse_embeddings([np.array([[1.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])])
    np.testing.assert_allclose(fused, [2**-0.5, 0, 0, 2**-0.5, 0], atol=1e-7)


def test_alignments_are_averaged_then_renormalised() -> None:
    fused = fuse_embeddings([np.array([[1.0, 0.0], [0.0, 1.0]])])
    np.testing.assert_allclose(fused, [2**-0.5, 2**-0.5], atol=1e-7)


def test_the_fused_cosine_is_the_mean_of_the_networks_cosines() -> None:
    rng = np.random.default_rng(0)
    first = [l2_normalize(rng.normal(size=(2, 256))), l2_normalize(rng.normal(size=(2, 128)))]
    second = [l2_normalize(rng.normal(size=(1, 256))), l2_normalize(rng.normal(size=(1, 128)))]
    a, b = fuse_embeddings(first), fuse_embeddings(second)
    per_network = [float(l2_normalize(x.mean(axis=0)) @ l2_normalize(y.mean(axis=0))) for x, y in zip(first, second)]
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert float(a @ b) == pytest.approx(np.mean(per_network), abs=1e-6)


# --- identity -----------------------------------------------------------------------------------
def test_the_legacy_recipe_keeps_the_old_model_id_and_version() -> None:
    assert fusion_identity(LEGACY_FUSION) == ("face-reidentification-retail-0095", FACE_REID_WEIGHTS.sha256[:12])


def test_every_change_of_recipe_changes_the_version() -> None:
    shipped = FaceFusionConfig()
    assert fusion_identity(shipped) == (FACE_MODEL_ID, FACE_MODEL_VERSION)
    others = [
        FaceFusionConfig(shipped.detectors, shipped.networks, mirror=not shipped.mirror),
        FaceFusionConfig(shipped.detectors[::-1], shipped.networks, mtcnn_refines=shipped.mtcnn_refines),
        FaceFusionConfig(shipped.detectors, shipped.networks, mtcnn_refines=not shipped.mtcnn_refines),
        FaceFusionConfig(("yunet",), shipped.networks),
        FaceFusionConfig(shipped.detectors, ("sface",)),
    ]
    versions = {fusion_identity(fusion)[1] for fusion in others}
    assert len(versions) == len(others) and FACE_MODEL_VERSION not in versions
    assert fusion_identity(FaceFusionConfig(shipped.detectors, ("sface",)))[0] != FACE_MODEL_ID


@pytest.mark.parametrize(
    "options, match",
    [({"detectors": ()}, "face detectors"), ({"detectors": ("mtcnn", "mtcnn")}, "face detectors"),
     ({"networks": ("arcface",)}, r"face networks \('arcface',\)")],
)  # fmt: skip
def test_a_bad_recipe_is_refused(options, match) -> None:
    with pytest.raises(ConfigError, match=match):
        FaceFusionConfig(**options)


# --- the shipped pipeline's vector --------------------------------------------------------------
def test_each_networks_part_is_its_unit_embedding_averaged_over_the_alignments(face_pipeline, face_files, face_embeddings):
    assert face_pipeline.model_id == FACE_MODEL_ID and face_pipeline.model_version == FACE_MODEL_VERSION
    scale = np.sqrt(len(face_pipeline.networks))
    for path, embedding in list(zip(face_files, face_embeddings))[::4]:
        image = decode_image(path)
        _, face = face_pipeline.locate(image.shape, face_pipeline.detect([image])[0])
        assert len(face.alignments) == 2 and embedding.measures["alignments"] == 2
        start = 0
        for network in face_pipeline.networks.values():
            crops = np.stack([align_face(image, lm, network.template, network.size) for lm in face.alignments])
            expected = l2_normalize(network.embed(crops).mean(axis=0))
            part = embedding.vector[start : start + len(expected)] * scale
            np.testing.assert_allclose(part, expected, atol=5e-4)
            start += len(expected)
        assert start == len(embedding.vector)


def test_the_pipelines_cosine_is_the_mean_of_its_networks_cosines(face_pipeline, face_embeddings) -> None:
    a, b = face_embeddings[0].vector, face_embeddings[1].vector
    bounds = np.cumsum([0] + [len(network.embed(np.zeros((1, network.size, network.size, 3), np.uint8))[0])
                              for network in face_pipeline.networks.values()])  # fmt: skip
    parts = [float(l2_normalize(a[i:j]) @ l2_normalize(b[i:j])) for i, j in zip(bounds[:-1], bounds[1:])]
    assert float(a @ b) == pytest.approx(np.mean(parts), abs=1e-6)


def test_measures_describe_the_face(face_embeddings) -> None:
    measures = face_embeddings[0].measures
    assert set(measures) == {"face_px", "sharpness", "brightness", "contrast", "yaw", "alignments", "faces"}
    assert 80 < measures["face_px"] < 140 and abs(measures["yaw"]) < 0.3 and measures["sharpness"] > 15


# --- fallbacks ----------------------------------------------------------------------------------
class NoFaces:
    """A detector that never finds a face."""

    def detect(self, images):
        return [[] for _ in images]


def test_a_face_only_one_detector_finds_is_embedded_from_its_alignment(face_pipeline, face_files, face_embeddings, monkeypatch):
    name = face_pipeline.fusion.detectors[0]
    monkeypatch.setitem(face_pipeline.detectors, name, NoFaces())
    embedding = face_pipeline.embed(face_files[0])
    assert embedding.measures["alignments"] == 1 and embedding.vector.shape == face_embeddings[0].vector.shape
    assert float(embedding.vector @ face_embeddings[0].vector) > 0.95


def test_mtcnn_refining_another_detectors_face_gives_mtcnns_landmarks(face_pipeline, face_files) -> None:
    mtcnn: FaceDetector = face_pipeline.detectors["mtcnn"]
    yunet = face_pipeline.detectors["yunet"]
    for path in face_files[::2]:
        image = decode_image(path)
        searched = choose_face(mtcnn.detect([image])[0], image.shape)
        (refined,) = mtcnn.refine(image, [choose_face(yunet.detect([image])[0], image.shape)])
        eye_distance = np.linalg.norm(searched.landmarks[1] - searched.landmarks[0])
        assert np.linalg.norm(refined.landmarks - searched.landmarks, axis=1).max() < 0.1 * eye_distance


def test_a_refining_pipeline_searches_the_whole_image_when_the_first_detector_finds_nothing(face_files, monkeypatch):
    pipeline = FacePipeline("cpu", fusion=FaceFusionConfig(("yunet", "mtcnn"), ("reid",), mtcnn_refines=True))
    image = decode_image(face_files[0])
    (yunet_found, refined), = pipeline.detect([image])
    assert len(yunet_found) == 1 and len(refined) == 1
    monkeypatch.setitem(pipeline.detectors, "yunet", NoFaces())
    (nothing, searched), = pipeline.detect([image])
    assert nothing == [] and len(searched) == 1
    np.testing.assert_allclose(searched[0].landmarks, refined[0].landmarks, atol=0.1 * 45)


def test_embed_with_face_returns_the_box_with_the_result(face_pipeline, face_files) -> None:
    image = decode_image(face_files[0])
    face, embedding = face_pipeline.embed_with_face(image)
    assert face is not None and embedding.vector.shape == (384,)
    assert face_pipeline.embed_with_face(np.full((240, 320, 3), 128, np.uint8))[0] is None
    assert isinstance(face_pipeline.embed_with_face(np.full((240, 320, 3), 128, np.uint8))[1], NoFaceError)
    tiny = np.full((480, 640, 3), 128, np.uint8)
    tiny[200:240, 300:340] = cv2.resize(image, (40, 40), interpolation=cv2.INTER_AREA)  # face ~15 px
    box, error = face_pipeline.embed_with_face(tiny)
    assert isinstance(error, FaceTooSmallError) and box.short_side < 24
