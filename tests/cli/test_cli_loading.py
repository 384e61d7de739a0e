"""Each command loads only what it needs, in a fresh process as a user runs it: the store commands
no network (OpenVINO, which runs every network on the CPU, is not even imported), ``check`` one
modality's pipeline after the store has the name, and the CPU path no torch, nor OpenVINO's
model-conversion API and the telemetry it reports to."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verify_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
FACE = REPO_ROOT / "assets" / "samples" / "faces" / "Andy_Roddick"
HEAVY = ("torch", "torchvision", "torchaudio", "facenet_pytorch", "openvino", "scipy", "openvino.tools.ovc",
         "openvino_telemetry")
PIPELINES = ("verify.face.pipeline", "verify.voice.pipeline")
PROBE = """
import json, sys
from verify_cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted(set(sys.modules) & set(%r))}), file=sys.stderr)
""" % (HEAVY + PIPELINES,)


@pytest.fixture(scope="module")
def store(tmp_path_factory, torch_threads) -> Path:
    """A store with one face enrolled (in this process), and an export of it beside."""
    store = tmp_path_factory.mktemp("loading") / "x.db"
    assert main(["--store", str(store), "--device", "cpu", "enroll", "andy", "--face", str(FACE / "0.jpg")]) == 0
    assert main(["--store", str(store), "export", str(store.with_suffix(".json"))]) == 0
    return store


def run_fresh(store: Path, *args: str | Path) -> tuple[int, set[str]]:
    """Run ``verify --store STORE --device cpu ARGS`` in a new interpreter: its exit status and which
    of the heavy modules and pipelines it imported."""
    done = subprocess.run([sys.executable, "-c", PROBE, "--store", str(store), "--device", "cpu", *map(str, args)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["loaded"])


@pytest.mark.parametrize("args", [
    ("list",), ("info",), ("audit",), ("unlock", "andy", "--modality", "face"),
    ("import", "--replace", "EXPORT"), ("export", "EXPORT2"),
], ids=lambda args: args[0])
def test_store_commands_load_no_network(store, args) -> None:
    args = [str(store.with_suffix(".json")) if a == "EXPORT" else str(store.with_suffix(".2.json")) if a == "EXPORT2" else a
            for a in args]
    code, loaded = run_fresh(store, *args)
    assert code == 0
    assert loaded & set(HEAVY) == set()


def test_delete_loads_no_network(store, tmp_path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copyfile(store, copy)
    code, loaded = run_fresh(copy, "delete", "andy")
    assert code == 0
    assert loaded & set(HEAVY) == set()


def test_check_of_an_unknown_name_fails_before_any_model_loads(store) -> None:
    code, loaded = run_fresh(store, "check", "nobody", "--face", FACE / "1.jpg")
    assert code == 2
    assert loaded == set()


def test_a_locked_out_check_or_batch_fails_before_any_model_loads(store, tmp_path, capsys) -> None:
    copy = tmp_path / "locked.db"
    shutil.copyfile(store, copy)
    other = REPO_ROOT / "assets" / "samples" / "faces" / "Angela_Bassett" / "0.jpg"
    assert main(["--store", str(copy), "--device", "cpu", "--max-failures", "1", "check", "andy", "--face", str(other)]) == 1
    capsys.readouterr()
    for args in (("check", "andy", "--face", FACE / "1.jpg"), ("batch", "andy", FACE)):
        code, loaded = run_fresh(copy, *args)
        assert code == 2 and loaded == set(), args


def test_check_loads_the_face_pipeline_only_and_no_torch_on_the_cpu(store) -> None:
    _, loaded = run_fresh(store, "check", "andy", "--face", FACE / "1.jpg")  # the decision is tested elsewhere
    assert loaded == {"verify.face.pipeline", "openvino"}
