"""Per-frame cost of the live challenge, measured apart from face detection and embedding.

    python benchmarks/challenge_cost.py [--frames 2000] [--out benchmarks/results/challenge_cost_cpu.json]

Sections (median and p95 per frame, milliseconds, on this machine's CPU):

- challenge geometry: ``head_pose`` + ``Challenge.observe`` + ``boxes_continuous`` on landmark arrays.
- session without the pipeline: ``LiveSession.feed`` on a stand-in pipeline that returns prepared
  embeddings at once, with the challenge and without it (the same store lookups, lockout check and
  decision per frame), on a real SQLite store; the difference is what the challenge adds.
- detection + embedding: the shipped face pipeline on one 640x480 frame, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "enrollment")]

from head_model import real_head  # noqa: E402
from pose_pipeline import PosePipeline  # noqa: E402
from vector_pipeline import THRESHOLDS  # noqa: E402

from enrollment.service import Service  # noqa: E402
from verify.challenge import Challenge, boxes_continuous, head_pose  # noqa: E402
from verify.scorer import CosineScorer  # noqa: E402

MOVES = ("turn_left", "look_up")
POSES = [{}] * 4 + [{"yaw": 25}, {"yaw": 25}, {}, {"pitch": -25}, {"pitch": -25}, {}]


def timed(step: Callable[[int], object], count: int) -> dict[str, float]:
    """Median and p95 of ``step(i)`` for ``i`` in ``range(count)``, milliseconds."""
    times = []
    for index in range(count):
        start = time.perf_counter()
        step(index)
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(float(np.median(times)), 4), "p95_ms": round(float(np.quantile(times, 0.95)), 4),
            "frames": count}


def geometry(count: int) -> dict[str, float]:
    landmarks = [real_head(**pose) for pose in POSES]
    box = (220.0, 140.0, 420.0, 380.0)
    state = {"challenge": Challenge(MOVES)}

    def step(index: int) -> None:
        if index % len(POSES) == 0:
            state["challenge"] = Challenge(MOVES)
        boxes_continuous(box, box)
        state["challenge"].observe(head_pose(landmarks[index % len(POSES)]), 0.5 * (index % len(POSES)))

    return timed(step, count)


def session(count: int, challenge: bool, folder: Path) -> dict[str, float]:
    stub = PosePipeline()
    vector = np.eye(16, dtype=np.float32)[0]
    frames = [stub.frame(real_head(**pose), vector + 0.05 * np.random.default_rng(i).normal(size=16))
              for i, pose in enumerate(POSES)]
    with Service(folder / f"cost-{challenge}.db", caller="bench", challenge_seed=1,
                 pipelines={"face": stub}, scorers={"face": CosineScorer(THRESHOLDS)}) as service:
        service.enroll("Ann", face=stub.frame(real_head(), vector))
        live = service.live_session("Ann", challenge=challenge)
        live.feed(frames[0], 0.0)  # warm-up: models' thresholds and the replay threshold load once
        return timed(lambda index: live.feed(frames[index % len(frames)], 0.5 * index), count)


def detection(count: int) -> dict[str, float]:
    import torch

    from verify.face.pipeline import FacePipeline

    torch.set_num_threads(1)
    pipeline = FacePipeline(device="cpu", cpu_threads=1)
    sample = REPO / "assets" / "samples" / "faces" / "Andy_Roddick" / "2.jpg"
    import cv2

    from verify.io import decode_image

    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[90:390, 170:470] = cv2.resize(decode_image(sample), (300, 300))
    pipeline.embed(frame)
    return timed(lambda _: pipeline.embed(frame), count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "challenge_cost_cpu.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        result = {
            "challenge_geometry": geometry(args.frames),
            "session_with_challenge_no_pipeline": session(args.frames, True, Path(folder)),
            "session_without_challenge_no_pipeline": session(args.frames, False, Path(folder)),
            "face_detection_and_embedding_640x480": detection(max(20, args.frames // 40)),
        }
    added = (result["session_with_challenge_no_pipeline"]["median_ms"]
             - result["session_without_challenge_no_pipeline"]["median_ms"])
    result["challenge_adds_median_ms"] = round(added, 4)
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                         "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    result["command"] = "python benchmarks/challenge_cost.py"
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
