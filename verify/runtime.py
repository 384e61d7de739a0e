"""Where the networks run: OpenVINO on the CPU, PyTorch on CUDA.

On the CPU every network that was written in PyTorch (MTCNN's three, the face re-identification
network, the GE2E speaker encoder) runs in OpenVINO from an IR that ships in ``assets/models``:
a graph ``<name>.xml`` and its weights ``<name>.bin``, both sha256-checked when they load.
``python scripts/export_openvino.py`` converts them from the PyTorch modules with the shipped
weights; ``tests/verify/test_shipped_networks.py`` checks each against its module. So the CPU
path imports neither torch nor torchvision nor facenet-pytorch: a cold ``verify check`` loads in
a fraction of torch's import time, and reading an IR takes milliseconds where tracing a module
took a second.

Compiling a network for the CPU takes OpenVINO a few hundred milliseconds, every process again:
more than a cold ``verify check`` can afford. :func:`openvino_core` therefore turns on OpenVINO's
own cache of compiled networks (``CACHE_DIR``: keyed by OpenVINO on the model, its settings, the
OpenVINO version and the CPU; it stores network graphs only, never a sample; SFace's converted IR
is kept there too, :func:`verify.face.sface.sface_model`) in
``$VERIFY_CACHE``, else ``$XDG_CACHE_HOME/verify/openvino`` (``~/.cache`` when unset). A later
process loads a compiled network in a tenth of the time, with the same results; a cache folder
that cannot be written only costs that time.

OpenVINO runs the networks faster than PyTorch eager with the same float32 arithmetic (the face
embedding network 2.1x, one frame end to end 1.49x: ``python benchmarks/levers.py``). They are
compiled for float32 even on CPUs with bfloat16 units, so scores, and hence the calibrated
thresholds, do not depend on the machine.

On CUDA, or with ``cpu_runtime="torch"``, the PyTorch module itself runs
(:mod:`verify.torch_runtime`). Either way a network is a callable: an array (or, on CUDA, a
tensor already on the device) in, a tuple of NumPy arrays out.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from verify.device import Device
from verify.errors import ConfigError
from verify.weights import WeightsFile, locate

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

CPU_RUNTIMES = ("openvino", "torch")

EXPORT_COMMAND = "python scripts/export_openvino.py"

Network = Callable[[Any], tuple[np.ndarray, ...]]
"""A network as the pipelines call it: a float32 ``(N, ...)`` input in, its outputs as NumPy arrays."""


CACHE_ENV = "VERIFY_CACHE"


def cache_dir() -> Path:
    """``$VERIFY_CACHE``, else ``$XDG_CACHE_HOME/verify/openvino`` (``~/.cache`` when unset or relative)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"
    return base / "verify" / "openvino"


OPENVINO_LOADING = threading.Lock()
"""Held while OpenVINO reads or compiles a network (:func:`compile_for_cpu` takes it). Its readers
save, set and restore the process's locale, so two loads at once can leave it at "C" (then text
files without an explicit encoding read as ASCII): two face pipelines loading in threads at once
did in 6 of 8 rounds, none with the lock (``tests/verify/test_runtime.py``). Lanes compile each
copy's MTCNN P-net on first use, in threads of their own."""


OPENVINO_CONVERTER = "openvino.tools.ovc"
"""OpenVINO's model-conversion API, which ``import openvino`` imports unless it cannot."""

OPENVINO_TELEMETRY = "openvino_telemetry"
"""The usage-statistics sender the conversion API reports to, unless it cannot be imported."""


@contextmanager
def _unimportable(name: str) -> Iterator[None]:
    """``import name`` raises ImportError inside the block (unless ``name`` is already imported)."""
    blocked = name not in sys.modules
    if blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        yield
    finally:
        if blocked and sys.modules.get(name, ...) is None:
            del sys.modules[name]


