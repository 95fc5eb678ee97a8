"""Onboard stage: place a new model in a trained run from a few evaluated questions, without retraining.

read (the run's checkpoint, questions, existing labels) -> choose questions -> evaluate the model on just those
(the evaluate stage's entry point: lm-eval with no connection open) -> fit with the run frozen -> write its
vector and forecasts in one transaction. The maths (the fit, the prior, the question choice) is
embedllm/onboarding.py; this module only reads, calls it and writes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

import warehouse
from embedllm import registry
from embedllm.common import code_version, dumps, utc_now
from embedllm.errors import ConfigError, EmbedLLMError
from embedllm.model import load_checkpoint
from embedllm.onboarding import (
    DEFAULT_QUESTIONS,
    INTERVAL,
    N_BOOTSTRAP,
    Placement,
    RunView,
    choose_for_view,
    dense_labels,
    forecast_frame,
    place,
    samples_for,
)
from embedllm.training import embedding_array
from tasks import stage
from tasks.stage import StageReport

log = logging.getLogger(__name__)

SOURCE = "onboarded"


# ================================================================================================ reading


def load_run_view(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> RunView:
    """Return the RunView of run_id (default: the latest completed run) from the warehouse and its checkpoint."""
    rows = warehouse.query(con, "train_run", {"run_id": run_id})
    if rows.height == 0:
        what = f"training run {run_id!r}" if run_id else "completed training run"
        raise EmbedLLMError(f"no {what} in the warehouse: run `embedllm train` first")
    row = rows.row(0, named=True)
    model = load_checkpoint(row["checkpoint_path"])
    questions = warehouse.query(con, "onboard_questions", {"embedder": row["embedder"]})
    if questions.height == 0:
        raise EmbedLLMError(f"no question has a {row['embedder']} embedding: run `embedllm embed` first")
    model_ids = [int(m) for m in model.meta.get("model_ids", [])]
    labels = warehouse.query(con, "onboard_existing_labels", {"embedder": row["embedder"], "model_ids": model_ids})
    qids = questions["question_id"].to_list()
    return RunView(
        run_id=row["run_id"],
        embedder=row["embedder"],
        model=model,
        model_ids=model_ids,
        question_ids=qids,
        benchmark=questions["benchmark"].to_numpy().astype(str),
        task=questions["task"].to_numpy().astype(str),
        doc_id=questions["doc_id"].fill_null(-1).to_numpy().astype(np.int64),
        q_emb=embedding_array(questions["embedding"]),
        existing_labels=dense_labels(qids, model_ids, labels),
    )


def read_view(db: str | Path, run_id: str | None = None) -> RunView:
    """Return the RunView of a run, read in one short session."""
    with stage.session(db) as con:
        return load_run_view(con, run_id)


def select_questions(
    source: str | Path | RunView,
    run_id: str | None = None,
    n: int = DEFAULT_QUESTIONS,
    seed: int = 0,
    *,
    tasks: list[str] | None = None,
) -> list[str]:
    """Return the ids of the n questions that tell most about a new model (from a warehouse path or a RunView)."""
    view = source if isinstance(source, RunView) else read_view(source, run_id)
    return choose_for_view(view, n, seed, tasks=tasks)


def model_row(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    """Return the models row of NAME (a local path matched after resolving it); ConfigError naming close names."""
    rows = warehouse.query(con, "registry_list_models").to_dicts()
    return registry.find_row(rows, name, where="in the warehouse")


# ================================================================================================ results


@dataclass
class OnboardResult:
    """A model onboarded into a run: its forecasts (with intervals), what it cost, what it saved."""

    run_id: str
    model: str
    model_id: int
    question_ids: list[str]  # the questions whose answers were fitted
    forecasts: pl.DataFrame  # benchmark, predicted_accuracy, predicted_low, predicted_high,
    # observed_accuracy, n_observed, n_benchmark_questions
    embedding: np.ndarray
    offsets: dict[str, float]
    n_bootstrap: int
    fit_seconds: float
    suite: str | None = None
    suite_questions: int | None = None
    eval_seconds: float | None = None
    missing: list[str] = field(default_factory=list)  # chosen questions without a label (not fitted)
    report: StageReport | None = None

    @property
    def n_questions(self) -> int:
        """Return the number of answers the fit used."""
        return len(self.question_ids)

    @property
    def inference_saved(self) -> float | None:
        """Return the fraction of a full evaluation's questions that onboarding did not evaluate."""
        if not self.suite_questions:
            return None
        return 1.0 - self.n_questions / self.suite_questions

    def summary(self) -> str:
        """Return one line: model, run, questions used vs a full evaluation."""
        text = f"{self.model} onboarded into run {self.run_id} from {self.n_questions} answers"
        if self.suite_questions:
            text += (
                f" ({self.n_questions} of {self.suite_questions} questions of suite {self.suite}: "
                f"{100 * self.inference_saved:.1f} % of the inference saved)"
            )
        return text


