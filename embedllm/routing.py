"""Routing on arrays: question embeddings -> the model most likely to answer each one (optionally trading off cost).

Every candidate model is scored at once: the model is linear in the question embedding, so it collapses to one
(D, M) matrix and routing Q questions is one (Q, D) @ (D, M) product (see EmbedLLM.collapsed).

Utility of model m for a question: p_m - cost_weight * cost_m / max_cost, where cost_m is the model's registered
cost_per_mtok and max_cost the largest registered cost among the candidate models (so the cost term lies in
[0, cost_weight]). Models without a registered cost count as free (cost 0), e.g. local models. With
cost_weight = 0 the router picks the highest probability of a correct answer, as the paper's router does.

A run trained with benchmark input (the default preset) routes a question of unknown benchmark with its "unknown"
row; a question may name its benchmark (one the run was trained on), which moves only the constant term c.

`Router` holds everything routing needs, loaded once (tasks/route.py `load_router` reads it from the
warehouse): the run, its model, the model vectors, names, ids, costs and active flags. A long-lived service
keeps one warm and calls `route` or `route_texts` per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from embedllm.common import did_you_mean
from embedllm.errors import InputError, UnknownModel
from embedllm.model import EmbedderMismatch, EmbedLLM


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
        return {
            "question": self.question,
            "model": self.model,
            "p_correct": self.p_correct,
            "alternatives": [vars(c) for c in self.alternatives],
            "ranked": [vars(c) for c in self.ranked],
        }


@dataclass
class RouteBatch:
    """Vectorised routing of Q questions over M models."""

    p: np.ndarray  # (Q, M) P(correct)
    utility: np.ndarray  # (Q, M) p - cost_weight * normalised cost; -inf for models that may not be chosen
    chosen: np.ndarray  # (Q,) index of the chosen model

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
def route_collapsed(
    A: torch.Tensor,
    c: torch.Tensor,
    q_emb: np.ndarray | torch.Tensor,
    costs: np.ndarray | None = None,
    cost_weight: float = 0.0,
    allowed: np.ndarray | None = None,
) -> RouteBatch:
    """Return the routing of q_emb (Q, D) given the collapsed model A (D, M), c (M,) or (Q, M); costs normalised."""
    x = torch.as_tensor(np.asarray(q_emb, dtype=np.float32)) if isinstance(q_emb, np.ndarray) else q_emb
    p = torch.sigmoid(torch.addmm(c, x, A)).numpy()  # (Q, M)
    utility = p - cost_weight * costs[None, :] if costs is not None and cost_weight else p.copy()
    if allowed is not None:
        utility[:, ~allowed] = -np.inf
    return RouteBatch(p=p, utility=utility, chosen=utility.argmax(axis=1))


@torch.no_grad()
def route_embeddings(
    model: EmbedLLM,
    q_emb: np.ndarray | torch.Tensor,
    costs: np.ndarray | None = None,
    cost_weight: float = 0.0,
    *,
    model_vectors: torch.Tensor | None = None,
    allowed: np.ndarray | None = None,
) -> RouteBatch:
    """Return the routing of questions q_emb (Q, D) over the model's (or given) vectors; costs already normalised."""
    model.eval()
    A, c = model.collapsed(model_vectors)  # (D, M), (M,)
    return route_collapsed(A, c, q_emb, costs, cost_weight, allowed)


def check_questions(texts: list[str]) -> list[str]:
    """Return TEXTS if every question has some text; raise InputError naming the first empty one."""
    if not texts:
        raise InputError("no question to route: give the text of at least one question")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            which = "the question" if len(texts) == 1 else f"question {i + 1} of {len(texts)}"
            raise InputError(f"{which} is empty or blank: give the text to route")
    return texts


def check_cost_weight(cost_weight: float) -> float:
    """Return COST_WEIGHT if it is >= 0; raise InputError otherwise."""
    if cost_weight < 0:
        raise InputError(f"--cost-weight must be >= 0, got {cost_weight}")
    return cost_weight


def ranked_choices(
    batch: RouteBatch, k: int, texts: list[str], names: list[str], ids: list[int], costs: list[float | None]
) -> list[RouteChoice]:
    """Return one RouteChoice per question: its top K models by utility, chosen first."""
    top = batch.top(k)
    return [
        RouteChoice(
            question=text,
            ranked=[
                Candidate(
                    model=names[j],
                    model_id=ids[j],
                    p_correct=float(batch.p[i, j]),
                    utility=float(batch.utility[i, j]),
                    cost_per_mtok=costs[j],
                )
                for j in top[i]
            ],
        )
        for i, text in enumerate(texts)
    ]


