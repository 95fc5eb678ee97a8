"""Route stage: question text -> the model most likely to answer it (optionally trading off cost).

The question is embedded with the embedder the run was trained with; every active model of the run is scored
at once (one projection per question, one (Q, d) @ (d, M) product). Model vectors come from the warehouse's
model_embeddings for the run, so models onboarded later (fitted with the run frozen) are routed too.

Utility of model m for a question: p_m - cost_weight * cost_m / max_cost, where cost_m is the model's registered
cost_per_mtok and max_cost the largest registered cost among the candidate models (so the cost term lies in
[0, cost_weight]). Models without a registered cost count as free (cost 0), e.g. local models. With
cost_weight = 0 the router picks the highest probability of a correct answer, as the paper's router does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import torch

import warehouse
from embedllm.errors import EmbedLLMError
from embedllm.model import EmbedderMismatch, EmbedLLM
from embedllm.embedders import canonical_name
from tasks.train import cpu_threads, embedding_array, run_model


@dataclass
class Candidate:
    """One model's standing for a question."""

    model: str
    model_id: int
    p_correct: float
    utility: float
    cost_per_mtok: float | None = None


@dataclass
class RouteChoice:
    """The routing decision for one question: the chosen model first, then the next best by utility."""

    question: str
    ranked: list[Candidate] = field(default_factory=list)

    @property
    def model(self) -> str:
        """Return the chosen model's name."""
        return self.ranked[0].model

    @property
    def p_correct(self) -> float:
        """Return the chosen model's P(correct)."""
        return self.ranked[0].p_correct

    @property
    def alternatives(self) -> list[Candidate]:
        """Return the runners-up (top_k - 1 of them)."""
        return self.ranked[1:]

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (what `embedllm route --file` writes per line)."""
        return {"question": self.question, "model": self.model, "p_correct": self.p_correct,
                "alternatives": [vars(c) for c in self.alternatives], "ranked": [vars(c) for c in self.ranked]}


@dataclass
class RouteBatch:
    """Vectorised routing of Q questions over M models."""

    p: np.ndarray          # (Q, M) P(correct)
    utility: np.ndarray    # (Q, M) p - cost_weight * normalised cost; -inf for models that may not be chosen
    chosen: np.ndarray     # (Q,) index of the chosen model

    def top(self, k: int) -> np.ndarray:
        """Return (Q, k) model indices by decreasing utility."""
        k = min(k, self.utility.shape[1])
        part = np.argpartition(-self.utility, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(-self.utility, part, axis=1).argsort(axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)


def normalised_costs(costs: np.ndarray | list[float | None] | None, n_models: int) -> np.ndarray:
    """Return cost / max registered cost per model (unknown or missing costs count as 0)."""
    if costs is None:
        return np.zeros(n_models, dtype=np.float32)
    c = np.array([np.nan if v is None else v for v in costs], dtype=np.float64)
    c = np.where(np.isfinite(c) & (c > 0), c, 0.0)
    top = c.max() if c.size else 0.0
    return (c / top if top > 0 else c).astype(np.float32)


@torch.no_grad()
def route_embeddings(model: EmbedLLM, q_emb: np.ndarray | torch.Tensor, costs: np.ndarray | None = None,
                     cost_weight: float = 0.0, *, model_vectors: torch.Tensor | None = None,
                     allowed: np.ndarray | None = None) -> RouteBatch:
    """Return the routing of questions q_emb (Q, D) over the model's (or given) vectors; costs already normalised."""
    model.eval()
    x = torch.as_tensor(np.asarray(q_emb, dtype=np.float32)) if isinstance(q_emb, np.ndarray) else q_emb
    A, c = model.collapsed(model_vectors)                                        # (D, M), (M,)
    p = torch.sigmoid(torch.addmm(c, x, A)).numpy()                              # (Q, M)
    utility = p - cost_weight * costs[None, :] if costs is not None and cost_weight else p.copy()
    if allowed is not None:
        utility[:, ~allowed] = -np.inf
    return RouteBatch(p=p, utility=utility, chosen=utility.argmax(axis=1))


def encode_questions(texts: list[str], embedder: str) -> np.ndarray:
    """Return (len(texts), D) float32 L2-normalised embeddings of texts from EMBEDDER (the embed stage's encoder)."""
    from embedllm.embedders import encode

    return np.asarray(encode(list(texts), embedder), dtype=np.float32)


def route(con: duckdb.DuckDBPyConnection, texts: list[str], run_id: str | None = None, cost_weight: float = 0.0,
          top_k: int = 3, *, embedder: str | None = None, q_emb: np.ndarray | None = None) -> list[RouteChoice]:
    """Return, per question text, the active model with the highest utility and the next best (top_k in all)."""
    row, model = run_model(con, run_id)
    if embedder is not None and canonical_name(embedder) != row["embedder"]:
        raise EmbedderMismatch(f"run {row['run_id']} was trained on {row['embedder']} question embeddings, not "
                               f"{embedder}: route with that embedder or train a run on {embedder}")
    if cost_weight < 0:
        raise EmbedLLMError(f"--cost-weight must be >= 0, got {cost_weight}")
    models = warehouse.query(con, "route_models", {"run_id": row["run_id"]})
    active = models["active"].to_numpy().astype(bool)
    if not active.any():
        raise EmbedLLMError(f"run {row['run_id']} has no active model to route to: `embedllm models list` shows them")
    if q_emb is None:
        q_emb = encode_questions(texts, row["embedder"])
    vectors = torch.as_tensor(embedding_array(models["embedding"]))
    costs = models["cost_per_mtok"].to_list()
    norm = normalised_costs([c if a else None for c, a in zip(costs, active)], len(costs))
    with cpu_threads(torch.device("cpu")):
        batch = route_embeddings(model, q_emb, norm, cost_weight, model_vectors=vectors, allowed=active)
    names, ids = models["name"].to_list(), models["model_id"].to_list()
    top = batch.top(max(1, min(top_k, int(active.sum()))))
    return [RouteChoice(question=text, ranked=[
        Candidate(model=names[j], model_id=ids[j], p_correct=float(batch.p[i, j]), utility=float(batch.utility[i, j]),
                  cost_per_mtok=costs[j]) for j in top[i]]) for i, text in enumerate(texts)]
