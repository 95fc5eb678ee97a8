"""Load stage: the single writer. Staging Parquet (one file per model x task run) -> the warehouse, in one transaction.

Producers (the lm-eval importer, the evaluate stage, the EmbedLLM-CSV importer) build a `Batch`: a frame of
labelled rows plus provenance. Parallel producers write batches to staging with `write_staging` (atomic rename);
`load_batches` commits any number of batches in one transaction, after checking that each batch's per-sample
values reproduce lm-eval's aggregate. Loading the same content twice is a no-op.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

import warehouse
from embedllm.common import code_version, dumps, utc_now
from embedllm.errors import AggregateMismatch, InputError
from embedllm.ids import split_expr
from tasks import stage
from tasks.stage import StageReport

AGGREGATE_TOLERANCE = 1e-6

# Columns of Batch.rows. `model` may be omitted when Meta.model names the one model of the batch;
# `split` may be null (then derived from question_id); `value` is the raw per-sample metric.
ROW_SCHEMA = {
    "model": pl.String,
    "question_id": pl.String,
    "benchmark": pl.String,
    "task": pl.String,
    "doc_id": pl.Int64,
    "doc_hash": pl.String,
    "prompt": pl.String,
    "target": pl.String,
    "n_choices": pl.Int64,
    "output_type": pl.String,
    "split": pl.String,
    "label": pl.Int8,
    "value": pl.Float64,
}
REQUIRED = ("question_id", "benchmark", "task", "prompt", "label")


@dataclass
class Meta:
    """Provenance of one batch; stored in the `loads` table."""

    kind: str  # lm-eval-import | evaluate | embedllm-csv
    content_hash: str  # identifies the content: same hash => already loaded => no-op
    source: str | None = None
    model: str | None = None  # model name when the batch is for one model
    task: str | None = None
    task_version: str | None = None
    task_config_hash: str | None = None
    lm_eval_version: str | None = None
    model_revision: str | None = None
    label_rule: str | None = None
    aggregate_value: float | None = None  # lm-eval's aggregate; checked against the mean of rows.value
    details: dict = field(default_factory=dict)


@dataclass
class Batch:
    """Labelled rows plus their provenance: the unit the loader commits.

    Bulk path (datasets with millions of labels): pass `questions` (one row per question, QUESTION_COLUMNS) and
    keep `rows` to model, question_id, label[, value], so question text is not repeated on every label row.
    """

    meta: Meta
    rows: pl.DataFrame
    questions: pl.DataFrame | None = None


@dataclass
class LoadReport:
    """What one load_batches call did."""

    loaded: list[str] = field(default_factory=list)  # load ids committed
    skipped: list[str] = field(default_factory=list)  # descriptions of batches already present
    n_labels: int = 0
    n_new_questions: int = 0
    n_new_models: int = 0
    seconds: float = 0.0


QUESTION_COLUMNS = (
    "question_id",
    "benchmark",
    "task",
    "doc_id",
    "doc_hash",
    "prompt",
    "target",
    "n_choices",
    "output_type",
    "split",
)
LABEL_COLUMNS = ("model", "question_id", "label", "value")


def _with_model(batch: Batch, rows: pl.DataFrame) -> pl.DataFrame:
    """Return rows with a model column, filled from meta.model when the rows have none."""
    if "model" in rows.columns:
        return rows
    if not batch.meta.model:
        raise InputError(f"{batch.meta.source or 'batch'}: rows have no model column and meta.model is empty")
    return rows.with_columns(pl.lit(batch.meta.model).alias("model"))


def _normalise_bulk(batch: Batch) -> pl.DataFrame:
    """Return the label rows of a bulk batch (model, question_id, label, value), typed."""
    rows = batch.rows
    missing = [c for c in ("question_id", "label") if c not in rows.columns]
    if missing:
        raise InputError(f"{batch.meta.source or 'batch'}: missing column(s) {', '.join(missing)}")
    rows = _with_model(batch, rows)
    if "value" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.Float64).alias("value"))
    return rows.select([pl.col(c).cast(ROW_SCHEMA[c]) for c in LABEL_COLUMNS])


def normalise_questions(batch: Batch) -> pl.DataFrame:
    """Return batch.questions with QUESTION_COLUMNS present and typed, split derived where null."""
    q = batch.questions
    missing = [c for c in ("question_id", "benchmark", "task", "prompt") if c not in q.columns]
    if missing:
        raise InputError(f"{batch.meta.source or 'batch'}: questions miss column(s) {', '.join(missing)}")
    q = q.with_columns(
        [pl.lit(None, dtype=ROW_SCHEMA[c]).alias(c) for c in QUESTION_COLUMNS if c not in q.columns]
    )
    q = q.select([pl.col(c).cast(ROW_SCHEMA[c]) for c in QUESTION_COLUMNS])
    return q.with_columns(pl.coalesce(pl.col("split"), split_expr()).alias("split"))


def normalise(batch: Batch) -> pl.DataFrame:
    """Return batch.rows with every ROW_SCHEMA column present and typed; raise InputError on missing columns."""
    if batch.questions is not None:
        return _normalise_bulk(batch)
    rows = batch.rows
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise InputError(f"{batch.meta.source or 'batch'}: missing column(s) {', '.join(missing)}")
    rows = _with_model(batch, rows)
    rows = rows.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in ROW_SCHEMA.items() if c not in rows.columns]
    )
    rows = rows.select([pl.col(c).cast(t) for c, t in ROW_SCHEMA.items()])
    return rows.with_columns(pl.coalesce(pl.col("split"), split_expr()).alias("split"))


def check_aggregate(batch: Batch, rows: pl.DataFrame) -> float | None:
    """Return the mean per-sample value; raise AggregateMismatch if it differs from lm-eval's aggregate."""
    agg = batch.meta.aggregate_value
    if agg is None or rows.height == 0:
        return None
    col = "value" if rows["value"].null_count() < rows.height else "label"
    mean = float(rows[col].cast(pl.Float64).mean())
    if not math.isclose(mean, agg, abs_tol=AGGREGATE_TOLERANCE):
        raise AggregateMismatch(
            f"task {batch.meta.task}: mean per-sample {batch.meta.label_rule or col} is {mean:.6f} but lm-eval's "
            f"aggregate is {agg:.6f} ({batch.meta.source}); check the label rule for this task or re-run lm-eval"
        )
    return mean


