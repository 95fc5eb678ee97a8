"""Report stage (reads the warehouse, writes files only): one static HTML page describing a training run.

    build_report(db, ...)   one short read-only session reads the run (RunData) -> embedllm/report.py draws the
                            plots and writes index.html with no connection open

The page goes to <stem>_reports/<run_id>/ beside the warehouse (reports/<run_id>/ for the default warehouse)
unless an output folder is given. The only hard error is a warehouse without a (matching) training run.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

import warehouse
from embedllm import settings
from embedllm.errors import EmbedLLMError, PipelineStopped
from embedllm.report import RunData, family_of, write_page
from tasks import stage

TRAINING_TABLES = ("training_runs", "model_embeddings", "correctness_forecasts", "benchmark_forecasts")


class NoTrainingRun(PipelineStopped):
    """The warehouse holds no (matching) training run to report on."""


def resolve_run_id(
    con: duckdb.DuckDBPyConnection, run_id: str | None = None, where: str | Path = "this warehouse"
) -> str:
    """Return RUN_ID if it exists, else the latest completed run's id; raise NoTrainingRun when there is none."""
    if not all(warehouse.table_exists(con, t) for t in TRAINING_TABLES):
        raise NoTrainingRun(f"no training run in {where}: run `embedllm train` first")
    if run_id is None:
        rows = warehouse.query(con, "report_latest_run")
        if rows.height == 0:
            raise NoTrainingRun(f"no completed training run in {where}: run `embedllm train` first")
        return rows["run_id"][0]
    if warehouse.query(con, "report_run", [run_id]).height == 0:
        recent = warehouse.query(con, "report_recent_runs")["run_id"].to_list()
        hint = f"; recent runs: {', '.join(recent)}" if recent else "; run `embedllm train` first"
        raise NoTrainingRun(f"no training run {run_id!r} in {where}{hint}")
    return run_id


def _json_dict(text: str | None) -> dict:
    """Return the JSON object in TEXT, or {} when it is empty or not an object."""
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def load_run_data(con: duckdb.DuckDBPyConnection, run_id: str) -> RunData:
    """Return the run's row, model embeddings, leaderboard, forecasts, probe and labelled test forecasts."""
    row = warehouse.query(con, "report_run", [run_id]).row(0, named=True)
    run = {**row, "config": _json_dict(row["config"]), "metrics": _json_dict(row["metrics"])}
    models = warehouse.query(con, "report_models", [run_id])
    emb = np.array(models["embedding"].to_list(), dtype=np.float64) if models.height else np.zeros((0, 0))
    families = [
        family_of(n, f, t)
        for n, f, t in zip(models["name"].to_list(), models["family"].to_list(), models["tags"].to_list())
    ]
    models = models.select("model_id", "name", "cost_per_mtok").with_columns(
        pl.Series("family", families, dtype=pl.String)
    )
    return RunData(
        run=run,
        models=models,
        embeddings=emb,
        leaderboard=warehouse.query(con, "report_leaderboard"),
        forecasts=warehouse.query(con, "report_benchmark_forecasts", [run_id]),
        probe=warehouse.query(con, "report_benchmark_probe", [run_id])
        if warehouse.table_exists(con, "benchmark_probe")
        else pl.DataFrame(),
        test=warehouse.query(con, "report_test_forecasts", [run_id]),
        onboarded=warehouse.query(con, "report_onboarded", {"run_id": run_id}),
    )


def default_out_dir(db: str | Path, run_id: str) -> Path:
    """Return the report folder for a run: <stem>_reports/<run_id>/ beside the warehouse (reports/ for the default)."""
    return settings.beside(db, "reports") / run_id


def build_report(db: str | Path, *, out_dir: Path | None = None, run_id: str | None = None) -> Path:
    """Write index.html and its PNG plots for RUN_ID (default: the latest completed run); return index.html."""
    db = Path(db)
    with stage.session(db, read_only=True) as con:
        run_id = resolve_run_id(con, run_id, db)
        data = load_run_data(con, run_id)
    out = Path(out_dir) if out_dir is not None else default_out_dir(db, run_id)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbedLLMError(f"cannot create report folder {out}: {exc.strerror}; pass --out DIR") from exc
    return write_page(data, out)


def report_uri(index: Path) -> str:
    """Return the file:// URI of a report page (for a Prefect link artifact)."""
    return Path(index).resolve().as_uri()
