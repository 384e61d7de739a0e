"""Device selection: the one place that probes CUDA.

The pipelines take a :class:`Device` from :func:`select_device`, which imports torch only when
the answer may be a CUDA device: ``"cpu"`` never does, and ``"auto"`` asks torch only when an
NVIDIA driver library can be loaded (a ``ctypes`` probe of a millisecond). So on a machine without
a GPU the CPU path, whose networks run in OpenVINO, starts without torch's two seconds of import.
:func:`resolve_device` returns a :class:`torch.device` for code that works in PyTorch (training,
the CUDA path).
"""

from __future__ import annotations

import ctypes
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from verify.errors import ConfigError

if TYPE_CHECKING:
    import torch

CUDA_DRIVER_LIBRARIES = {"linux": ("libcuda.so.1", "libcuda.so"), "win32": ("nvcuda.dll",)}
"""The CUDA driver's library per platform (none on macOS: no CUDA there)."""

DEVICE_PATTERN = re.compile(r"(cpu|cuda)(?::(\d+))?")


@dataclass(frozen=True)
class Device:
    """Where a pipeline runs: ``type`` ``"cpu"`` or ``"cuda"`` and, for CUDA, the device ``index``."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def torch(self) -> torch.device:
        """The same device as a :class:`torch.device` (imports torch)."""
        import torch

        return torch.device(str(self))


DeviceSpec = Union[str, Device, "torch.device"]


def cuda_driver_present() -> bool:
    """Whether an NVIDIA driver library loads in this process (no driver: no CUDA device)."""
    for name in CUDA_DRIVER_LIBRARIES.get(sys.platform, ()):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def select_device(spec: DeviceSpec = "auto") -> Device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable :class:`Device`.

    ``"auto"`` picks the first CUDA device when one is available, else the CPU. torch is imported
    only to answer for CUDA (see the module docstring).

    Raises:
        ConfigError: the spec is malformed or names a CUDA device that is not present.
    """
    text = str(spec)
    match = DEVICE_PATTERN.fullmatch(text)
    if text == "auto" and not cuda_driver_present():
        return Device("cpu")
    if match and match.group(1) == "cpu":
        return Device("cpu")
    device = resolve_device(text)  # CUDA, or an error worded by resolve_device
    return Device(device.type, device.index if device.type == "cuda" else None)


def resolve_device(spec: str | torch.device | Device = "auto") -> torch.device:
    """:func:`select_device` as a :class:`torch.device` (imports torch).

    ``"auto"`` picks the first CUDA device when one is available, else the CPU.

    Raises:
        ConfigError: the spec is malformed or names a CUDA device that is not present.
    """
    import torch

    spec = str(spec)
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise ConfigError(f"unknown device {spec!r}: use 'auto', 'cpu' or 'cuda:N'") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but CUDA is not available")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device type {device.type!r}: use 'auto', 'cpu' or 'cuda:N'")
    return device