# ================================================================================================ writing


def _vector(values: np.ndarray) -> pl.Series:
    """Return one float32 vector as a list-typed polars Series of one row."""
    return pl.Series([values.astype(np.float32)], dtype=pl.List(pl.Float32))


def write_onboarded(
    con: duckdb.DuckDBPyConnection, view: RunView, result: OnboardResult, placed: Placement, details: dict
) -> None:
    """Write the onboarded model's vector, correctness and benchmark forecasts and its onboarded_models row."""
    key = {"run_id": view.run_id, "model_id": result.model_id}
    model_id = pl.Series([result.model_id], dtype=pl.Int32)
    bench = result.forecasts.drop("n_benchmark_questions").with_columns(
        pl.lit(view.run_id).alias("run_id"),
        pl.lit(result.model_id, pl.Int32).alias("model_id"),
        pl.lit(SOURCE).alias("source"),
    )
    vector = pl.DataFrame(
        {"run_id": [view.run_id], "model_id": model_id, "embedding": _vector(result.embedding), "source": [SOURCE]}
    )
    row = pl.DataFrame(
        {
            "run_id": [view.run_id],
            "model_id": model_id,
            "created_at": [utc_now()],
            "n_questions": [result.n_questions],
            "question_ids": [result.question_ids],
            "embedding": _vector(result.embedding),
            "benchmark_offsets": [dumps(result.offsets)],
            "n_bootstrap": [result.n_bootstrap],
            "suite": [result.suite],
            "suite_questions": [result.suite_questions],
            "eval_seconds": [result.eval_seconds],
            "fit_seconds": [result.fit_seconds],
            "details": [dumps(details)],
        },
        schema_overrides={"suite": pl.String, "suite_questions": pl.Int32, "eval_seconds": pl.Float64},
    )
    n = len(view.question_ids)
    forecasts = pa.table(
        {
            "run_id": pa.array([view.run_id] * n),
            "model_id": pa.array(np.full(n, result.model_id, dtype=np.int32)),
            "question_id": pa.array(view.question_ids, pa.string()),
            "p_correct": pa.array(placed.p_correct.astype(np.float32)),
            "source": pa.array([SOURCE] * n),
        }
    )
    with warehouse.transaction(con):
        warehouse.execute(con, "onboard_delete_forecasts", key)
        warehouse.execute(con, "onboard_delete_benchmark_forecasts", key)
        con.register("_forecasts", forecasts)
        try:
            warehouse.execute(con, "forecast_insert_correctness")
        finally:
            con.unregister("_forecasts")
        warehouse.upsert(con, "benchmark_forecasts", bench)
        warehouse.upsert(con, "model_embeddings", vector)
        warehouse.upsert(con, "onboarded_models", row)


# ================================================================================================ the stage


