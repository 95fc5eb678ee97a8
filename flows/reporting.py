"""What each stage reports: row counts, timings and the tables behind the run's Prefect artifacts.

Plain functions over a DuckDB connection (no Prefect here), so tests call them directly; flows/steps.py turns
their output into artifacts and log lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

import warehouse
from embedllm.common import jsonable
from tasks.stage import StageReport, added_rows, table_counts  # noqa: F401  (re-exported for the flows)

MAX_ARTIFACT_ROWS = 500


def warehouse_identity(con: duckdb.DuckDBPyConnection, path: str | Path) -> str:
    """Return a token naming this warehouse file and its creation (changes when the file is deleted and rebuilt)."""
    created = con.execute("SELECT min(applied_at) FROM _migrations").fetchall()[0][0]
    return f"{Path(path).resolve()}@{created}"


def _jsonable(value: Any) -> Any:
    """Return a value a table artifact can hold: plain JSON (embedllm.common.jsonable), floats rounded."""
    value = jsonable(value)
    return round(value, 4) if isinstance(value, float) else value


def rows_of(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None, limit: int = MAX_ARTIFACT_ROWS
) -> list[dict[str, Any]]:
    """Return up to `limit` rows of a query as a list of JSON-able dicts (for table artifacts)."""
    table = con.sql(sql, params=params or None).to_arrow_table()
    return [{k: _jsonable(v) for k, v in row.items()} for row in table.slice(0, limit).to_pylist()]


def leaderboard_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Return the leaderboard view (model, benchmark, accuracy, n_questions) as rows."""
    return rows_of(con, "SELECT model, benchmark, accuracy, n_questions FROM leaderboard")


def benchmark_forecast_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Return the latest run's benchmark forecasts (model, benchmark, predicted vs observed) as rows."""
    if not warehouse.table_exists(con, "latest_benchmark_forecasts"):
        return []
    return rows_of(
        con,
        "SELECT model, benchmark, predicted_accuracy, predicted_low, predicted_high, observed_accuracy, "
        "n_observed, source FROM latest_benchmark_forecasts ORDER BY benchmark, predicted_accuracy DESC, model",
    )


def onboarded_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Return the models onboarded into the latest run with their interval widths (the report_onboarded query)."""
    latest = con.execute("SELECT run_id FROM latest_training_run").fetchall()
    return rows_of(con, warehouse.sql_text("report_onboarded"), {"run_id": latest[0][0]}) if latest else []


def drift_rows(done) -> list[dict[str, Any]]:
    """Return one artifact row per drift check and per revision event of a drift stage result (tasks/drift.py)."""
    rows = [
        {
            "model": e["model"],
            "reason": "revision",
            "n": None,
            "disagreements": None,
            "p_value": None,
            "drifted": True,
            "note": f"revision {e['previous_revision']} -> {e['revision']}; {e['labels_removed']} labels superseded",
        }
        for e in done.events
        if e["reason"] == "revision"
    ]
    removed = {e["model"]: e["labels_removed"] for e in done.events if e["reason"] == "sentinels"}
    for c in done.checks:
        t = c.test
        rows.append(
            {
                "model": c.model,
                "reason": "sentinels",
                "n": t.n if t else 0,
                "disagreements": t.disagreements if t else None,
                "p_value": t.p_value if t else None,
                "drifted": c.drifted,
                "note": (
                    f"{removed[c.model]} labels superseded, onboarded again" if c.model in removed else c.text()
                ),
            }
        )
    return rows


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Return a metrics dict as rows of (metric, value), scalars only, in a stable order."""
    return [
        {"metric": k, "value": _jsonable(v)}
        for k, v in sorted(metrics.items())
        if not isinstance(v, (dict, list, tuple))
    ]


def latest_training_run(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """Return the latest completed training run (run_id, preset, embedder, created_at, metrics dict) or None."""
    if not warehouse.table_exists(con, "latest_training_run"):
        return None
    rows = con.sql("SELECT run_id, preset, embedder, created_at, metrics FROM latest_training_run").fetchall()
    if not rows:
        return None
    run_id, preset, embedder, created_at, metrics = rows[0]
    return {
        "run_id": run_id,
        "preset": preset,
        "embedder": embedder,
        "created_at": created_at,
        "metrics": json.loads(metrics) if isinstance(metrics, str) else (metrics or {}),
    }


def file_url(path: str | Path | None) -> str | None:
    """Return a file:// URL for a local path (None stays None)."""
    return Path(path).resolve().as_uri() if path else None


def data_docs_index(path: str | Path | None) -> Path | None:
    """Return the Data Docs page to link: the path itself if it is a file, else its index.html."""
    if not path:
        return None
    p = Path(path)
    return p / "index.html" if p.is_dir() else p


def stages_markdown(reports: list[StageReport], title: str = "Pipeline stages") -> str:
    """Return a markdown table of stage reports: stage, seconds, rows added, note."""
    lines = [f"## {title}", "", "| stage | seconds | rows added | note |", "|---|---:|---|---|"]
    for r in reports:
        added = ", ".join(f"+{n} {t}" for t, n in r.rows.items() if n) or "-"
        note = ("skipped: " if r.skipped else "") + r.note
        lines.append(f"| {r.stage} | {r.seconds:.1f} | {added} | {note.replace('|', '/')} |")
    total = sum(r.seconds for r in reports)
    lines += ["", f"Total {total:.1f} s."]
    return "\n".join(lines)