def _already_loaded(con: duckdb.DuckDBPyConnection, meta: Meta) -> bool:
    """Return whether a batch with the same kind, model, task and content hash was committed before."""
    return (
        con.execute(
            "SELECT count(*) FROM loads l LEFT JOIN models m USING (model_id) WHERE l.kind = ? AND l.content_hash = ? "
            "AND l.task IS NOT DISTINCT FROM ? AND m.name IS NOT DISTINCT FROM ?",
            [meta.kind, meta.content_hash, meta.task, meta.model],
        ).fetchall()[0][0]
        > 0
    )


def _commit_one(
    con: duckdb.DuckDBPyConnection, batch: Batch, rows: pl.DataFrame, sample_mean: float | None, report: LoadReport
) -> None:
    """Insert one checked batch's models, questions, labels and load row (inside the caller's transaction)."""
    t0 = time.perf_counter()
    started = utc_now()
    load_id = uuid.uuid4().hex[:16]
    source = "registry" if batch.meta.kind == "evaluate" else batch.meta.kind
    con.register("_batch", rows.to_arrow())
    try:
        new_models = con.execute(
            "INSERT INTO models (name, source) SELECT DISTINCT model, ? FROM _batch "
            "WHERE model NOT IN (SELECT name FROM models) RETURNING model_id",
            [source],
        ).fetchall()
        q_source = batch.meta.kind if batch.meta.kind != "evaluate" else "lm-eval"
        if batch.questions is not None:
            new_q = _insert_questions(con, normalise_questions(batch), q_source)
        else:
            new_q = con.execute(
                "INSERT OR IGNORE INTO questions (question_id, benchmark, task, doc_id, doc_hash, prompt, target, "
                "n_choices, output_type, split, source) "
                "SELECT question_id, any_value(benchmark), any_value(task), any_value(doc_id), any_value(doc_hash), "
                "any_value(prompt), any_value(target), any_value(n_choices), any_value(output_type), "
                "any_value(split), ? FROM _batch GROUP BY question_id RETURNING question_id",
                [q_source],
            ).fetchall()
        con.execute(
            "INSERT OR REPLACE INTO correctness (model_id, question_id, label, value, load_id) "
            "SELECT m.model_id, b.question_id, b.label, b.value, ? FROM _batch b JOIN models m ON m.name = b.model",
            [load_id],
        )
        if batch.meta.kind == "lm-eval-import":
            warehouse.execute(con, "load_plan_import", [started])
    finally:
        con.unregister("_batch")
    model_id = None
    if batch.meta.model:
        model_id = con.execute("SELECT model_id FROM models WHERE name = ?", [batch.meta.model]).fetchall()[0][0]
    m = batch.meta
    con.execute(
        "INSERT INTO loads (load_id, kind, source, content_hash, model_id, task, task_version, task_config_hash, "
        "lm_eval_version, model_revision, label_rule, aggregate_value, sample_mean, n_labels, n_new_questions, "
        "code_version, details, started_at, seconds) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            load_id,
            m.kind,
            m.source,
            m.content_hash,
            model_id,
            m.task,
            m.task_version,
            m.task_config_hash,
            m.lm_eval_version,
            m.model_revision,
            m.label_rule,
            m.aggregate_value,
            sample_mean,
            rows.height,
            len(new_q),
            code_version(),
            dumps(m.details),
            started,
            time.perf_counter() - t0,
        ],
    )
    report.loaded.append(load_id)
    report.n_labels += rows.height
    report.n_new_questions += len(new_q)
    report.n_new_models += len(new_models)


