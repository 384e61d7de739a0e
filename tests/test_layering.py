"""The tree's layers depend one way: front ends -> enrollment -> verify core; training beside them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"^\s*(?:from|import) ([A-Za-z_]\w*)", re.MULTILINE)
# package -> top-level packages of this repository it must never import
FORBIDDEN = {
    "verify": {"enrollment", "gradio", "verify_app", "verify_cli", "training", "app"},
    "enrollment": {"gradio", "verify_app", "verify_cli", "training", "app"},
    "training": {"enrollment", "gradio", "verify_app", "verify_cli", "app"},
}
ENTRY_SCRIPT = REPO_ROOT / "verify" / "__main__.py"  # ``python -m verify`` runs the CLI front end


def imports_of(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        if path != ENTRY_SCRIPT:
            found += [(path, name) for name in IMPORT.findall(path.read_text(encoding="utf-8"))]
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package):
    upward = [(str(path.relative_to(REPO_ROOT)), name) for path, name in imports_of(package)
              if name in FORBIDDEN[package]]
    assert upward == []


def test_the_core_names_no_front_end_even_in_its_entry_script():
    text = ENTRY_SCRIPT.read_text(encoding="utf-8")
    assert re.findall(r"^\s*(?:from|import) (enrollment|gradio|verify_app)", text, re.MULTILINE) == []
