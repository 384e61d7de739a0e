"""Lanes against one copy: samples per second of a folder job, in this process, on real data.

    python benchmarks/lanes.py [--data ../shared/data] [--photos 300] [--clips 200] [--rounds 3]

For each modality, one copy of the shipped pipeline with every core and ``verify.lanes.Lanes`` of
two copies with a core's share each embed the same files (LFW photos re-encoded at 250, 640 and
800 px; LibriSpeech clips) through the local engine, each round in a new process of each, taking
turns; loading and a warm-up on 16 files are not timed. Prints JSON: seconds per round, samples
per second (medians) and the ratio, and whether the embeddings are bit-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from verify.engines import LocalEngine, list_files
from verify.lanes import load_lanes
from verify.runtime import single_threaded_blas

SIZES = (250, 640, 800)


def write_photos(data: Path, count: int, folder: Path) -> None:
    """``count`` LFW photos re-encoded at :data:`SIZES` px (JPEG q90) into ``folder``."""
    photos = sorted((data / "faces" / "lfw_gray").rglob("*.jpg"))[:count]
    for index, photo in enumerate(photos):
        side = SIZES[index % len(SIZES)]
        image = cv2.resize(cv2.imread(str(photo)), (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{index:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def write_clips(data: Path, count: int, folder: Path) -> None:
    """Links to ``count`` LibriSpeech clips in ``folder``."""
    for index, clip in enumerate(sorted((data / "voices" / "librispeech_tc100_segments").rglob("*.flac"))[:count]):
        (folder / f"{index:04d}.flac").symlink_to(clip)


def child(modality: str, lanes: int, threads: int, folder: Path) -> None:
    """In a process of its own (OpenCV's thread count is process-wide): load, warm up on 16 files,
    then time one pass over ``folder``; prints seconds and a digest of the embeddings."""
    single_threaded_blas()  # as the command line does
    pipeline = load_lanes(modality, "cpu", lanes, threads or None)
    files = list_files(folder)
    pipeline.embed_many(list(files.paths[:16]))
    start = time.perf_counter()
    results = [result for chunk in LocalEngine(pipeline).embed(files) for _, result in chunk]
    elapsed = time.perf_counter() - start
    digest = hashlib.sha256(b"".join(getattr(r, "vector", np.zeros(1, np.float32)).tobytes() for r in results))
    print(json.dumps({"seconds": elapsed, "digest": digest.hexdigest()}))


def compare(modality: str, folder: Path, rounds: int, lane_threads: list[int]) -> dict:
    """One copy against two lanes on ``folder``, each round a new process of each, taking turns."""
    systems = {"one copy, every core": (1, 0), "two lanes": (2, 0)}
    systems.update({f"two lanes, {n} threads each": (2, n) for n in lane_threads})
    seconds: dict[str, list[float]] = {name: [] for name in systems}
    digests: dict[str, set[str]] = {name: set() for name in systems}
    for _ in range(rounds):
        for name, (lanes, threads) in systems.items():
            output = subprocess.run([sys.executable, __file__, "--child", modality, str(lanes), str(threads), str(folder)],
                                    capture_output=True, text=True, check=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            seconds[name].append(round(result["seconds"], 2))
            digests[name].add(result["digest"])
    count = len(list_files(folder))
    rates = {name: round(count / statistics.median(times), 1) for name, times in seconds.items()}
    return {"files": count, "seconds_by_round": seconds, "per_second": rates,
            "vs_one_copy": {name: round(rate / rates["one copy, every core"], 2) for name, rate in rates.items()},
            "embeddings_identical": len(set().union(*digests.values())) == 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--lane-threads", type=int, action="append", default=[],
                        help="also two lanes with N threads each (default: a core's share each; repeat)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        modality, lanes, threads, folder = args.child
        child(modality, int(lanes), int(threads), Path(folder))
        return
    report: dict = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as temporary:
        for modality, count, write in (("face", args.photos, write_photos), ("voice", args.clips, write_clips)):
            folder = Path(temporary) / modality
            folder.mkdir()
            write(args.data, count, folder)
            report[modality] = compare(modality, folder, args.rounds, args.lane_threads)
            print(json.dumps({modality: report[modality]}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
