"""Face pipeline: decode -> detect -> choose -> align -> quality -> embed, batched."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from verify.config import FaceFrontEndConfig, ImageLimits
from verify.device import prepare_device
from verify.embedding import BatchedPipeline, Embedding, name_source
from verify.errors import FaceTooSmallError, NoFaceError, VerifyError
from verify.face.align import align_face
from verify.face.detect import FaceDetector, choose_face
from verify.face.quality import face_quality_issues
from verify.face.reid_net import FACE_REID_INPUT_SIZE, FACE_REID_WEIGHTS, REID_LANDMARK_TEMPLATE, FaceReidNet
from verify.io import ImageSource, decode_image
from verify.runtime import compile_network
from verify.weights import load_into

FACE_MODEL_ID = "face-reidentification-retail-0095"
CPU_NETWORK_BATCH = 8
"""Crops per forward pass on the CPU: larger batches spill the caches and are slower per crop."""


class FacePipeline(BatchedPipeline):
    """Embeds face images with MTCNN alignment and Intel's face-reidentification-retail-0095."""

    modality = "face"
    model_id = FACE_MODEL_ID
    model_version = FACE_REID_WEIGHTS.sha256[:12]

    def __init__(
        self,
        device: str | torch.device = "auto",
        config: FaceFrontEndConfig = FaceFrontEndConfig(),
        limits: ImageLimits = ImageLimits(),
        batch_size: int = 32,
        cpu_threads: int | None = None,
        cpu_runtime: str = "openvino",
    ) -> None:
        """Load the detector and the embedding network on ``device``.

        Args:
            batch_size: images decoded, detected and embedded together.
            cpu_threads: torch and OpenVINO threads on the CPU (see :func:`prepare_device`).
            cpu_runtime: what runs the networks on the CPU (see :func:`compile_network`).
        """
        self.device = prepare_device(device, cpu_threads)
        self.config = config
        self.limits = limits
        self.batch_size = batch_size
        self.network_batch = batch_size if self.device.type == "cuda" else min(batch_size, CPU_NETWORK_BATCH)
        self.detector = FaceDetector(self.device, config, cpu_runtime, cpu_threads)
        example = torch.zeros(1, 3, FACE_REID_INPUT_SIZE, FACE_REID_INPUT_SIZE, device=self.device)
        network = load_into(FaceReidNet(), FACE_REID_WEIGHTS)
        self.network = compile_network(network, example, (0,), self.device, cpu_runtime, cpu_threads)

    def _embed_chunk(self, sources: Sequence[ImageSource]) -> list[Embedding | VerifyError]:
        decoded: list[np.ndarray | VerifyError] = []
        for source in sources:
            try:
                decoded.append(decode_image(source, self.limits))
            except VerifyError as error:
                decoded.append(error)
        images = [item for item in decoded if not isinstance(item, VerifyError)]
        detections = iter(self.detector.detect(images)) if images else iter(())
        faces: list[Embedding | VerifyError] = []
        for item in decoded:
            faces.append(item if isinstance(item, VerifyError) else self._crop(item, next(detections)))
        crops = [face.preview for face in faces if not isinstance(face, VerifyError)]
        vectors = iter(self.embed_crops(np.stack(crops))) if crops else iter(())
        return [
            name_source(face, source) if isinstance(face, VerifyError) else dataclasses.replace(face, vector=next(vectors))
            for source, face in zip(sources, faces)
        ]

    def _crop(self, image: np.ndarray, detections) -> Embedding | VerifyError:
        """The chosen face (its aligned crop as preview, quality issues, notes and box, no vector yet),
        or the error."""
        if not detections:
            return NoFaceError("no face found in the image")
        face = choose_face(detections, image.shape)
        if face.short_side < self.config.min_face_px:
            return FaceTooSmallError(
                f"the face is {face.short_side:.0f} px wide; at least {self.config.min_face_px} px is needed"
            )
        crop = align_face(image, face.landmarks, REID_LANDMARK_TEMPLATE, FACE_REID_INPUT_SIZE)
        notes = (f"{len(detections)} faces found; used the largest, most central one",) if len(detections) > 1 else ()
        box = tuple(float(value) for value in face.box)
        return Embedding(np.empty(0, np.float32), face_quality_issues(crop, self.config), notes, crop, location=box,
                         landmarks=np.array(face.landmarks, np.float32), measures={"faces": float(len(detections))})

    @torch.inference_mode()
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Embed aligned ``(N, 128, 128, 3)`` uint8 RGB crops: ``(N, 256)`` float32 unit vectors."""
        vectors = []
        for start in range(0, len(crops), self.network_batch):
            batch = self._network_input(crops[start : start + self.network_batch])
            vectors.append(torch.nn.functional.normalize(self.network(batch), dim=1).cpu().numpy())
        return np.concatenate(vectors).astype(np.float32)

    def _network_input(self, crops: np.ndarray) -> torch.Tensor:
        """``(N, 3, 128, 128)`` float BGR on the device.

        On the CPU NumPy makes it: torch's threads would wake and compete with OpenVINO's for the
        cores. On CUDA the uint8 crops are copied (a quarter of the bytes) and converted there.
        """
        if self.device.type == "cpu":
            return torch.from_numpy(np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32))
        return torch.from_numpy(crops).to(self.device).flip(-1).permute(0, 3, 1, 2).float()
