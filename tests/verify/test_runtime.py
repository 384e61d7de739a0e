"""The shipped OpenVINO IRs load, hash-checked, and run like their PyTorch modules on the CPU."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from verify.device import Device
from verify.errors import ConfigError, WeightsError
from verify.face.reid import FACE_REID_NETWORK
from verify.face.mtcnn import ONET, PNET, RNET
from verify.runtime import LazyNetwork, OpenVinoNetwork, import_openvino, load_network, openvino_core

CPU = Device("cpu")


@pytest.fixture(scope="module")
def reid() -> OpenVinoNetwork:
    return load_network(FACE_REID_NETWORK, CPU, cpu_threads=1)


def test_openvino_is_the_default_on_the_cpu_and_torch_can_be_kept(reid, torch_threads) -> None:
    from verify.torch_runtime import TorchNetwork

    assert isinstance(reid, OpenVinoNetwork)
    assert isinstance(load_network(FACE_REID_NETWORK, CPU, cpu_runtime="torch"), TorchNetwork)


def test_dynamic_axes_take_other_sizes_and_outputs_come_back_in_order() -> None:
    pnet = load_network(PNET, CPU, cpu_threads=1)
    for shape in [(1, 3, 24, 24), (3, 3, 41, 67), (2, 3, 12, 13)]:
        boxes, scores = pnet(np.random.default_rng(0).uniform(0, 255, shape))
        height, width = (-(-(side - 2) // 2) - 4 for side in shape[2:])  # conv 3, pool 2 (ceil), conv 3, conv 3
        assert boxes.shape == (shape[0], 4, height, width)
        assert scores.shape == (shape[0], 2, height, width)
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)


def test_non_contiguous_inputs_are_read_in_logical_order(reid) -> None:
    channels_last = (np.random.default_rng(1).uniform(0, 255, (2, 128, 128, 3))).transpose(0, 3, 1, 2)
    assert not channels_last.flags.c_contiguous
    np.testing.assert_array_equal(reid(channels_last)[0], reid(np.ascontiguousarray(channels_last))[0])


def test_concurrent_callers_get_their_own_results(reid) -> None:
    inputs = [np.full((1, 3, 128, 128), float(value), np.float32) for value in range(0, 256, 32)]
    alone = [reid(x)[0] for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(reid, inputs * 3))
    for index, (result,) in enumerate(together):
        np.testing.assert_array_equal(result, alone[index % len(inputs)])


def test_unknown_runtime_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown CPU runtime 'onnx'"):
        load_network(PNET, CPU, cpu_runtime="onnx")


def test_a_corrupt_ir_is_a_weights_error_naming_the_rebuild(monkeypatch, tmp_path) -> None:
    import verify.weights

    for suffix in (".xml", ".bin"):
        (tmp_path / f"{PNET.name}{suffix}").write_bytes(b"not a network")
    monkeypatch.setattr(verify.weights, "MODELS_DIR", tmp_path)
    with pytest.raises(WeightsError, match="export_openvino.py"):
        load_network(PNET, CPU)


def test_a_failing_openvino_falls_back_to_pytorch_with_a_warning(monkeypatch, caplog, torch_threads) -> None:
    from verify.torch_runtime import TorchNetwork

    openvino = import_openvino()

    def broken(*args, **kwargs):
        raise RuntimeError("Exception from src/inference: the CPU plugin is unavailable")

    monkeypatch.setattr(openvino.Core, "compile_model", broken)
    with caplog.at_level("WARNING", logger="verify.runtime"):
        network = load_network(PNET, CPU)
    assert isinstance(network, TorchNetwork)
    assert "OpenVINO cannot run mtcnn-pnet (Exception from src/inference: the CPU plugin is unavailable)" in caplog.text


def test_compiled_networks_are_cached_and_a_cached_one_computes_the_same(fresh_core) -> None:
    probe = np.random.default_rng(2).uniform(0, 255, (2, 3, 48, 48)).astype(np.float32)
    first = load_network(ONET, CPU, cpu_threads=1)(probe)
    assert list(fresh_core.glob("*.blob"))
    openvino_core.cache_clear()  # as a new process: the compilation comes from the cache
    again = load_network(ONET, CPU, cpu_threads=1)(probe)
    for ours, theirs in zip(again, first):
        np.testing.assert_array_equal(ours, theirs)


def test_a_cache_folder_that_cannot_be_made_only_costs_time(monkeypatch, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VERIFY_CACHE", str(blocker / "cache"))
    openvino_core.cache_clear()
    try:
        assert len(load_network(RNET, CPU, cpu_threads=1)(np.zeros((1, 3, 24, 24), np.float32))) == 2
    finally:
        openvino_core.cache_clear()


def test_a_lazy_network_loads_on_its_first_call_only(monkeypatch) -> None:
    import verify.runtime

    loads = []
    monkeypatch.setattr(verify.runtime, "load_network", lambda *args: loads.append(args) or (lambda x: (x,)))
    lazy = LazyNetwork(PNET, CPU)
    assert loads == []
    assert lazy(1) == (1,) and lazy(2) == (2,)
    assert len(loads) == 1
    with pytest.raises(ConfigError):
        LazyNetwork(PNET, CPU, cpu_runtime="onnx")


OFFLINE_PROBE = """
import sys
from verify.runtime import import_openvino, openvino_convert_model
openvino = import_openvino()
print(hasattr(openvino, "Core"), "openvino.tools.ovc" in sys.modules, "openvino_telemetry" in sys.modules)
openvino_convert_model()
from openvino.tools.ovc import telemetry_utils
print(telemetry_utils.tm.__name__, "openvino_telemetry" in sys.modules)
"""


def test_openvino_loads_without_its_telemetry_and_converts_with_its_stub() -> None:
    done = subprocess.run([sys.executable, "-c", OFFLINE_PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["True False False", "openvino.tools.ovc.telemetry_stub False"]


def test_the_command_line_gives_numpys_blas_one_thread(tmp_path):
    from threadpoolctl import threadpool_info, threadpool_limits

    from verify_cli.main import main

    def blas_threads() -> set[int]:
        return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("NumPy reports no BLAS thread pool here")
    with threadpool_limits(2, user_api="blas"):  # the original limits come back after the block
        assert blas_threads() == {2}
        assert main(["--store", str(tmp_path / "x.db"), "info"]) == 0
        assert blas_threads() == {1}


def test_pipelines_loaded_in_threads_at_once_leave_the_locale_alone():
    import locale

    from verify.models import load_pipeline

    encoding = locale.getpreferredencoding(False)
    for _ in range(3):  # without the loading lock, 6 of 8 such rounds left it at "C"
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: load_pipeline("face", "cpu", cpu_threads=1), range(2)))
        assert locale.getpreferredencoding(False) == encoding
