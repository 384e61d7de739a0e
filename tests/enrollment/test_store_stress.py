"""The store under stress: processes killed while enrolling, many processes enrolling and checking."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from vector_pipeline import direction, vector_verifier

from enrollment import TemplateStore
from enrollment.audit import recent_attempts
from enrollment.enroll import check, enroll
from enrollment.ratelimit import LockoutPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KILL_ROUNDS = 3
STRESS_SECONDS = 3.0

ENROLL_CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from vector_pipeline import VectorPipeline, direction, vector_verifier
from enrollment import TemplateStore
from enrollment.enroll import check, enroll
from enrollment.ratelimit import NO_LOCKOUT
store = TemplateStore(sys.argv[1], key=bytes(range(32)))
verifier = vector_verifier()
print("open", flush=True)
while True:
    count = enroll(store, verifier, "crash", direction(0)).template.sample_count
    check(store, verifier, "crash", direction(0), policy=NO_LOCKOUT)
    print(count, flush=True)  # acknowledged after both commits returned
"""


def _enroll_and_kill(path: Path, acks_before_kill: int, rng: random.Random) -> list[int]:
    child = subprocess.Popen(
        [sys.executable, "-c", ENROLL_CHILD, str(path), str(HERE)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watchdog = threading.Timer(60.0, child.kill)
    watchdog.start()
    try:
        lines = [child.stdout.readline().strip()]
        assert lines[0] == "open", child.stderr.read()
        while len(lines) <= acks_before_kill and lines[-1]:
            lines.append(child.stdout.readline().strip())
        time.sleep(rng.uniform(0.0, 0.003))  # land the kill anywhere inside the next enrollment
        os.kill(child.pid, signal.SIGKILL)
        rest, errors = child.communicate(timeout=10)
    finally:
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL, errors
    return [int(line) for line in lines[1:] + rest.split() if line]


def test_sigkill_while_enrolling_loses_no_acknowledged_enrollment(tmp_path: Path) -> None:
    path, rng = tmp_path / "store.db", random.Random(11)
    committed = checks = 0
    for _ in range(KILL_ROUNDS):
        counts = _enroll_and_kill(path, rng.randint(1, 20), rng)
        assert counts == list(range(committed + 1, committed + 1 + len(counts)))
        acknowledged = counts[-1] if counts else committed
        with TemplateStore(path, key=bytes(range(32))) as store:
            store.integrity_check()
            template = store.get("crash", "face")  # authenticates: no half-written seal
            logged = len(recent_attempts(store, 10_000))
        assert acknowledged <= template.sample_count <= acknowledged + 1
        assert template.embedding_sum[0] == pytest.approx(template.sample_count)
        # each enrollment is followed by its check: the kill may fall between the two commits
        assert 0 <= (template.sample_count - committed) - (logged - checks) <= 1
        committed, checks = template.sample_count, logged
    assert committed >= KILL_ROUNDS and checks >= KILL_ROUNDS - 1


def _worker(path: str, worker: int, seconds: float, start, results) -> None:
    """Enroll into a shared and an own identity and check both, until ``seconds`` have passed."""
    counts = {"shared enrolls": 0, "own enrolls": 0, "checks": 0, "accepted": 0}
    try:
        verifier = vector_verifier()
        policy = LockoutPolicy(max_failures=1000)
        start.wait(timeout=60)
        deadline = time.monotonic() + seconds
        with TemplateStore(path) as store:
            while time.monotonic() < deadline:
                enroll(store, verifier, "shared", direction(0))
                counts["shared enrolls"] += 1
                enroll(store, verifier, f"own {worker}", direction(worker + 1))
                counts["own enrolls"] += 1
                for name, sample in (("shared", direction(0)), (f"own {worker}", direction(worker + 1))):
                    counts["accepted"] += check(store, verifier, name, sample, policy=policy).accepted
                    counts["checks"] += 1
        results.put((worker, counts))
    except BaseException as error:  # noqa: BLE001 - reported to the parent test
        results.put((worker, repr(error)))


def test_processes_enrolling_and_checking_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "store.db"
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_worker, args=(str(path), w, STRESS_SECONDS, start, results)) for w in range(4)]
    for process in workers:
        process.start()
    start.set()
    try:
        outcomes = dict(results.get(timeout=120) for _ in workers)
    finally:
        for process in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    failed = {worker: outcome for worker, outcome in outcomes.items() if not isinstance(outcome, dict)}
    assert not failed, failed  # e.g. no 'database is locked' reached any caller
    with TemplateStore(path) as store:
        store.integrity_check()
        assert store.get("shared", "face").sample_count == sum(o["shared enrolls"] for o in outcomes.values())
        for worker, counts in outcomes.items():
            assert store.get(f"own {worker}", "face").sample_count == counts["own enrolls"]
        attempts = recent_attempts(store, 1_000_000)
    total_checks = sum(o["checks"] for o in outcomes.values())
    assert len(attempts) == total_checks
    assert sum(o["accepted"] for o in outcomes.values()) == total_checks
    operations = total_checks + sum(o["shared enrolls"] + o["own enrolls"] for o in outcomes.values())
    assert operations >= 4 * 4  # every worker completed at least one round
    with capsys.disabled():
        print(f"\n[stress] 4 processes, {STRESS_SECONDS:.0f} s: {operations} enroll/check operations, 0 errors")
