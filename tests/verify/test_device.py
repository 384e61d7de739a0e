"""Device resolution: "auto", CPU, CUDA indices and refusals."""

from __future__ import annotations

import pytest
import torch

from verify.device import Device, resolve_device, select_device
from verify.errors import ConfigError

HAS_CUDA = torch.cuda.is_available()


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this machine has no CUDA device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this machine has two CUDA devices (nothing is allocated on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_auto_is_cpu_on_this_machine_without_cuda():
    assert resolve_device() == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_is_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_is_the_first_gpu_with_cuda(two_gpus):
    assert resolve_device("auto") == torch.device("cuda:0")


@pytest.mark.parametrize("spec", ["cpu", torch.device("cpu"), "cpu:0"])
def test_cpu_is_always_available(no_cuda, spec):
    assert resolve_device(spec).type == "cpu"


@pytest.mark.parametrize(
    ("spec", "expected"), [("cuda", "cuda"), ("cuda:1", "cuda:1"), (torch.device("cuda:0"), "cuda:0")]
)
def test_existing_cuda_devices_are_returned(two_gpus, spec, expected):
    assert resolve_device(spec) == torch.device(expected)


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", torch.device("cuda:1")])
def test_cuda_without_cuda_is_refused(no_cuda, spec):
    with pytest.raises(ConfigError, match=rf"device '{spec}' requested but CUDA is not available"):
        resolve_device(spec)


def test_cuda_index_beyond_the_device_count_is_refused(two_gpus):
    with pytest.raises(ConfigError, match=r"device 'cuda:2' requested but only 2 CUDA device\(s\) exist"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec", ["garbage", "", "CPU", "cuda:-1", "cuda:x", "gpu"])
def test_malformed_device_is_refused(spec):
    with pytest.raises(ConfigError, match=rf"unknown device {spec!r}: use 'auto', 'cpu' or 'cuda:N'"):
        resolve_device(spec)


@pytest.mark.parametrize(("spec", "kind"), [("mps", "mps"), ("meta", "meta"), ("xpu", "xpu")])
def test_other_torch_device_types_are_refused(spec, kind):
    message = rf"unsupported device type '{kind}': use 'auto', 'cpu' or 'cuda:N'"
    with pytest.raises(ConfigError, match=message):
        resolve_device(spec)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_auto_picks_a_working_gpu_when_cuda_is_present():
    device = resolve_device("auto")

    assert device == torch.device("cuda:0")
    assert resolve_device(f"cuda:{torch.cuda.device_count() - 1}").type == "cuda"
    tensor = torch.ones(3, device=device) * 2
    assert tensor.sum().item() == 6.0
    with pytest.raises(ConfigError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


# --- select_device: torch only when the answer may be CUDA ----------------------------------------
def test_select_cpu_and_auto_without_a_driver_need_no_torch(monkeypatch):
    import verify.device

    monkeypatch.setattr(verify.device, "cuda_driver_present", lambda: False)
    assert select_device("cpu") == Device("cpu")
    assert select_device("auto") == Device("cpu")
    assert str(select_device("cpu")) == "cpu"


def test_select_cuda_returns_the_index(two_gpus):
    assert select_device("cuda:1") == Device("cuda", 1)
    assert select_device("cuda").type == "cuda"
    assert select_device("cuda:1").torch() == torch.device("cuda:1")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:0:1", ""])
def test_select_refuses_malformed_specs(spec):
    with pytest.raises(ConfigError):
        select_device(spec)
