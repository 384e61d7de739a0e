"""MTCNN's refinement of a seed face in large photos: the whole photo downscaled, or only its part.

    python benchmarks/refine_region.py [--photos 300] [--rounds 3] [--out benchmarks/results/refine_region_cpu.json]

Photos: those of ``speed.py``'s cold batch larger than MTCNN's 640 px (its 800 px third), and
4000 x 3000, 1920 x 1080 and 1280 x 720 frames with a shipped photo pasted in (900, 600 and 400
px). Seeds are YuNet's faces, as in the pipeline. Each photo is refined both ways on one thread,
the two taking turns; the last round's CPU time counts. Also reports how many photos took the
part (:func:`verify.face.detect.exact_region`) and how many fell back to the whole after a crop
left it, and checks that both ways give the same boxes and landmarks bit for bit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import machine, write_cold_batch  # noqa: E402

import verify.face.detect as detect_module  # noqa: E402
from verify.face.detect import choose_face  # noqa: E402
from verify.face.mtcnn import OutsideRegion, refine_faces  # noqa: E402
from verify.io import decode_image  # noqa: E402
from verify.models import load_pipeline  # noqa: E402

FRAMES = ((4000, 3000, 900), (1920, 1080, 600), (1280, 720, 400))
SAMPLE_FACE = REPO / "assets" / "samples" / "faces" / "Andy_Roddick" / "0.jpg"


def frames() -> dict[str, np.ndarray]:
    """Grey frames of each size in :data:`FRAMES` with the sample face pasted a third of the way down."""
    face, found = decode_image(SAMPLE_FACE), {}
    for width, height, side in FRAMES:
        frame = np.full((height, width, 3), 90, np.uint8)
        frame[height // 3 : height // 3 + side, width // 2 : width // 2 + side] = cv2.resize(face, (side, side))
        found[f"{width}x{height}"] = frame
    return found


def compare(mtcnn, photos: list[tuple[np.ndarray, object]], rounds: int) -> dict:
    """CPU ms per photo refining the whole photo and the part, and the part's use."""
    def whole(image, seed):
        scaled, factor = mtcnn._downscale(image)
        return mtcnn._detections(*refine_faces(scaled, seed.box[None] * factor, mtcnn.cascade), factor)

    parts = fell_back = 0
    region_of, refine_in = detect_module.exact_region, detect_module.refine_faces

    def counting_region(*args):
        nonlocal parts
        region = region_of(*args)
        parts += region is not None
        return region

    def counting_refine(*args, **options):
        nonlocal fell_back
        try:
            return refine_in(*args, **options)
        except OutsideRegion:
            fell_back += 1
            raise

    detect_module.exact_region, detect_module.refine_faces = counting_region, counting_refine
    try:
        same = all(np.array_equal(a.landmarks, b.landmarks) and np.array_equal(a.box, b.box)
                   for image, seed in photos for a, b in zip(whole(image, seed), mtcnn.refine(image, [seed])))
    finally:
        detect_module.exact_region, detect_module.refine_faces = region_of, refine_in
    times = {}
    for _ in range(rounds):
        for name, run in (("whole", whole), ("part", lambda image, seed: mtcnn.refine(image, [seed]))):
            start = time.thread_time()
            for image, seed in photos:
                run(image, seed)
            times[name] = (time.thread_time() - start) / len(photos) * 1000
    return {"photos": len(photos), "took_the_part": int(parts), "fell_back": fell_back, "identical": bool(same),
            "ms_per_photo": {name: round(value, 2) for name, value in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "refine_region_cpu.json")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    pipeline = load_pipeline("face", "cpu", cpu_threads=1)
    yunet, mtcnn = pipeline.detectors["yunet"], pipeline.detectors["mtcnn"]

    def seeded(images: list[np.ndarray]) -> list[tuple[np.ndarray, object]]:
        return [(image, choose_face(found, image.shape)) for image, found in zip(images, yunet.detect(images)) if found]

    with tempfile.TemporaryDirectory() as temporary:
        paths = write_cold_batch(args.photos, Path(temporary) / "batch")
        large = [image for image in map(decode_image, paths) if max(image.shape[:2]) > 640]
    report = {"command": f"python benchmarks/refine_region.py --photos {args.photos} --rounds {args.rounds}",
              "machine": machine(), "batch_photos_over_640_px": compare(mtcnn, seeded(large), args.rounds)}
    for name, frame in frames().items():
        report[f"frame_{name}"] = compare(mtcnn, seeded([frame]), args.rounds)
    print(json.dumps(report, indent=1))
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
