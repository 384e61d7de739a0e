"""Face embeddings with Intel's ``face-reidentification-retail-0095``: its contract and the network
that runs it (the shipped OpenVINO IR on the CPU, the PyTorch port on CUDA).

Contract: a face aligned by a similarity transform of its five landmarks onto
:data:`REID_LANDMARK_TEMPLATE`, ``128 x 128``, BGR, raw 0..255 pixels; output 256-d, compared by
cosine after L2 normalisation. The architecture and the conversion of Intel's weights are in
:mod:`verify.face.reid_net` (PyTorch).
"""

from __future__ import annotations

import numpy as np

from verify.device import Device
from verify.runtime import NetworkSpec, load_network
from verify.scoring import l2_normalize
from verify.weights import WeightsFile

FACE_REID_INPUT_SIZE = 128
"""Side of the square aligned face crop, in pixels."""

FACE_REID_EMBEDDING_DIM = 256

REID_LANDMARK_TEMPLATE = np.array(
    [
        [0.31556875, 0.4615741],  # left eye
        [0.68262291, 0.4615741],  # right eye
        [0.5, 0.6405741],  # nose tip
        [0.34947187, 0.8246741],  # left mouth corner
        [0.65343645, 0.8246741],  # right mouth corner
    ],
    dtype=np.float64,
)
"""``(5, 2)`` landmark positions ``(x, y)`` in units of the 128-pixel side (MTCNN order)."""

FACE_REID_WEIGHTS = WeightsFile(
    filename="face-reidentification-retail-0095.safetensors",
    sha256="cb1b8b6aeb389f32083f670961721839e1a57ef69c31480d68f19b939ea87f66",
    rebuild_command="python scripts/convert_face_reid.py",
)

FACE_REID_NETWORK = NetworkSpec(
    name="face-reidentification-retail-0095",
    graph_sha256="2b96a6e8feba4bcd382a7a8ba0dedf9574aeb2f4a34d68ac904422a21e1b9ebf",
    weights_sha256="6ecb3eb2e3bac2177e66e26d74f0688fdb890e5076eb8bf5ded9d9c32246732f",
    module="verify.face.reid_net:shipped_reid_net",
    example_shape=(1, 3, FACE_REID_INPUT_SIZE, FACE_REID_INPUT_SIZE),
    dynamic_dims=(0,),
)

CPU_BATCH = 2
"""Crops per forward pass on the CPU (one photo's two alignments): with both lanes busy, 3.73 ms a
crop against 3.94 at 8 and 4.11 at 16, larger batches spilling the caches; every size gives the
same embeddings bit for bit (``python benchmarks/network_batch.py --rounds 5``,
``benchmarks/results/network_batch_cpu.json``)."""


class ReidNetwork:
    """The re-identification network on one device: aligned uint8 crops -> unit embeddings."""

    def __init__(self, device: Device, cpu_runtime: str = "openvino", cpu_threads: int | None = None,
                 batch_size: int = 32) -> None:
        """Load the network (see :func:`verify.runtime.load_network`); ``batch_size`` crops per
        pass on CUDA, at most :data:`CPU_BATCH` on the CPU."""
        self.device = device
        self.network = load_network(FACE_REID_NETWORK, device, cpu_runtime, cpu_threads)
        self.batch_size = batch_size if device.type == "cuda" else min(batch_size, CPU_BATCH)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Aligned ``(N, 128, 128, 3)`` uint8 RGB crops -> ``(N, 256)`` float32 unit vectors."""
        vectors = []
        for start in range(0, len(crops), self.batch_size):
            (raw,) = self.network(self._network_input(crops[start : start + self.batch_size]))
            vectors.append(l2_normalize(raw))
        return np.concatenate(vectors).astype(np.float32)

    def _network_input(self, crops: np.ndarray):
        """``(N, 3, 128, 128)`` float BGR: made by NumPy on the CPU; on CUDA the uint8 crops are
        copied (a quarter of the bytes) and converted there."""
        if self.device.type == "cpu":
            return np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        import torch

        return torch.from_numpy(crops).to(self.device.torch()).flip(-1).permute(0, 3, 1, 2).float()
