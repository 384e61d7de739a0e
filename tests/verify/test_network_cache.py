"""Converted networks are cached under a fingerprint of everything they depend on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from verify.network_cache import cache_dir, cached_conversion, fingerprint
from verify.runtime import compile_network

CPU = torch.device("cpu")


class Small(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VERIFY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VERIFY_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("VERIFY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "verify" / "openvino"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")
    assert cache_dir() == Path.home() / ".cache" / "verify" / "openvino"


def test_fingerprint_changes_with_weights_shape_and_dynamic_axes() -> None:
    example = torch.zeros(1, 3, 8, 8)
    base = fingerprint(Small(0), example, (0,))
    assert fingerprint(Small(0), example, (0,)) == base
    assert fingerprint(Small(1), example, (0,)) != base
    assert fingerprint(Small(0), torch.zeros(1, 3, 9, 9), (0,)) != base
    assert fingerprint(Small(0), example, (0, 2, 3)) != base


def test_second_compile_loads_the_cached_conversion_with_the_same_outputs(cache) -> None:
    module, example = Small().eval(), torch.zeros(1, 3, 8, 8)
    first = compile_network(module, example, (0, 2, 3), CPU)
    graphs = list(cache.glob("*.xml"))
    assert len(graphs) == 1 and graphs[0].with_suffix(".bin").exists()
    assert not list(cache.glob(".*"))  # no partial files left behind
    calls = []
    second = cached_conversion(graphs[0].stem, lambda: calls.append("converted"))
    assert calls == [] and second is not None
    x = torch.randn(2, 3, 11, 13)
    torch.testing.assert_close(compile_network(module, example, (0, 2, 3), CPU)(x), first(x))
    with torch.inference_mode():
        torch.testing.assert_close(first(x), module(x), rtol=1e-5, atol=1e-6)


def test_a_damaged_cached_conversion_is_converted_again(cache) -> None:
    module, example = Small().eval(), torch.zeros(1, 3, 8, 8)
    compile_network(module, example, (0,), CPU)
    [graph] = cache.glob("*.xml")
    graph.write_text("<net>truncated")
    x = torch.randn(1, 3, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(compile_network(module, example, (0,), CPU)(x), module(x), rtol=1e-5, atol=1e-6)
    assert "truncated" not in graph.read_text()


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("VERIFY_CACHE", str(blocker / "cache"))
    module, example = Small().eval(), torch.zeros(1, 3, 8, 8)
    x = torch.randn(1, 3, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(compile_network(module, example, (0,), CPU)(x), module(x), rtol=1e-5, atol=1e-6)


def test_a_cached_conversion_of_another_network_is_caught_and_replaced(cache) -> None:
    module, example = Small(0).eval(), torch.zeros(1, 3, 8, 8)
    compile_network(Small(1).eval(), example, (0,), CPU)  # stored under Small(1)'s fingerprint
    [other] = cache.glob("*.xml")
    key = fingerprint(module, example, (0,))
    for suffix in (".xml", ".bin"):  # plant it under Small(0)'s fingerprint, as a damaged cache might
        (cache / f"{key}{suffix}").write_bytes(other.with_suffix(suffix).read_bytes())
    network = compile_network(module, example, (0,), CPU)
    x = torch.randn(1, 3, 8, 8) * 100
    with torch.inference_mode():
        torch.testing.assert_close(network(x), module(x), rtol=1e-5, atol=1e-4)
    assert (cache / f"{key}.bin").read_bytes() != other.with_suffix(".bin").read_bytes()  # replaced
