"""How the command line prints results: exit statuses, decision lines, tables and batch files."""

from __future__ import annotations

import csv
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

from verify.errors import ConfigError, VerifyError
from verify.scoring import Decision

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2
BATCH_COLUMNS = ["path", "decision", "score", "threshold", "reason"]
ROW_SUFFIXES = (".csv", ".json", ".parquet")


def format_decision(decision: Decision) -> str:
    """``accepted  score 4.612  threshold 2.359  llr 6.07 (needs 1.98)``, with the reason when not
    accepted; ``score`` and ``threshold`` are the normalised score and what this sample needed,
    ``llr`` the calibrated log-likelihood ratio and the level's threshold on it."""
    line = f"{decision.outcome}  score {decision.score:.3f}  threshold {decision.threshold:.3f}"
    if decision.llr is not None:
        line += f"  llr {decision.llr:.2f} (needs {decision.llr_threshold:.2f})"
    return f"{line}  ({decision.reason})" if decision.reason and not decision.accepted else line


def json_number(value: float | None) -> float | None:
    """A JSON-safe rounded number: ``None`` for a missing or infinite one."""
    return round(value, 4) if value is not None and math.isfinite(value) else None


def iso_time(timestamp: float) -> str:
    """A unix time as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def batch_row(path: Path | str, result: Decision | VerifyError) -> dict:
    """One row of ``batch`` output."""
    if isinstance(result, VerifyError):
        return {"path": str(path), "decision": "error", "score": "", "threshold": "", "reason": str(result)}
    return {"path": str(path), "decision": result.outcome, "score": round(result.score, 4),
            "threshold": round(result.threshold, 4), "reason": result.reason}


def check_rows_file(out: Path | None) -> None:
    """Refuse an output file that :func:`write_rows` cannot write.

    Raises:
        ConfigError: its suffix is not .csv, .json or .parquet.
    """
    if out is not None and out.suffix.lower() not in ROW_SUFFIXES:
        raise ConfigError(f"--out must end in .csv, .json or .parquet, got {out}")


def write_rows(rows: list[dict], out: Path | None, columns: list[str] = BATCH_COLUMNS) -> None:
    """Rows as JSON (``out`` ending in .json), Parquet (.parquet; empty cells as nulls), else CSV to ``out``
    or stdout. Lists and dicts in cells are JSON text in CSV and Parquet."""
    suffix = out.suffix.lower() if out is not None else ""
    if suffix == ".json":
        out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    flat = [{key: json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value
             for key, value in row.items()} for row in rows]
    if suffix == ".parquet":
        _write_parquet(flat, out, columns)
        return
    handle = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)
    finally:
        if out:
            handle.close()


def _write_parquet(rows: list[dict], out: Path, columns: list[str]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("--out *.parquet needs pyarrow: pip install -e '.[scale]'") from None
    data = {name: [None if row[name] == "" else row[name] for row in rows] for name in columns}
    pq.write_table(pa.table(data), str(out))
