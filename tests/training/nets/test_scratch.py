"""From-scratch encoders: output shapes, unit norms, input checks."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.usefixtures("torch_threads")

from training.nets.scratch import FaceCNN, VoiceTDNN, scratch_encoder


def test_face_cnn_embeds_unit_vectors():
    out = FaceCNN(dim=16, width=4).eval()(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 16)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_voice_tdnn_takes_any_length():
    network = VoiceTDNN(dim=16, width=8).eval()
    for frames in (40, 160, 333):
        assert network(torch.randn(3, 40, frames)).shape == (3, 16)


def test_encoders_reject_wrong_inputs():
    with pytest.raises(ValueError, match="greyscale"):
        FaceCNN(width=4)(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="log-mel"):
        VoiceTDNN(width=8)(torch.randn(2, 20, 100))
    with pytest.raises(ValueError, match="modality"):
        scratch_encoder("smell")
