"""Route stage (read only): question text -> the model most likely to answer it (optionally trading off cost).

    load_router(db, run_id)   one short read session: the run, its model, the model vectors, names, ids, costs
                              and active flags, as an embedllm.routing.Router (a service keeps it warm)
    load_served(db, run_id)   the same plus what `embedllm serve` answers with: the models' registry fields and
                              benchmark forecasts, the answered training questions that explain a choice
    served_version(db, run_id) the run id, vector count, last onboarding and last registry change: a service
                              reloads when it changes
    route(db, texts, ...)     load_router, embed the texts with the run's embedder (no connection open), route

Model vectors come from the warehouse's model_embeddings for the run, so models onboarded later (fitted with
the run frozen) are routed too. The utility and cost rule are embedllm/routing.py's. Routing writes nothing
and takes no run lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import torch

import warehouse
from embedllm.embedders import canonical_name
from embedllm.routing import (  # noqa: F401
    Candidate,
    Neighbours,
    RouteBatch,
    RouteChoice,
    Router,
    check_cost_weight,
    check_questions,
    normalised_costs,
    route_embeddings,
)
from embedllm.training import embedding_array, run_and_model
from tasks import stage


def read_router(
    con: duckdb.DuckDBPyConnection, run_id: str | None = None, where: str | Path = "the warehouse"
) -> Router:
    """Return the Router of run_id (default: the latest completed run) read on an open connection."""
    row, model = run_and_model(warehouse.query(con, "train_run", {"run_id": run_id}), run_id, where)
    models = warehouse.query(con, "route_models", {"run_id": row["run_id"]})
    return Router(
        run=row,
        model=model,
        vectors=torch.as_tensor(embedding_array(models["embedding"])),
        names=models["name"].to_list(),
        ids=models["model_id"].to_list(),
        costs=models["cost_per_mtok"].to_list(),
        active=models["active"].to_numpy().astype(bool),
    )


def load_router(db: str | Path, run_id: str | None = None) -> Router:
    """Return the Router of run_id (default: the latest completed run), read in one short read-only session."""
    with stage.session(db, read_only=True) as con:
        return read_router(con, run_id, db)


def route(
    db: str | Path,
    texts: list[str],
    *,
    run_id: str | None = None,
    cost_weight: float = 0.0,
    top_k: int = 3,
    embedder: str | None = None,
    q_emb: np.ndarray | None = None,
    allowed_names: list[str] | None = None,
    benchmarks: list[str | None] | None = None,
) -> list[RouteChoice]:
    """Return, per question text, the allowed active model with the highest utility and the next best (top_k in all).

    EMBEDDER, when given, must be the run's; Q_EMB skips the encoder (embeddings of TEXTS from the run's embedder);
    BENCHMARKS names each question's benchmark (None: unknown).
    """
    check_questions(texts)
    check_cost_weight(cost_weight)
    router = load_router(db, run_id)
    router.check_embedder(canonical_name(embedder) if embedder is not None else None)
    router.allowed(allowed_names)  # refuse unknown or inactive models before encoding
    router.check_benchmarks(benchmarks)
    if q_emb is None:
        q_emb = router.encode(texts)
    return router.route(q_emb, cost_weight, top_k, allowed_names, list(texts), benchmarks)


@dataclass
class Served:
    """Everything a routing service answers from, read in one session: router, models, explanations, version."""

    router: Router
    models: list[dict]  # per model of the run: registry fields and per-benchmark forecasts (serve_models)
    neighbours: Neighbours
    version: tuple  # served_version at load time


def read_version(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> tuple | None:
    """Return (run id, vectors, last onboarding, last registry change) of run_id (default: latest), None if no run."""
    rows = warehouse.query(con, "serve_version", {"run_id": run_id})
    return tuple(rows.row(0)) if rows.height else None


def served_version(db: str | Path, run_id: str | None = None) -> tuple | None:
    """Return read_version in one short read-only session (what a service polls to decide to reload)."""
    with stage.session(db, read_only=True) as con:
        return read_version(con, run_id)


def read_neighbours(con: duckdb.DuckDBPyConnection, router: Router) -> Neighbours:
    """Return the run's answered train-split questions (embedded with its embedder) and its models' labels."""
    params = {"embedder": router.embedder}
    questions = warehouse.query(con, "serve_questions", params)
    labels = warehouse.query(con, "serve_labels", {**params, "run_id": router.run_id})
    col = {q: j for j, q in enumerate(questions["question_id"].to_list())}
    row = {m: i for i, m in enumerate(router.ids)}
    matrix = np.full((len(router.ids), len(col)), -1, dtype=np.int8)
    if labels.height:
        rows = np.array([row[m] for m in labels["model_id"].to_list()])
        cols = np.array([col[q] for q in labels["question_id"].to_list()])
        matrix[rows, cols] = labels["label"].to_numpy()
    dim = router.model.config.question_dim
    return Neighbours(
        embeddings=embedding_array(questions["embedding"]) if col else np.zeros((0, dim), dtype=np.float32),
        question_ids=questions["question_id"].to_list(),
        benchmarks=questions["benchmark"].to_list(),
        prompts=questions["prompt"].to_list(),
        labels=matrix,
    )


def load_served(db: str | Path, run_id: str | None = None) -> Served:
    """Return the Served state of run_id (default: the latest completed run), read in one read-only session."""
    with stage.session(db, read_only=True) as con:
        version = read_version(con, run_id)
        router = read_router(con, version[0] if version else run_id, db)
        models = warehouse.query(con, "serve_models", {"run_id": router.run_id}).to_dicts()
        return Served(router=router, models=models, neighbours=read_neighbours(con, router), version=version)
