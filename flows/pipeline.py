"""The `pipeline` flow: the whole job, in order, as one Prefect run whose artifacts all sit on it.

    register (sync the registry file) -> resume -> drift (re-ask sentinels) -> plan (the evaluation policy)
    -> evaluate (fanned out) -> load -> validate -> embed (new questions) -> onboard (new models, into the latest
    run) -> train -> forecast -> report

The evaluation policy (embedllm/policy.py; `onboard_questions`, `full_evaluation`, each overridable per model in
the registry file): once a completed training run exists, a registered model with no labels is evaluated on its
`onboard_questions` most telling questions only, placed in that run without retraining, and its forecasts with
90 % intervals are written in the same run; `full_evaluation` (never | nightly | budget:N) says what later runs
evaluate for it. On a fresh warehouse every model is evaluated fully. Onboarding labels alone do not retrain;
the next training run absorbs them.

Drift (tasks/drift.py): before planning, every model whose revision can move (none, a branch name, an API
endpoint) is re-asked the warehouse's sentinel questions; a binomial test of the changed answers (or a changed
revision string) records a drift_events row and supersedes the model's labels, so the same run onboards it
again and its new forecasts land in the latest training run.

`embedllm run` and the deployments in prefect.yaml call this flow with the same parameters and defaults. The
steps are Prefect tasks called from this flow directly (only the per-model evaluation runs in a subflow, so it
can use a Dask task runner), so every artifact (leaderboard, evaluation progress, validation summary, Data Docs,
training metrics, benchmark forecasts, report, stage reports) is on the pipeline run itself; a run that fails
still publishes the reports of the stages it ran and names the stage that failed.

One writer per warehouse at a time (the run lock beside it). Every stage commits in transactions, so a run killed
anywhere leaves whole results only; the next run commits staging files left behind first and completes the job.
A failed validation stops the run before embedding and training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from prefect import flow

from embedllm import settings
from embedllm.errors import PipelineStopped
from embedllm.locking import run_lock
from embedllm.policy import DEFAULT_FULL_EVALUATION, DEFAULT_ONBOARD_QUESTIONS, make_policy
from flows import steps
from flows.evaluate import DASK_WORKERS, evaluation
from flows.reporting import StageReport, data_docs_index


@dataclass
class PipelineResult:
    """What a pipeline run produced: the warehouse, the validation and training runs, the stage reports."""

    warehouse: str
    validation_run: str | None = None
    training_run: str | None = None
    stages: list[dict] = field(default_factory=list)


def stop_message(check: steps.ValidationOutcome) -> str:
    """Return the one-line reason the pipeline stopped after a failed validation."""
    docs = data_docs_index(check.data_docs)
    where = f"; Data Docs: {docs}" if docs else ""
    return (
        f"validation run {check.run_id} failed, so the pipeline stopped before embedding and training: see "
        f"`embedllm validate` for the failed expectations{where}"
    )


@flow(name="pipeline")
def pipeline(
    warehouse: str | None = None,
    registry: str | None = "demo",
    suite: str = "demo",
    models: list[str] | None = None,
    limit: int | None = None,
    embedder: str | None = None,
    preset: str = "default",
    device: str | None = None,
    dask: bool = False,
    dask_workers: int = DASK_WORKERS,
    dask_address: str | None = None,
    skip_eval: bool = False,
    force: bool = False,
    lock_wait: float = 0.0,
    onboard_questions: int = DEFAULT_ONBOARD_QUESTIONS,
    full_evaluation: str = DEFAULT_FULL_EVALUATION,
) -> PipelineResult:
    """Sync the registry, evaluate what is missing, load, validate, embed, train, forecast; return what was made."""
    db = str(settings.resolve_warehouse(warehouse))
    policy = make_policy(onboard_questions, full_evaluation)  # one-line error before anything runs
    reports: list[StageReport] = []
    with run_lock(db, wait=lock_wait, what="pipeline flow"):
        try:
            if not skip_eval:
                reports += evaluation(
                    db,
                    registry=registry,
                    suite=suite,
                    models=models,
                    limit=limit,
                    device=device,
                    dask=dask,
                    dask_workers=dask_workers,
                    dask_address=dask_address,
                    policy=policy,
                )
            check = steps.validate(db, None if skip_eval else suite, force)  # imported data: the whole matrix
            reports.append(check.report)
            if not check.success:
                raise PipelineStopped(stop_message(check))
            embedded = steps.embed_questions(db, embedder, device)
            reports.append(embedded)
            new_vectors = embedded.rows.get("question_embeddings", 0) > 0
            onboarded = steps.onboard_planned(db, None if skip_eval else suite)
            reports.append(onboarded)
            run = steps.train(db, preset, device, embedder, force or new_vectors)
            reports += [
                run.report,
                steps.forecast(db, run.run_id, refresh=run.trained),
                steps.publish_report(db, run.run_id, rebuild=run.trained or not onboarded.skipped),
            ]
            steps.publish_onboarded(db)
        finally:
            steps.publish_stages(reports)
    return PipelineResult(
        warehouse=db, validation_run=check.run_id, training_run=run.run_id, stages=[asdict(r) for r in reports]
    )
