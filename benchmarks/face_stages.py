"""Where a face decision's CPU time goes: decode, detect, embed, decide, per photo, on one thread.

    python benchmarks/face_stages.py [--photos 300] [--rounds 2] [--out benchmarks/results/face_stages_cpu.json]

The folder is the one of ``speed.py``'s cold batch: the first ``--photos`` LFW photos, resized to
250, 640 and 800 px in turn and saved as JPEG (quality 90). One copy of the shipped face pipeline
with one thread (a lane of a folder job) runs each stage on each photo in turn, timed with the
thread's CPU clock; the last round counts. Each network is also timed alone on the crops of 8
photos. Printed and written as JSON: milliseconds per photo.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import COLD_SIZES, machine, write_cold_batch  # noqa: E402

from verify.io import decode_image  # noqa: E402
from verify.models import load_pipeline, shipped_verifier  # noqa: E402
from verify.runtime import single_threaded_blas  # noqa: E402


def encoded_photos(count: int) -> list[bytes]:
    """The JPEG bytes of ``speed.py``'s cold batch folder of ``count`` photos."""
    with tempfile.TemporaryDirectory() as temporary:
        return [path.read_bytes() for path in write_cold_batch(count, Path(temporary) / "batch")]


def stage_times(pipeline, photos: list[bytes]) -> dict[str, float]:
    """CPU milliseconds per photo of each stage, one photo at a time."""
    totals: dict[str, float] = {}

    def timed(stage, function, *args):
        start = time.thread_time()
        result = function(*args)
        totals[stage] = totals.get(stage, 0.0) + time.thread_time() - start
        return result

    embeddings = []
    for data in photos:
        image = timed("decode", decode_image, data)
        found = timed("detect", pipeline.detect, [image])
        _, face = timed("locate", pipeline.locate, image.shape, found[0])
        embeddings.append(timed("embed", pipeline._embed_located, [image], [face])[0])
    verifier = shipped_verifier(pipeline)
    template = embeddings[0].vector
    stats = verifier.template_stats(template)
    for embedding in embeddings:
        timed("decide", verifier.decide, template, embedding, stats)
    return {stage: round(1000 * seconds / len(photos), 2) for stage, seconds in totals.items()}


def network_times(pipeline, photos: list[bytes], runs: int = 10) -> dict[str, float]:
    """CPU milliseconds per photo of each network alone, on the crops of 8 photos at once."""
    images = [decode_image(data) for data in photos[:8]]
    faces = [pipeline.locate(image.shape, pipeline.detect([image])[0])[1] for image in images]
    times = {}
    for name, network in pipeline.networks.items():
        crops = np.concatenate([pipeline._crops(image, face, network) for image, face in zip(images, faces)])
        network.embed(crops)
        start = time.thread_time()
        for _ in range(runs):
            network.embed(crops)
        times[name] = round(1000 * (time.thread_time() - start) / (runs * len(images)), 2)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "face_stages_cpu.json")
    args = parser.parse_args()
    single_threaded_blas()
    pipeline = load_pipeline("face", "cpu", cpu_threads=1)
    photos = encoded_photos(args.photos)
    for _ in range(args.rounds):
        stages = stage_times(pipeline, photos)
    report = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "photos": len(photos),
              "sizes_px": COLD_SIZES, "ms_per_photo_one_thread": stages,
              "networks_ms_per_photo": network_times(pipeline, photos)}
    print(json.dumps(report, indent=1))
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
