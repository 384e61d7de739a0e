"""SFace on one aligned crop in each runtime that can read the shipped ONNX file: time and agreement.

    python benchmarks/sface_runtimes.py [--threads 2] [--runs 30] [--out benchmarks/results/sface_runtimes_cpu.json]

Runtimes: OpenVINO as :class:`verify.face.sface.SFaceNetwork` runs it (shipped); OpenCV's DNN
module (``cv2.dnn.readNetFromONNX``); onnxruntime, which requires the 29 weights the file lists as
graph inputs without using them to be fed (zeros are). The runtimes take turns run by run on
a real crop (a shipped sample aligned by YuNet); agreement is the cosine to OpenCV's embedding.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import REPO, interleave, latency, machine  # noqa: E402

from verify.face.align import align_face  # noqa: E402
from verify.face.sface import (  # noqa: E402
    SFACE_INPUT_NAME,
    SFACE_INPUT_SIZE,
    SFACE_LANDMARK_TEMPLATE,
    SFACE_WEIGHTS,
    SFaceNetwork,
)
from verify.face.yunet import YuNetDetector  # noqa: E402
from verify.io import decode_image  # noqa: E402
from verify.weights import locate  # noqa: E402


def onnxruntime_session(path: Path, threads: int):
    """onnxruntime on the file, and zeros for the weights it lists as inputs but never uses (it requires them)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {item.name: np.zeros(item.shape, np.float32) for item in session.get_inputs() if item.name != SFACE_INPUT_NAME}
    return session, feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sface_runtimes_cpu.json")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    image = decode_image(REPO / "assets" / "samples" / "faces" / "Angela_Bassett" / "0.jpg")
    (face,) = YuNetDetector().detect([image])[0]
    crop = align_face(image, face.landmarks, SFACE_LANDMARK_TEMPLATE, SFACE_INPUT_SIZE)
    blob = np.ascontiguousarray(crop[None, ..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    path = locate(SFACE_WEIGHTS)
    openvino = SFaceNetwork(args.threads)
    net = cv2.dnn.readNetFromONNX(str(path))
    session, feed = onnxruntime_session(path, args.threads)

    def opencv() -> np.ndarray:
        net.setInput(blob, SFACE_INPUT_NAME)
        return net.forward().reshape(-1)

    systems = {
        "openvino": lambda: openvino(crop[None])[0],
        "opencv_dnn": opencv,
        "onnxruntime": lambda: session.run(None, {SFACE_INPUT_NAME: blob, **feed})[0].reshape(-1),
    }
    reference = opencv()
    agreement = {name: float(np.dot(run(), reference) / np.linalg.norm(run()) / np.linalg.norm(reference))
                 for name, run in systems.items()}  # fmt: skip
    times = interleave(systems, args.runs, warmup=2)
    report = {"command": "python " + " ".join(sys.argv), "machine": machine(),
              "latency_one_crop": {name: latency(value) for name, value in times.items()},
              "cosine_to_opencv": {name: round(value, 6) for name, value in agreement.items()}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
