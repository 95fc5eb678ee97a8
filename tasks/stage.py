"""What every stage entry point shares: the run lock, short DuckDB sessions, and the report of what it wrote.

A stage entry point (tasks.<stage>.<verb>(warehouse, ...)) is the one way to run a stage: the CLI command and
the Prefect step both call it. It takes the warehouse path, holds the warehouse's run lock while it writes
(`writing`), opens short sessions itself (never one across lm-eval or training), commits each result in one
transaction, and returns a result carrying a StageReport: seconds, rows added per table, a one-line note.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

import warehouse
from embedllm.locking import run_lock

DUCKDB_WAIT_SECONDS = 5.0  # how long a session waits for the DuckDB file held by another process (a reader);
# a stage called with wait=W waits up to W instead, when that is longer
_file_wait: contextvars.ContextVar[float] = contextvars.ContextVar("duckdb_file_wait", default=DUCKDB_WAIT_SECONDS)
# Tables whose row counts every stage report shows (those that exist in the warehouse at the time).
COUNTED_TABLES = (
    "models",
    "questions",
    "correctness",
    "loads",
    "eval_runs",
    "evaluation_plan",
    "validation_runs",
    "question_embeddings",
    "training_runs",
    "correctness_forecasts",
    "benchmark_forecasts",
    "onboarded_models",
    "drift_sentinels",
    "drift_checks",
    "drift_events",
)


@dataclass
class StageReport:
    """What one stage did: how long it took, rows it added per table, and a one-line note."""

    stage: str
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    note: str = ""
    skipped: bool = False

    def line(self) -> str:
        """Return the report as one log line: `embed: 12.3 s, +300 question_embeddings (note)`."""
        added = ", ".join(f"+{n} {t}" for t, n in self.rows.items() if n) or "no new rows"
        status = "skipped: " if self.skipped else ""
        note = f" ({status}{self.note})" if self.note or status else ""
        return f"{self.stage}: {self.seconds:.1f} s, {added}{note}"


def table_counts(con: duckdb.DuckDBPyConnection, tables: Iterable[str] = COUNTED_TABLES) -> dict[str, int]:
    """Return {table: row count} for each of the tables that exists."""
    counts = {}
    for name in tables:
        if warehouse.table_exists(con, name):
            counts[name] = con.execute(f"SELECT count(*) FROM {warehouse.quote(name)}").fetchall()[0][0]
    return counts


def added_rows(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Return the tables whose row count changed between two table_counts, with the difference."""
    return {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}


def session(
    db: str | Path, *, read_only: bool = False
) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
    """Return a short warehouse session that waits for a briefly held file (the stages' only way in)."""
    return warehouse.session(db, read_only=read_only, wait=_file_wait.get())


@contextlib.contextmanager
def writing(db: str | Path, name: str, *, wait: float = 0.0) -> Iterator[StageReport]:
    """Hold the warehouse's run lock for the block and yield its StageReport; fill in rows added and seconds.

    `wait` is how long to queue behind another writer (a pipeline run or another stage) before refusing with
    one line naming it. The lock is re-entrant, so a stage called inside a pipeline run just proceeds.
    """
    report = StageReport(stage=name)
    t0 = time.perf_counter()
    token = _file_wait.set(max(DUCKDB_WAIT_SECONDS, wait))
    new_file = not Path(db).exists()
    try:
        with run_lock(db, wait=wait, what=name):
            with session(db) as con:
                before = table_counts(con)
            try:
                yield report
            except BaseException:
                if new_file:  # a command that failed on a new --warehouse path leaves no file behind
                    remove_warehouse_files(db)
                raise
            with session(db) as con:
                report.rows = added_rows(before, table_counts(con))
    finally:
        _file_wait.reset(token)
    report.seconds = time.perf_counter() - t0


def remove_warehouse_files(db: str | Path) -> None:
    """Delete a warehouse file this process just created, with its write-ahead log."""
    for path in (Path(db), Path(f"{db}.wal")):
        path.unlink(missing_ok=True)
