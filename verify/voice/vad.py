"""Voice activity detection with Silero VAD 6 (MIT), run by OpenVINO on the CPU.

The ``silero-vad`` wheel ships the network; this module runs its "sequence" ONNX export
(``silero_vad_16k_sequence.onnx``: every 32 ms frame of a clip in one call, the LSTM state carried
inside the graph) instead of the package's per-frame Python loop. On 2 shared cores a 3 s clip
takes about 1.8 ms of CPU this way, against 7 ms in onnxruntime and 34 ms (ONNX) or 300 ms
(TorchScript) through the package's own ``audio_forward`` (``python benchmarks/voice_conditions.py
--vad-speed``). The model file is found without importing ``silero_vad``, whose import sets
PyTorch to one thread for the whole process, and its sha256 is checked.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from verify.errors import WeightsError
from verify.runtime import compile_for_cpu
from verify.weights import sha256_of

SAMPLE_RATE = 16_000  # Hz
FRAME_SAMPLES = 512  # 32 ms per probability
CONTEXT_SAMPLES = 64  # the end of the previous frame, prepended to each frame
BLOCK_FRAMES = 512  # frames per call (16.4 s); the state is carried across blocks
STATE_SIZE = 128
MODEL_FILENAME = "silero_vad_16k_sequence.onnx"
MODEL_SHA256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"
INSTALL_COMMAND = "pip install silero-vad==6.2.3"


def model_path() -> Path:
    """The sequence ONNX file inside the installed ``silero-vad`` wheel, hash-checked.

    Raises:
        WeightsError: the package is not installed, or its file is missing or different.
    """
    spec = importlib.util.find_spec("silero_vad")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the silero-vad package is not installed; install it with: {INSTALL_COMMAND}")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / MODEL_FILENAME
    if not path.is_file():
        raise WeightsError(f"{path} not found; install the expected version with: {INSTALL_COMMAND}")
    actual = sha256_of(path)
    if actual != MODEL_SHA256:
        raise WeightsError(
            f"{path} has sha256 {actual[:12]}..., expected {MODEL_SHA256[:12]}...; "
            f"install the expected version with: {INSTALL_COMMAND}"
        )
    return path


class SileroVad:
    """Speech probability of every 32 ms frame of a 16 kHz clip.

    Each calling thread gets its own inference request, so one detector serves concurrent calls.
    """

    def __init__(self, threads: int = 1) -> None:
        """Compile the network for the CPU in float32 with ``threads`` OpenVINO threads."""
        self.compiled = compile_for_cpu(str(model_path()), threads)
        self._local = threading.local()

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """``(ceil(T / 512),)`` float32 speech probabilities of ``(T,)`` float32 samples at 16 kHz.

        Frame ``i`` covers samples ``[512 i, 512 (i + 1))``; the last one is zero-padded.
        """
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        frames = context_frames(samples)
        hidden = np.zeros((1, 1, STATE_SIZE), np.float32)
        cell = np.zeros((1, 1, STATE_SIZE), np.float32)
        blocks = []
        for start in range(0, len(frames), BLOCK_FRAMES):
            outputs = request.infer({"input": frames[start : start + BLOCK_FRAMES], "h": hidden, "c": cell})
            blocks.append(np.array(outputs["speech_probs"], np.float32).ravel())
            hidden, cell = np.array(outputs["hn"]), np.array(outputs["cn"])
        return np.concatenate(blocks)


def context_frames(samples: np.ndarray) -> np.ndarray:
    """``(F, 576)`` network input: each 512-sample frame after the last 64 samples of the one before."""
    count = max(1, -(-len(samples) // FRAME_SAMPLES))
    frames = np.zeros((count, FRAME_SAMPLES), np.float32)
    frames.reshape(-1)[: len(samples)] = samples
    context = np.zeros((count, CONTEXT_SAMPLES), np.float32)
    context[1:] = frames[:-1, -CONTEXT_SAMPLES:]
    return np.concatenate([context, frames], axis=1)


def speech_frames(probabilities: np.ndarray, threshold: float = 0.5, hysteresis: float = 0.15) -> np.ndarray:
    """Per-frame boolean: speech where the probability reaches ``threshold``, extended over the
    neighbouring frames down to ``threshold - hysteresis`` (a run above the lower level is speech
    when it reaches ``threshold`` anywhere)."""
    above_low = probabilities >= threshold - hysteresis
    run_starts = above_low & ~np.concatenate([[False], above_low[:-1]])
    run_id = np.cumsum(run_starts) * above_low  # 0 outside runs, 1.. inside
    reached = np.zeros(int(run_id.max(initial=0)) + 1, bool)
    reached[run_id[probabilities >= threshold]] = True
    reached[0] = False
    return reached[run_id]
