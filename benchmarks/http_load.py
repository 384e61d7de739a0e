"""HTTP load on one ``python app.py`` over loopback: the REST API and the web app's API, side by side.

    python benchmarks/http_load.py [--data ../shared/data] [--server= --server=--no-batching ...]
        [--rest 1x20,16x130,32x40] [--gradio 1x20,8x20] [--out benchmarks/results/http_load.json]

Probes are real LFW photos of evaluation people, re-encoded as JPEG at 250, 500 or 800 px: one
person is enrolled from one photo; their other photos are genuine probes, one photo of each of
80 other people are impostors. Each scenario is ``clients x calls``: that many threads, each with
its own keep-alive connection, sending that many verifications one after another. Each
``--server`` is a set of ``app.py`` options to measure (default: micro-batching, then without).

Printed per scenario: throughput, p50/p95/p99 latency, errors (any answer but 200 or a failed
call), *wrong* decisions (an outcome other than the one the service gives the same bytes in this
process, one at a time: the command line's answer), and the server's CPU time per request. The
lockout is off in the server (``VERIFY_MAX_FAILURES=0``), or the impostor probes would lock the
person out; everything else (audit log, token check) runs as in production. The load generator
shares the CPU with the server, and the machine's load average is recorded around each scenario.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enrollment.service import Service

SIZES = (250, 500, 800)
IMPOSTORS = 80
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Probe:
    """One probe: JPEG bytes, whether it is the enrolled person, and the reference decision."""

    data: bytes
    genuine: bool
    outcome: str = ""
    score: float = float("nan")


def jpeg(path: Path, side: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("L").resize((side, side), Image.BILINEAR).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def build_probes(data: Path, seed: int) -> tuple[bytes, list[Probe]]:
    """The enrollment photo and the probes: every other photo of the person at each size, and impostors."""
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())["lfw_gray"]
    root = data / split["folder"]
    people = sorted(split["evaluation"])
    person = max(people, key=lambda name: (len(list((root / name).iterdir())), name))
    photos = sorted((root / person).iterdir())
    rng = random.Random(seed)
    probes = [Probe(jpeg(photo, side), True) for photo in photos[1:] for side in SIZES]
    for other in rng.sample([name for name in people if name != person], IMPOSTORS):
        probes.append(Probe(jpeg(min((root / other).iterdir()), rng.choice(SIZES)), False))
    rng.shuffle(probes)
    return jpeg(photos[0], 250), probes


def reference(enrollment: bytes, probes: list[Probe]) -> list[Probe]:
    """Each probe with the decision the service gives it in this process, one at a time."""
    with tempfile.TemporaryDirectory() as folder, Service(Path(folder) / "ref.db", device="cpu",
                                                           max_failures=0) as service:
        service.enroll("person", face=enrollment)
        decided = []
        for probe in probes:
            result = service.check("person", face=probe.data)
            decided.append(Probe(probe.data, probe.genuine, result.outcome, result.score))
    return decided


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``python app.py`` in a subprocess on a fresh store, with an admin token."""

    def __init__(self, folder: Path, options: str, index: int) -> None:
        store = folder / f"server-{index}.db"
        with Service(store) as service:
            self.token = service.tokens.create("bench", "admin").secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VERIFY_MAX_FAILURES": "0", "VERIFY_DEVICE": "cpu"}
        command = [sys.executable, str(REPO / "app.py"), "--store", str(store), "--port", str(self.port)]
        self.log = (folder / f"server-{index}.log").open("w")
        self.process = subprocess.Popen(command + options.split(), env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                        stderr=self.log)

    def wait(self, client) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if client.get(f"{self.url}/api/v1/health").status_code == 200:
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.5)
        raise RuntimeError("the server did not start; see its log")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def rest_caller(url: str, token: str):
    """A per-thread REST client and its call: probe -> (outcome, score); any answer but 200 raises."""
    import httpx

    client = httpx.Client(timeout=TIMEOUT_S, headers={"Authorization": f"Bearer {token}"})

    def call(probe: Probe, path: Path) -> tuple[str, float]:
        answer = client.post(f"{url}/api/v1/verify", data={"name": "person"},
                             files={"face": ("probe.jpg", probe.data, "image/jpeg")})
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
        body = answer.json()
        return body["outcome"], body["score"]

    return call


