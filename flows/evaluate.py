"""The `evaluate` flow: evaluate registered models that lack results, then load them with the one writer.

    register (sync a registry file, when given) -> resume (commit staging left by a killed run) -> plan
    -> evaluate each model (fanned out) -> load

Per-model evaluation runs on the default task runner (one model at a time, in this process) or, with
`dask=True`, on a local Dask cluster (prefect-dask) with `dask_workers` worker processes, or with
`dask_address`, on an existing Dask cluster (e.g. one worker per GPU host). Either way the
evaluation tasks only write staging Parquet; the one load task (this process) commits it, each (model, task)
result in one transaction, so a kill mid-load leaves whole results only and the next run's `resume` commits
the rest.
"""

from __future__ import annotations

import time
from uuid import UUID

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from embedllm import settings
from embedllm.locking import run_lock
from embedllm.policy import Policy
from flows import steps
from flows.reporting import StageReport

DASK_WORKERS = 2


def dask_runner(n_workers: int = DASK_WORKERS, processes: bool = True, address: str | None = None):
    """Return a DaskTaskRunner on an existing cluster (address) or a temporary local one of n_workers workers."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers,
            "threads_per_worker": 1,
            "processes": processes,
            "dashboard_address": ":0",
        }
    )


@flow(name="evaluate-models", task_runner=ThreadPoolTaskRunner(max_workers=1))
def evaluate_models(
    jobs: list, staging: str, scope: str, refresh_cache: bool = False, progress_id: str | None = None
) -> tuple[list, StageReport]:
    """Evaluate every job on this flow's task runner, updating the caller's progress artifact; return outcomes."""
    t0 = time.perf_counter()
    progress = (
        UUID(progress_id)
        if progress_id
        else create_progress_artifact(
            0.0, key="evaluation-progress", description=f"0 of {len(jobs)} models evaluated"
        )
    )
    task = steps.evaluate_model.with_options(refresh_cache=refresh_cache or None)
    futures = {task.submit(job, staging, scope): job for job in jobs}
    outcomes = []
    for done, future in enumerate(as_completed(list(futures)), start=1):
        outcome, job = future.result(), futures[future]
        if future.state.name == "Cached" and not steps.reusable(outcome):  # failed, or its staging is gone
            outcome = steps.evaluate_model.with_options(refresh_cache=True).submit(job, staging, scope).result()
        outcomes.append(outcome)
        update_progress_artifact(
            progress,
            100.0 * done / len(futures),
            description=f"{done} of {len(jobs)} models evaluated (last: {steps.job_label(job)})",
        )
    n_ok = sum(steps.outcome_ok(o) for o in outcomes)
    return outcomes, StageReport(
        "evaluate", time.perf_counter() - t0, note=f"{n_ok} of {len(jobs)} model(s) evaluated without error"
    )


def fan_out(
    dask: bool = False,
    dask_workers: int = DASK_WORKERS,
    dask_processes: bool = True,
    dask_address: str | None = None,
):
    """Return the evaluate-models flow on the default runner, or on a Dask cluster when dask or an address is set."""
    if not (dask or dask_address):
        return evaluate_models
    return evaluate_models.with_options(
        name="evaluate-models-dask", task_runner=dask_runner(dask_workers, dask_processes, dask_address)
    )


def evaluation(
    db: str,
    *,
    registry: str | None,
    suite: str,
    models: list[str] | None,
    limit: int | None,
    device: str | None,
    dask: bool = False,
    dask_workers: int = DASK_WORKERS,
    dask_processes: bool = True,
    dask_address: str | None = None,
    refresh_cache: bool = False,
    policy: Policy | None = None,
) -> list[StageReport]:
    """Run the evaluation steps in the calling flow (so their artifacts land on it); return the stage reports.

    With a POLICY (the pipeline) the drift step re-asks the sentinels of models whose revision can move first
    (tasks/drift.py), then the plan onboards new (and drifted) models and applies budgets (tasks/plan.py);
    without one every model is evaluated on every task it lacks.
    """
    reports = [steps.sync_registry(db, registry)] if registry else []
    reports.append(steps.recover_staging(db))
    if (
        policy is not None
    ):  # the pipeline: re-ask the sentinels of movable models; a drifted one is onboarded again
        reports.append(steps.check_drift(db, suite, models, device))
    plan = steps.plan_evaluations(db, suite, models, limit, device, policy)
    reports.append(plan.report)
    if plan.jobs:
        progress = create_progress_artifact(
            0.0, key="evaluation-progress", description=f"0 of {len(plan.jobs)} models evaluated"
        )
        evaluate_all = fan_out(dask, dask_workers, dask_processes, dask_address)
        outcomes, evaluated = evaluate_all(
            plan.jobs, steps.evaluation_staging(db), plan.scope, refresh_cache, progress_id=str(progress)
        )
        reports += [evaluated, steps.load(db, outcomes)]
    steps.publish_leaderboard(db)
    return reports


@flow(name="evaluate")
def evaluate(
    warehouse: str | None = None,
    registry: str | None = None,
    suite: str = "demo",
    models: list[str] | None = None,
    limit: int | None = None,
    device: str | None = None,
    dask: bool = False,
    dask_workers: int = DASK_WORKERS,
    dask_processes: bool = True,
    dask_address: str | None = None,
    refresh_cache: bool = False,
    lock_wait: float = 0.0,
) -> list[StageReport]:
    """Sync REGISTRY (a registry file) if given, evaluate the models lacking results, load them; return the reports."""
    db = str(settings.resolve_warehouse(warehouse))
    with run_lock(db, wait=lock_wait, what="evaluate flow"):
        reports = evaluation(
            db,
            registry=registry,
            suite=suite,
            models=models,
            limit=limit,
            device=device,
            dask=dask,
            dask_workers=dask_workers,
            dask_processes=dask_processes,
            dask_address=dask_address,
            refresh_cache=refresh_cache,
        )
        steps.publish_stages(reports, "Evaluation stages")
        return reports
