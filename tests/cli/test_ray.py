"""The Ray engine gives the local engine's rows and audit log (a local Ray of 2 CPUs; skipped without ray[data])."""

from __future__ import annotations

import csv
import io
import json

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_threads")]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: 2 CPUs, no dashboard; always shut down."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def decisions(cli) -> list[tuple]:
    code, out, _ = cli("audit", "--json", "--limit", "100")
    return [(a["action"], a["identity"], a["decision"], a["score"], a["detail"]) for a in reversed(json.loads(out))]


def test_batch_on_ray_gives_the_local_rows_and_audit_log(local_ray, cli, enrolled, batch_dir) -> None:
    code, local, _ = cli("batch", "Andy", batch_dir)
    assert code == 0
    local_log = decisions(cli)
    code, remote, err = cli("batch", "Andy", batch_dir, "--engine", "ray", "--workers", "2")
    assert code == 0, err
    assert remote == local and len(list(csv.DictReader(io.StringIO(remote)))) == 5
    assert decisions(cli)[len(local_log):] == local_log  # same attempts, same order


def test_bulk_identify_on_ray_gives_the_local_rows(local_ray, cli, enrolled, batch_dir) -> None:
    code, remote, err = cli("identify", "--dir", batch_dir, "--engine", "ray")
    assert code == 0, err
    code, local, _ = cli("identify", "--dir", batch_dir)
    assert remote == local and "Andy" in remote
