"""README's "Use from Python" example runs as written, on the shipped samples."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def python_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_use_from_python_example_runs_as_written(tmp_path, monkeypatch, face_files, voice_files):
    for name, source in {"alice.jpg": face_files[0], "door.jpg": face_files[1], "who.jpg": face_files[2],
                         "alice.flac": voice_files[0]}.items():
        shutil.copy(source, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VERIFY_STORE_KEY", raising=False)
    namespace: dict = {}
    *lines, last_line = python_example().strip().splitlines()
    exec(compile("\n".join(lines), "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    last_line = last_line.split("#")[0]  # run once: the same file twice would be a replay
    assert (namespace["r"].outcome, eval(last_line, namespace)) == ("accepted", "alice")  # noqa: S307
    assert (tmp_path / "people.db").is_file()
    namespace["svc"].close()
