"""Running lm-eval for the evaluate stage: one EvalJob (a model and its tasks) -> staging Parquet, no warehouse.

`run_evaluation` loads the model once (lm-eval's model registry) and calls `lm_eval.simple_evaluate` once per
task with that model object and `log_samples=True`; each task's samples become loader Batches
(tasks.ingest_lm_eval.batches_from_results) written as staging Parquet right away (atomic). It never opens the
warehouse and never raises for a model or task failure: the failure is in the outcome. An API model (an entry
with base_url) is evaluated through lm-eval's local-completions backend; its key is read here, from the
environment variable the entry names, and never written anywhere.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from embedllm import settings
from embedllm.common import utc_now
from embedllm.errors import ConfigError, EmbedLLMError
from embedllm.registry import API_BACKENDS, PATH_BACKENDS, check_gguf
from embedllm.suites import load_suite, task_manager
from tasks.load import Batch, write_staging

log = logging.getLogger(__name__)
KIND = "evaluate"
DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class TaskPlan:
    """One suite task to run for a model: name, benchmark, label rule, current version, few-shot count."""

    task: str
    benchmark: str
    label_rule: str
    version: str
    num_fewshot: int | None = None
    leaves: tuple[str, ...] = ()
    leaf_versions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EvalJob:
    """Everything one worker needs to evaluate one model on some tasks (plain data: picklable for Dask)."""

    model: str
    backend: str
    model_args: dict[str, Any]
    suite: str
    suite_path: str
    tasks: tuple[TaskPlan, ...]
    revision: str | None = None
    eval_args: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    samples: dict[str, list[int]] | None = None
    device: str | None = None
    recorded: dict[str, str] | None = None  # cache_key / model_config read back from staging metadata
    api_key_env: str | None = None  # env var holding the endpoint's key (read when lm-eval runs)

    @property
    def model_config(self) -> str:
        """Return a hash of how the model is loaded and prompted (backend, model args, eval args)."""
        if self.recorded and self.recorded.get("model_config"):
            return self.recorded["model_config"]
        text = json.dumps([self.backend, self.model_args, self.eval_args], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def cache_key(self) -> str:
        """Return a key from model, revision, config, task names, versions and rules, limit and samples."""
        if self.recorded and self.recorded.get("cache_key"):
            return self.recorded["cache_key"]
        text = json.dumps(
            [
                self.model,
                self.revision,
                self.model_config,
                self.limit,
                self.samples,
                [(t.task, t.version, t.label_rule, t.num_fewshot) for t in self.tasks],
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class TaskOutcome:
    """What happened to one (model, task): staging files written, or the error."""

    task: str
    benchmark: str
    task_version: str
    label_rule: str
    status: str = "success"  # success | failed
    error_type: str | None = None  # model-load | out-of-memory | task | load | incomplete
    error: str | None = None
    staging_files: list[str] = field(default_factory=list)
    content_hashes: list[str] = field(default_factory=list)
    n_samples: int = 0
    aggregate: float | None = None
    lm_eval_version: str | None = None
    load_ids: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    seconds: float = 0.0
    recovered: bool = False


@dataclass
class EvalOutcome:
    """The result of run_evaluation for one job: one TaskOutcome per task, plus model load time."""

    job: EvalJob
    tasks: list[TaskOutcome]
    load_model_seconds: float = 0.0
    seconds: float = 0.0
    lm_eval_calls: int = 0

    @property
    def failed(self) -> list[TaskOutcome]:
        """Return the task outcomes that failed."""
        return [t for t in self.tasks if t.status != "success"]

    @property
    def ok(self) -> bool:
        """Return whether every task succeeded."""
        return not self.failed

    @property
    def model(self) -> str:
        """Return the model's registry name."""
        return self.job.model

    @property
    def error(self) -> str | None:
        """Return the first failure as `task: message` (None when all succeeded)."""
        bad = self.failed
        return f"{bad[0].task}: {bad[0].error}" if bad else None


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """Return 'Type: first line of message', at most LIMIT characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    msg = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return msg[:limit]


# ------------------------------------------------------------------------------------------------- running


def _load_lm(job: EvalJob):
    """Return an lm-eval LM instance for the job's model (weights loaded once for all its tasks)."""
    import lm_eval.models  # noqa: F401  (registers the model classes)
    from lm_eval.api.registry import get_model as lm_eval_model

    args = dict(job.model_args)
    if job.backend in API_BACKENDS:
        return lm_eval_model(job.backend).create_from_arg_obj(args, {"batch_size": 1, **_api_header(job)})
    if args.get("gguf_file") and job.backend in PATH_BACKENDS and Path(str(args.get("pretrained", ""))).is_dir():
        check_gguf(Path(args["pretrained"]) / args["gguf_file"])  # a clear one-line error before a long load
    extra: dict[str, Any] = {
        "batch_size": job.eval_args.get("batch_size", args.pop("batch_size", DEFAULT_BATCH_SIZE))
    }
    if job.backend in PATH_BACKENDS:
        extra["device"] = args.pop("device", None) or str(settings.pick_device(job.device))
    return lm_eval_model(job.backend).create_from_arg_obj(args, extra)


