"""The shipped OpenVINO IRs are the PyTorch modules they were exported from.

``scripts/export_openvino.py`` writes them; here each one's recorded sha256 must match its files
and its outputs must match its module with the shipped weights, on random pixels and inputs of
several shapes (float32 in both: rounding-level differences only).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from verify.face.mtcnn import ONET, PNET, RNET
from verify.face.reid import FACE_REID_NETWORK
from verify.runtime import NetworkSpec, OpenVinoNetwork
from verify.voice.encoder import GE2E_NETWORK
from verify.weights import MODELS_DIR

SHIPPED = (PNET, RNET, ONET, FACE_REID_NETWORK, GE2E_NETWORK)
SHAPES = {"mtcnn-pnet": [(1, 3, 24, 24), (2, 3, 61, 83)], "ge2e-robust": [(1, 160, 40), (3, 160, 40)]}


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda spec: spec.name)
def test_recorded_sha256_matches_the_shipped_files(spec: NetworkSpec) -> None:
    for file in (spec.graph, spec.weights):
        assert hashlib.sha256((MODELS_DIR / file.filename).read_bytes()).hexdigest() == file.sha256


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda spec: spec.name)
def test_shipped_ir_computes_what_its_pytorch_module_computes(spec: NetworkSpec, torch_threads) -> None:
    import torch

    module = spec.build_module()
    network = OpenVinoNetwork(spec, threads=1)
    rng = np.random.default_rng(0)
    for shape in SHAPES.get(spec.name, [spec.example_shape, (3, *spec.example_shape[1:])]):
        inputs = rng.uniform(0, 255, shape).astype(np.float32)
        with torch.inference_mode():
            expected = module(torch.from_numpy(inputs))
        expected = expected if isinstance(expected, tuple) else (expected,)
        found = network(inputs)
        assert len(found) == len(expected)
        for ours, theirs in zip(found, expected):
            theirs = theirs.numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(theirs).max())))

