"""Before/after of each CPU speed lever of the face pipeline, interleaved in one process.

    python benchmarks/levers.py [--runs 8] [--out benchmarks/results/levers_cpu.json]

Levers (each timed against its "before" on the same inputs, variants taking turns run by run;
every system has one thread per core unless the lever is the thread count):

- runtime: the networks compiled by OpenVINO (``cpu_runtime="openvino"``, the default) vs
  PyTorch eager, for the whole pyramid of one 640x480 frame, for 32 aligned crops, and for one
  frame end to end with everything in OpenVINO, only the embedding network in it, or none;
- coarse to fine: :meth:`FaceDetector.detect` (first pass on the coarse levels, whole pyramid only
  when a smaller face could still matter) vs the whole pyramid, on one 640x480 frame;
- MTCNN resampling and batching: facenet-pytorch's ``MTCNN.detect`` vs
  :func:`verify.face.mtcnn.detect_faces` (integral-image resampling, same networks in PyTorch) on
  one frame and on 16 (one call vs calls of 4 frames, ``CPU_DETECTION_BATCH``);
- embedding network: 32 crops per call vs 8 (``CPU_NETWORK_BATCH``) vs 1;
- threads: OpenVINO with one thread vs two, for 32 crops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import REPO, face_photos, interleave, machine, single_frame  # noqa: E402

from verify.face.detect import MTCNN_MIN_FACE_PX  # noqa: E402
from verify.face.mtcnn import detect_faces, pyramid_scales  # noqa: E402
from verify.face.align import align_face  # noqa: E402
from verify.face.pipeline import LEGACY_FUSION, FacePipeline  # noqa: E402
from verify.face.reid import FACE_REID_INPUT_SIZE, REID_LANDMARK_TEMPLATE  # noqa: E402
from verify.io import decode_image  # noqa: E402


def embed(face: FacePipeline, crops: np.ndarray, chunk: int):
    def run():
        for start in range(0, len(crops), chunk):
            face.networks["reid"].embed(crops[start : start + chunk])

    return run


def aligned_crop(face: FacePipeline, image: np.ndarray) -> np.ndarray:
    """The re-identification network's aligned crop of the image's face."""
    _, located = face.locate(image.shape, face.detect([image])[0])
    return align_face(image, located.alignments[0], REID_LANDMARK_TEMPLATE, FACE_REID_INPUT_SIZE)


def summarise(times: dict[str, list[float]], baseline: str) -> dict:
    base = float(np.median(times[baseline]))
    return {name: {"median_ms": round(1000 * float(np.median(value)), 1),
                   "speedup_vs_" + baseline: round(base / float(np.median(value)), 2)} for name, value in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "levers_cpu.json")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    face = FacePipeline(device="cpu", cpu_threads=cores, fusion=LEGACY_FUSION)
    eager = FacePipeline(device="cpu", cpu_threads=cores, cpu_runtime="torch", fusion=LEGACY_FUSION)
    mixed = FacePipeline(device="cpu", cpu_threads=cores, fusion=LEGACY_FUSION)
    mixed.detectors["mtcnn"].cascade = eager.detectors["mtcnn"].cascade
    single_thread = FacePipeline(device="cpu", cpu_threads=1, fusion=LEGACY_FUSION)
    torch.set_num_threads(cores)  # the last pipeline set one thread for the whole process
    frames = [single_frame(photo) for photo in face_photos(16)]
    one, sixteen = frames[0][None], np.stack(frames)
    pyramid = pyramid_scales(480, 640, MTCNN_MIN_FACE_PX, face.detectors["mtcnn"].cascade.factor)
    crops = np.stack([aligned_crop(face, decode_image(photo)) for photo in face_photos(32)])
    facenet = MTCNN(keep_all=True, device=torch.device("cpu"))
    report = {"command": "python " + " ".join(sys.argv), "machine": machine()}
    report["runtime"] = {
        **summarise(interleave({
            "pyramid_1x640x480_torch": lambda: detect_faces(one, eager.detectors["mtcnn"].cascade, pyramid),
            "pyramid_1x640x480_openvino": lambda: detect_faces(one, face.detectors["mtcnn"].cascade, pyramid),
        }, args.runs), "pyramid_1x640x480_torch"),
        **summarise(interleave({
            "embed_32_crops_torch": embed(eager, crops, 8),
            "embed_32_crops_openvino": embed(face, crops, 8),
        }, args.runs), "embed_32_crops_torch"),
        **summarise(interleave({
            "frame_end_to_end_torch": lambda: eager.embed(one[0]),
            "frame_end_to_end_torch_cascade_openvino_network": lambda: mixed.embed(one[0]),
            "frame_end_to_end_openvino": lambda: face.embed(one[0]),
        }, args.runs * 4), "frame_end_to_end_torch"),
    }  # fmt: skip
    report["coarse_to_fine"] = summarise(interleave({
        "whole_pyramid_1x640x480": lambda: detect_faces(one, face.detectors["mtcnn"].cascade, pyramid),
        "coarse_to_fine_1x640x480": lambda: face.detectors["mtcnn"].detect([one[0]]),
    }, args.runs), "whole_pyramid_1x640x480")  # fmt: skip
    report["mtcnn"] = summarise(interleave({
        "facenet_batch1": lambda: facenet.detect(one, landmarks=True),
        "ours_torch_batch1": lambda: detect_faces(one, eager.detectors["mtcnn"].cascade, pyramid),
        "facenet_16_frames_one_call": lambda: facenet.detect(sixteen, landmarks=True),
        "ours_torch_16_frames_one_call": lambda: detect_faces(sixteen, eager.detectors["mtcnn"].cascade, pyramid),
        "ours_torch_16_frames_calls_of_4": lambda: [
            detect_faces(sixteen[i : i + 4], eager.detectors["mtcnn"].cascade, pyramid) for i in range(0, 16, 4)
        ],
    }, args.runs), "facenet_batch1")  # fmt: skip
    report["embedding_batch"] = summarise(interleave({
        "32_crops_chunk_32": embed(face, crops, 32),
        "32_crops_chunk_8": embed(face, crops, 8),
        "32_crops_chunk_1": embed(face, crops, 1),
    }, args.runs), "32_crops_chunk_32")  # fmt: skip
    report["threads"] = summarise(interleave({
        f"embed_32_crops_{cores}_threads": embed(face, crops, 8),
        "embed_32_crops_1_thread": embed(single_thread, crops, 8),
    }, args.runs), f"embed_32_crops_{cores}_threads")  # fmt: skip
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
