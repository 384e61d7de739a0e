"""CPU time per crop of each face embedding network at each batch size, with every lane busy.

    python benchmarks/network_batch.py [--photos 64] [--lanes 2] [--rounds 3] [--out benchmarks/results/network_batch_cpu.json]

A folder job runs one copy of the face pipeline per lane, one thread each (``verify/lanes.py``),
so the networks meet each other in the caches. Here ``--lanes`` processes each load the shipped
face pipeline with one thread, align the crops of the same ``--photos`` LFW photos (both
alignments, as the pipeline does) and embed them with each network at batch sizes 1 to 32, all
processes at once, sizes taking turns round by round; the last round counts. Each also checks that
every batch size gives the same embeddings, bit for bit, as one crop at a time. Printed and
written as JSON: milliseconds per crop, the median over the processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import face_photos, machine  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32)


def lane(photos: list[Path], rounds: int, start: multiprocessing.Barrier, results: multiprocessing.Queue) -> None:
    """One lane: load, align, then time each network at each batch size."""
    from verify.face.sface import SFaceNetwork
    from verify.io import decode_image
    from verify.models import load_pipeline
    from verify.runtime import OpenVinoNetwork, single_threaded_blas
    from verify.face.reid import FACE_REID_NETWORK

    single_threaded_blas()
    pipeline = load_pipeline("face", "cpu", cpu_threads=1)
    images = [decode_image(path) for path in photos]
    faces = [pipeline.locate(image.shape, found)[1] for image, found in zip(images, pipeline.detect(images))]
    located = [(image, face) for image, face in zip(images, faces) if not isinstance(face, Exception)]
    crops = {name: np.concatenate([pipeline._crops(image, face, network) for image, face in located])
             for name, network in pipeline.networks.items()}
    sface, reid = SFaceNetwork(1), OpenVinoNetwork(FACE_REID_NETWORK, 1)
    raw = {"sface": lambda batch: sface(batch),
           "reid": lambda batch: reid(np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32))[0]}
    singles = {name: np.concatenate([run(crops[name][i : i + 1]) for i in range(len(crops[name]))]) for name, run in raw.items()}
    start.wait()
    times: dict[str, dict[int, float]] = {name: {} for name in raw}
    identical = {name: True for name in raw}
    for _ in range(rounds):
        for size in BATCHES:
            for name, run in raw.items():
                batch = crops[name]
                began = time.thread_time()
                out = np.concatenate([run(batch[i : i + size]) for i in range(0, len(batch), size)])
                times[name][size] = (time.thread_time() - began) / len(batch) * 1000
                identical[name] &= bool(np.array_equal(out, singles[name]))
    results.put({"times": times, "identical": identical, "crops": len(crops["sface"])})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "network_batch_cpu.json")
    args = parser.parse_args()
    photos = face_photos(args.photos)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(args.lanes), context.Queue()
    workers = [context.Process(target=lane, args=(photos, args.rounds, start, results)) for _ in range(args.lanes)]
    for worker in workers:
        worker.start()
    found = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    report = {
        "command": f"python benchmarks/network_batch.py --photos {args.photos} --lanes {args.lanes} --rounds {args.rounds}",
        "machine": machine(), "crops_per_network": found[0]["crops"],
        "ms_per_crop": {name: {str(size): round(float(np.median([f["times"][name][size] for f in found])), 3)
                               for size in BATCHES} for name in found[0]["times"]},
        "identical_to_one_at_a_time": {name: all(f["identical"][name] for f in found) for name in found[0]["identical"]},
    }
    print(json.dumps(report, indent=1))
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
