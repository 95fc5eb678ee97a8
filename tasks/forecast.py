"""Forecast stage: a training run -> correctness forecasts for every model x question, benchmark forecasts, probe.

- correctness_forecasts: P(correct) for EVERY model of the run on EVERY question embedded with the run's
  embedder, evaluated or not (112 x 36k = 4M rows are built as one Arrow table and bulk-inserted).
- benchmark_forecasts: per model and benchmark, predicted accuracy = mean forecast over all the benchmark's
  questions; observed accuracy = mean label over the questions the model was evaluated on (n_observed of them).
  Predicted values for evaluated questions are in-sample for training questions: use the probe or the
  test-split metrics of the run for an out-of-sample view.
- benchmark_probe: the paper's leave-one-benchmark-out probe (embedllm/probe.py explains it).

    forecast(db, run_id)   read the run, its questions (and the matrix for the probe) -> predict and probe with
                           no connection open -> write forecasts in one transaction, the probe in another
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

import warehouse
from embedllm.common import dumps
from embedllm.probe import probe_matrix, probe_rows
from embedllm.training import correctness_table, embedding_array, matrix_from_frames, run_and_model  # noqa: F401
from tasks import stage


@dataclass
class ForecastResult:
    """What the forecast stage wrote for one run: row counts, timings and the probe's results."""

    run_id: str
    correctness_forecasts: int = 0
    benchmark_forecasts: int = 0
    predict_seconds: float = 0.0
    insert_seconds: float = 0.0
    seconds: float = 0.0  # predict + write of the forecasts (probe excluded)
    probe: dict[str, dict] | None = None
    probe_seconds: float = 0.0
    report: stage.StageReport = field(default_factory=lambda: stage.StageReport("forecast"))

    @property
    def skipped(self) -> bool:
        """Return whether the run already had its forecasts and nothing was written."""
        return self.report.skipped


def write_correctness(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert an Arrow table of correctness forecasts (caller clears old rows); return the row count."""
    con.register("_forecasts", table)
    try:
        warehouse.execute(con, "forecast_insert_correctness")
    finally:
        con.unregister("_forecasts")
    return table.num_rows


def write_run_forecasts(con: duckdb.DuckDBPyConnection, result: ForecastResult, table: pa.Table) -> None:
    """Replace the run's correctness and benchmark forecasts and its probe, and mark the run completed, in one
    transaction (a kill before the commit leaves the run invisible to the latest_* views); fill in the counts."""
    t0 = time.perf_counter()
    with warehouse.transaction(con):
        warehouse.execute(con, "forecast_clear_correctness", {"run_id": result.run_id})
        warehouse.execute(con, "forecast_clear_benchmarks", {"run_id": result.run_id})
        result.correctness_forecasts = write_correctness(con, table)
        result.insert_seconds = time.perf_counter() - t0
        warehouse.execute(con, "forecast_benchmarks", {"run_id": result.run_id})
        if result.probe is not None:
            con.execute("DELETE FROM benchmark_probe WHERE run_id = ?", [result.run_id])
            for row in probe_rows(result.run_id, result.probe):
                warehouse.execute(con, "forecast_insert_probe", {**row, "details": dumps(row["details"])})
        warehouse.execute(con, "forecast_complete_run", {"run_id": result.run_id})
    result.benchmark_forecasts = int(
        warehouse.query(con, "forecast_count_benchmarks", {"run_id": result.run_id})["n"][0]
    )


def forecast(
    db: str | Path,
    run_id: str | None = None,
    *,
    refresh: bool = True,
    probe: bool = True,
    probe_epochs: int = 5,
    device=None,
    wait: float = 0.0,
) -> ForecastResult:
    """Write a run's correctness and benchmark forecasts and its probe; return what was written.

    With refresh=False a run that already has benchmark forecasts (and a probe, when one is asked for) is left
    as it is (the report says skipped).
    """
    db = Path(db)
    with stage.writing(db, "forecast", wait=wait) as report:
        t0 = time.perf_counter()
        with stage.session(db) as con:
            row, model = run_and_model(warehouse.query(con, "train_run", {"run_id": run_id}), run_id, db)
            result = ForecastResult(run_id=row["run_id"], report=report)
            counts = warehouse.query(con, "forecast_count_benchmarks", {"run_id": result.run_id}).row(
                0, named=True
            )
            have = int(counts["n"])
            if have and not refresh and (counts["n_probe"] or not probe):
                report.skipped, report.note = True, f"run {result.run_id} already has {have} benchmark forecasts"
                result.benchmark_forecasts = have
                return result
            questions = warehouse.query(con, "forecast_questions", {"embedder": row["embedder"]})
            matrix = (
                matrix_from_frames(
                    warehouse.query(con, "train_questions", {"embedder": row["embedder"]}),
                    warehouse.query(con, "train_labels"),
                )
                if probe
                else None
            )
        p = model.predict_all(embedding_array(questions["embedding"]))  # (Q, M)
        result.predict_seconds = time.perf_counter() - t0
        table = correctness_table(result.run_id, model.meta["model_ids"], questions["question_id"].to_list(), p)
        if matrix is not None:
            t1 = time.perf_counter()
            result.probe = probe_matrix(matrix, model.config.dim, epochs=probe_epochs, device=device)
            result.probe_seconds = time.perf_counter() - t1
        with stage.session(db) as con:
            write_run_forecasts(con, result, table)
        result.seconds = time.perf_counter() - t0
        report.note = (
            f"run {result.run_id}: {result.correctness_forecasts} correctness and "
            f"{result.benchmark_forecasts} benchmark forecasts"
        )
    return result
