"""Prefect tasks around the stage functions in tasks/: one short DuckDB session per step, a report per step.

Rules kept here, in one place:
- Each step opens its own short-lived warehouse session (warehouse.session), so no stage holds the DuckDB
  file while another runs, and an `embedllm sql` in another shell only waits seconds.
- Retries only for I/O that can fail transiently: the DuckDB file briefly held by another process, a
  connection or timeout error. A deterministic error (bad data, a failed expectation, a broken model) fails
  at once and is never retried.
- Per-model evaluation is cached by EvalJob.cache_key (model, revision, tasks, task versions) plus the
  warehouse it feeds, so a rerun (or a rerun after a crash) evaluates nothing twice. Evaluation only writes
  staging Parquet; the load step is the one writer (one transaction per model x task result).
- Every step reports rows added per table and seconds; the flows publish those as artifacts.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

import warehouse
from embedllm import settings
from embedllm.errors import WarehouseLocked
from embedllm.locking import RunLocked
from embedllm.policy import Policy
from flows import reporting
from flows.reporting import StageReport

DUCKDB_WAIT_SECONDS = 60.0  # how long a step waits for the DuckDB file held by another process
EVAL_CACHE_DAYS = 30  # how long a cached per-model evaluation counts


# ------------------------------------------------------------------------------------------------ policies


def is_transient(exc: BaseException | None) -> bool:
    """Return whether an exception is I/O that may succeed on a retry (never a deterministic error)."""
    if isinstance(exc, RunLocked):
        return False  # another pipeline run: waiting is the lock's job, not a retry's
    return isinstance(exc, (WarehouseLocked, ConnectionError, TimeoutError))


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry only when the failure is transient I/O."""
    try:
        exc = state.result(raise_on_failure=False)
    except BaseException as err:  # the state could not even be read: do not retry blindly
        exc = err
    return is_transient(exc if isinstance(exc, BaseException) else None)


IO_RETRIES: dict[str, Any] = dict(
    retries=2, retry_delay_seconds=[5, 20], retry_condition_fn=retry_transient, cache_policy=NO_CACHE
)


