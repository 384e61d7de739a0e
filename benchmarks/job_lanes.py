"""Where a folder job's second copy of the model starts to pay: ``verify batch`` over N photos, one
copy against two, each run a new process, the whole command timed.

    python benchmarks/job_lanes.py [--data ../shared/data] [--sizes 8 24 48 96 192] [--rounds 3]
        [--out benchmarks/results/job_lanes_cpu.json]

Folders of the first N LFW photos re-encoded at 250, 640 and 800 px (as ``lanes.py`` writes them);
one person enrolled; each run forces the lanes by setting ``verify.lanes.LANES_MIN_SAMPLES``
(0: two copies whatever the size; a billion: one copy with every core), the two taking turns.
Prints the median wall seconds of each and the difference, which places ``LANES_MIN_SAMPLES``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lanes import write_photos  # noqa: E402

FORCED = {"one copy": 10**9, "two copies": 0}


def run_batch(store: Path, folder: Path, minimum: int) -> float:
    """Wall seconds of one ``verify batch`` in a new process with ``LANES_MIN_SAMPLES = minimum``."""
    code = (f"import sys, verify.lanes as lanes; lanes.LANES_MIN_SAMPLES = {minimum}; "
            f"from verify_cli.main import main; sys.exit(main(sys.argv[1:]))")
    arguments = ["--store", str(store), "--device", "cpu", "--max-failures", "0", "batch", "person", str(folder),
                 "--out", str(folder.parent / "rows.csv")]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *arguments], cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 24, 48, 96, 192])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "job_lanes_cpu.json")
    args = parser.parse_args()
    report: dict = {"command": " ".join(["python", *sys.argv]), "cores": os.cpu_count(),
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()], "sizes": {}}
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        photos = root / "photos"
        photos.mkdir()
        write_photos(args.data, max(args.sizes) + 1, photos)
        store = root / "people.db"
        enroll = [sys.executable, "-m", "verify", "--store", str(store), "--device", "cpu", "enroll", "person",
                  "--face", str(sorted(photos.iterdir())[-1])]
        subprocess.run(enroll, cwd=REPO, check=True, capture_output=True)
        for size in args.sizes:
            folder = root / f"folder{size}"
            folder.mkdir()
            for photo in sorted(photos.iterdir())[:size]:
                (folder / photo.name).symlink_to(photo)
            walls: dict[str, list[float]] = {name: [] for name in FORCED}
            for _ in range(args.rounds):
                for name, minimum in FORCED.items():
                    walls[name].append(run_batch(store, folder, minimum))
            medians = {name: round(statistics.median(values), 3) for name, values in walls.items()}
            report["sizes"][size] = {"wall_s_median": medians, "wall_s_runs": walls,
                                     "two_minus_one_s": round(medians["two copies"] - medians["one copy"], 3)}
            print(size, json.dumps(report["sizes"][size]["wall_s_median"]),
                  f"two copies - one: {report['sizes'][size]['two_minus_one_s']:+.3f} s", flush=True)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
