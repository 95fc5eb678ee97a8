"""Embed stage: sentence-transformers vectors of question prompts, stored in question_embeddings (new ones only).

The embedders themselves (names, the packaged models, loading, the default, the torch / ONNX backend choice)
live in embedllm/embedders.py; the name stored in question_embeddings.embedder is its stored_name(): the
canonical name, with a backend suffix when that backend's vectors disagree with torch's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

import warehouse
from embedllm.common import code_version, new_run_id, utc_now
from embedllm.embedders import (  # noqa: F401
    DEFAULT_EMBEDDER,
    DEMO_EMBEDDER,
    EmbedderError,
    canonical_name,
    load_embedder,
    load_model,
    resolve_embedder,
    stored_name,
)
from embedllm.errors import ConfigError
from tasks import stage

log = logging.getLogger(__name__)

CHUNK = 1024  # questions encoded (and committed) per step of the progress bar


@dataclass
class EmbedReport:
    """What one embed_questions call did."""

    embedder: str
    n_embedded: int
    n_already: int
    dimension: int | None
    seconds: float  # encoding + storing (model load excluded)
    load_seconds: float = 0.0
    device: str | None = None
    backend: str | None = None  # torch | onnx | onnx-int8
    batch_size: int = 64
    model_path: str | None = None
    run_id: str | None = None
    report: stage.StageReport = field(default_factory=lambda: stage.StageReport("embed"), repr=False)

    @property
    def questions_per_s(self) -> float | None:
        """Return the encode+store throughput, or None when nothing was encoded."""
        return self.n_embedded / self.seconds if self.n_embedded and self.seconds > 0 else None

    def summary(self) -> str:
        """Return one line: what was embedded, how fast, and what was already there."""
        if not self.n_embedded:
            return (
                f"{self.embedder}: nothing to embed ({self.n_already:,} questions already have a "
                f"{self.dimension or '?'}-d vector)"
            )
        return (
            f"{self.embedder}: embedded {self.n_embedded:,} questions ({self.dimension}-d) in {self.seconds:.1f} s "
            f"= {self.questions_per_s:,.0f} questions/s on {self.device} ({self.backend}; model load {self.load_seconds:.1f} s; "
            f"{self.n_already:,} already embedded)"
        )


def stored_dimension(con: duckdb.DuckDBPyConnection, embedder: str) -> tuple[int, int | None]:
    """Return (number of stored vectors, their dimension or None) for EMBEDDER; raise if lengths are mixed."""
    row = warehouse.query(con, "embed_dimension", {"embedder": embedder}).row(0, named=True)
    if row["n"] and row["min_dim"] != row["max_dim"]:
        raise EmbedderError(
            f"question_embeddings holds vectors of {row['min_dim']}..{row['max_dim']} dimensions for "
            f"{embedder!r}: delete them (DELETE FROM question_embeddings WHERE embedder = "
            f"'{embedder}') and run `embedllm embed --model {embedder}` again"
        )
    return int(row["n"]), (int(row["max_dim"]) if row["n"] else None)


def store_vectors(
    con: duckdb.DuckDBPyConnection, embedder: str, question_ids: list[str], vectors: np.ndarray
) -> None:
    """Insert one chunk of vectors into question_embeddings (the caller commits each chunk on its own)."""
    n, d = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    table = pa.table(
        {
            "question_id": pa.array(question_ids, type=pa.string()),
            "embedder": pa.array([embedder] * n, type=pa.string()),
            "embedding": pa.ListArray.from_arrays(offsets, flat),
        }
    )
    con.register("_new_embeddings", table)
    try:
        warehouse.execute(con, "embed_insert")
    finally:
        con.unregister("_new_embeddings")


def _check_dimension(embedder: str, stored: int | None, got: int) -> None:
    """Raise EmbedderError when vectors of GOT dimensions would join STORED-dimensional ones under one name."""
    if stored is not None and stored != got:
        raise EmbedderError(
            f"question_embeddings holds {stored}-d vectors for {embedder!r} but the model now gives "
            f"{got}-d ones: a different model under the same name; delete the old vectors "
            f"(DELETE FROM question_embeddings WHERE embedder = '{embedder}') or use another --model"
        )


def encode_chunk(model, prompts: list[str], batch_size: int) -> np.ndarray:
    """Return (n, d) float32 L2-normalised vectors of PROMPTS from a loaded sentence-transformers model."""
    return np.asarray(
        model.encode(
            prompts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ),
        dtype=np.float32,
    )


def embed_questions(
    db: str | Path,
    embedder: str | None = None,
    *,
    batch_size: int = 64,
    device: str | None = None,
    backend: str | None = None,
    progress: bool = True,
    wait: float = 0.0,
) -> EmbedReport:
    """Encode the prompts of questions lacking a vector from EMBEDDER, store them, record the run; return a report.

    Encoding runs with no connection open; each chunk of CHUNK vectors commits in its own short session, so a
    kill keeps the finished chunks and a rerun embeds only the rest. BACKEND (None: $EMBEDLLM_EMBED_BACKEND, else
    auto) may change the stored name (see embedllm/embedders.py).
    """
    db = Path(db)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    name = stored_name(embedder or DEFAULT_EMBEDDER, device, backend)
    with stage.writing(db, "embed", wait=wait) as stage_report:
        with stage.session(db) as con:
            todo = warehouse.query(con, "embed_missing", {"embedder": name})
            n_already, stored = stored_dimension(con, name)
        report = EmbedReport(
            embedder=name,
            n_embedded=0,
            n_already=n_already,
            dimension=stored,
            seconds=0.0,
            batch_size=batch_size,
            report=stage_report,
        )
        if todo.height:
            _embed_todo(db, report, todo, device, backend, progress)
        rate = f", {report.questions_per_s:.0f} questions/s" if report.questions_per_s else ""
        stage_report.note = f"{name}: {report.n_embedded} new, {report.n_already} already embedded{rate}"
    return report


def _embed_todo(
    db: Path, report: EmbedReport, todo, device: str | None, backend: str | None, progress: bool
) -> None:
    """Load the model, encode and store the questions of TODO chunk by chunk, then record the run."""
    from tqdm.auto import tqdm

    t_load = time.perf_counter()
    loaded = load_embedder(report.embedder, device, backend, exact=True)
    model = loaded.model
    report.load_seconds = time.perf_counter() - t_load
    report.device, report.backend, report.model_path = loaded.device, loaded.backend, loaded.source
    dim_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    expected = dim_of()
    if expected:
        _check_dimension(report.embedder, report.dimension, expected)
    # Longest first, as sentence-transformers orders within a call: chunks of similar length pad little.
    todo = todo.with_columns(todo["prompt"].str.len_chars().alias("_len")).sort("_len", descending=True)
    ids, prompts = todo["question_id"].to_list(), todo["prompt"].to_list()
    t0 = time.perf_counter()
    with tqdm(total=len(ids), unit="q", desc=f"embedding ({report.embedder})", disable=not progress) as bar:
        for start in range(0, len(ids), CHUNK):
            vectors = encode_chunk(model, prompts[start : start + CHUNK], report.batch_size)
            _check_dimension(report.embedder, report.dimension, vectors.shape[1])
            with stage.session(db) as con, warehouse.transaction(con):
                store_vectors(con, report.embedder, ids[start : start + CHUNK], vectors)
            report.dimension = vectors.shape[1]
            report.n_embedded += len(vectors)
            bar.update(len(vectors))
    report.seconds = time.perf_counter() - t0
    with stage.session(db) as con:
        record_run(con, report)


def record_run(con: duckdb.DuckDBPyConnection, report: EmbedReport) -> None:
    """Insert the run's row (embedder, counts, throughput, device) into embedding_runs."""
    report.run_id = new_run_id()
    warehouse.execute(
        con,
        "embed_insert_run",
        {
            "run_id": report.run_id,
            "embedder": report.embedder,
            "model_path": report.model_path,
            "dimension": report.dimension,
            "n_questions": report.n_embedded,
            "batch_size": report.batch_size,
            "seconds": report.seconds,
            "load_seconds": report.load_seconds,
            "questions_per_s": report.questions_per_s,
            "device": report.device,
            "backend": report.backend,
            "code_version": code_version(),
            "created_at": utc_now(),
        },
    )