def eval_cache_key(context, parameters: dict[str, Any]) -> str:
    """Return the cache key of one model's evaluation: its job key (model, revision, tasks, versions) + warehouse."""
    job, scope = parameters["job"], parameters["scope"]
    return "eval-" + hashlib.sha256(f"{job.cache_key}|{scope}".encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def stage(name: str) -> Iterator[tuple[Any, StageReport]]:
    """Yield (a short warehouse session, the stage's report); fill in rows added and seconds on the way out."""
    report = StageReport(stage=name)
    t0 = time.perf_counter()
    with warehouse.session(wait=DUCKDB_WAIT_SECONDS) as con:
        before = reporting.table_counts(con)
        yield con, report
        report.rows = reporting.added_rows(before, reporting.table_counts(con))
    report.seconds = time.perf_counter() - t0
    get_run_logger().info(report.line())


# ------------------------------------------------------------------------------------------------ evaluate
# register -> resume -> drift (the pipeline) -> plan -> evaluate-model (fanned out, staging only) -> load: each calls the stage's entry
# point with the warehouse path (tasks/register.py, tasks/evaluate.py), which owns its sessions and the run lock.


def logged(report: StageReport) -> StageReport:
    """Log a stage report's line on the current run and return it."""
    get_run_logger().info(report.line())
    return report


@task(name="register", **IO_RETRIES)
def sync_registry(db: str, path: str) -> StageReport:
    """Sync the registry file PATH into the warehouse (adds, updates, deactivates); return the stage report."""
    from tasks.register import sync_registry as sync

    return logged(sync(db, path).report)


@task(name="resume", **IO_RETRIES)
def recover_staging(db: str) -> StageReport:
    """Commit staging files a killed run left behind (and record them); return the stage report."""
    from tasks.evaluate import recover_staging as recover

    return logged(recover(db).report)


@task(name="drift", **IO_RETRIES)
def check_drift(db: str, suite: str, models: list[str] | None, device: str | None = None) -> StageReport:
    """Re-ask the sentinels of every movable model, record drift (tasks/drift.py); publish it; return the report."""
    from tasks.drift import check_drift as check

    done = check(db, suite, models, device=device)
    create_table_artifact(
        reporting.drift_rows(done)
        or [{"model": None, "reason": None, "n": 0, "disagreements": 0, "p_value": None, "drifted": False}],
        key="drift",
        description=f"Drift: sentinel answers re-asked ({done.n_sentinels} sentinels; binomial test, "
        "drift when p < alpha) and registry revision changes; a drifted model's labels are superseded and it "
        "is onboarded again",
    )
    return logged(done.report)


@dataclass
class Plan:
    """The evaluation jobs still to run and the warehouse they feed (part of every job's cache key)."""

    jobs: list
    scope: str
    report: StageReport = field(default_factory=lambda: StageReport("plan"))


@task(name="plan-evaluations", **IO_RETRIES)
def plan_evaluations(
    db: str,
    suite: str,
    models: list[str] | None,
    limit: int | None,
    device: str | None = None,
    policy: Policy | None = None,
) -> Plan:
    """Return the per-model jobs still to run: every task a model lacks, or what POLICY plans (tasks/plan.py)."""
    from tasks import stage

    t0 = time.perf_counter()
    if policy is not None:  # the pipeline: new models onboarded, budgets; the plan recorded in evaluation_plan
        from tasks.plan import plan_run

        planned = plan_run(db, suite, models, limit, policy, device=device)
        jobs, report = planned.jobs, planned.report
    else:
        from tasks.evaluate import plan_evaluations as plan

        jobs = plan(db, suite, models, limit, device=device)
        note = (
            f"{len(jobs)} model(s) to evaluate: " + ", ".join(job_label(j) for j in jobs)
            if jobs
            else "every model has results for every task: nothing to evaluate"
        )
        report = StageReport("plan", time.perf_counter() - t0, note=note)
    with stage.session(db) as con:
        scope = reporting.warehouse_identity(con, db)
    return Plan(jobs=jobs, scope=scope, report=logged(report))


def evaluation_staging(db: str) -> str:
    """Return the evaluate stage's staging folder (a string, so it travels to Dask workers unchanged)."""
    from tasks.evaluate import evaluation_staging as folder

    return str(folder(db))


def job_label(job) -> str:
    """Return `model (n tasks)` for an evaluation job."""
    n = len(job.tasks)
    return f"{job.model} ({n} task{'s' if n != 1 else ''})"


@task(
    name="evaluate-model",
    task_run_name="evaluate {job.model}",
    cache_key_fn=eval_cache_key,
    cache_expiration=timedelta(days=EVAL_CACHE_DAYS),
    persist_result=True,
)
def evaluate_model(job, staging: str, scope: str):
    """Run lm-eval for one model, writing staging Parquet (never the warehouse); return the EvalOutcome."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    from tasks.lm_eval_run import run_evaluation

    total, done = len(job.tasks), 0
    progress = create_progress_artifact(0.0, description=f"{job.model}: 0 of {total} tasks")

    def on_task(_outcome, task_outcome) -> None:
        nonlocal done
        done += 1
        update_progress_artifact(
            progress,
            100.0 * done / total,
            description=f"{job.model}: {done} of {total} tasks (last: {task_outcome.task}, {task_outcome.status})",
        )

    return run_evaluation(job, Path(staging), on_task=on_task)


def reusable(outcome) -> bool:
    """Return whether a cached outcome can stand: no failed task, and its staging files still exist."""
    return not outcome.failed and all(Path(f).exists() for t in outcome.tasks for f in t.staging_files)


@task(name="load", **IO_RETRIES)
def load(db: str, outcomes: list) -> StageReport:
    """Commit the outcomes' staging files and eval_runs rows (one transaction per model x task); return the report."""
    from tasks.evaluate import load_outcomes

    return logged(load_outcomes(db, outcomes))


def outcome_ok(outcome) -> bool:
    """Return whether an evaluation outcome succeeded for every task."""
    return not outcome.failed


def outcome_error(outcome) -> str:
    """Return `model: task: first error` for a failed outcome."""
    return f"{outcome.job.model}: {outcome.error}"


@task(name="publish-leaderboard", **IO_RETRIES)
def publish_leaderboard(db: str) -> int:
    """Publish the leaderboard view as a table artifact; return its row count."""
    from tasks import stage

    with stage.session(db) as con:
        rows = reporting.leaderboard_rows(con)
    create_table_artifact(
        rows or [{"model": None, "benchmark": None, "accuracy": None, "n_questions": 0}],
        key="leaderboard",
        description='Accuracy of every model on every benchmark (`embedllm sql "SELECT * FROM leaderboard"`)',
    )
    return len(rows)


# ------------------------------------------------------------------------------------------------ validate


@dataclass
class ValidationOutcome:
    """What the validation step found: pass/fail, the run, its summary and where its Data Docs are."""

    success: bool
    run_id: str | None
    summary: str
    data_docs: str | None
    report: StageReport


@task(name="validate", **IO_RETRIES)
def validate(db: str, suite: str | None, force: bool = False) -> ValidationOutcome:
    """Validate the matrix with Great Expectations (tasks.validate decides whether the latest run is current)."""
    from tasks.validate import validate as validate_stage

    done = validate_stage(db, suite=suite, force=force)
    get_run_logger().info(done.report.line())
    outcome = ValidationOutcome(
        done.success, done.run_id, done.summary_markdown(), done.data_docs_path, done.report
    )
    publish_validation(outcome)
    return outcome


def publish_validation(outcome: ValidationOutcome) -> None:
    """Publish the validation summary (markdown) and a link to its Data Docs."""
    index = reporting.data_docs_index(outcome.data_docs)
    link = reporting.file_url(index) if index else None
    text = outcome.summary
    if link and "Data Docs" not in text:
        text += f"\n\nData Docs: [{index}]({link})"
    create_markdown_artifact(
        text,
        key="validation-summary",
        description=f"Great Expectations validation {'passed' if outcome.success else 'FAILED'}",
    )
    if link:
        create_link_artifact(
            link,
            link_text=f"Data Docs for validation run {outcome.run_id}",
            key="data-docs",
            description="Great Expectations Data Docs (static HTML beside the warehouse)",
        )


# ------------------------------------------------------------------------------------------------ embed


@task(name="embed-questions", **IO_RETRIES)
def embed_questions(db: str, embedder: str | None, device: str | None = None) -> StageReport:
    """Embed the questions that lack an embedding from this embedder; return the stage report."""
    from tasks.embed import embed_questions as embed

    report = embed(db, embedder, device=device, progress=True).report
    get_run_logger().info(report.line())
    return report


# ------------------------------------------------------------------------------------------------ onboard


@task(name="onboard", **IO_RETRIES)
def onboard_planned(db: str, suite: str | None) -> StageReport:
    """Place the models the plan onboarded in the latest run (no retraining); return the stage report."""
    from tasks.onboard import onboard_planned as onboard

    return logged(onboard(db, suite=suite).report)


@task(name="publish-onboarded", **IO_RETRIES)
def publish_onboarded(db: str) -> int:
    """Publish the models onboarded into the latest run, with their interval widths, as a table; return the count."""
    from tasks import stage

    with stage.session(db, read_only=True) as con:
        rows = reporting.onboarded_rows(con)
    create_table_artifact(
        rows or [{"model": None, "n_answers": 0, "mean_interval_width": None}],
        key="onboarded-models",
        description="Models placed in the latest training run by onboarding (not trained on): answers used, "
        "policy, and how sure their benchmark forecasts are (width of the 90 % interval, mean and widest)",
    )
    return len(rows)


# ------------------------------------------------------------------------------------------------ train


@dataclass
class TrainOutcome:
    """The training run the forecasts come from, and whether this flow run trained it."""

    run_id: str
    trained: bool
    metrics: dict
    report: StageReport


@task(name="train", **IO_RETRIES)
def train(db: str, preset: str, device: str | None, embedder: str | None, force: bool = False) -> TrainOutcome:
    """Train the EmbedLLM model (tasks.train keeps a run that is current); publish its metrics; return the run."""
    from tasks.train import train as train_stage

    result = train_stage(db, preset=preset, device=device, embedder=embedder, require_validation=True, force=force)
    get_run_logger().info(result.report.line())
    create_table_artifact(
        reporting.metrics_rows(result.metrics),
        key="training-metrics",
        description=f"Test-split metrics of training run {result.run_id}"
        + ("" if result.trained else " (up to date, not retrained)"),
    )
    return TrainOutcome(result.run_id, result.trained, dict(result.metrics), result.report)


@task(name="forecast", **IO_RETRIES)
def forecast(db: str, run_id: str, refresh: bool = True) -> StageReport:
    """Write correctness and benchmark forecasts of a run (unless it has them already); publish them."""
    from tasks import stage as stages
    from tasks.forecast import forecast as forecast_stage

    report = forecast_stage(db, run_id, refresh=refresh).report
    get_run_logger().info(report.line())
    with stages.session(db, read_only=True) as con:
        rows = reporting.benchmark_forecast_rows(con)
    create_table_artifact(
        rows or [{"model": None, "benchmark": None, "predicted_accuracy": None}],
        key="benchmark-forecasts",
        description=f"Forecast vs observed accuracy per model and benchmark (run {run_id})",
    )
    return report


@task(name="report", **IO_RETRIES)
def publish_report(db: str, run_id: str, rebuild: bool = True) -> StageReport:
    """Build the run's HTML report (unless it exists and nothing changed) and publish a link to it."""
    t0 = time.perf_counter()
    report = StageReport("report")
    index = settings.beside(db, "reports") / run_id / "index.html"  # tasks.report's default layout
    if rebuild or not index.exists():
        from tasks.report import build_report  # matplotlib: imported only when a report is written

        index = build_report(db, run_id=run_id)
        report.note = f"wrote {index}"
    else:
        report.skipped, report.note = True, f"{index} is up to date"
    create_link_artifact(
        reporting.file_url(index),
        link_text=f"EmbedLLM report for run {run_id}",
        key="report",
        description="Plots of model embeddings, forecasts, calibration and routing",
    )
    report.seconds = time.perf_counter() - t0
    get_run_logger().info(report.line())
    return report


def publish_stages(reports: list[StageReport], title: str = "Pipeline stages") -> None:
    """Publish the stage reports (rows added, seconds) as a markdown artifact and log them."""
    logger = get_run_logger()
    for r in reports:
        logger.info(r.line())
    create_markdown_artifact(
        reporting.stages_markdown(reports, title),
        key="stage-reports",
        description=f"{title}: rows added and seconds per stage",
    )
