"""Security commands and options of the CLI: lockout, audit, export/import, encryption, lookalikes."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from verify.models import model_spec
from verify_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
FACE_MODEL_ID = model_spec("face").model_id
FACES = REPO_ROOT / "assets" / "samples" / "faces"
ANDY, ANGELA = FACES / "Andy_Roddick", FACES / "Angela_Bassett"
KEY_TEXT = base64.b64encode(bytes(range(32))).decode()

pytestmark = pytest.mark.usefixtures("torch_threads")


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VERIFY_STORE_KEY", raising=False)
    store = tmp_path / "x.db"

    def run(*args: str | Path, options: tuple[str, ...] = ()) -> tuple[int, str, str]:
        code = main(["--store", str(store), "--device", "cpu", *options, *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_repeated_failures_lock_out_across_cli_runs_and_are_audited(cli) -> None:
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0
    policy = ("--max-failures", "3", "--lockout", "600")
    for _ in range(3):
        assert cli("check", "Andy", "--face", ANGELA / "1.jpg", options=policy)[0] == 1
    code, out, err = cli("check", "Andy", "--face", ANDY / "1.jpg", options=policy)  # genuine, but locked
    assert code == 2 and out == ""
    assert err.startswith("error: 'Andy' (face) is locked out after too many failed checks; try again in 10 minute")
    code, out, _ = cli("audit", "--json")
    attempts = json.loads(out)
    assert [a["decision"] for a in attempts] == ["locked", "rejected", "rejected", "rejected"]
    assert attempts[1]["score"] is not None and attempts[0]["score"] is None
    assert "Angela" not in out and ".jpg" not in out  # never the sample or its file
    code, out, _ = cli("audit", "--name", "Andy", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2 and "\tAndy\tface\tlocked\t\tLockedOutError" in out
    code, out, _ = cli("unlock", "Andy", "--modality", "face")
    assert code == 0 and "lifted the lockout of 'Andy' (face)" in out
    assert cli("check", "Andy", "--face", ANDY / "1.jpg", options=policy)[0] == 0


def test_lockout_can_be_disabled(cli) -> None:
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0
    for _ in range(6):
        assert cli("check", "Andy", "--face", ANGELA / "1.jpg", options=("--max-failures", "0"))[0] == 1
    code, _, err = cli("check", "Andy", "--face", ANDY / "1.jpg", options=("--max-failures", "-1"))
    assert code == 2 and "max_failures must be an integer >= 0, got -1" in err


def test_enrolling_the_same_face_under_another_name_warns(cli) -> None:
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0
    code, out, err = cli("enroll", "Andrew", "--face", ANDY / "0.jpg")  # the same photo, another name
    assert code == 0 and "enrolled 'Andrew'" in out
    assert "warning: 'Andrew' looks like the already enrolled 'Andy' (face: it would be accepted at the high" in err
    code, _, err = cli("enroll", "Angela", "--face", ANGELA / "0.jpg")
    assert code == 0 and "warning" not in err


def test_export_then_import_into_an_encrypted_store(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0
    backup = tmp_path / "backup.json"
    code, out, _ = cli("export", backup)
    assert code == 0 and "exported 1 template(s)" in out
    key_file = tmp_path / "key"
    key_file.write_text(KEY_TEXT)
    sealed = tmp_path / "sealed.db"
    keyed = ("--store", str(sealed), "--key-file", str(key_file))
    code, out, err = cli("import", backup, options=keyed)
    assert code == 0 and "imported 1 template(s)" in out, err
    code, _, err = cli("import", backup, options=keyed)
    assert code == 2 and "already enrolled: 'Andy' (face)" in err
    assert cli("check", "Andy", "--face", ANDY / "1.jpg", options=keyed)[0] == 0
    code, _, err = cli("check", "Andy", "--face", ANDY / "1.jpg", options=("--store", str(sealed)))
    assert code == 2 and "is encrypted: give the store key" in err
    monkeypatch.setenv("VERIFY_STORE_KEY", KEY_TEXT)
    assert cli("check", "Andy", "--face", ANDY / "2.jpg", options=("--store", str(sealed)))[0] == 0  # 1.jpg: a replay
    monkeypatch.setenv("VERIFY_STORE_KEY", base64.b64encode(bytes(32)).decode())
    code, _, err = cli("list", options=("--store", str(sealed)))
    assert code == 2 and "is not the key of enrollment store" in err


def test_tampered_encrypted_template_is_refused_by_check(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERIFY_STORE_KEY", KEY_TEXT)
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0
    assert cli("enroll", "Angela", "--face", ANGELA / "0.jpg")[0] == 0
    with sqlite3.connect(tmp_path / "x.db") as connection:  # swap: Angela's template under Andy's name
        embedding, seal = connection.execute("SELECT embedding, seal FROM templates WHERE identity = 'Angela'").fetchone()
        connection.execute("UPDATE templates SET embedding = ?, seal = ? WHERE identity = 'Andy'", (embedding, seal))
    code, out, err = cli("check", "Andy", "--face", ANGELA / "1.jpg")
    assert code == 2 and out == ""
    assert "template 'Andy' (face) failed authentication" in err and "Traceback" not in err


def test_import_of_another_models_templates_is_refused(cli, tmp_path: Path) -> None:
    assert cli("enroll", "Andy", "--face", ANDY / "0.jpg")[0] == 0
    backup = tmp_path / "backup.json"
    assert cli("export", backup)[0] == 0
    document = json.loads(backup.read_text())
    document["templates"][0]["model_version"] = "0123456789ab"
    backup.write_text(json.dumps(document))
    code, _, err = cli("import", backup, options=("--store", str(tmp_path / "new.db")))
    assert code == 2 and f"was made by {FACE_MODEL_ID} 0123456789ab, but the model in use" in err
    code, out, _ = cli("list", options=("--store", str(tmp_path / "new.db")))
    assert out.strip() == "no identities enrolled"
    code, _, err = cli("import", tmp_path / "nothing.json")
    assert code == 2 and "cannot read import file" in err