_ENV_INFO: dict[str, Any] = {}


def _env_info_once() -> None:
    """Make lm-eval collect its environment info once per process instead of once per simple_evaluate call.

    simple_evaluate ends with add_env_info, whose torch collect_env runs `pip list` (~1.5 s). We call
    simple_evaluate once per task (so each task is staged, and resumable, as soon as it is done); paying that per
    task was most of the stage's overhead over one bare multi-task call. The info is the same within a process.
    """
    import lm_eval.evaluator as evaluator

    real = getattr(evaluator, "add_env_info", None)
    if real is None or getattr(real, "_embedllm_once", False):
        return

    def add_env_info_once(storage: dict) -> None:
        if not _ENV_INFO:
            real(_ENV_INFO)
        storage.update(_ENV_INFO)

    add_env_info_once._embedllm_once = True  # type: ignore[attr-defined]
    evaluator.add_env_info = add_env_info_once


def _simple_evaluate(lm, job: EvalJob, plan: TaskPlan, tm) -> dict:
    """Return lm-eval's results (with 'samples') for one task, run through lm_eval.simple_evaluate."""
    import lm_eval

    _env_info_once()

    ea = job.eval_args
    fewshot = ea.get("num_fewshot", plan.num_fewshot)
    samples, tasks = None, [plan.task]
    if job.samples:
        samples = {k: list(v) for k, v in job.samples.items() if k == plan.task or k in plan.leaves}
        if plan.task not in samples:  # chosen docs of some subtasks of a group: run those subtasks
            tasks = sorted(samples)
    kwargs: dict[str, Any] = dict(
        model=lm,
        tasks=tasks,
        num_fewshot=fewshot,
        limit=job.limit,
        samples=samples,
        log_samples=True,
        task_manager=tm,
        bootstrap_iters=0,
        apply_chat_template=ea.get("apply_chat_template", False),
        system_instruction=ea.get("system_instruction"),
        gen_kwargs=ea.get("gen_kwargs"),
    )
    if "fewshot_as_multiturn" in ea:
        kwargs["fewshot_as_multiturn"] = ea["fewshot_as_multiturn"]
    results = lm_eval.simple_evaluate(**kwargs)
    if results is None:
        raise RuntimeError("lm-eval returned no results (not the rank-0 process)")
    if kwargs[
        "apply_chat_template"
    ]:  # what lm-eval's CLI records; the importer reads it (ingest_lm_eval.chat_run)
        results.setdefault("apply_chat_template", True)
        results.setdefault("system_instruction", kwargs["system_instruction"])
    return results


def _batches(job: EvalJob, plan: TaskPlan, results: dict) -> list[Batch]:
    """Return the loader Batches of one task's results, tagged with what planning needs to recover them."""
    from embedllm.labels import LabelRule
    from tasks.ingest_lm_eval import batches_from_results

    samples = results.pop("samples", None) or {}
    names = (plan.task, *plan.leaves)
    batches = batches_from_results(
        results,
        samples,
        model=job.model,
        kind=KIND,
        source=f"evaluate:{job.suite}:{plan.task}",
        rules={name: LabelRule.parse(plan.label_rule) for name in names},
        model_revision=job.revision,
        benchmark_of={name: plan.benchmark for name in names},
    )
    for b in batches:
        b.meta.model_revision = job.revision
        b.meta.details.update(
            {
                "suite": job.suite,
                "suite_task": plan.task,
                "suite_task_version": plan.version,
                "suite_label_rule": plan.label_rule,
                "benchmark": plan.benchmark,
                "eval_limit": job.limit,
                "partial": bool(job.samples),
                "job_key": job.cache_key,
                "model_config": job.model_config,
                "n_batches": len(batches),
                "eval_args": job.eval_args,
                "num_fewshot": plan.num_fewshot,
            }
        )
    return batches


