"""SFace face embeddings (OpenCV Zoo's ``face_recognition_sface_2021dec``, Apache-2.0), run by OpenVINO.

Contract: a face aligned by a similarity transform of its five landmarks onto the ArcFace
template (:data:`SFACE_LANDMARK_TEMPLATE`), ``112 x 112``, BGR, raw 0..255 pixels; output 128-d,
compared by cosine after L2 normalisation.

The shipped file is OpenCV Zoo's int8 block-quantised ONNX, unchanged. OpenVINO's ONNX reader
does not take ``DequantizeLinear`` with a ``block_size`` (opset 21), so
:func:`dequantize_linear` converts those nodes while the model is read: the weights are
dequantized once, exactly as ONNX defines it, into float32 constants, and the converted model is
kept as an OpenVINO IR beside the compiled networks (:func:`sface_model`), so later processes
neither read the ONNX nor dequantize again. The network then runs in float32 like every other
network here (``verify/runtime.py``), on the CPU even when the rest of the pipeline runs on CUDA. ``python benchmarks/sface_runtimes.py`` times one crop in each runtime
that reads the file (2 threads, the runtimes taking turns): OpenVINO was the fastest, 1.4x
OpenCV's DNN module (``cv2.dnn.readNetFromONNX``) and 3.6x onnxruntime 1.32, all three giving the
same embedding (cosine 1.000000). onnxruntime requires the weights the file lists as graph
inputs, unused, to be fed, and does not constant-fold weights listed as inputs.

OpenCV 5.0's ``cv2.FaceRecognizerSF`` cannot run this file (it sets the input without a name
on a graph that lists several inputs); OpenCV's DNN module with ``setInput(blob, "data")`` can.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import WeightsError
from verify.runtime import OPENVINO_LOADING, cache_dir, compile_for_cpu, import_openvino
from verify.weights import WeightsFile, locate

log = logging.getLogger(__name__)

SFACE_WEIGHTS = WeightsFile(
    filename="face_recognition_sface_2021dec_int8bq.onnx",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    rebuild_command="cp ../shared/weights/face_recognition_sface_2021dec/face_recognition_sface_2021dec_int8bq.onnx assets/models/",
)

SFACE_INPUT_SIZE = 112
"""Side of the square aligned face crop, in pixels."""

SFACE_EMBEDDING_DIM = 128

SFACE_INPUT_NAME = "data"

SFACE_CPU_BATCH = 8
"""Crops per forward pass: with both lanes busy, 7.35 ms a crop against 7.79 at 2 and 7.33 at
16; every size gives the same embeddings bit for bit (``python benchmarks/network_batch.py
--rounds 5``, ``benchmarks/results/network_batch_cpu.json``)."""

SFACE_LANDMARK_TEMPLATE = (
    np.array(
        [
            [38.2946, 51.6963],  # left eye (the image's left)
            [73.5318, 51.5014],  # right eye
            [56.0252, 71.7366],  # nose tip
            [41.5493, 92.3655],  # left mouth corner
            [70.7299, 92.2041],  # right mouth corner
        ]
    )
    / SFACE_INPUT_SIZE
)
"""``(5, 2)`` ArcFace landmark template ``(x, y)`` in units of the 112-pixel side (MTCNN order)."""


def dequantized(quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int,
                block_size: int) -> np.ndarray:
    """``(quantized - zero_point) * scale`` in float32, the parameters per tensor (0-d), per
    ``axis`` (1-d) or per block of ``block_size`` elements along ``axis`` (the last block may be
    short), broadcast without materialising them at the weights' size (a cold start reads 29 of
    these)."""
    weights = quantized.astype(np.float32)
    if scale.ndim == 0:
        return (weights - zero_point) * scale
    if not block_size:
        shape = [1] * quantized.ndim
        shape[axis] = -1
        return (weights - zero_point.reshape(shape)) * scale.reshape(shape)
    length = quantized.shape[axis]
    blocks = -(-length // block_size)
    padding = [(0, 0)] * quantized.ndim
    padding[axis] = (0, blocks * block_size - length)
    split = (*quantized.shape[:axis], blocks, block_size, *quantized.shape[axis + 1 :])
    if length % block_size:
        weights = np.pad(weights, padding)  # a short last block padded, then cut off
    weights = weights.reshape(split)
    weights -= np.expand_dims(zero_point, axis + 1)
    weights *= np.expand_dims(scale, axis + 1)
    whole = weights.reshape(*quantized.shape[:axis], blocks * block_size, *quantized.shape[axis + 1 :])
    return np.ascontiguousarray(whole[(slice(None),) * axis + (slice(0, length),)])


def dequantize_linear(node) -> list:
    """OpenVINO ONNX-frontend converter of ``DequantizeLinear`` whose inputs are constants.

    ``y = (x - zero_point) * scale``, with ``scale`` and ``zero_point`` per tensor, per ``axis``
    or per block of ``block_size`` elements along ``axis`` (ONNX opset 21).

    Raises:
        WeightsError: an input is not a constant (the shipped model's never are).
    """
    import openvino.opset13 as ops

    values = []
    for index in range(node.get_input_size()):
        source = node.get_input(index).get_node()
        if source.get_type_name() != "Constant":
            raise WeightsError("DequantizeLinear on a non-constant input is not supported")
        values.append(source.get_data())
    quantized, scale = values[0], values[1].astype(np.float32)
    zero_point = values[2].astype(np.float32) if len(values) > 2 else np.zeros_like(scale)
    axis = node.get_attribute("axis", 1) % max(quantized.ndim, 1)
    block_size = node.get_attribute("block_size", 0)
    weights = dequantized(quantized, scale, zero_point, axis, block_size)
    return [ops.constant(weights).output(0)]


CONVERSION_REVISION = 1
"""Part of the converted model's name in the cache: bumped when :func:`read_converted` changes
what it builds, so that no process compiles a conversion of an older revision."""


def read_converted(path: Path) -> Any:
    """The shipped ONNX at ``path`` as an ``openvino.Model`` in float32: ``DequantizeLinear``
    converted (:func:`dequantize_linear`), the inputs it lists but never uses removed, any batch size.

    Raises:
        WeightsError: OpenVINO cannot read it.
    """
    ov = import_openvino()
    from openvino.frontend.onnx import ConversionExtension

    core = ov.Core()
    core.add_extension(ConversionExtension("DequantizeLinear", dequantize_linear))
    try:
        with OPENVINO_LOADING:
            model = core.read_model(str(path))
    except RuntimeError as error:
        raise WeightsError(f"OpenVINO cannot read SFace from {path}: {error}") from error
    for parameter in list(model.get_parameters()):  # weights the file lists as inputs but never uses
        if not parameter.output(0).get_target_inputs():
            model.remove_parameter(parameter)
    model.reshape({SFACE_INPUT_NAME: ov.PartialShape([-1, 3, SFACE_INPUT_SIZE, SFACE_INPUT_SIZE])})
    return model


def converted_graph(path: Path) -> Path:
    """Where the conversion of the shipped ONNX at ``path`` is kept as an IR: in the cache of
    compiled networks (:func:`verify.runtime.cache_dir`), named after the file's sha256 and
    :data:`CONVERSION_REVISION`."""
    return cache_dir() / "converted" / f"{path.stem}-{SFACE_WEIGHTS.sha256[:16]}-r{CONVERSION_REVISION}" / "model.xml"


def sface_model(path: Path) -> str | Any:
    """What to compile for the shipped ONNX at ``path``: the path of its converted IR, written on
    first use, or the converted model itself where the cache cannot be written.

    Reading the ONNX and dequantizing its weights took 0.15-0.4 s of every process, on top of the
    compiled network's cache: compiled from the IR's path, OpenVINO finds its cached network
    without reading the model (0.05 s). The IR is written to a folder of its own and renamed into
    place, so a process never reads a half-written one; two processes converting at once keep
    the first.
    """
    graph = converted_graph(path)
    if graph.is_file():
        return str(graph)
    model = read_converted(path)
    staging = None
    try:
        graph.parent.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=graph.parent.parent))
        with OPENVINO_LOADING:
            import_openvino().save_model(model, str(staging / graph.name), compress_to_fp16=False)
        staging.rename(graph.parent)
    except (OSError, RuntimeError) as error:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not graph.is_file():
            log.info("cannot keep SFace's conversion in %s (%s): it is converted again in every process", graph.parent, error)
            return model
    return str(graph)


class SFaceNetwork:
    """SFace compiled by OpenVINO for the CPU in float32; callable on aligned crops.

    Each calling thread gets its own inference request, so one network serves concurrent
    requests safely.
    """

    def __init__(self, cpu_threads: int | None = None) -> None:
        """Locate, hash-check, read (:func:`sface_model`) and compile the shipped model.

        Raises:
            WeightsError: the model is missing or corrupt, or OpenVINO cannot read it.
        """
        path = locate(SFACE_WEIGHTS)
        model = sface_model(path)
        try:
            self.compiled = compile_for_cpu(model, cpu_threads)  # cached compilations
        except RuntimeError as error:
            if not isinstance(model, str):
                raise WeightsError(f"OpenVINO cannot compile SFace from {path}: {error}") from error
            log.warning("cannot compile SFace's cached conversion %s (%s): converting it again", model, error)
            self.compiled = compile_for_cpu(read_converted(path), cpu_threads)
        self._tensor = import_openvino().Tensor
        self._local = threading.local()

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Raw ``(N, 128)`` float32 embeddings of ``(N, 112, 112, 3)`` uint8 RGB aligned crops."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        blob = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        request.set_input_tensor(self._tensor(blob, shared_memory=True))
        request.infer()
        return request.get_output_tensor(0).data.copy()
