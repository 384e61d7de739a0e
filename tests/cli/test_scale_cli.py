"""``identify --top`` and ``--dir``, ``embed`` and Parquet output on the local engine (Ray: test_ray.py)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.cli.test_cli import ANDY, ANGELA, one_error_line
from verify.models import model_spec

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_identify_shows_at_most_top_candidates(cli, enrolled) -> None:
    assert cli("enroll", "Andy twin", "--face", ANDY / "0.jpg")[0] == 0  # one person under two names
    code, out, _ = cli("identify", "--face", ANDY / "1.jpg", "--json")
    answer = json.loads(out)
    assert code == 1 and answer["identity"] is None and "ambiguous" in answer["reason"]
    assert [name for name, _, _ in answer["candidates"]] in (["Andy", "Andy twin"], ["Andy twin", "Andy"])
    code, out, _ = cli("identify", "--face", ANDY / "1.jpg", "--json", "--top", "1")
    assert len(json.loads(out)["candidates"]) == 1
    code, out, _ = cli("identify", "--face", ANDY / "1.jpg", "--top", "2")
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith("nobody  (ambiguous") and lines[1].startswith("  1. Andy")
    with pytest.raises(SystemExit):  # argparse refuses it
        cli("identify", "--face", ANDY / "1.jpg", "--top", "0")


def test_bulk_identify_logs_every_search_and_is_not_throttled(cli, enrolled, batch_dir, monkeypatch) -> None:
    monkeypatch.setenv("VERIFY_IDENTIFY_LIMIT", "1")
    code, out, err = cli("identify", "--dir", batch_dir, "--top", "1")
    assert code == 0 and "2 named, 2 nobody, 1 error" in err
    rows = {Path(row["path"]).name: row for row in csv.DictReader(io.StringIO(out))}
    assert {name: row["identity"] for name, row in rows.items()} == {
        "andy1.jpg": "Andy", "andy2.jpg": "Andy", "angela1.jpg": "", "antonio1.jpg": "", "broken.jpg": ""}
    assert rows["broken.jpg"]["outcome"] == "error" and "truncated or corrupt" in rows["broken.jpg"]["reason"]
    assert json.loads(rows["andy1.jpg"]["candidates"])[0][0] == "Andy" and rows["angela1.jpg"]["candidates"] == "[]"
    code, out, _ = cli("audit", "--json")
    bulk = [a for a in json.loads(out) if a["action"] == "identify"]
    assert len(bulk) == 5 and all(a["caller"].startswith("cli-bulk:") for a in bulk)
    assert sorted(a["decision"] for a in bulk) == ["accepted", "accepted", "error", "rejected", "rejected"]
    assert cli("identify", "--face", ANGELA / "1.jpg")[0] == 1  # (ANDY's photos were just accepted: replays)
    code, _, err = cli("identify", "--face", ANGELA / "1.jpg")  # one search per window for the interactive caller
    assert code == 2 and "too many identifications" in one_error_line(err)


def test_embed_writes_a_parquet_file(cli, batch_dir, tmp_path) -> None:
    pytest.importorskip("pyarrow")
    from verify.engines.embeddings_file import read_embeddings

    code, _, err = cli("embed", batch_dir, "--out", tmp_path / "e.parquet")
    assert code == 0 and "embedded 4 file(s), 1 failed" in err
    table = read_embeddings(tmp_path / "e.parquet")
    spec = model_spec("face")
    assert table.vectors.shape == (4, 384) and (table.model_id, table.model_version) == (spec.model_id, spec.version)
    assert [Path(path).name for path, _ in table.failed] == ["broken.jpg"]
    code, _, err = cli("embed", batch_dir, "--out", tmp_path / "e.csv")
    assert code == 2 and "--out must end in .parquet" in one_error_line(err)


def test_batch_writes_parquet_and_engine_options_are_checked(cli, enrolled, batch_dir, tmp_path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    code, _, err = cli("batch", "Andy", batch_dir, "--out", tmp_path / "r.parquet")
    assert code == 0, err
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert [row["decision"] for row in table] == ["accepted", "rejected", "rejected", "error", "accepted"]
    assert table[3]["score"] is None and list(table[0]) == ["path", "decision", "score", "threshold", "reason"]
    code, _, err = cli("batch", "Andy", batch_dir, "--workers", "2")
    assert code == 2 and "--address and --workers apply to --engine ray" in one_error_line(err)
    code, _, err = cli("identify", "--face", ANDY / "1.jpg", "--engine", "ray")
    assert code == 2 and "apply to identify --dir" in one_error_line(err)


def test_folder_jobs_load_a_second_copy_only_for_enough_files(cli, enrolled, batch_dir, monkeypatch) -> None:
    import verify.lanes

    loaded = []
    original = verify.lanes.load_lanes
    monkeypatch.setattr(verify.lanes, "load_lanes", lambda *args, **kwargs: loaded.append(args) or original(*args, **kwargs))
    monkeypatch.setattr("enrollment.service.load_lanes", verify.lanes.load_lanes)
    assert cli("batch", "Andy", batch_dir)[0] == 0  # 5 files
    monkeypatch.setattr(verify.lanes, "LANES_MIN_SAMPLES", 5)
    assert cli("identify", "--dir", batch_dir)[0] == 0
    assert [args[2] for args in loaded] == [1, None]
