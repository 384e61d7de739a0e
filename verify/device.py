"""Device selection: the one place that probes CUDA."""

from __future__ import annotations

import torch

from verify.errors import ConfigError


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable :class:`torch.device`.

    ``"auto"`` picks the first CUDA device when one is available, else the CPU.

    Raises:
        ConfigError: the spec is malformed or names a CUDA device that is not present.
    """
    if isinstance(spec, torch.device):
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


def prepare_device(spec: str | torch.device = "auto", cpu_threads: int | None = None) -> torch.device:
    """:func:`resolve_device`, then set torch's intra-op threads when it is the CPU.

    ``cpu_threads`` is process-wide; one thread is the fastest when other work shares the cores,
    ``None`` keeps torch's default of one thread per core.
    """
    device = resolve_device(spec)
    if device.type == "cpu" and cpu_threads is not None:
        torch.set_num_threads(cpu_threads)
    return device