def _refuse_trained(name: str, model_id: int, view: RunView) -> None:
    """Raise ConfigError when the run was trained on the model (it has a trained embedding already)."""
    if model_id in view.model_ids:
        raise ConfigError(
            f"model {name!r} is part of training run {view.run_id}: it has a trained embedding "
            "already; onboarding is for models the run has not seen"
        )


def _fit(
    view: RunView,
    name: str,
    model_id: int,
    question_ids: list[str],
    have: dict[str, int],
    *,
    n_bootstrap: int,
    seed: int,
) -> tuple[OnboardResult, Placement]:
    """Return the model placed in the run from its labels HAVE on question_ids (no connection needed)."""
    known = set(view.question_ids)
    usable = [q for q in question_ids if q in have and q in known]
    missing = [q for q in question_ids if q not in have or q not in known]
    if not usable:
        raise EmbedLLMError(
            f"model {name!r} has no labels on the {len(question_ids)} chosen questions "
            f"(embedded with {view.embedder}): evaluate it on them first (`embedllm onboard` does)"
        )
    if missing:
        log.warning(
            "%d of %d chosen questions have no label for %s or no embedding; fitting on %d",
            len(missing),
            len(question_ids),
            name,
            len(usable),
        )
    pos = view.positions(usable)
    y = np.asarray([have[q] for q in usable], dtype=np.float64)
    placed = place(view.basis, pos, y, n_bootstrap=n_bootstrap, seed=seed)
    return OnboardResult(
        run_id=view.run_id,
        model=name,
        model_id=model_id,
        question_ids=usable,
        forecasts=forecast_frame(view, placed, pos, y),
        embedding=placed.embedding,
        offsets=placed.offsets,
        n_bootstrap=n_bootstrap,
        fit_seconds=placed.seconds,
        missing=missing,
    ), placed


def onboard_from_labels(
    db: str | Path,
    model_name: str,
    question_ids: list[str],
    run_id: str | None = None,
    *,
    view: RunView | None = None,
    write: bool = True,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    suite: str | None = None,
    eval_seconds: float | None = None,
    replace_trained: bool = False,
    wait: float = 0.0,
) -> OnboardResult:
    """Return the model placed in the run from its labels (already in the warehouse) on question_ids; write them.

    REPLACE_TRAINED places a model the run was trained on anyway (its trained vector went stale: a drift event).
    """
    with stage.writing(db, "onboard", wait=wait) as report:
        with stage.session(db) as con:
            view = view or load_run_view(con, run_id)
            row = model_row(con, model_name)
            labels = warehouse.query(
                con, "onboard_model_labels", {"model": row["name"], "question_ids": list(question_ids)}
            )
            size = warehouse.query(con, "onboard_suite_size", {"tasks": suite_tasks(suite)}) if suite else None
        if not replace_trained:
            _refuse_trained(row["name"], row["model_id"], view)
        have = dict(zip(labels["question_id"].to_list(), labels["label"].to_list()))
        result, placed = _fit(
            view, row["name"], int(row["model_id"]), list(question_ids), have, n_bootstrap=n_bootstrap, seed=seed
        )
        result.suite, result.eval_seconds = suite, eval_seconds
        result.suite_questions = int(size["n_questions"][0]) if size is not None else None
        if write:
            details = {
                "seed": seed,
                "interval": list(INTERVAL),
                "prior_strength": view.prior_strength,
                "n_missing": len(result.missing),
                "selection": "greedy benchmark-accuracy design",
                "code_version": code_version(),
            }
            with stage.session(db) as con:
                write_onboarded(con, view, result, placed, details)
        report.note = result.summary()
    result.report = report
    return result


def record_onboarding_plan(
    con: duckdb.DuckDBPyConnection, row: dict, question_ids: list[str], run_id: str, n: int
) -> None:
    """Record the model's chosen questions in evaluation_plan (reason onboard), replacing an earlier choice."""
    from embedllm.policy import ONBOARD, Policy
    from tasks.plan import Decision, record_plan

    record_plan(con, [Decision(row["name"], int(row["model_id"]), ONBOARD, Policy(n), question_ids, run_id)])


