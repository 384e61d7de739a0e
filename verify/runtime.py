"""Where the networks run: OpenVINO on the CPU, PyTorch on CUDA.

On the CPU, OpenVINO's runtime runs the face embedding network 2.1x faster than PyTorch eager
with the same float32 arithmetic (``python benchmarks/levers.py``; it is an OpenVINO model to
begin with). For the MTCNN cascade alone it is about as fast as PyTorch, but one frame end to end
is 1.49x faster with every network in OpenVINO than 1.20x with only the embedding network there:
PyTorch's OpenMP threads would otherwise compete with OpenVINO's. A network is converted from its
loaded PyTorch module (no extra files in the repository: the shipped weights stay the one source)
and compiled for float32 even on CPUs with bfloat16 units, so scores, and hence the calibrated
thresholds, do not depend on the machine. Conversions are kept on disk
(:mod:`verify.network_cache`), so only the first run pays the second or so each takes.
``cpu_runtime="torch"`` keeps PyTorch on the CPU too.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from verify.errors import ConfigError
from verify.network_cache import cached_conversion, fingerprint

log = logging.getLogger(__name__)

CPU_RUNTIMES = ("openvino", "torch")

PROBE_RTOL, PROBE_ATOL = 1e-3, 1e-4
"""How closely a compiled network must reproduce its PyTorch module on a random probe at load
(float32 in both; the atol scales with the largest output)."""

Network = Callable[[torch.Tensor], "torch.Tensor | tuple[torch.Tensor, ...]"]
"""A network as the pipelines call it: a tensor in, the module's tensor or tuple of tensors out."""


class OpenVinoNetwork:
    """A PyTorch module compiled by OpenVINO for the CPU, called like the module.

    Each calling thread gets its own inference request, so one network serves concurrent
    requests (the web app's) safely.
    """

    def __init__(self, module: nn.Module, example: torch.Tensor, dynamic_dims: Sequence[int], threads: int | None) -> None:
        """Convert ``module`` traced on ``example``; the axes in ``dynamic_dims`` may vary per call."""
        import openvino as ov

        shape = ov.PartialShape([-1 if axis in dynamic_dims else size for axis, size in enumerate(example.shape)])

        def convert() -> ov.Model:
            with torch.no_grad(), warnings.catch_warnings():
                # input-shape checks in forward() are Python branches the trace fixes: that is intended
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                return ov.convert_model(module.eval(), example_input=example, input=[shape])

        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        key = fingerprint(module, example, dynamic_dims)
        for refresh in (False, True):  # a cached conversion that disagrees is converted again, once
            self.compiled = ov.Core().compile_model(cached_conversion(key, convert, refresh), "CPU", config)
            self.output_count = len(self.compiled.outputs)
            self._local = threading.local()
            if self._agrees_with(module, example):
                return
        raise RuntimeError("the converted network's outputs differ from PyTorch's")

    def _agrees_with(self, module: nn.Module, example: torch.Tensor) -> bool:
        """Whether this network and ``module`` give the same outputs for random 0..255 inputs."""
        probe = torch.rand(example.shape) * 255
        with torch.inference_mode():
            expected = module(probe)
        expected = expected if isinstance(expected, tuple) else (expected,)
        found = self(probe)
        found = found if isinstance(found, tuple) else (found,)
        return len(found) == len(expected) and all(torch.allclose(ours, theirs, rtol=PROBE_RTOL, atol=PROBE_ATOL * float(theirs.abs().max().clamp(min=1)))
                   for ours, theirs in zip(found, expected))

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Outputs for ``inputs`` (a CPU float32 tensor), as the PyTorch module returns them."""
        import openvino as ov

        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        array = np.ascontiguousarray(inputs.numpy(), dtype=np.float32)  # kept alive: the tensor shares it
        request.set_input_tensor(ov.Tensor(array, shared_memory=True))
        request.infer()
        # copies: the request reuses its output buffers on the next call
        outputs = tuple(torch.from_numpy(request.get_output_tensor(i).data.copy()) for i in range(self.output_count))
        return outputs[0] if self.output_count == 1 else outputs


def compile_network(
    module: nn.Module,
    example: torch.Tensor,
    dynamic_dims: Sequence[int],
    device: torch.device,
    cpu_runtime: str = "openvino",
    cpu_threads: int | None = None,
) -> Network:
    """``module`` ready to run on ``device``: compiled by OpenVINO on the CPU, else the module itself.

    Args:
        example: an input of the shape the network takes, for tracing (values do not matter).
        dynamic_dims: input axes whose size varies between calls (batch, image height...).
        cpu_runtime: ``"openvino"`` or ``"torch"``; only used on the CPU.
        cpu_threads: OpenVINO's inference threads; ``None`` uses every core.

    When OpenVINO cannot be imported or compile the network, or the compiled network does not
    reproduce the module on a random probe, the PyTorch module is returned (same results,
    slower) and a warning is logged.

    Raises:
        ConfigError: ``cpu_runtime`` is not one of :data:`CPU_RUNTIMES`.
    """
    if cpu_runtime not in CPU_RUNTIMES:
        raise ConfigError(f"unknown CPU runtime {cpu_runtime!r}: use one of {', '.join(CPU_RUNTIMES)}")
    module = module.eval().to(device)
    if device.type != "cpu" or cpu_runtime == "torch":
        return module
    try:
        return OpenVinoNetwork(module, example, dynamic_dims, cpu_threads)
    except (ImportError, RuntimeError) as error:  # a broken install or an unsupported CPU: slower, same results
        log.warning("OpenVINO cannot run %s (%s); running it in PyTorch", type(module).__name__, error)
        return module