def _api_header(job: EvalJob) -> dict[str, Any]:
    """Return lm-eval's `header` argument with the endpoint key from $api_key_env ({} when the entry has none)."""
    if not job.api_key_env:
        return {}
    key = os.environ.get(job.api_key_env)
    if not key:
        raise ConfigError(
            f"model {job.model} reads its API key from ${job.api_key_env}, which is not set: "
            f"export {job.api_key_env}=... and run again"
        )
    return {"header": {"Authorization": f"Bearer {key}"}}


def _api_hint(job: EvalJob, exc: BaseException) -> str | None:
    """Return a one-line explanation when an endpoint cannot score a multiple-choice task (else None)."""
    if job.backend not in API_BACKENDS:
        return None
    text = f"{type(exc).__name__}: {exc}"
    if "logprobs" in text or "Tokenizer is required" in text:
        return (
            f"endpoint {job.model_args.get('base_url')} cannot score multiple-choice tasks: they need prompt "
            "logprobs (echo=True, logprobs) and a tokenizer (--model-args tokenizer=PATH); servers such as vLLM "
            f"or llama.cpp provide them, `transformers serve` does not ({_one_line(exc, 120)})"
        )
    return None


def _is_oom(exc: BaseException) -> bool:
    """Return whether an exception means the machine ran out of memory."""
    return (
        isinstance(exc, MemoryError)
        or "out of memory" in str(exc).lower()
        or type(exc).__name__ == "OutOfMemoryError"
    )


def _run_task(lm, job: EvalJob, plan: TaskPlan, tm, staging: Path) -> TaskOutcome:
    """Return the outcome of one task: staging files written, or the error caught."""
    out = TaskOutcome(
        task=plan.task,
        benchmark=plan.benchmark,
        task_version=plan.version,
        label_rule=plan.label_rule,
        started_at=utc_now(),
    )
    t0 = time.perf_counter()
    try:
        results = _simple_evaluate(lm, job, plan, tm)
        out.lm_eval_version = results.get("lm_eval_version")
        batches = _batches(job, plan, results)
        if not batches:
            raise EmbedLLMError(f"lm-eval logged no samples for task {plan.task}")
        for b in batches:
            out.staging_files.append(str(write_staging(b, staging)))
            out.content_hashes.append(b.meta.content_hash)
            out.n_samples += b.rows.height
        if len(batches) == 1:
            out.aggregate = batches[0].meta.aggregate_value
    except Exception as exc:  # one task's failure must not stop the others
        out.status, out.error_type = "failed", "out-of-memory" if _is_oom(exc) else "task"
        out.error = _api_hint(job, exc) or _one_line(exc)
        log.warning("model %s task %s failed: %s", job.model, plan.task, out.error)
    out.seconds = time.perf_counter() - t0
    return out


def run_evaluation(
    job: EvalJob, staging: Path, *, on_task: Callable[[EvalOutcome, TaskOutcome], None] | None = None
) -> EvalOutcome:
    """Return the outcome of evaluating one model on its job's tasks; writes staging Parquet, never the warehouse.

    ON_TASK(outcome so far, task outcome) is called as each task ends (the evaluate stage commits it there).
    """
    staging = Path(staging)
    t0 = time.perf_counter()
    outcome = EvalOutcome(job=job, tasks=[])
    log.info("evaluating %s on %d task(s) of suite %s", job.model, len(job.tasks), job.suite)
    try:
        tm = task_manager(load_suite(job.suite_path))
        lm = _load_lm(job)
    except Exception as exc:  # bad id, missing files, GGUF that does not load, out of memory
        kind = "out-of-memory" if _is_oom(exc) else "model-load"
        msg = f"cannot load model {job.model}: {_one_line(exc)}"
        log.warning(msg)
        for plan in job.tasks:
            t = TaskOutcome(
                task=plan.task,
                benchmark=plan.benchmark,
                task_version=plan.version,
                label_rule=plan.label_rule,
                status="failed",
                error_type=kind,
                error=msg,
                started_at=utc_now(),
            )
            outcome.tasks.append(t)
            if on_task:
                on_task(outcome, t)
        outcome.seconds = time.perf_counter() - t0
        return outcome
    outcome.load_model_seconds = time.perf_counter() - t0
    try:
        for plan in job.tasks:
            t = _run_task(lm, job, plan, tm, staging)
            outcome.lm_eval_calls += 1
            outcome.tasks.append(t)
            log.info(
                "model %s task %s: %s, %d samples, %.1f s", job.model, plan.task, t.status, t.n_samples, t.seconds
            )
            if on_task:
                on_task(outcome, t)
    finally:
        del lm
        gc.collect()
    outcome.seconds = time.perf_counter() - t0
    return outcome
