"""``verify token create|list|revoke``: the REST API's tokens from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enrollment.errors import InvalidTokenError
from enrollment.service import Service
from verify_cli.main import main


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VERIFY_STORE_KEY", raising=False)
    store = tmp_path / "x.db"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--store", str(store), *args])
        out, err = capsys.readouterr()
        return code, out, err

    run.store = store
    return run


def test_create_prints_the_secret_once_list_never_does_revoke_ends_it(cli) -> None:
    code, secret, err = cli("token", "create", "door-1")
    assert code == 0 and "shown once" in err and secret.strip().startswith("vfy_")
    assert cli("token", "create", "ops", "--scope", "admin")[0] == 0
    code, listed, _ = cli("token", "list", "--json")
    rows = json.loads(listed)
    assert code == 0 and {(r["name"], r["scope"]) for r in rows} == {("door-1", "verify"), ("ops", "admin")}
    assert secret.strip() not in listed and secret.strip() not in cli("token", "list")[1]
    with Service(cli.store) as service:
        assert service.tokens.authenticate(secret.strip(), "verify").name == "door-1"
    assert cli("token", "revoke", "door-1") == (0, "revoked API token 'door-1'\n", "")
    with Service(cli.store) as service, pytest.raises(InvalidTokenError, match="revoked"):
        service.tokens.authenticate(secret.strip(), "verify")


def test_errors_exit_2_with_one_line(cli) -> None:
    assert cli("token", "create", "door")[0] == 0
    assert cli("token", "create", "door") == (2, "", "error: an active API token is already named 'door'; revoke it first\n")
    assert cli("token", "revoke", "nobody") == (2, "", "error: no active API token is named 'nobody'\n")
    code, _, err = cli("token", "create", "a b")
    assert code == 2 and "must be 1-64 letters" in err