def gradio_caller(url: str, token: str):
    """A per-thread gradio_client and its call on the web app's ``/verify`` event."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)

    def call(probe: Probe, path: Path) -> tuple[str, float]:
        _, details = client.predict("person", handle_file(str(path)), None, "medium", api_name="/verify")
        return details["outcome"], details["modalities"]["face"]["score"]

    return call


def run_scenario(make_caller, server: Server, probes: list[Probe], paths: list[Path], clients: int,
                 calls: int) -> dict:
    """``clients`` threads x ``calls`` verifications, started together; one record per call."""
    callers = [make_caller(server.url, server.token) for _ in range(clients)]
    records: list[tuple[float, bool, bool, float]] = []  # latency, error, wrong, score difference
    lock, start = threading.Lock(), threading.Barrier(clients + 1)

    def client(index: int) -> None:
        start.wait()
        for j in range(calls):
            k = (index * calls + j) % len(probes)
            began = time.perf_counter()
            try:
                outcome, score = callers[index](probes[k], paths[k])
                record = (time.perf_counter() - began, False, outcome != probes[k].outcome, abs(score - probes[k].score))
            except Exception as error:  # noqa: BLE001 - every failure is counted
                print(f"  failed: {type(error).__name__}: {str(error)[:160]}", file=sys.stderr)
                record = (time.perf_counter() - began, True, False, 0.0)
            with lock:
                records.append(record)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    load_before, cpu_before = os.getloadavg()[0], server.cpu_seconds()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return summarize(records, wall, server.cpu_seconds() - cpu_before, load_before, os.getloadavg()[0])


def summarize(records: list[tuple[float, bool, bool, float]], wall: float, cpu: float, load_before: float,
              load_after: float) -> dict:
    latencies = np.array([r[0] for r in records])
    return {
        "requests": len(records), "seconds": round(wall, 2), "per_second": round(len(records) / wall, 2),
        "p50_s": round(float(np.percentile(latencies, 50)), 3), "p95_s": round(float(np.percentile(latencies, 95)), 3),
        "p99_s": round(float(np.percentile(latencies, 99)), 3), "errors": sum(r[1] for r in records),
        "wrong_decisions": sum(r[2] for r in records), "max_score_difference": float(max(r[3] for r in records)),
        "server_cpu_ms_per_request": round(1000 * cpu / len(records), 1),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
    }


def parse_scenarios(text: str) -> list[tuple[int, int]]:
    return [tuple(int(n) for n in item.split("x")) for item in text.split(",") if item]  # type: ignore[misc]


def serve_and_measure(options: str, index: int, folder: Path, args: argparse.Namespace, enrollment: bytes,
                      probes: list[Probe], paths: list[Path]) -> list[dict]:
    """Start a server with ``options``, enroll the person over REST, run every scenario; one row each."""
    import httpx

    server = Server(folder, options, index)
    rows = []
    try:
        with httpx.Client(timeout=TIMEOUT_S, headers={"Authorization": f"Bearer {server.token}"}) as admin:
            server.wait(admin)
            admin.post(f"{server.url}/api/v1/enroll", data={"name": "person"},
                       files={"face": ("enroll.jpg", enrollment, "image/jpeg")}).raise_for_status()
        run_scenario(rest_caller, server, probes, paths, 2, 5)  # warm-up
        for front_end, make_caller, scenarios in (("rest", rest_caller, args.rest), ("gradio", gradio_caller, args.gradio)):
            for clients, calls in parse_scenarios(scenarios):
                row = {"front_end": front_end, "server": options or "(defaults)", "clients": clients, "calls": calls,
                       **run_scenario(make_caller, server, probes, paths, clients, calls)}
                print(format_row(row), flush=True)
                rows.append(row)
    finally:
        server.stop()
    return rows


def format_row(row: dict) -> str:
    return (f"{row['front_end']:<6} {row['server']:<16} {row['clients']:>2} x {row['calls']:<4}"
            f" {row['requests']:>5} req  {row['per_second']:6.1f}/s  p50 {row['p50_s']:.3f}  p95 {row['p95_s']:.3f}"
            f"  p99 {row['p99_s']:.3f} s  errors {row['errors']}  wrong {row['wrong_decisions']}"
            f"  server CPU {row['server_cpu_ms_per_request']} ms/req  load {row['load_average_1min']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--server", action="append", help="app.py options of a server to measure (repeat)")
    parser.add_argument("--rest", default="1x20,16x130,32x40", help="REST scenarios, clients x calls")
    parser.add_argument("--gradio", default="1x20,8x20", help="web app scenarios, clients x calls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "http_load.json")
    args = parser.parse_args()
    enrollment, probes = build_probes(args.data, args.seed)
    probes = reference(enrollment, probes)
    outcomes = {kind: {o: sum(p.outcome == o and p.genuine == (kind == "genuine") for p in probes)
                       for o in ("accepted", "retry", "rejected")} for kind in ("genuine", "impostor")}
    print(f"{len(probes)} probes; reference decisions (this process, one at a time): {outcomes}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        paths = [folder / f"probe{i}.jpg" for i in range(len(probes))]
        for path, probe in zip(paths, probes):
            path.write_bytes(probe.data)
        for index, options in enumerate(args.server or ["", "--no-batching"]):
            rows += serve_and_measure(options, index, folder, args, enrollment, probes, paths)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "cpu_count": os.cpu_count(),
                                    "probes": len(probes), "reference_outcomes": outcomes, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
