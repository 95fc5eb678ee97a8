"""The `onboard` flow: place a new registered model in the trained run from a few evaluated questions.

    onboard (choose questions -> lm-eval on just those -> load -> fit with the run frozen -> write forecasts)

The stage is one function (tasks.onboard.onboard); this flow wraps it in one Prefect task with the shared step
conventions of flows/steps.py (a short warehouse session, retries only for a briefly held DuckDB file, a stage
report) and publishes the per-benchmark forecast with its interval as a table artifact. flows/steps.py has no
onboard step, so the small wrapper lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, task
from prefect.artifacts import create_table_artifact

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
def onboard_model(name: str, n_questions: int, run_id: str | None, suite: str, seed: int,
                  device: str | None) -> Onboarded:
    """Onboard one registered model (evaluate the chosen questions, fit, write); return what it produced."""
    from tasks.onboard import onboard

    with steps.stage("onboard") as (con, report):
        result = onboard(con, name, n_questions, run_id, suite=suite, seed=seed, progress=False, device=device)
        report.note = result.summary()
    return Onboarded(result.model, result.run_id, result.n_questions, result.suite_questions,
                     result.forecasts.to_dicts(), report)


@flow(name="onboard")
def onboard(name: str, n_questions: int = 128, run_id: str | None = None, suite: str = "demo", seed: int = 0,
            device: str | None = None, lock_wait: float = 0.0) -> Onboarded:
    """Onboard NAME into the run (default: the latest) from n_questions answers; publish its forecasts."""
    with run_lock(wait=lock_wait, what="onboard flow"):
        done = onboard_model(name, n_questions, run_id, suite, seed, device)
        create_table_artifact(done.forecasts, key="onboarded-forecasts",
                              description=f"{done.model} onboarded into run {done.run_id} from {done.n_questions} "
                                          "answers: forecast accuracy per benchmark with a 90 % interval")
        steps.publish_stages([done.report], "Onboarding")
        return done