def import_openvino() -> ModuleType:
    """``openvino``, imported without its model-conversion API.

    ``import openvino`` imports ``openvino.tools.ovc``, which sends a usage event to Intel's
    telemetry in a forked process unless the user has opted out, and costs a cold process
    0.12 s and 14 MiB. The product stays offline and converts no model at run time, so it imports
    OpenVINO without it (``openvino`` then has no ``convert_model``; see
    :func:`openvino_convert_model`). A process that imported ``openvino`` before keeps it as it is.
    """
    with _unimportable(OPENVINO_CONVERTER):
        import openvino
    return openvino


def openvino_convert_model() -> Callable[..., Any]:
    """``openvino.convert_model`` (for the conversion scripts and tests), imported with OpenVINO's
    telemetry replaced by the stub OpenVINO falls back to when it is missing: nothing is sent."""
    import_openvino()
    with _unimportable(OPENVINO_TELEMETRY):
        from openvino.tools.ovc import convert_model
    return convert_model


@functools.lru_cache(maxsize=1)
def openvino_core() -> Any:
    """The process's ``openvino.Core``, caching compiled networks in :func:`cache_dir` when that
    folder can be written (see the module docstring)."""
    core = import_openvino().Core()
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if writable:
        core.set_property({"CACHE_DIR": str(folder)})
    else:
        log.info("cannot write the network cache %s: networks are compiled again in every process", folder)
    return core


@dataclass(frozen=True)
class NetworkSpec:
    """A network that ships as an OpenVINO IR converted from a PyTorch module.

    Attributes:
        name: the IR's file stem in ``assets/models``.
        graph_sha256, weights_sha256: sha256 of ``<name>.xml`` and ``<name>.bin``.
        module: ``"package.module:function"`` returning the PyTorch module with its weights loaded.
        example_shape: an input shape the module takes (for tracing; values do not matter).
        dynamic_dims: input axes whose size varies between calls (batch, image height...).
    """

    name: str
    graph_sha256: str
    weights_sha256: str
    module: str
    example_shape: tuple[int, ...]
    dynamic_dims: tuple[int, ...]

    @property
    def graph(self) -> WeightsFile:
        return WeightsFile(f"{self.name}.xml", self.graph_sha256, EXPORT_COMMAND)

    @property
    def weights(self) -> WeightsFile:
        return WeightsFile(f"{self.name}.bin", self.weights_sha256, EXPORT_COMMAND)

    def build_module(self) -> nn.Module:
        """The PyTorch module in eval mode, weights loaded (imports torch)."""
        module, name = self.module.split(":")
        return getattr(importlib.import_module(module), name)().eval()


