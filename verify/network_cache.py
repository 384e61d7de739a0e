"""OpenVINO conversions of the networks, kept on disk so later runs load them in milliseconds.

Converting a PyTorch module (tracing it) takes about a second per network, which every CLI
command would pay again. A conversion is stored under a fingerprint of everything it depends
on: the OpenVINO and PyTorch versions, the source code of every module class in the network
that is not PyTorch's own, its weights, the example shape and the dynamic axes. A changed
network therefore never loads a stale conversion; it is converted and stored under its new
fingerprint.

Where: ``$VERIFY_CACHE`` if set, else ``$XDG_CACHE_HOME/verify/openvino`` (``~/.cache`` when
unset). Files are written to a temporary name and renamed, weights first and graph last, so a
reader never sees half a conversion; a cache that cannot be written or read only costs time.
Every compiled network is also checked against its PyTorch module when it loads
(:class:`verify.runtime.OpenVinoNetwork`), so a damaged entry is converted again. The cache is
as trustworthy as the user's home directory. Only network graphs and the shipped weights are
stored: never a face, a voice or a template.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$VERIFY_CACHE``, else ``$XDG_CACHE_HOME/verify/openvino`` (``~/.cache`` when unset or relative)."""
    explicit = os.environ.get("VERIFY_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"
    return base / "verify" / "openvino"


def fingerprint(module: nn.Module, example: torch.Tensor, dynamic_dims: Sequence[int]) -> str:
    """Hex digest of what a conversion of ``module`` depends on (see the module docstring)."""
    import openvino as ov

    digest = hashlib.sha256()
    digest.update(f"openvino {ov.__version__} torch {torch.__version__}".encode())
    digest.update(f"shape {tuple(example.shape)} dynamic {tuple(dynamic_dims)}".encode())
    for cls in sorted({type(sub) for sub in module.modules()}, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        if cls.__module__.partition(".")[0] != "torch":  # torch's own layers: covered by its version
            digest.update(inspect.getsource(cls).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def cached_conversion(key: str, convert: Callable[[], "ov.Model"], refresh: bool = False) -> "ov.Model":  # noqa: F821
    """The model stored under ``key``, or ``convert()``'s result, which is then stored.

    ``refresh`` ignores (and replaces) what is stored.
    """
    import openvino as ov

    directory = cache_dir()
    graph = directory / f"{key}.xml"
    if graph.exists() and not refresh:
        try:
            return ov.Core().read_model(graph)
        except RuntimeError as error:  # damaged by hand or by a full disk: convert again
            log.warning("ignoring unreadable cached network %s: %s", graph, error)
    model = convert()
    partial = directory / f".{key}.{os.getpid()}.xml"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ov.save_model(model, partial, compress_to_fp16=False)
        os.replace(partial.with_suffix(".bin"), graph.with_suffix(".bin"))
        os.replace(partial, graph)
    except (OSError, RuntimeError) as error:
        log.info("could not cache the converted network in %s: %s", directory, error)
        for leftover in (partial, partial.with_suffix(".bin")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return model
