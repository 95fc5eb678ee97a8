"""Is a stage's output still current? The pipeline skips validation and training when nothing changed since.

Evaluation and embedding are incremental by themselves (they plan only what is missing). Validation and
training read the whole matrix, so a rerun with nothing new would redo them for nothing; these checks compare
their latest run with the latest load (all times UTC, as the loader and the stages write them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

import warehouse


@dataclass
class Fresh:
    """A stage result that is still current: which run, and why it counts as current."""

    run_id: str
    created_at: datetime
    reason: str
    row: dict[str, Any]


def _newer_than_latest_load(created_at: datetime, latest_load: datetime | None) -> bool:
    """Return whether a run happened after the latest load (or nothing was ever loaded)."""
    return latest_load is None or created_at >= latest_load


def current_validation(con: duckdb.DuckDBPyConnection) -> Fresh | None:
    """Return the latest validation run if it succeeded after the latest load, else None (validate again)."""
    if not warehouse.table_exists(con, "validation_runs"):
        return None
    state = warehouse.query(con, "pipeline_validation_state")
    if state.height == 0:
        return None
    row = state.row(0, named=True)
    if not row["success"] or not _newer_than_latest_load(row["created_at"], row["latest_load"]):
        return None
    return Fresh(row["run_id"], row["created_at"], "passed after the latest load; nothing new to validate", row)


def current_training(con: duckdb.DuckDBPyConnection, preset: str, embedder: str | None) -> Fresh | None:
    """Return the latest completed run of this preset/embedder if it is newer than the latest load, else None."""
    if not warehouse.table_exists(con, "training_runs"):
        return None
    state = warehouse.query(con, "pipeline_training_state", {"preset": preset, "embedder": embedder})
    if state.height == 0:
        return None
    row = state.row(0, named=True)
    if not _newer_than_latest_load(row["created_at"], row["latest_load"]):
        return None
    return Fresh(row["run_id"], row["created_at"], "trained after the latest load; nothing new to learn", row)
