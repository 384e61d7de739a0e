"""HTTP load on one ``python app.py`` over loopback: the REST API and the web app's API, side by side.

    python benchmarks/http_load.py [--data ../shared/data] [--server= --server=--no-batching ...]
        [--rest 1x4,16x26,32x8] [--gradio 1x4,8x4] [--rounds 5] [--out benchmarks/results/http_load.json]

Probes are real LFW photos of evaluation people, re-encoded as JPEG at 250, 500 or 800 px: one
person is enrolled from one photo; their other photos are genuine probes, one photo of each of
80 other people are impostors. Each scenario is ``clients x calls``: that many threads, each with
its own keep-alive connection, sending that many verifications one after another. Each
``--server`` is a set of ``app.py`` options to measure (default: micro-batching, and without). The
servers run side by side and take turns, scenario by scenario, for ``--rounds`` rounds, so a
change in the machine's load (it is shared) falls on every server alike; figures are pooled
over the rounds.

Printed per scenario: throughput, p50/p95/p99 latency, errors (any answer but 200 or a failed
call), *wrong* decisions (an outcome other than the one the service gives the same bytes in this
process, each in a store of its own: the command line's answer), and the server's CPU time per
request. The probes are sent again and again, and the same photo comes at three sizes, so the
server's replay guard rightly rejects copies of a probe it accepted before: those rejections
(reason "replay suspected" where the reference accepts) are counted apart, as ``replay_rejected``. The
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
    """Each probe with the decision the service gives it in this process, in a store of its own (so
    that no other probe's acceptance makes it a replay)."""
    decided = []
    with tempfile.TemporaryDirectory() as folder:
        for index, probe in enumerate(probes):
            with Service(Path(folder) / f"ref{index}.db", device="cpu", max_failures=0) as service:
                service.enroll("person", face=enrollment)
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
    """A per-thread REST client and its call: probe -> (outcome, score, reason); any answer but 200 raises."""
    import httpx

    client = httpx.Client(timeout=TIMEOUT_S, headers={"Authorization": f"Bearer {token}"})

    def call(probe: Probe, path: Path) -> tuple[str, float]:
        answer = client.post(f"{url}/api/v1/verify", data={"name": "person"},
                             files={"face": ("probe.jpg", probe.data, "image/jpeg")})
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
        body = answer.json()
        return body["outcome"], body["score"], body["modalities"]["face"]["reason"]

    return call


def gradio_caller(url: str, token: str):
    """A per-thread gradio_client and its call on the web app's ``/verify`` event."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)

    def call(probe: Probe, path: Path) -> tuple[str, float]:
        _, details = client.predict("person", handle_file(str(path)), None, "medium", api_name="/verify")
        face = details["modalities"]["face"]
        return details["outcome"], face["score"], face["reason"]

    return call


@dataclass(frozen=True)
class Measurement:
    """One run of a scenario: per call (latency s, error, wrong decision, score difference, replay
    rejection), wall time, the server's CPU seconds, and the 1-minute load average before and after."""

    records: list[tuple[float, bool, bool, float, bool]]
    seconds: float
    cpu_seconds: float
    load: tuple[float, float]


def run_scenario(make_caller, server: Server, probes: list[Probe], paths: list[Path], clients: int,
                 calls: int) -> Measurement:
    """``clients`` threads x ``calls`` verifications, started together."""
    callers = [make_caller(server.url, server.token) for _ in range(clients)]
    records: list[tuple[float, bool, bool, float, bool]] = []
    lock, start = threading.Lock(), threading.Barrier(clients + 1)

    def client(index: int) -> None:
        start.wait()
        for j in range(calls):
            k = (index * calls + j) % len(probes)
            began = time.perf_counter()
            try:
                outcome, score, reason = callers[index](probes[k], paths[k])
                replay = (outcome == "rejected" and probes[k].outcome == "accepted"
                          and reason.startswith("replay suspected"))
                record = (time.perf_counter() - began, False, outcome != probes[k].outcome and not replay,
                          abs(score - probes[k].score), replay)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                print(f"  failed: {type(error).__name__}: {str(error)[:160]}", file=sys.stderr)
                record = (time.perf_counter() - began, True, False, 0.0, False)
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
    return Measurement(records, time.perf_counter() - began, server.cpu_seconds() - cpu_before,
                       (load_before, os.getloadavg()[0]))


def summarize(runs: list[Measurement]) -> dict:
    """Figures pooled over the rounds of one scenario on one server."""
    records = [record for run in runs for record in run.records]
    latencies = np.array([r[0] for r in records])
    seconds = sum(run.seconds for run in runs)
    loads = [load for run in runs for load in run.load]
    return {
        "requests": len(records), "seconds": round(seconds, 2), "per_second": round(len(records) / seconds, 2),
        "p50_s": round(float(np.percentile(latencies, 50)), 3), "p95_s": round(float(np.percentile(latencies, 95)), 3),
        "p99_s": round(float(np.percentile(latencies, 99)), 3), "errors": sum(r[1] for r in records),
        "wrong_decisions": sum(r[2] for r in records), "replay_rejected": sum(r[4] for r in records),
        "max_score_difference": float(max(r[3] for r in records)),
        "server_cpu_ms_per_request": round(1000 * sum(run.cpu_seconds for run in runs) / len(records), 1),
        "load_average_1min": [round(min(loads), 2), round(max(loads), 2)],
        "per_second_by_round": [round(len(run.records) / run.seconds, 2) for run in runs],
    }


def parse_scenarios(text: str) -> list[tuple[int, int]]:
    return [tuple(int(n) for n in item.split("x")) for item in text.split(",") if item]  # type: ignore[misc]


def start_server(options: str, index: int, folder: Path, enrollment: bytes, probes: list[Probe],
                 paths: list[Path]) -> Server:
    """A running server with ``options``, the person enrolled over REST, warmed up."""
    import httpx

    server = Server(folder, options, index)
    with httpx.Client(timeout=TIMEOUT_S, headers={"Authorization": f"Bearer {server.token}"}) as admin:
        server.wait(admin)
        admin.post(f"{server.url}/api/v1/enroll", data={"name": "person"},
                   files={"face": ("enroll.jpg", enrollment, "image/jpeg")}).raise_for_status()
    run_scenario(rest_caller, server, probes, paths, 2, 5)
    return server


def measure(servers: dict[str, Server], args: argparse.Namespace, probes: list[Probe], paths: list[Path]) -> list[dict]:
    """Every scenario on every server, ``rounds`` times, the servers taking turns; one row per scenario
    and server, pooled over the rounds."""
    runs: dict[tuple, list[Measurement]] = {}
    for round_index in range(args.rounds):
        for front_end, make_caller, scenarios in (("rest", rest_caller, args.rest), ("gradio", gradio_caller, args.gradio)):
            for clients, calls in parse_scenarios(scenarios):
                for name, server in servers.items():
                    run = run_scenario(make_caller, server, probes, paths, clients, calls)
                    runs.setdefault((front_end, name, clients, calls), []).append(run)
                    print(f"round {round_index + 1}: {front_end} {name} {clients}x{calls}: "
                          f"{len(run.records) / run.seconds:.1f}/s, load {os.getloadavg()[0]:.1f}", flush=True)
    return [{"front_end": key[0], "server": key[1], "clients": key[2], "calls_per_round": key[3], "rounds": len(value),
             **summarize(value)} for key, value in runs.items()]


def format_row(row: dict) -> str:
    return (f"{row['front_end']:<6} {row['server']:<16} {row['clients']:>2} clients"
            f" {row['requests']:>5} req  {row['per_second']:6.1f}/s  p50 {row['p50_s']:.3f}  p95 {row['p95_s']:.3f}"
            f"  p99 {row['p99_s']:.3f} s  errors {row['errors']}  wrong {row['wrong_decisions']}"
            f"  replay-rejected {row['replay_rejected']}"
            f"  server CPU {row['server_cpu_ms_per_request']} ms/req  load {row['load_average_1min']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--server", action="append", help="app.py options of a server to measure (repeat)")
    parser.add_argument("--rest", default="1x4,16x26,32x8", help="REST scenarios per round, clients x calls")
    parser.add_argument("--gradio", default="1x4,8x4", help="web app scenarios per round, clients x calls")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "http_load.json")
    args = parser.parse_args()
    enrollment, probes = build_probes(args.data, args.seed)
    probes = reference(enrollment, probes)
    outcomes = {kind: {o: sum(p.outcome == o and p.genuine == (kind == "genuine") for p in probes)
                       for o in ("accepted", "retry", "rejected")} for kind in ("genuine", "impostor")}
    print(f"{len(probes)} probes; reference decisions (this process, one at a time): {outcomes}", flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        paths = [folder / f"probe{i}.jpg" for i in range(len(probes))]
        for path, probe in zip(paths, probes):
            path.write_bytes(probe.data)
        servers: dict[str, Server] = {}
        try:
            for index, options in enumerate(args.server or ["", "--no-batching"]):
                servers[options or "(defaults)"] = start_server(options, index, folder, enrollment, probes, paths)
            rows = measure(servers, args, probes, paths)
        finally:
            for server in servers.values():
                server.stop()
    for row in rows:
        print(format_row(row))
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "cpu_count": os.cpu_count(),
                                    "probes": len(probes), "reference_outcomes": outcomes, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