def single_threaded_blas() -> None:
    """Give NumPy's BLAS one thread in this process: a front end's, whose cores run the networks.

    The products NumPy computes beside the networks are small (a probe's S-norm against a
    3,000-row cohort, fusing embeddings). With a thread per core, BLAS's threads wait, spinning,
    for cores the networks hold: ``verify batch`` over 300 photos took 15 % longer (10.4 against
    9.1 s, three runs each, identical rows). The command line's ``evaluate`` runs with one too (its
    results byte for byte the same); the calibration scripts keep every core.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def compile_for_cpu(model: Any, threads: int | None) -> Any:
    """``model`` (an IR's path or an ``openvino.Model``) compiled for the CPU with
    :func:`openvino_cpu_config`, through the process's cached core, under :data:`OPENVINO_LOADING`."""
    with OPENVINO_LOADING:
        return openvino_core().compile_model(model, "CPU", openvino_cpu_config(threads))


def openvino_cpu_config(threads: int | None) -> dict[str, Any]:
    """OpenVINO's CPU compile settings: float32, and ``threads`` inference threads (``None``: every core).

    A thread count means a share of the machine, with other processes (Ray actors) beside this one:
    the threads are then not pinned, or every process would pin its thread to the same first core
    (two one-thread actors on two cores ran at 55 % of a core each).
    """
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads is not None:
        config.update({"INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": False})
    return config


class OpenVinoNetwork:
    """A shipped IR compiled by OpenVINO for the CPU in float32, callable on NumPy arrays.

    Each calling thread gets its own inference request, so one network serves concurrent
    requests (the web app's) safely.
    """

    def __init__(self, spec: NetworkSpec, threads: int | None = None) -> None:
        """Locate, hash-check, read and compile ``spec``'s IR with ``threads`` inference threads
        (``None``: every core).

        Raises:
            WeightsError: a file is missing, corrupt, or OpenVINO cannot read it.
            RuntimeError: OpenVINO cannot compile it for this CPU.
        """
        graph = locate(spec.graph)  # both hash-checked: the shipped files
        locate(spec.weights)
        self.name = spec.name
        # from the path, so that a cached compilation skips reading the graph too
        self.compiled = compile_for_cpu(str(graph), threads)
        self.output_count = len(self.compiled.outputs)
        self._tensor = import_openvino().Tensor
        self._local = threading.local()

    def __call__(self, inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """The network's outputs for ``inputs`` (converted to contiguous float32), copied out."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        array = np.ascontiguousarray(inputs, dtype=np.float32)  # kept alive: the tensor shares it
        request.set_input_tensor(self._tensor(array, shared_memory=True))
        request.infer()
        # copies: the request reuses its output buffers on the next call
        return tuple(request.get_output_tensor(i).data.copy() for i in range(self.output_count))


def load_network(spec: NetworkSpec, device: Device, cpu_runtime: str = "openvino",
                 cpu_threads: int | None = None) -> Network:
    """``spec``'s network ready to run on ``device``: its shipped IR in OpenVINO on the CPU, else
    the PyTorch module.

    Args:
        cpu_runtime: ``"openvino"`` or ``"torch"``; only used on the CPU.
        cpu_threads: inference threads on the CPU; ``None`` uses every core.

    When OpenVINO cannot be imported or cannot compile the network for this CPU, the PyTorch
    module runs instead (same results, slower) and a warning is logged.

    Raises:
        ConfigError: ``cpu_runtime`` is not one of :data:`CPU_RUNTIMES`.
        WeightsError: a shipped file is missing or corrupt.
    """
    if cpu_runtime not in CPU_RUNTIMES:
        raise ConfigError(f"unknown CPU runtime {cpu_runtime!r}: use one of {', '.join(CPU_RUNTIMES)}")
    if device.type == "cpu" and cpu_runtime == "openvino":
        try:
            return OpenVinoNetwork(spec, cpu_threads)
        except (ImportError, RuntimeError) as error:  # a broken install or an unsupported CPU: slower, same results
            log.warning("OpenVINO cannot run %s (%s); running it in PyTorch", spec.name, error)
    from verify.torch_runtime import TorchNetwork

    return TorchNetwork(spec.build_module(), device, cpu_threads)


class LazyNetwork:
    """:func:`load_network` deferred to the first call: for a network some runs never use (MTCNN's
    P-net, when another detector proposes the faces), so those runs do not compile it."""

    def __init__(self, spec: NetworkSpec, device: Device, cpu_runtime: str = "openvino",
                 cpu_threads: int | None = None) -> None:
        """Check the arguments now (see :func:`load_network`); load on the first call."""
        if cpu_runtime not in CPU_RUNTIMES:
            raise ConfigError(f"unknown CPU runtime {cpu_runtime!r}: use one of {', '.join(CPU_RUNTIMES)}")
        self._load = functools.partial(load_network, spec, device, cpu_runtime, cpu_threads)
        self._network: Network | None = None
        self._lock = threading.Lock()

    def __call__(self, inputs: Any) -> tuple[np.ndarray, ...]:
        """The network's outputs for ``inputs``, loading it first if this is the first call."""
        if self._network is None:
            with self._lock:
                if self._network is None:
                    self._network = self._load()
        return self._network(inputs)
