"""The Ray engine gives the local engine's rows and audit log (a local Ray of 2 CPUs; skipped without ray[data])."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from tests.cli.test_cli import ANDY

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_threads")]


def test_a_local_ray_started_by_the_engine_never_sees_the_store_key_and_reports_no_usage(monkeypatch) -> None:
    from verify.engines.ray_engine import RayEngine, RayOptions

    assert not ray.is_initialized()  # runs before the module's shared Ray starts
    monkeypatch.setenv("VERIFY_STORE_KEY", "a-key-for-this-test")
    monkeypatch.setenv("VERIFY_LEVEL", "high")
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)

    @ray.remote(num_cpus=0)
    def environment() -> dict:
        import os

        from ray._common.usage.usage_lib import usage_stats_enabled

        names = ("VERIFY_STORE_KEY", "VERIFY_LEVEL", "RAY_USAGE_STATS_ENABLED")
        return {**{name: os.environ.get(name) for name in names}, "usage stats": usage_stats_enabled()}

    with RayEngine("face", "cpu", RayOptions(workers=1)):
        seen = ray.get(environment.remote())
    assert seen == {"VERIFY_STORE_KEY": None, "VERIFY_LEVEL": "high", "RAY_USAGE_STATS_ENABLED": "0", "usage stats": False}
    assert os.environ["VERIFY_STORE_KEY"] == "a-key-for-this-test" and not ray.is_initialized()
    assert "RAY_USAGE_STATS_ENABLED" not in os.environ


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: 2 CPUs, no dashboard; always shut down."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def decisions(cli, options: tuple[str, ...] = ()) -> list[tuple]:
    code, out, _ = cli("audit", "--json", "--limit", "100", options=options)
    return [(a["action"], a["identity"], a["decision"], a["score"], a["detail"]) for a in reversed(json.loads(out))]


@pytest.fixture
def twin_store(cli, tmp_path) -> tuple[str, ...]:
    """The options of a second store enrolled as the first (accepted probes are remembered per store:
    each engine gets a store that has seen nothing)."""
    options = ("--store", str(tmp_path / "ray.db"))
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg", options=options)[0] == 0
    return options


def test_batch_on_ray_gives_the_local_rows_and_audit_log(local_ray, cli, enrolled, twin_store, batch_dir) -> None:
    code, local, _ = cli("batch", "Andy", batch_dir)
    assert code == 0
    code, remote, err = cli("batch", "Andy", batch_dir, "--engine", "ray", "--workers", "2", options=twin_store)
    assert code == 0, err
    assert remote == local and len(list(csv.DictReader(io.StringIO(remote)))) == 5
    assert decisions(cli, twin_store) == decisions(cli)  # same attempts, same order


def test_bulk_identify_on_ray_gives_the_local_rows(local_ray, cli, enrolled, twin_store, batch_dir) -> None:
    code, remote, err = cli("identify", "--dir", batch_dir, "--engine", "ray", options=twin_store)
    assert code == 0, err
    code, local, _ = cli("identify", "--dir", batch_dir)
    assert remote == local and "Andy" in remote


def test_a_folder_given_as_a_uri_is_read_by_the_actors(local_ray, cli, enrolled, twin_store, batch_dir) -> None:
    uri = batch_dir.as_uri()
    code, local, _ = cli("batch", "Andy", uri)
    assert code == 0
    code, remote, err = cli("batch", "Andy", uri, "--engine", "ray", "--workers", "2", options=twin_store)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(remote)))
    assert remote == local and [row["decision"] for row in rows].count("accepted") == 2
    assert any(row["decision"] == "error" and row["path"] == f"{uri}/nested/broken.jpg" for row in rows)
