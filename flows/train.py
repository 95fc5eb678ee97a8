"""The `train` flow: train the EmbedLLM model on the validated matrix, then write its forecasts.

    train (kept when a run of this preset is current: nothing loaded or embedded since) -> forecast -> report

The same stage entry points as `embedllm train` (tasks.train.train, then tasks.forecast.forecast), in the same
order. Deployed on the `gpu` work pool (prefect.yaml); runs anywhere, choosing CUDA when present.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow

from embedllm import settings
from embedllm.locking import run_lock
from flows import steps
from flows.reporting import StageReport


@dataclass
class Trained:
    """The training run the forecasts come from, whether this flow trained it, and the stage reports."""

    run_id: str
    trained: bool
    reports: list[StageReport]


@flow(name="train")
def train(
    warehouse: str | None = None,
    preset: str = "default",
    device: str | None = None,
    embedder: str | None = None,
    force: bool = False,
    report: bool = True,
    lock_wait: float = 0.0,
) -> Trained:
    """Train (unless current) and write forecasts; publish metrics, forecasts and the report; return the run."""
    db = str(settings.resolve_warehouse(warehouse))
    with run_lock(db, wait=lock_wait, what="train flow"):
        run = steps.train(db, preset, device, embedder, force)
        reports = [run.report, steps.forecast(db, run.run_id, refresh=run.trained)]
        if report:
            reports.append(steps.publish_report(db, run.run_id, rebuild=run.trained))
        steps.publish_stages(reports, "Training stages")
        return Trained(run.run_id, run.trained, reports)
