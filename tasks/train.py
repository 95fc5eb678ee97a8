"""Train stage: labels + question embeddings from the warehouse -> an EmbedLLM run (checkpoint, metrics, vectors).

    train(db, ...)   read (labels, validation, embedder, matrix) -> embedllm.training.train_matrix with no
                     connection open -> write the run row and the model embeddings in one transaction

The maths is in embedllm/training.py. A run is skipped when it would learn nothing new (`current_training`: a
completed run of this preset and embedder newer than the latest load and than the latest embedding run of its
embedder); `force=True` or training overrides train anyway. `embedllm train` and the Prefect train flow call
this same function, then tasks/forecast.py `forecast` for the run, so both doors decide and write the same way.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

import warehouse
from embedllm import settings
from embedllm.common import code_version, dumps, new_run_id, utc_now
from embedllm.embedders import canonical_name
from embedllm.errors import PipelineStopped
from embedllm.model import EmbedderMismatch, EmbedLLM, preset_config
from embedllm.training import (  # noqa: F401
    Matrix,
    TrainingDataError,
    check_trainable,
    embedding_array,
    matrix_from_frames,
    model_vectors_frame,
    run_and_model,
    save_run_checkpoint,
    train_matrix,
)
from tasks import stage

log = logging.getLogger(__name__)
SKIP_HINT = "or pass --skip-validation (require_validation=False) to train anyway"


@dataclass
class TrainResult:
    """One training run as written to the warehouse (or the current run, when nothing new was there to learn)."""

    run_id: str
    preset: str
    embedder: str
    metrics: dict
    config: dict
    checkpoint_path: Path
    model: EmbedLLM | None = field(default=None, repr=False)  # None when the run was current and not retrained
    trained: bool = True
    report: stage.StageReport = field(default_factory=lambda: stage.StageReport("train"))


# ================================================================================================ reading


def load_matrix(con: duckdb.DuckDBPyConnection, embedder: str) -> Matrix:
    """Return the labelled questions x models matrix with embeddings from EMBEDDER."""
    return matrix_from_frames(
        warehouse.query(con, "train_questions", {"embedder": embedder}), warehouse.query(con, "train_labels")
    )


def run_model(
    con: duckdb.DuckDBPyConnection, run_id: str | None = None, where: str | Path = "the warehouse"
) -> tuple[dict, EmbedLLM]:
    """Return (the training_runs row, its model from the checkpoint) for run_id or the latest completed run."""
    return run_and_model(warehouse.query(con, "train_run", {"run_id": run_id}), run_id, where)


def check_validated(con: duckdb.DuckDBPyConnection) -> str:
    """Return the id of a successful validation run newer than the latest load; raise PipelineStopped otherwise."""
    if not warehouse.table_exists(con, "validation_runs"):
        raise PipelineStopped(f"the warehouse was never validated: run `embedllm validate` first, {SKIP_HINT}")
    latest = warehouse.query(con, "train_latest_validation")
    if latest.height == 0:
        raise PipelineStopped(f"the warehouse was never validated: run `embedllm validate` first, {SKIP_HINT}")
    row = latest.row(0, named=True)
    if not row["success"]:
        raise PipelineStopped(
            f"the latest validation run {row['run_id']} ({row['created_at']:%Y-%m-%d %H:%M}) "
            f"failed ({row['n_failed']} failed expectations): fix the data and run "
            f"`embedllm validate` again, {SKIP_HINT}"
        )
    load = warehouse.query(con, "train_latest_load").row(0, named=True)
    if load["latest_load"] is not None and row["created_at"] < load["latest_load"]:
        raise PipelineStopped(
            f"the latest validation run {row['run_id']} ({row['created_at']:%Y-%m-%d %H:%M:%S}) is "
            f"older than the latest load ({load['latest_load']:%Y-%m-%d %H:%M:%S}): run "
            f"`embedllm validate` again, {SKIP_HINT}"
        )
    return row["run_id"]


def choose_embedder(con: duckdb.DuckDBPyConnection, embedder: str | None = None) -> str:
    """Return the embedder to train with (given, else the one covering most labelled questions); raise if unusable."""
    available = warehouse.query(con, "train_embedder_coverage")["embedder"].to_list()
    if embedder is None:
        if not available:
            raise TrainingDataError("no question has an embedding yet: run `embedllm embed` first")
        embedder = available[0]
    elif embedder not in available:
        have = f"embedders in the warehouse: {', '.join(available)}" if available else "no embeddings yet"
        raise EmbedderMismatch(
            f"no question embeddings from embedder {embedder!r} ({have}): run "
            f"`embedllm embed --model {embedder}` first or pass --embedder with one of them"
        )
    missing = warehouse.query(con, "train_missing_embeddings", {"embedder": embedder})["n_missing"][0]
    if missing:
        raise TrainingDataError(
            f"{missing} labelled questions have no {embedder} embedding: run "
            f"`embedllm embed --model {embedder}` first"
        )
    return embedder


def current_training(con: duckdb.DuckDBPyConnection, preset: str, embedder: str | None) -> dict | None:
    """Return the latest completed run of this preset/embedder if nothing was loaded or embedded since, else None."""
    if not warehouse.table_exists(con, "training_runs"):
        return None
    state = warehouse.query(con, "train_current_run", {"preset": preset, "embedder": embedder})
    if state.height == 0:
        return None
    row = state.row(0, named=True)
    newer = [t for t in (row["latest_load"], row["latest_embedding"]) if t is not None and t > row["created_at"]]
    return None if newer else row


def read_inputs(
    con: duckdb.DuckDBPyConnection, embedder: str | None, require_validation: bool
) -> tuple[str, str, Matrix]:
    """Return (validation run id or 'skipped', embedder, matrix) after the readiness checks; raise if not ready."""
    if warehouse.query(con, "train_latest_load")["n_labels"][0] == 0:
        raise TrainingDataError(
            "the warehouse has no labels: run `embedllm run`, `embedllm evaluate` or `embedllm import` first"
        )
    if require_validation:
        validation = check_validated(con)
    else:
        validation = "skipped"
        log.warning("training WITHOUT a successful validation run (--skip-validation): labels were not checked")
    embedder = choose_embedder(con, embedder)
    return validation, embedder, load_matrix(con, embedder)


# ================================================================================================ the stage

TRAINED = "trained"  # a run's status between its own commit and the commit of its forecasts (then `completed`)
RUN_TABLES = (
    "model_embeddings",
    "correctness_forecasts",
    "benchmark_forecasts",
    "benchmark_probe",
    "training_runs",
)


def result_of_row(row: dict, report: stage.StageReport) -> TrainResult:
    """Return the TrainResult of an already written run (its config and metrics from the JSON columns)."""
    return TrainResult(
        run_id=row["run_id"],
        preset=row["preset"],
        embedder=row["embedder"],
        metrics=json.loads(row["metrics"] or "{}"),
        config=json.loads(row["config"] or "{}"),
        checkpoint_path=Path(row["checkpoint_path"]),
        trained=False,
        report=report,
    )


def clean_unfinished(db: Path) -> list[str]:
    """Delete runs a kill left without forecasts and checkpoint files no run records; return the runs deleted."""
    folder = settings.beside(db, "checkpoints")
    with stage.session(db) as con:
        runs = warehouse.query(con, "train_unfinished_runs")
        unfinished = runs.filter(runs["status"] != "completed")["run_id"].to_list()
        if unfinished:
            with warehouse.transaction(con):
                for run_id in unfinished:
                    for table in RUN_TABLES:
                        con.execute(f"DELETE FROM {warehouse.quote(table)} WHERE run_id = ?", [run_id])
    kept = {Path(p).name for p, s in zip(runs["checkpoint_path"], runs["status"]) if p and s == "completed"}
    for f in folder.glob("*.pt*") if folder.is_dir() else []:
        if f.name not in kept:
            f.unlink(missing_ok=True)
    return unfinished


def write_run(db: Path, result: TrainResult, matrix: Matrix, created_at) -> None:
    """Insert the run's row (status `trained`: invisible until forecast completes it) and its model embeddings
    in one transaction; remove the checkpoint if that fails."""
    try:
        with stage.session(db) as con, warehouse.transaction(con):
            warehouse.execute(
                con,
                "train_insert_run",
                {
                    "run_id": result.run_id,
                    "created_at": created_at,
                    "preset": result.preset,
                    "embedder": result.embedder,
                    "config": dumps(result.config),
                    "metrics": dumps(result.metrics),
                    "checkpoint_path": str(result.checkpoint_path),
                    "status": TRAINED,
                },
            )
            warehouse.upsert(
                con, "model_embeddings", model_vectors_frame(result.run_id, matrix.model_ids, result.model)
            )
    except BaseException:
        result.checkpoint_path.unlink(missing_ok=True)
        raise


def train(
    db: str | Path,
    *,
    preset: str = "default",
    device: str | None = None,
    embedder: str | None = None,
    require_validation: bool = True,
    force: bool = False,
    overrides: dict | None = None,
    wait: float = 0.0,
    progress: bool = False,
) -> TrainResult:
    """Train on the warehouse's labels (unless its latest run is current); write the run; return it.

    Writes training_runs, the checkpoint (beside the warehouse, in <stem>_checkpoints/) and model_embeddings.
    """
    db = Path(db)
    embedder = canonical_name(embedder) if embedder else None
    with stage.writing(db, "train", wait=wait) as report:
        t0 = time.perf_counter()
        with stage.session(db) as con:
            current = None if force or overrides else current_training(con, preset, embedder)
            if current is None:
                validation, embedder, matrix = read_inputs(con, embedder, require_validation)
        if current is not None:
            report.skipped, report.note = (
                True,
                f"run {current['run_id']} trained after the latest load; nothing new to learn",
            )
            return result_of_row(current, report)
        check_trainable(matrix)
        clean_unfinished(db)
        config = preset_config(
            preset, n_models=len(matrix.model_ids), question_dim=matrix.emb.shape[1], **(overrides or {})
        )
        dev = settings.pick_device(device)
        trained = train_matrix(matrix, config, dev, progress=progress)
        now = utc_now()
        run_id = new_run_id(now)
        checkpoint = settings.beside(db, "checkpoints") / f"{run_id}.pt"
        run_config = {
            **trained.config.to_dict(),
            "preset": preset,
            "embedder": embedder,
            "device": str(dev),
            "n_models": len(matrix.model_ids),
            "n_questions": len(matrix.question_ids),
            "validation_run": validation,
            "code_version": code_version(),
        }
        result = TrainResult(
            run_id=run_id,
            preset=preset,
            embedder=embedder,
            config=run_config,
            metrics={**trained.metrics, "total_seconds": time.perf_counter() - t0},
            checkpoint_path=checkpoint,
            model=trained.model,
            report=report,
        )
        write_run(db, result, matrix, now)  # first the row, so no checkpoint file is ever unrecorded
        save_run_checkpoint(
            trained.model, checkpoint.parent, run_id, embedder=embedder, matrix=matrix, preset=preset
        )
        report.note = f"run {run_id} ({preset}, {embedder})"
    return result
