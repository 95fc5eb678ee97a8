"""Drift stage: re-ask the sentinel questions of every model whose revision can move; supersede a drifted model.

    check_drift(db, suite)   (a pipeline step after register and resume, before plan)
      1. sentinels: chosen once per warehouse from the suite's evaluated questions (embedllm.drift.choose_sentinels,
         spread over benchmarks), recorded in drift_sentinels and never changed afterwards;
      2. revision changes: a registry sync that changed a model's revision (models_history) is drift without a
         test: a drift_events row (reason 'revision');
      3. sentinels re-asked: every active model whose revision can move (no revision, a branch or tag name, an
         API endpoint) and that has stored labels on the sentinels is evaluated through lm-eval on those docs
         only (samples=), into a staging folder of its own that the loader never reads; the fresh answers are
         compared with the stored labels (embedllm.drift.disagreement_test) and recorded in drift_checks. The
         stored labels are never overwritten by a re-ask;
      4. a drifted model (2 or 3): in ONE transaction, a drift_events row, its labels and evaluation plan
         deleted (their loads and eval_runs stay as history and no longer count for planning or validation), so
         the plan step of the same run onboards it again and the onboard step places it in the latest training
         run, replacing its stale vector and forecasts.

lm-eval runs with no warehouse connection open; the Prefect evaluation cache is not involved (the stage calls
tasks.lm_eval_run.run_evaluation itself), so every re-ask really runs.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

import warehouse
from embedllm import registry, settings
from embedllm.common import dumps, utc_now
from embedllm.drift import (
    ALPHA,
    NOISE,
    SENTINELS,
    DriftTest,
    choose_sentinels,
    disagreement_test,
    revision_can_move,
)
from tasks import stage
from tasks.stage import StageReport

log = logging.getLogger(__name__)

SENTINELS_REASON, REVISION_REASON = "sentinels", "revision"


@dataclass
class Check:
    """One model's sentinel re-ask: the test, or why it could not be compared."""

    model: str
    model_id: int
    status: str  # compared | failed
    test: DriftTest | None = None
    error: str | None = None

    @property
    def drifted(self) -> bool:
        """Return whether the test declared drift."""
        return self.test is not None and self.test.drifted

    def text(self) -> str:
        """Return `name: 0 of 32 sentinel answers changed (...)`, `DRIFT` first when drifted."""
        if self.test is None:
            return f"{self.model}: re-ask failed: {self.error}"
        return f"{self.model}: {'DRIFT, ' if self.drifted else ''}{self.test.line()}"


@dataclass
class DriftResult:
    """What the drift stage did: the sentinel count, the checks, the events recorded, the stage report."""

    n_sentinels: int = 0
    checks: list[Check] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # model, reason, n, disagreements, p_value, labels_removed
    not_movable: list[str] = field(default_factory=list)  # pinned to a commit: not re-asked
    report: StageReport = field(default_factory=lambda: StageReport("drift"))

    def note(self) -> str:
        """Return the stage's one-line note."""
        parts = [f"{self.n_sentinels} sentinel question(s)"]
        revisions = [e for e in self.events if e["reason"] == REVISION_REASON]
        if revisions:
            parts.append(
                f"{len(revisions)} revision change(s): "
                + ", ".join(f"{e['model']} ({e['previous_revision']} -> {e['revision']})" for e in revisions)
            )
        parts.append(f"{len(self.checks)} model(s) re-asked" + (": " if self.checks else ""))
        text = "; ".join(parts) + "; ".join(c.text() for c in self.checks)
        if self.not_movable:
            text += f"; {len(self.not_movable)} pinned to a commit, not re-asked"
        return text


# ------------------------------------------------------------------------------------------------ reading


def sentinel_set(con: duckdb.DuckDBPyConnection, tasks: list[str], n: int = SENTINELS) -> pl.DataFrame:
    """Return the warehouse's sentinels, choosing and recording them first if none were chosen yet."""
    chosen = warehouse.query(con, "drift_sentinels")
    if chosen.height:
        return chosen
    candidates = warehouse.query(con, "drift_sentinel_candidates", {"tasks": tasks})
    if candidates.height == 0:
        return chosen  # a fresh warehouse: nothing evaluated yet to re-ask
    ids = choose_sentinels(candidates["question_id"].to_list(), candidates["benchmark"].to_list(), n)
    order = pl.DataFrame({"question_id": ids, "position": list(range(1, len(ids) + 1))})
    frame = (
        candidates.join(order, on="question_id")
        .sort("position")
        .with_columns(pl.lit(utc_now()).alias("chosen_at"))
    )
    with warehouse.transaction(con):
        con.register("_sentinels", frame.to_arrow())
        try:
            warehouse.execute(con, "drift_insert_sentinels")
        finally:
            con.unregister("_sentinels")
    return warehouse.query(con, "drift_sentinels")


def samples_of(stored: pl.DataFrame) -> dict[str, list[int]]:
    """Return lm-eval's samples argument {task: [doc ids]} for stored sentinel labels."""
    samples: dict[str, list[int]] = {}
    for task, doc in zip(stored["task"].to_list(), stored["doc_id"].to_list()):
        samples.setdefault(task, []).append(int(doc))
    return {t: sorted(v) for t, v in sorted(samples.items())}


# ------------------------------------------------------------------------------------------------ re-asking


