"""Before/after of each CPU speed lever of the face pipeline, interleaved in one process.

    python benchmarks/levers.py [--runs 8] [--out benchmarks/results/levers_cpu.json]

Levers (each timed against its "before" on the same inputs, variants taking turns run by run):

- torch intra-op threads: 2 (torch's default on this machine) vs 1 (``cpu_threads=1``), for
  detection of one 640x480 frame and for embedding 32 aligned crops;
- MTCNN: facenet-pytorch's ``MTCNN.detect`` vs :func:`verify.face.mtcnn.detect_faces`
  (integral-image resampling) on one 640x480 frame and on 16 (one call vs calls of 4 frames,
  ``CPU_DETECTION_BATCH``); and the pyramid started at ``min_face_px`` (24 px instead of 20; kept
  out: it cost accuracy, see ``verify/face/detect.py``);
- embedding network: 32 crops per forward pass vs 8 (``CPU_NETWORK_BATCH``) vs 1, and channels-last
  memory order (kept out: it did not pay).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import REPO, face_photos, interleave, machine, single_frame  # noqa: E402

from verify.face.mtcnn import detect_faces  # noqa: E402
from verify.face.pipeline import FacePipeline  # noqa: E402
from verify.io import decode_image  # noqa: E402


def with_threads(threads: int, work):
    """``work`` run with ``threads`` torch intra-op threads."""

    def run():
        torch.set_num_threads(threads)
        return work()

    return run


def facenet_detect(face: FacePipeline, images: np.ndarray, min_face_size: float):
    def run():
        face.detector.mtcnn.min_face_size = min_face_size
        return face.detector.mtcnn.detect(images, landmarks=True)

    return run


def embed(network: torch.nn.Module, crops: np.ndarray, chunk: int, memory_format=torch.contiguous_format):
    def run():
        with torch.inference_mode():
            for start in range(0, len(crops), chunk):
                batch = torch.from_numpy(crops[start : start + chunk]).flip(-1).permute(0, 3, 1, 2).float()
                network(batch.contiguous(memory_format=memory_format))

    return run


def summarise(times: dict[str, list[float]], baseline: str) -> dict:
    base = float(np.median(times[baseline]))
    return {name: {"median_ms": round(1000 * float(np.median(value)), 1),
                   "speedup_vs_" + baseline: round(base / float(np.median(value)), 2)} for name, value in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "levers_cpu.json")
    args = parser.parse_args()
    face = FacePipeline(device="cpu", cpu_threads=None)
    frames = [single_frame(photo) for photo in face_photos(16)]
    one, sixteen = frames[0][None], np.stack(frames)
    crops = np.stack([face._crop(image, face.detector.detect([image])[0])[0] for image in
                      [decode_image(photo) for photo in face_photos(32)]])  # fmt: skip
    cpu = torch.device("cpu")
    report = {"command": "python " + " ".join(sys.argv), "machine": machine()}
    threads = interleave({
        "detect_1x640x480_2_threads": with_threads(2, lambda: detect_faces(one, face.detector.mtcnn, 20.0, cpu)),
        "detect_1x640x480_1_thread": with_threads(1, lambda: detect_faces(one, face.detector.mtcnn, 20.0, cpu)),
        "embed_32_crops_2_threads": with_threads(2, embed(face.network, crops, 8)),
        "embed_32_crops_1_thread": with_threads(1, embed(face.network, crops, 8)),
    }, args.runs)  # fmt: skip
    report["threads"] = {
        **summarise({k: v for k, v in threads.items() if k.startswith("detect")}, "detect_1x640x480_2_threads"),
        **summarise({k: v for k, v in threads.items() if k.startswith("embed")}, "embed_32_crops_2_threads"),
    }
    torch.set_num_threads(1)
    report["mtcnn"] = summarise(interleave({
        "facenet_min20_batch1": facenet_detect(face, one, 20.0),
        "facenet_min24_batch1": facenet_detect(face, one, 24.0),
        "ours_min20_batch1": lambda: detect_faces(one, face.detector.mtcnn, 20.0, cpu),
        "facenet_min20_16_frames_one_call": facenet_detect(face, sixteen, 20.0),
        "ours_min20_16_frames_one_call": lambda: detect_faces(sixteen, face.detector.mtcnn, 20.0, cpu),
        "ours_min20_16_frames_calls_of_4": lambda: [
            detect_faces(sixteen[i : i + 4], face.detector.mtcnn, 20.0, cpu) for i in range(0, 16, 4)
        ],
    }, args.runs), "facenet_min20_batch1")  # fmt: skip
    channels_last = copy.deepcopy(face.network).to(memory_format=torch.channels_last)
    report["embedding_batch"] = summarise(interleave({
        "32_crops_chunk_32": embed(face.network, crops, 32),
        "32_crops_chunk_8": embed(face.network, crops, 8),
        "32_crops_chunk_1": embed(face.network, crops, 1),
        "32_crops_chunk_8_channels_last": embed(channels_last, crops, 8, torch.channels_last),
    }, args.runs), "32_crops_chunk_32")  # fmt: skip
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
