"""Heads and from-scratch encoders train and score on CUDA like on the CPU (runs only where CUDA exists)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.episodes import IdentitySplit
from training.features import RawInputs
from training.heads import load_head, save_head
from training.heads_train import HeadTrainConfig, fit_head
from training.scratch_train import ScratchConfig, embed_raw, train_scratch

from test_heads import eer_on, nuisance_clusters

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("method", ["siamese", "proto", "relation"])
def test_head_trains_on_cuda_and_scores_like_the_cpu(method, tmp_path):
    features, split = nuisance_clusters()
    config = HeadTrainConfig(epochs=3, steps_per_epoch=60, n_way=8, pair_batch=128, hidden=64, dropout=0.0,
                             learning_rate=3e-3)
    trained, _ = fit_head(method, "face", features, split, config, "cuda", ("fake", "v1"))
    assert trained.device.type == "cuda"
    before = eer_on(features, split.test, lambda a, b: np.sum(a * b, axis=1))
    assert eer_on(features, split.test, trained.score) < before - 0.05
    save_head(tmp_path / "h.safetensors", trained)
    on_cpu = load_head(tmp_path / "h.safetensors", "cpu")
    pairs = (features.vectors[:20], features.vectors[20:40])
    assert np.allclose(on_cpu.score(*pairs), trained.score(*pairs), atol=1e-4)
    scores = trained.class_scores(features.vectors[:5], np.arange(5), features.vectors[5:10], 5)
    assert scores.shape == (5, 5)


@pytest.mark.parametrize("modality,shape", [("face", (24, 64, 64)), ("voice", (24, 40, 400))])
def test_scratch_encoder_trains_on_cuda(modality, shape):
    rng = np.random.default_rng(0)
    inputs = (rng.integers(0, 255, size=shape).astype(np.uint8) if modality == "face"
              else rng.normal(size=shape).astype(np.float16))
    names = np.repeat([f"p{i}" for i in range(8)], 3)
    raw = RawInputs(inputs, np.full(24, 120), names, [f"{n}/{i}" for i, n in enumerate(names)])
    split = IdentitySplit(tuple(f"p{i}" for i in range(5)), ("p5", "p6"), ("p7",))
    for method in ("siamese", "proto"):
        encoder, _ = train_scratch(method, modality, raw, split, ScratchConfig(epochs=1, steps_per_epoch=3, n_way=3),
                                   "cuda")
        assert next(encoder.parameters()).device.type == "cuda"
        assert embed_raw(encoder, modality, raw).vectors.shape == (24, 128)
