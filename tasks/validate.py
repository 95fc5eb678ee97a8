"""Validate stage: pull the frames training reads from the warehouse, run the expectations, record the run.

    validate(db, ...)   one short session pulls the frames -> Great Expectations runs with no connection open
                        (embedllm/validation.py) -> the run is recorded in validation_runs; Data Docs HTML go to
                        <stem>_data_docs/ beside the warehouse

A validation is skipped when it would check nothing new (`current_validation`: the latest run passed after the
latest load, for the same suite and config); `force=True` validates anyway. `embedllm validate` and the flows
call this same function, so both doors decide the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

import warehouse
from embedllm import settings
from embedllm.common import dumps, new_run_id, utc_now
from embedllm.validation import (  # noqa: F401
    CHECKS,
    DEFAULT_CONFIG,
    ERROR,
    FAIL,
    PASS,
    CheckResult,
    ValidationFailed,
    ValidationResult,
    format_example,
    load_config,
    run_checks,
    suite_scope,
)
from tasks import stage


def _pull(
    con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None, categorical: tuple[str, ...] = ()
) -> Any:
    """Return the named query's result as a pandas DataFrame, via Arrow (3x faster than .df() at 4M rows).

    CATEGORICAL string columns are dictionary-encoded first: GE's pandas metrics filter and hash the frame many
    times, and integer codes halve its time on 4M labels.
    """
    import pyarrow.compute as pc

    table = con.sql(warehouse.sql_text(query), params=params or None).to_arrow_table()
    for name in categorical:
        table = table.set_column(table.schema.get_field_index(name), name, pc.dictionary_encode(table[name]))
    return table.to_pandas()


def collect_frames(
    con: duckdb.DuckDBPyConnection, cfg: dict, scope: tuple[list[str], list[str]] | None = None
) -> dict[str, Any]:
    """Return every frame the checks read, as pandas DataFrames pulled from the warehouse (only needed columns)."""
    from embedllm.validation import chance_frame, constant_frame

    tasks, benchmarks = scope if scope is not None else ([], [])
    splits = cfg["splits"]
    cells = _pull(con, "validate_model_benchmarks")
    return {
        "labels": _pull(con, "validate_labels", categorical=("question_id",)),
        "questions": _pull(con, "validate_questions"),
        "label_questions": _pull(con, "validate_label_questions"),
        "split_shares": _pull(
            con,
            "validate_split_shares",
            {**splits["targets"], "tolerance": splits["tolerance"], "sigmas": splits["sigmas"]},
        ),
        "coverage": _pull(
            con,
            "validate_coverage",
            {
                "all_questions": scope is None,
                "tasks": tasks,
                "benchmarks": benchmarks,
                "n_examples": int(cfg["coverage"]["examples"]),
            },
        ),
        "model_benchmarks": constant_frame(cells, cfg),
        "chance": chance_frame(cells, cfg),
    }


def record_run(con: duckdb.DuckDBPyConnection, result: ValidationResult) -> None:
    """Insert the run's row into validation_runs."""
    warehouse.execute(
        con,
        "validate_insert_run",
        {
            "run_id": result.run_id,
            "created_at": result.created_at,
            "success": result.success,
            "n_expectations": len(result.checks),
            "n_failed": len(result.failed),
            "n_errors": len(result.errors),
            "summary": dumps(result.summary()),
            "data_docs_path": str(result.data_docs_path) if result.data_docs_path else None,
        },
    )


def config_name(config_path: str | Path | None) -> str:
    """Return the config path a run records: the given file, resolved, else the packaged validation.yaml."""
    return str(Path(config_path).resolve()) if config_path else str(DEFAULT_CONFIG)


