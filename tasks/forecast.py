"""Forecast stage: a training run -> correctness forecasts for every model x question, benchmark forecasts, probe.

- correctness_forecasts: P(correct) for EVERY model of the run on EVERY question embedded with the run's
  embedder, evaluated or not (112 x 36k = 4M rows are built as one Arrow table and bulk-inserted).
- benchmark_forecasts: per model and benchmark, predicted accuracy = mean forecast over all the benchmark's
  questions; observed accuracy = mean label over the questions the model was evaluated on (n_observed of them).
  Predicted values for evaluated questions are in-sample for training questions: use the probe or the
  test-split metrics of the run for an out-of-sample view.
- benchmark_probe: the paper's leave-one-benchmark-out probe (embedllm/probe.py explains it).
- few-label models (labelled on fewer than 1,024 questions and under half the median model's count: imported
  sparse, or onboarded before this run trained on them) are placed with the run frozen from their own answers,
  the way `embedllm onboard` places a new model (embedllm.onboarding.place_few_label): their correctness and
  benchmark forecasts and their vector get source `placed`, and their benchmark forecasts a 90 % interval.

    forecast(db, run_id)   read the run, its questions (and the matrix for the probe) -> predict and probe with
                           no connection open -> write forecasts in one transaction, the probe in another
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

import warehouse
from embedllm.common import dumps
from embedllm.onboarding import Placement, dense_labels, few_label_models, place_few_label, placement_frame
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
    placed: list[str] = field(default_factory=list)  # the few-label models placed rather than trained
    place_seconds: float = 0.0
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


PLACED = "placed"


@dataclass
class Placements:
    """The run's few-label models placed from their answers: what replaces their trained forecasts."""

    model_ids: list[int]
    names: list[str]
    vectors: pl.DataFrame  # model_embeddings rows (source placed)
    benchmarks: pl.DataFrame  # benchmark_forecasts rows with intervals (source placed)


def place_models(
    model, questions: pl.DataFrame, labels: pl.DataFrame, p: np.ndarray, run_id: str
) -> Placements | None:
    """Place the run's few-label models: overwrite their columns of p (Q, M) in place; return their rows (or None).

    LABELS is the train_labels answer; QUESTIONS the forecast questions (question_id, benchmark, embedding).
    """
    model_ids = list(model.meta["model_ids"])
    run_labels = labels.filter(
        pl.col("model_id").is_in(model_ids) & pl.col("question_id").is_in(questions["question_id"].implode())
    )
    dense = dense_labels(questions["question_id"].to_list(), model_ids, run_labels)  # (Q, M)
    few = few_label_models(dense)
    if not few.any():
        return None
    benchmark = questions["benchmark"].to_numpy().astype(str)
    placed: dict[int, Placement] = place_few_label(
        model, embedding_array(questions["embedding"]), benchmark, dense, few
    )
    if not placed:
        return None
    codes = np.unique(benchmark, return_inverse=True)[1]  # the placements' benchmark order (sorted names)
    frames = []
    for j, one in placed.items():
        p[:, j] = one.p_correct
        pos = np.flatnonzero(dense[:, j] >= 0)
        frame = placement_frame(one, codes, pos, dense[pos, j].astype(np.float64))
        frames.append(frame.drop("n_benchmark_questions").with_columns(model_id=pl.lit(model_ids[j], pl.Int32)))
    ids = [model_ids[j] for j in placed]
    return Placements(
        model_ids=ids,
        names=[model.meta["model_names"][j] for j in placed],
        vectors=pl.DataFrame(
            {
                "run_id": run_id,
                "model_id": pl.Series(ids, dtype=pl.Int32),
                "embedding": pl.Series([one.embedding.astype(np.float32) for one in placed.values()]),
                "source": PLACED,
            },
            schema_overrides={"embedding": pl.List(pl.Float32)},
        ),
        benchmarks=pl.concat(frames).with_columns(run_id=pl.lit(run_id), source=pl.lit(PLACED)),
    )


def write_run_forecasts(
    con: duckdb.DuckDBPyConnection, result: ForecastResult, table: pa.Table, placements: Placements | None = None
) -> None:
    """Replace the run's correctness and benchmark forecasts and its probe, and mark the run completed, in one
    transaction (a kill before the commit leaves the run invisible to the latest_* views); fill in the counts."""
    t0 = time.perf_counter()
    with warehouse.transaction(con):
        warehouse.execute(con, "forecast_clear_correctness", {"run_id": result.run_id})
        warehouse.execute(con, "forecast_clear_benchmarks", {"run_id": result.run_id})
        result.correctness_forecasts = write_correctness(con, table)
        result.insert_seconds = time.perf_counter() - t0
        warehouse.execute(con, "forecast_benchmarks", {"run_id": result.run_id})
        if placements is not None:
            warehouse.upsert(con, "benchmark_forecasts", placements.benchmarks)
            warehouse.upsert(con, "model_embeddings", placements.vectors)
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
            labels = warehouse.query(con, "train_labels")
            matrix = (
                matrix_from_frames(warehouse.query(con, "train_questions", {"embedder": row["embedder"]}), labels)
                if probe
                else None
            )
        p = model.predict_all(embedding_array(questions["embedding"]), questions["benchmark"].to_numpy())  # (Q, M)
        result.predict_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        placements = place_models(model, questions, labels, p, result.run_id)
        result.place_seconds = time.perf_counter() - t1
        result.placed = placements.names if placements else []
        sources = [
            PLACED if m in (placements.model_ids if placements else ()) else "trained"
            for m in model.meta["model_ids"]
        ]
        table = correctness_table(
            result.run_id, model.meta["model_ids"], questions["question_id"].to_list(), p, sources
        )
        if matrix is not None:
            t1 = time.perf_counter()
            result.probe = probe_matrix(matrix, model.config.dim, epochs=probe_epochs, device=device)
            result.probe_seconds = time.perf_counter() - t1
        with stage.session(db) as con:
            write_run_forecasts(con, result, table, placements)
        result.seconds = time.perf_counter() - t0
        report.note = (
            f"run {result.run_id}: {result.correctness_forecasts} correctness and "
            f"{result.benchmark_forecasts} benchmark forecasts"
        ) + (f"; {len(result.placed)} few-label models placed from their answers" if result.placed else "")
    return result
