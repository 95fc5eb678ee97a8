"""The `onboard` flow: place a new registered model in the trained run from a few evaluated questions.

    onboard (choose questions -> lm-eval on just those -> load -> fit with the run frozen -> write forecasts)

The stage is one function (tasks.onboard.onboard, the same entry point `embedllm onboard` calls: it owns its
short sessions and the run lock); this flow wraps it in one Prefect task with the shared step conventions of
flows/steps.py (retries only for a briefly held DuckDB file, a stage report) and publishes the per-benchmark
forecast with its interval as a table artifact.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from embedllm import settings
from embedllm.locking import run_lock
from flows import steps
from flows.reporting import StageReport


@dataclass
class Onboarded:
    """What the flow did: the model, the run it joined, its forecasts (plain rows) and the stage report."""

    model: str
    run_id: str
    n_questions: int
    suite_questions: int | None
    forecasts: list[dict]
    report: StageReport


@task(name="onboard", **steps.IO_RETRIES)
def onboard_model(
    db: str, name: str, n_questions: int, run_id: str | None, suite: str, seed: int, device: str | None
) -> Onboarded:
    """Onboard one registered model (evaluate the chosen questions, fit, write); return what it produced."""
    from tasks.onboard import onboard

    result = onboard(db, name, n_questions, run_id=run_id, suite=suite, seed=seed, device=device)
    steps.logged(result.report)
    return Onboarded(
        result.model,
        result.run_id,
        result.n_questions,
        result.suite_questions,
        result.forecasts.to_dicts(),
        result.report,
    )


@flow(name="onboard")
def onboard(
    name: str,
    n_questions: int = 128,
    run_id: str | None = None,
    suite: str = "demo",
    seed: int = 0,
    device: str | None = None,
    lock_wait: float = 0.0,
    registry: str | None = None,
    warehouse: str | None = None,
) -> Onboarded:
    """Sync REGISTRY if given, then onboard NAME into the run (default: the latest) from n_questions answers."""
    db = str(settings.resolve_warehouse(warehouse))
    with run_lock(db, wait=lock_wait, what="onboard flow"):
        reports = [steps.sync_registry(db, registry)] if registry else []
        done = onboard_model(db, name, n_questions, run_id, suite, seed, device)
        create_table_artifact(
            done.forecasts,
            key="onboarded-forecasts",
            description=f"{done.model} onboarded into run {done.run_id} from {done.n_questions} "
            "answers: forecast accuracy per benchmark with a 90 % interval",
        )
        steps.publish_stages(reports + [done.report], "Onboarding")
        return done
