"""Images per second of ``verify batch`` on the local engine and on Ray with 1 and 2 workers, one folder.

    python benchmarks/batch_scale.py [--lfw ../shared/data/faces/lfw_gray] [--photos 1000] [--rounds 1]

Folder: the first ``--photos`` LFW photos (people in name order) copied to a temporary folder. For
each run a new store (the replay guard remembers the photos a run accepts), one person enrolled
(the first photo), the lockout off (``--max-failures 0``: a thousand photos of other people would
lock the name out after five); then the engine checks every photo against that person through the
CLI itself (``verify_cli.main.main`` in this process, output to a
CSV file). The local engine runs the pipeline in this process with one torch thread per core; each
Ray worker is an actor with one CPU and one thread, on a local Ray of 2 CPUs started once
beforehand (its start is timed apart and not counted).

Reported per run: wall seconds of the command (model loading and actor start included), images/s,
and when the first chunk of results was decided; the load average around it. (No "steady" rate
after the first chunk: Ray's results are put back in path order, so later chunks wait for the
first and then come out in a burst, and such a rate overstated Ray's by up to 2.5x.)
The rows of every Ray run are compared with the local run's: same paths, decisions and scores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from enrollment.service import Service  # noqa: E402
from verify_cli.main import main as cli  # noqa: E402

LFW = REPO.parent / "shared" / "data" / "faces" / "lfw_gray"


def copy_photos(source: Path, count: int, folder: Path) -> list[Path]:
    copied = []
    for person in sorted(source.iterdir()):
        for photo in sorted(person.iterdir()):
            target = folder / person.name / photo.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(photo, target)
            copied.append(target)
        if len(copied) >= count:
            return copied
    return copied


class ChunkClock:
    """Times at which the service decided each chunk (the local and the Ray path both decide per chunk)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, int]] = []
        for name in ("check_many", "check_embedded_many"):
            original = getattr(Service, name)
            setattr(Service, name, self._wrap(original))

    def _wrap(self, original):
        clock = self

        def timed(service, name, items, *args, **kwargs):
            result = original(service, name, items, *args, **kwargs)
            if items:
                clock.stamps.append((time.perf_counter(), len(items)))
            return result

        return timed


def run(label: str, argv: list[str], clock: ChunkClock, out: Path) -> dict:
    clock.stamps.clear()
    load = [round(x, 2) for x in os.getloadavg()]
    start = time.perf_counter()
    code = cli(argv + ["--out", str(out)])
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{label}: exit status {code}")
    files = sum(count for _, count in clock.stamps)
    result = {"files": files, "wall_s": round(wall, 1), "images_per_s": round(files / wall, 2),
              "first_chunk_s": round(clock.stamps[0][0] - start, 1),
              "load_before": load, "load_after": [round(x, 2) for x in os.getloadavg()]}
    print(label, json.dumps(result), flush=True)
    return result


def rows(path: Path) -> list[tuple]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [(row["path"], row["decision"], row["score"]) for row in csv.DictReader(handle)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--lfw", type=Path, default=LFW, help="the LFW folder (default: ../shared/data/faces/lfw_gray)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each engine, taking turns")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "batch_scale.json")
    args = parser.parse_args()
    import ray

    report: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "cores": os.cpu_count(),
                    "ray": ray.__version__, "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()], "runs": {}}
    clock = ChunkClock()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        photos = copy_photos(args.lfw, args.photos, work / "photos")
        report["photos"] = len(photos)

        def batch(store: Path) -> list[str]:
            """A new store with the first photo's person enrolled, and the batch command against it."""
            base = ["--store", str(store), "--device", "cpu", "--max-failures", "0"]
            if cli(base + ["enroll", photos[0].parent.name, "--face", str(photos[0])]) != 0:
                raise SystemExit("enrollment failed")
            return base + ["batch", photos[0].parent.name, str(work / "photos")]

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, log_to_driver=False)
        report["ray_init_s"] = round(time.perf_counter() - start, 1)
        try:
            engines = {"local": [], "ray_1_worker": ["--engine", "ray", "--workers", "1"],
                       "ray_2_workers": ["--engine", "ray", "--workers", "2"]}
            for round_ in range(args.rounds):
                for label, options in engines.items():
                    result = run(label, batch(work / f"{label}-{round_}.db") + options, clock, work / f"{label}.csv")
                    report["runs"].setdefault(label, []).append(result)
                    args.out.write_text(json.dumps(report, indent=1) + "\n")
            local = rows(work / "local.csv")
            report["same_rows_as_local"] = {label: rows(work / f"{label}.csv") == local for label in engines}
            report["decisions"] = {d: sum(row[1] == d for row in local) for d in ("accepted", "rejected", "retry", "error")}
        finally:
            ray.shutdown()
    best = {label: max(run["images_per_s"] for run in runs) for label, runs in report["runs"].items()}
    report["speedup_2_vs_1_worker"] = round(best["ray_2_workers"] / best["ray_1_worker"], 2)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({key: report[key] for key in ("same_rows_as_local", "speedup_2_vs_1_worker", "decisions")}))


if __name__ == "__main__":
    main()
