"""The `pipeline` flow: the whole job, in order.

    evaluate (models lacking results) -> load -> validate -> embed (new questions) -> train -> forecast

One pipeline run per warehouse at a time (a file lock beside it). Every stage commits in one transaction, so a
run killed anywhere leaves the warehouse as it was before that stage, and the next run completes the job
(staging files written before the kill are committed first). A failed validation stops the run before
embedding and training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from prefect import flow

from embedllm import settings
from embedllm.errors import PipelineStopped
from embedllm.locking import run_lock
from flows import steps
from flows.evaluate import DASK_WORKERS, evaluate
from flows.reporting import StageReport, data_docs_index
from flows.train import train


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
    return (f"validation run {check.run_id} failed, so the pipeline stopped before embedding and training: see "
            f"`embedllm validate` for the failed expectations{where}")


@flow(name="pipeline")
def pipeline(suite: str | None = "demo", models: list[str] | None = None, limit: int | None = None,
             embedder: str | None = None, preset: str = "default", device: str | None = None,
             dask: bool = False, dask_workers: int = DASK_WORKERS, dask_address: str | None = None,
             skip_eval: bool = False, register_demo: bool = False, force: bool = False,
             lock_wait: float = 0.0) -> PipelineResult:
    """Evaluate, load, validate, embed, train and forecast; return what was produced."""
    with run_lock(wait=lock_wait, what="pipeline flow"):
        reports: list[StageReport] = []
        if not skip_eval:
            reports += evaluate(suite=suite or "demo", models=models, limit=limit, dask=dask,
                                dask_workers=dask_workers, dask_address=dask_address, register_demo=register_demo,
                                device=device, lock_wait=lock_wait)
        check = steps.validate(suite, force)
        reports.append(check.report)
        if not check.success:
            steps.publish_stages(reports)
            raise PipelineStopped(stop_message(check))
        embedded = steps.embed_questions(embedder, device)
        reports.append(embedded)
        new_vectors = embedded.rows.get("question_embeddings", 0) > 0
        trained = train(preset=preset, device=device, embedder=embedder, force=force or new_vectors,
                        lock_wait=lock_wait)
        reports += trained.reports
        steps.publish_stages(reports)
        return PipelineResult(warehouse=str(settings.warehouse_path()), validation_run=check.run_id,
                              training_run=trained.run_id, stages=[asdict(r) for r in reports])