def reask(job, staging: Path) -> tuple[dict[str, int], str | None]:
    """Return ({question_id: fresh label}, error) after lm-eval answers the job's docs (staging removed after)."""
    from tasks.lm_eval_run import run_evaluation
    from tasks.load import read_staging

    folder = staging / uuid.uuid4().hex[:12]
    try:
        outcome = run_evaluation(job, folder)
        if outcome.failed:
            return {}, outcome.error
        fresh: dict[str, int] = {}
        for t in outcome.tasks:
            for f in t.staging_files:
                rows = read_staging(f).rows
                fresh.update(zip(rows["question_id"].to_list(), (int(v) for v in rows["label"].to_list())))
        return fresh, None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compare(stored: pl.DataFrame, fresh: dict[str, int], noise: float, alpha: float) -> tuple[DriftTest, list]:
    """Return the drift test of the fresh answers against the stored labels, and the questions that changed."""
    both = stored.filter(pl.col("question_id").is_in(list(fresh)))
    old = both["label"].to_numpy().astype(np.int8)
    new = np.asarray([fresh[q] for q in both["question_id"].to_list()], dtype=np.int8)
    changed = [
        {"question_id": q, "stored": int(a), "fresh": int(b)}
        for q, a, b in zip(both["question_id"].to_list(), old, new)
        if a != b
    ]
    return disagreement_test(old, new, noise=noise, alpha=alpha), changed


# ------------------------------------------------------------------------------------------------ writing


def record_check(con: duckdb.DuckDBPyConnection, check: Check, details: dict) -> None:
    """Insert one drift_checks row."""
    t = check.test
    warehouse.execute(
        con,
        "drift_insert_check",
        [
            check.model_id,
            utc_now(),
            check.status,
            t.n if t else 0,
            t.disagreements if t else 0,
            t.p_value if t else None,
            check.drifted,
            check.error,
            dumps(details),
        ],
    )


def supersede(
    con: duckdb.DuckDBPyConnection,
    model_id: int,
    reason: str,
    test: DriftTest | None,
    details: dict,
    history_id: int | None = None,
) -> int:
    """Record a drift event and delete the model's labels and plan in one transaction; return labels removed."""
    with warehouse.transaction(con):
        n = int(warehouse.query(con, "drift_model_labels", {"model_id": model_id})["n"][0])
        warehouse.execute(
            con,
            "drift_insert_event",
            [
                model_id,
                utc_now(),
                reason,
                test.n if test else None,
                test.disagreements if test else None,
                test.p_value if test else None,
                test.noise if test else None,
                test.alpha if test else None,
                history_id,
                n,
                dumps(details),
            ],
        )
        warehouse.execute(con, "drift_delete_labels", {"model_id": model_id})
        warehouse.execute(con, "drift_delete_plan", {"model_id": model_id})
    return n


def revision_events(con: duckdb.DuckDBPyConnection, result: DriftResult) -> None:
    """Record a drift event (reason revision) for every registry revision change not handled yet."""
    for h in warehouse.query(con, "drift_revision_changes").to_dicts():
        details = {"previous_revision": h["previous_revision"], "revision": h["revision"]}
        n = supersede(con, int(h["model_id"]), REVISION_REASON, None, details, int(h["history_id"]))
        result.events.append(
            {"model": h["name"], "reason": REVISION_REASON, "n": None, "disagreements": None, "p_value": None}
            | details
            | {"labels_removed": n}
        )


# ------------------------------------------------------------------------------------------------ the stage


def check_drift(
    db: str | Path,
    suite: str,
    models: list[str] | None = None,
    *,
    device: str | None = None,
    n_sentinels: int = SENTINELS,
    noise: float = NOISE,
    alpha: float = ALPHA,
    wait: float = 0.0,
) -> DriftResult:
    """Return the drift checks of this run after recording revision changes, re-asks and drift events."""
    from tasks.evaluate import plan_jobs
    from tasks.onboard import suite_tasks

    tasks = suite_tasks(suite)
    result = DriftResult()
    staging = settings.staging_dir(db) / "drift"  # never read by the loader: re-asks stay out of correctness
    with stage.writing(db, "drift", wait=wait) as report:
        with stage.session(db) as con:
            revision_events(con, result)
            result.n_sentinels = sentinel_set(con, tasks, n_sentinels).height
            rows = warehouse.query(con, "drift_models", {"tasks": tasks}).to_dicts()
            wanted = {registry.find_row(rows, n)["name"] for n in models} if models else {r["name"] for r in rows}
            todo = []
            for r in rows:
                if r["name"] not in wanted or not r["n_sentinel_labels"]:
                    continue
                if not revision_can_move(r["revision"], r["base_url"]):
                    result.not_movable.append(r["name"])
                    continue
                stored = warehouse.query(con, "drift_stored_labels", {"model_id": r["model_id"], "tasks": tasks})
                (job,) = plan_jobs(con, suite, [r["name"]], None, samples_of(stored), device)
                todo.append((r, stored, job))
        for r, stored, job in todo:  # lm-eval with no connection open
            fresh, error = reask(job, staging)
            check = Check(r["name"], int(r["model_id"]), "failed" if error else "compared", error=error)
            changed: list = []
            if not error:
                check.test, changed = compare(stored, fresh, noise, alpha)
            details = {
                "revision": r["revision"],
                "backend": r["backend"],
                "asked": stored.height,
                "changed": changed,
            }
            with stage.session(db) as con:
                record_check(con, check, details)
                if check.drifted:
                    n = supersede(
                        con, check.model_id, SENTINELS_REASON, check.test, details | {"check": check.text()}
                    )
                    t = check.test
                    result.events.append(
                        {"model": check.model, "reason": SENTINELS_REASON, "n": t.n}
                        | {"disagreements": t.disagreements, "p_value": t.p_value, "labels_removed": n}
                    )
            result.checks.append(check)
            log.info("drift: %s", check.text())
        report.note = result.note()
        report.skipped = not result.checks and not result.events
    result.report = report
    return result
