"""Throughput of the shipped pipelines on one device: face embedding, face detection, voice.

    python benchmarks/gpu_throughput.py [--device auto] [--seconds 3]

Prints aligned face crops embedded per second at batch 1/32/256, MTCNN detection frames per
second on 640x480 frames (batch 1 and 16), and the voice real-time factor (audio seconds per wall
second) for 3 s clips at batch 1 and 64, and on CUDA the peak memory allocated by each of the
three. Inputs are synthetic (speed does not depend on content, except detection, which gets a
real face pasted into each frame).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.face.pipeline import FacePipeline  # noqa: E402
from verify.io import decode_image  # noqa: E402
from verify.voice.pipeline import VoicePipeline  # noqa: E402


def rate(work, items: int, seconds: float, device: torch.device) -> float:
    """Items per second of ``work()`` (which handles ``items`` items), after one warm-up call."""
    work()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        work()
        runs += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return runs * items / (time.perf_counter() - start)


class PeakMemory:
    """Peak CUDA memory allocated by each section (nothing on the CPU: see speed.py for RSS)."""

    def __init__(self, device: torch.device, figures: dict[str, float]) -> None:
        self.device, self.figures = device, figures
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def record(self, section: str) -> None:
        if self.device.type == "cuda":
            self.figures[f"{section}_cuda_peak_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            torch.cuda.reset_peak_memory_stats(self.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    face = FacePipeline(device=args.device, batch_size=256)
    device = face.device.torch()
    peak_memory = PeakMemory(device, figures)
    rng = np.random.default_rng(0)
    for batch in (1, 32, 256):
        crops = rng.integers(0, 256, (batch, 128, 128, 3), dtype=np.uint8)
        figures[f"face_embed_per_s_batch_{batch}"] = rate(lambda: face.networks["reid"].embed(crops), batch, args.seconds, device)
    peak_memory.record("face_embed")
    portrait = decode_image(REPO / "assets" / "samples" / "faces" / "Angela_Bassett" / "0.jpg")
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[115:365, 195:445] = portrait
    for batch in (1, 16):
        frames = [frame.copy() for _ in range(batch)]
        figures[f"face_detect_fps_640x480_batch_{batch}"] = rate(lambda: face.detectors["mtcnn"].detect(frames), batch, args.seconds, device)
    peak_memory.record("face_detect")
    voice = VoicePipeline(device=args.device, batch_size=64)
    for batch in (1, 64):
        clips = [rng.standard_normal(48_000).astype(np.float32) * 0.1 for _ in range(batch)]
        figures[f"voice_realtime_factor_3s_batch_{batch}"] = rate(lambda: voice.embed_speech(clips), batch * 3, args.seconds, device)
    peak_memory.record("voice")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(json.dumps({"device": name, "torch": torch.__version__, **{k: round(v, 1) for k, v in figures.items()}}, indent=1))


if __name__ == "__main__":
    main()