@dataclass
class Router:
    """Everything routing needs for one training run, loaded once: model, vectors, names, ids, costs, flags."""

    run: dict  # the training_runs row (run_id, embedder, ...)
    model: EmbedLLM
    vectors: torch.Tensor  # (M, d) model vectors of the run (trained and onboarded)
    names: list[str]
    ids: list[int]
    costs: list[float | None]  # cost_per_mtok per model (None = not registered)
    active: np.ndarray  # (M,) bool
    _collapsed: tuple = field(init=False, repr=False)
    _c_rows: torch.Tensor | None = field(init=False, repr=False)  # (1 + benchmarks, M): c per benchmark-shift row

    def __post_init__(self) -> None:
        self.model.eval()
        with torch.no_grad():
            self._collapsed = self.model.collapsed(self.vectors)  # (D, M), (M,)
            shift = self.model.benchmark_shift
            rows = None if shift is None else torch.arange(shift.num_embeddings, device=shift.weight.device)
            self._c_rows = None if rows is None else self.model.collapsed(self.vectors, rows)[1]

    @property
    def benchmarks(self) -> list[str]:
        """Return the benchmarks a question may name (those the run was trained with; [] without benchmark input)."""
        return list(self.model.config.benchmarks) if self._c_rows is not None else []

    def check_benchmarks(self, benchmarks: list[str | None] | None) -> None:
        """Raise InputError when a named benchmark is not one of the run's (None entries mean unknown)."""
        named = sorted({b for b in benchmarks or [] if b is not None})
        if named and self._c_rows is None:
            raise InputError(
                f"run {self.run_id} was trained without benchmark input (preset "
                f"{self.model.meta.get('preset', '?')}): route without a benchmark"
            )
        known = set(self.benchmarks)
        for name in named:
            if name not in known:
                raise InputError(
                    f"unknown benchmark {name!r} for run {self.run_id}{did_you_mean(name, self.benchmarks)} "
                    f"(known: {', '.join(self.benchmarks)}); leave it out for a question of another kind"
                )

    def constants(self, n: int, benchmarks: list[str | None] | None) -> torch.Tensor:
        """Return c: (M,) for questions of unknown benchmark, else (n, M) with each named benchmark's row."""
        self.check_benchmarks(benchmarks)
        if not benchmarks or all(b is None for b in benchmarks):
            return self._collapsed[1]
        if len(benchmarks) != n:
            raise InputError(f"{len(benchmarks)} benchmarks for {n} questions: give one per question (or none)")
        return self._c_rows[self.model.benchmark_codes(np.array([b or "" for b in benchmarks], dtype=object))]

    @property
    def run_id(self) -> str:
        """Return the training run's id."""
        return self.run["run_id"]

    @property
    def embedder(self) -> str:
        """Return the embedder the run was trained on (questions must be embedded with it)."""
        return self.run["embedder"]

    def check_embedder(self, embedder: str | None) -> None:
        """Raise EmbedderMismatch when EMBEDDER (a canonical name) is not the run's embedder."""
        if embedder is not None and embedder != self.embedder:
            raise EmbedderMismatch(
                f"run {self.run_id} was trained on {self.embedder} question embeddings, not "
                f"{embedder}: route with that embedder or train a run on {embedder}"
            )

    def allowed(self, names: list[str] | None = None) -> np.ndarray:
        """Return the (M,) mask of models that may be chosen: active ones, restricted to NAMES when given."""
        mask = self.active.copy()
        if names is not None:
            known = set(self.names)
            for name in names:
                if name not in known:
                    raise UnknownModel(
                        f"unknown model {name!r} for run {self.run_id}{did_you_mean(name, self.names)}"
                    )
            mask &= np.isin(np.asarray(self.names, dtype=object), list(names))
        if not mask.any():
            which = f" among {', '.join(names)}" if names is not None else ""
            raise InputError(
                f"run {self.run_id} has no active model to route to{which}: `embedllm models list` shows them"
            )
        return mask

    def route(
        self,
        q_emb: np.ndarray,
        cost_weight: float = 0.0,
        top_k: int = 3,
        allowed_names: list[str] | None = None,
        questions: list[str] | None = None,
        benchmarks: list[str | None] | None = None,
    ) -> list[RouteChoice]:
        """Return, per question embedding (Q, D), the allowed model with the highest utility and the next best.

        BENCHMARKS names each question's benchmark (None: unknown, as for any free-text question).
        """
        check_cost_weight(cost_weight)
        mask = self.allowed(allowed_names)
        c = self.constants(len(q_emb), benchmarks)
        norm = normalised_costs([c if a else None for c, a in zip(self.costs, mask)], len(self.costs))
        from embedllm.training import cpu_threads

        with cpu_threads(torch.device("cpu")):
            batch = route_collapsed(self._collapsed[0], c, q_emb, norm, cost_weight, mask)
        texts = questions if questions is not None else [""] * len(batch.chosen)
        return ranked_choices(batch, max(1, min(top_k, int(mask.sum()))), texts, self.names, self.ids, self.costs)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return (len(texts), D) float32 L2-normalised embeddings of TEXTS from the run's embedder."""
        from embedllm.embedders import encode

        return np.asarray(encode(list(check_questions(texts)), self.embedder), dtype=np.float32)

    def route_texts(
        self,
        texts: list[str],
        cost_weight: float = 0.0,
        top_k: int = 3,
        allowed_names: list[str] | None = None,
        benchmarks: list[str | None] | None = None,
    ) -> list[RouteChoice]:
        """Return the routing of question TEXTS (embedded with the run's embedder); empty questions are refused."""
        check_cost_weight(cost_weight)
        self.allowed(allowed_names)  # refuse bad names before paying for the encoder
        self.check_benchmarks(benchmarks)
        return self.route(self.encode(texts), cost_weight, top_k, allowed_names, list(texts), benchmarks)


