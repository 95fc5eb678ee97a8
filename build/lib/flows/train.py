"""The `train` flow: train the EmbedLLM model on the validated matrix, then write its forecasts.

    train (skipped when a run of this preset is newer than the latest load) -> forecast -> report (HTML)

Deployed on the `gpu` work pool (prefect.yaml); runs anywhere, choosing CUDA when present.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow

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
def train(preset: str = "default", device: str | None = None, embedder: str | None = None, force: bool = False,
          report: bool = True, lock_wait: float = 0.0) -> Trained:
    """Train (unless current) and write forecasts; publish metrics, forecasts and the report; return the run."""
    with run_lock(wait=lock_wait, what="train flow"):
        run = steps.train(preset, device, embedder, force)
        reports = [run.report, steps.forecast(run.run_id, refresh=run.trained)]
        if report:
            reports.append(steps.publish_report(run.run_id, rebuild=run.trained))
        steps.publish_stages(reports, "Training stages")
        return Trained(run.run_id, run.trained, reports)