def _insert_questions(con: duckdb.DuckDBPyConnection, questions: pl.DataFrame, source: str) -> list:
    """Insert a bulk batch's question rows not yet present; return one item per new question."""
    con.register("_batch_questions", questions.to_arrow())
    try:
        n = con.execute(
            "INSERT OR IGNORE INTO questions (question_id, benchmark, task, doc_id, doc_hash, prompt, target, "
            "n_choices, output_type, split, source) SELECT question_id, benchmark, task, doc_id, doc_hash, prompt, "
            "target, n_choices, output_type, split, ? FROM _batch_questions",
            [source],
        ).fetchall()[0][0]
    finally:
        con.unregister("_batch_questions")
    return [None] * int(n)


def check_batches(batches: list[Batch]) -> list[tuple[Batch, pl.DataFrame, float | None]]:
    """Return (batch, typed rows, sample mean) per batch; InputError / AggregateMismatch before anything is written."""
    checked = []
    for batch in batches:
        rows = normalise(batch)
        bad = rows.filter(pl.col("label").is_null() | ~pl.col("label").is_in([0, 1]))
        if bad.height:
            raise InputError(
                f"{batch.meta.source}: label must be 0 or 1, got {bad['label'][0]!r} for question "
                f"{bad['question_id'][0]} ({bad.height} such rows)"
            )
        checked.append((batch, rows, check_aggregate(batch, rows)))
    return checked


def load_batches(
    con: duckdb.DuckDBPyConnection,
    batches: list[Batch],
    *,
    then: Callable[[duckdb.DuckDBPyConnection, LoadReport], None] | None = None,
) -> LoadReport:
    """Check and commit all batches in one transaction (all or nothing); skip those already loaded.

    THEN, if given, runs inside the same transaction after the batches (the evaluate stage writes its eval_runs
    row there, so a (model, task) result is committed whole or not at all).
    """
    t0 = time.perf_counter()
    report = LoadReport()
    checked = check_batches(batches)
    with warehouse.transaction(con):
        for batch, rows, mean in checked:
            if _already_loaded(con, batch.meta):
                report.skipped.append(f"{batch.meta.model or batch.meta.kind}/{batch.meta.task or '*'}")
                continue
            _commit_one(con, batch, rows, mean, report)
        if then is not None:
            then(con, report)
    report.seconds = time.perf_counter() - t0
    return report


# ------------------------------------------------------------------------------------------------- staging


def write_staging(batch: Batch, directory: str | Path) -> Path:
    """Write a batch as one Parquet file (provenance in its metadata) atomically; return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    m = batch.meta
    stem = "__".join(_safe(x) for x in (m.model or m.kind, m.task or "all", m.content_hash[:12]))
    final = directory / f"{stem}.parquet"
    table = batch.rows.to_arrow()
    table = table.replace_schema_metadata({b"embedllm_meta": dumps(asdict(m)).encode()})
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".parquet.part")  # never matches *.parquet
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def read_staging(path: str | Path) -> Batch:
    """Read a staging Parquet file back into a Batch."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"embedllm_meta")
    if raw is None:
        raise InputError(f"{path}: not an embedllm staging file (no embedllm_meta in its Parquet metadata)")
    return Batch(meta=Meta(**json.loads(raw)), rows=pl.from_arrow(table))


@dataclass
class StagingLoad:
    """What the load stage committed from a staging folder, and the stage report."""

    load: LoadReport
    report: StageReport


def load_staging(db: str | Path, directory: str | Path, *, remove: bool = True, wait: float = 0.0) -> StagingLoad:
    """Load every staging file in DIRECTORY in one transaction (a short session); delete the files once committed."""
    files = sorted(Path(directory).glob("*.parquet")) if Path(directory).exists() else []
    batches = [read_staging(f) for f in files]  # read before the warehouse is opened
    with stage.writing(db, "load", wait=wait) as report:
        with stage.session(db) as con:
            loaded = load_batches(con, batches)
        report.note = (
            f"{len(files)} staging file(s): {loaded.n_labels} labels, {len(loaded.skipped)} already loaded"
        )
    if remove:
        for f in files:
            f.unlink(missing_ok=True)
    return StagingLoad(load=loaded, report=report)


def _safe(text: str) -> str:
    """Return text usable in a file name."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]