def current_validation(
    con: duckdb.DuckDBPyConnection, suite: str | None = None, config_path: str | Path | None = None
) -> dict | None:
    """Return the latest validation run if it passed after the latest load with this suite and config, else None."""
    if not warehouse.table_exists(con, "validation_runs"):
        return None
    state = warehouse.query(con, "validate_latest_run")
    if state.height == 0:
        return None
    row = state.row(0, named=True)
    fresh = row["latest_load"] is None or row["created_at"] >= row["latest_load"]
    same = row["suite"] == suite and row["config_path"] in (None, config_name(config_path))
    return row if row["success"] and fresh and same else None


@dataclass
class Validation:
    """What the validate stage did: the run it made now, or the earlier run that is still current."""

    report: stage.StageReport
    result: ValidationResult | None = None  # the run made now (None when skipped)
    current: dict | None = field(default=None)  # the validation_runs row that is still current (when skipped)

    @property
    def run_id(self) -> str:
        """Return the id of the validation run that stands (made now or current)."""
        return self.result.run_id if self.result else self.current["run_id"]

    @property
    def success(self) -> bool:
        """Return whether the standing run passed."""
        return self.result.success if self.result else bool(self.current["success"])

    @property
    def data_docs_path(self) -> str | None:
        """Return the standing run's Data Docs index.html (None when none were written)."""
        docs = self.result.data_docs_path if self.result else self.current.get("data_docs_path")
        return str(docs) if docs else None

    def headline(self) -> str:
        """Return one line: the new run's verdict, or why validation was not repeated."""
        if self.result:
            return self.result.headline()
        row = self.current
        return (
            f"validation up to date: run {row['run_id']} ({row['created_at']:%Y-%m-%d %H:%M} UTC) passed "
            f"{row['n_expectations']} expectations and nothing was loaded since (--force validates again)"
        )

    def summary_markdown(self) -> str:
        """Return the Markdown summary the flows publish (the run's table, or the up-to-date note)."""
        if self.result:
            return self.result.summary_markdown()
        row = self.current
        return (
            f"## Validation: up to date\n\nRun `{row['run_id']}` ({row['created_at']:%Y-%m-%d %H:%M} UTC) "
            f"passed {row['n_expectations']} expectations and nothing was loaded since; "
            "validation was not repeated (`embedllm run --force` repeats it)."
        )


def run_validation(
    db: Path, run_id: str, created: datetime, suite: str | None, config_path: str | Path | None, data_docs: bool
) -> ValidationResult:
    """Return a new validation run: frames pulled in one short session, GE run with no connection open."""
    t0 = time.perf_counter()
    cfg = load_config(config_path)
    scope = suite_scope(suite) if suite else None
    with stage.session(db) as con:
        frames = collect_frames(con, cfg, scope)
    checks, docs = run_checks(
        frames, cfg, docs_dir=settings.beside(db, "data_docs") if data_docs else None, run_id=run_id
    )
    result = ValidationResult(
        run_id=run_id,
        created_at=created,
        checks=checks,
        suite=suite,
        config_path=config_name(config_path),
        data_docs_path=docs,
        frame_rows={k: len(v) for k, v in frames.items()},
    )
    result.seconds = time.perf_counter() - t0
    return result


def validate(
    db: str | Path,
    *,
    suite: str | None = None,
    config_path: str | Path | None = None,
    data_docs: bool = True,
    force: bool = False,
    wait: float = 0.0,
) -> Validation:
    """Validate the warehouse (unless its latest run is current) and record the run in validation_runs."""
    db = Path(db)
    with stage.writing(db, "validate", wait=wait) as report:
        if not force:
            with stage.session(db) as con:
                current = current_validation(con, suite, config_path)
            if current is not None:
                report.skipped, report.note = (
                    True,
                    (f"run {current['run_id']} passed after the latest load; nothing new to validate"),
                )
                return Validation(report=report, current=current)
        created = utc_now()
        result = run_validation(db, new_run_id(created), created, suite, config_path, data_docs)
        with stage.session(db) as con, warehouse.transaction(con):
            record_run(con, result)
        report.note = f"run {result.run_id}: {'passed' if result.success else 'FAILED'}"
    return Validation(report=report, result=result)