def suite_tasks(suite: str) -> list[str]:
    """Return the lm-eval task names a suite evaluates (its tasks and their leaf subtasks)."""
    from embedllm.suites import load_suite, resolve_tasks

    st = load_suite(suite)
    infos = resolve_tasks(st)
    return sorted({t for t in st.task_names} | {leaf for info in infos.values() for leaf in info.leaves})


def onboard(
    db: str | Path,
    name: str,
    questions: int = DEFAULT_QUESTIONS,
    *,
    run_id: str | None = None,
    suite: str = "demo",
    seed: int = 0,
    device: str | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
    wait: float = 0.0,
    progress: bool = False,
) -> OnboardResult:
    """Return the registered model placed in the run after evaluating it with lm-eval on n chosen questions only."""
    from tasks.evaluate import evaluate  # the evaluate stage's entry point (lm-eval runs with no connection open)

    with stage.writing(db, "onboard", wait=wait) as report:
        with stage.session(db) as con:
            view = load_run_view(con, run_id)
            row = model_row(con, name)
        _refuse_trained(row["name"], row["model_id"], view)
        chosen = choose_for_view(view, questions, seed, tasks=suite_tasks(suite))
        with stage.session(db) as con:  # the plan first: validation checks the model against these questions
            record_onboarding_plan(con, row, chosen, view.run_id, questions)
        t0 = time.perf_counter()
        evaluated = evaluate(
            db, suite, models=[row["name"]], samples=samples_for(view, chosen), progress=progress, device=device
        )
        failed = [t for o in evaluated.outcomes for t in o.failed]
        if failed:
            raise EmbedLLMError(
                f"evaluating {row['name']} on the chosen questions failed: task {failed[0].task}: "
                f"{failed[0].error}"
            )
        result = onboard_from_labels(
            db,
            row["name"],
            chosen,
            view=view,
            n_bootstrap=n_bootstrap,
            seed=seed,
            suite=suite,
            eval_seconds=time.perf_counter() - t0,
        )
        report.note = result.summary()
    result.report = report
    return result


# ================================================================================================ in a pipeline run


@dataclass
class PlannedOnboarding:
    """What the pipeline's onboard step did: the models it placed (with their forecasts) and the stage report."""

    run_id: str | None
    results: list[OnboardResult] = field(default_factory=list)
    report: StageReport = field(default_factory=lambda: StageReport("onboard"))


def onboard_planned(
    db: str | Path,
    *,
    suite: str | None = None,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    wait: float = 0.0,
) -> PlannedOnboarding:
    """Place every model whose onboarding plan has labels in the latest completed run; return what was placed.

    The plan step (tasks/plan.py) chose the questions and recorded them in evaluation_plan; evaluation and the
    load brought the labels. A model already placed in, or trained by, the latest run is left alone, unless a drift
    event came after (tasks/drift.py): then it is placed again.
    """
    with stage.writing(db, "onboard", wait=wait) as report:
        with stage.session(db) as con:
            latest = warehouse.query(con, "train_run", {"run_id": None})
            run_id = latest["run_id"][0] if latest.height else None
            pending = warehouse.query(con, "onboard_pending", {"run_id": run_id}).to_dicts() if run_id else []
        done = PlannedOnboarding(run_id=run_id, report=report)
        if pending:
            view = read_view(db, run_id)
            for row in pending:
                done.results.append(
                    onboard_from_labels(
                        db,
                        row["model"],
                        row["question_ids"],
                        view=view,
                        n_bootstrap=n_bootstrap,
                        seed=seed,
                        suite=suite,
                        replace_trained=True,  # pending with a trained vector = drifted since (onboard_pending)
                    )
                )
        report.skipped = not done.results
        report.note = (
            "; ".join(r.summary() for r in done.results)
            if done.results
            else "no new model to onboard"
            + ("" if run_id else " (no completed training run yet: new models are evaluated fully)")
        )
    done.report = report
    return done