# ================================================================================================ explanations


@dataclass
class Neighbours:
    """Answered training questions to explain a routing decision with: the nearest ones the chosen model answered.

    embeddings (N, D) are the questions' vectors from the run's embedder (L2-normalised, so a dot product is the
    cosine); labels (M, N) are the observed labels of the router's M models (-1 = not answered).
    """

    embeddings: np.ndarray  # (N, D) float32
    question_ids: list[str]
    benchmarks: list[str]
    prompts: list[str]
    labels: np.ndarray  # (M, N) int8, -1 where the model has no label

    def explain(self, q_emb: np.ndarray, chosen: list[int], k: int = 3) -> list[dict]:
        """Return per question (Q, D) the K nearest questions model CHOSEN[i] answered, and how it did on them."""
        if not len(self.question_ids) or k <= 0:
            return [{"nearest": [], "answered": 0, "correct": 0} for _ in chosen]
        sims = np.asarray(q_emb, dtype=np.float32) @ self.embeddings.T  # (Q, N)
        out = []
        for i, m in enumerate(chosen):
            row = np.where(self.labels[m] >= 0, sims[i], -np.inf)
            n = int(min(k, np.isfinite(row).sum()))
            top = np.argpartition(-row, n - 1)[:n] if n else np.array([], dtype=int)
            top = top[np.argsort(-row[top], kind="stable")]
            nearest = [
                {
                    "question_id": self.question_ids[j],
                    "benchmark": self.benchmarks[j],
                    "prompt": self.prompts[j],
                    "similarity": round(float(row[j]), 4),
                    "correct": bool(self.labels[m, j]),
                }
                for j in top
            ]
            out.append({"nearest": nearest, "answered": n, "correct": int(sum(q["correct"] for q in nearest))})
        return out


# ================================================================================================ cost sweeps


@dataclass
class RoutingCurve:
    """Routing results over a sweep of cost weights, with the single-best and oracle references."""

    weights: np.ndarray
    accuracy: np.ndarray  # router accuracy per weight
    cost: np.ndarray  # router mean normalised cost per weight
    single_best_accuracy: float
    single_best_cost: float
    single_best_model: int  # row index into the models
    oracle_accuracy: float
    oracle_cost: float  # mean cost of the cheapest correct model (cheapest evaluated when none is)
    n_questions: int


COST_WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 3)  # cost weights w swept by the report's routing plot


def routing_curve(
    p: np.ndarray, y: np.ndarray, mask: np.ndarray, cost: np.ndarray, weights: np.ndarray = COST_WEIGHTS
) -> RoutingCurve:
    """Return router accuracy and cost per weight (utility p - w*cost over the evaluated models) and references.

    P, Y and MASK are models x questions; the router chooses per question among the models MASK marks.
    """
    utility_base = np.where(mask, p, -np.inf)
    cols = np.arange(p.shape[1])
    acc, spent = np.zeros(len(weights)), np.zeros(len(weights))
    for i, w in enumerate(weights):
        choice = np.argmax(utility_base - w * cost[:, None], axis=0)
        acc[i] = y[choice, cols].mean()
        spent[i] = cost[choice].mean()
    per_model = np.where(mask.sum(1) > 0, (y * mask).sum(1) / np.maximum(mask.sum(1), 1), -1.0)
    best = int(np.argmax(per_model))
    correct = (y > 0) & mask
    solved = correct.any(axis=0)
    cheapest_correct = np.where(correct, cost[:, None], np.inf).min(axis=0)
    cheapest_any = np.where(mask, cost[:, None], np.inf).min(axis=0)
    return RoutingCurve(
        weights=np.asarray(weights),
        accuracy=acc,
        cost=spent,
        single_best_accuracy=float(per_model[best]),
        single_best_cost=float(cost[best]),
        single_best_model=best,
        oracle_accuracy=float(solved.mean()),
        oracle_cost=float(np.where(solved, cheapest_correct, cheapest_any).mean()),
        n_questions=p.shape[1],
    )
