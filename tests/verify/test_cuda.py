"""The pipelines on CUDA give the CPU's embeddings, batched (runs only where CUDA exists)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verify.face.pipeline import FacePipeline
from verify.voice.pipeline import VoicePipeline

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


# PyTorch on both devices: that OpenVINO (the CPU default) agrees with PyTorch is tested in
# test_runtime.py and face/test_mtcnn.py.
@pytest.mark.parametrize(
    "pipeline_class, files_fixture, cpu_options",
    [(FacePipeline, "face_files", {"cpu_runtime": "torch"}), (VoicePipeline, "voice_files", {})],
)
def test_cuda_embeddings_match_cpu(pipeline_class, files_fixture, cpu_options, request):
    files = request.getfixturevalue(files_fixture)
    on_cpu = pipeline_class(device="cpu", **cpu_options).embed_many(files)
    on_gpu = pipeline_class(device="auto")

    assert on_gpu.device.type == "cuda"
    gpu_vectors = np.stack([result.vector for result in on_gpu.embed_many(files)])
    cpu_vectors = np.stack([result.vector for result in on_cpu])
    cosines = np.sum(gpu_vectors * cpu_vectors, axis=1)
    assert cosines.min() > 0.999, cosines


def test_large_face_batch_runs_on_cuda(face_files):
    pipeline = FacePipeline(device="cuda", batch_size=256)
    crops = np.random.default_rng(0).integers(0, 256, (512, 128, 128, 3), dtype=np.uint8)

    vectors = pipeline.networks["reid"].embed(crops)

    assert vectors.shape == (512, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
