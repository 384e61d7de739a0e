"""The PyTorch side of :mod:`verify.runtime`: modules run as networks, and their OpenVINO export.

Imported only where PyTorch runs (CUDA, ``cpu_runtime="torch"``) or converts (the export script
and the tests that check the shipped IRs against their modules).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from verify.device import Device
from verify.runtime import NetworkSpec, import_openvino, openvino_convert_model


class TorchNetwork:
    """A PyTorch module on ``device``, called like :class:`verify.runtime.OpenVinoNetwork`."""

    def __init__(self, module: nn.Module, device: Device, cpu_threads: int | None = None) -> None:
        """Move ``module`` to ``device``; on the CPU, ``cpu_threads`` sets torch's (process-wide) threads."""
        if device.type == "cpu" and cpu_threads is not None:
            torch.set_num_threads(cpu_threads)
        self.device = device.torch()
        self.module = module.eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, inputs: np.ndarray | torch.Tensor) -> tuple[np.ndarray, ...]:
        """The module's outputs for ``inputs`` (an array, or a float tensor already on the device)."""
        tensor = inputs if isinstance(inputs, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
        outputs = self.module(tensor.to(self.device))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return tuple(output.float().cpu().numpy() for output in outputs)


def export_openvino(module: nn.Module, spec: NetworkSpec) -> Any:
    """``module`` converted to an ``openvino.Model`` traced on a zero input of ``spec.example_shape``,
    the axes ``spec.dynamic_dims`` left dynamic."""
    ov = import_openvino()

    example = torch.zeros(spec.example_shape)
    shape = ov.PartialShape([-1 if axis in spec.dynamic_dims else size for axis, size in enumerate(spec.example_shape)])
    with torch.no_grad(), warnings.catch_warnings():
        # input-shape checks in forward() are Python branches the trace fixes: that is intended
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return openvino_convert_model()(module.eval(), example_input=example, input=[shape])
