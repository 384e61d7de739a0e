"""Networks compiled by OpenVINO for the CPU compute what their PyTorch modules compute."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from verify.errors import ConfigError
from verify.face.reid_net import FACE_REID_WEIGHTS, FaceReidNet
from verify.runtime import OpenVinoNetwork, compile_network
from verify.weights import load_into

CPU = torch.device("cpu")


class TwoHeads(nn.Module):
    """A small fully convolutional network with two outputs, like MTCNN's P-net."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.PReLU(8), nn.MaxPool2d(2, 2, ceil_mode=True))
        self.box = nn.Conv2d(8, 4, 1)
        self.score = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.box(features), torch.softmax(self.score(features), dim=1)


@pytest.fixture(scope="module")
def reid(torch_threads) -> tuple[nn.Module, OpenVinoNetwork]:
    module = load_into(FaceReidNet(), FACE_REID_WEIGHTS).eval()
    return module, compile_network(module, torch.zeros(1, 3, 128, 128), (0,), CPU)


def test_openvino_is_the_default_on_the_cpu_and_torch_can_be_kept(reid) -> None:
    module, compiled = reid
    assert isinstance(compiled, OpenVinoNetwork)
    assert compile_network(module, torch.zeros(1, 3, 128, 128), (0,), CPU, cpu_runtime="torch") is module


def test_face_network_outputs_match_pytorch_in_float32(reid) -> None:
    module, compiled = reid
    faces = torch.rand(5, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        expected = module(faces)
    # float32 everywhere (no bfloat16 even where the CPU has it): rounding-level differences only
    torch.testing.assert_close(compiled(faces), expected, rtol=1e-4, atol=1e-3)


def test_dynamic_axes_take_other_sizes_and_tuples_come_back_in_order() -> None:
    module = TwoHeads().eval()
    compiled = compile_network(module, torch.zeros(1, 3, 24, 24), (0, 2, 3), CPU)
    for shape in [(1, 3, 24, 24), (3, 3, 41, 67), (2, 3, 12, 13)]:
        x = torch.randn(shape)
        with torch.inference_mode():
            expected = module(x)
        boxes, scores = compiled(x)
        torch.testing.assert_close(boxes, expected[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(scores, expected[1], rtol=1e-4, atol=1e-5)


def test_non_contiguous_inputs_are_read_in_logical_order(reid) -> None:
    module, compiled = reid
    channels_last = (torch.rand(2, 128, 128, 3) * 255).permute(0, 3, 1, 2)
    assert not channels_last.is_contiguous()
    torch.testing.assert_close(compiled(channels_last), compiled(channels_last.contiguous()))


def test_concurrent_callers_get_their_own_results(reid) -> None:
    _, compiled = reid
    inputs = [torch.full((1, 3, 128, 128), float(value)) for value in range(0, 256, 32)]
    alone = [compiled(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(compiled, inputs * 3))
    for index, result in enumerate(together):
        torch.testing.assert_close(result, alone[index % len(inputs)])


def test_unknown_runtime_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown CPU runtime 'onnx'"):
        compile_network(TwoHeads(), torch.zeros(1, 3, 24, 24), (0,), CPU, cpu_runtime="onnx")


def test_a_failing_openvino_falls_back_to_pytorch_with_a_warning(monkeypatch, caplog) -> None:
    import openvino

    def broken(*args, **kwargs):
        raise RuntimeError("Exception from src/inference: the CPU plugin is unavailable")

    monkeypatch.setattr(openvino.Core, "compile_model", broken)
    module = TwoHeads().eval()
    with caplog.at_level("WARNING", logger="verify.runtime"):
        network = compile_network(module, torch.zeros(1, 3, 24, 24), (0, 2, 3), CPU)
    assert network is module
    assert "OpenVINO cannot run TwoHeads (Exception from src/inference: the CPU plugin is unavailable)" in caplog.text


def test_a_conversion_that_disagrees_with_pytorch_is_not_used(monkeypatch, caplog) -> None:
    monkeypatch.setattr(OpenVinoNetwork, "_agrees_with", lambda self, module, example: False)
    module = TwoHeads().eval()
    with caplog.at_level("WARNING", logger="verify.runtime"):
        network = compile_network(module, torch.zeros(1, 3, 24, 24), (0, 2, 3), CPU)
    assert network is module
    assert "outputs differ from PyTorch's" in caplog.text
