"""Evaluate stage: registered models x suite tasks -> lm-eval (Python API, samples logged) -> staging -> loader.

- `plan_evaluations` reads the registry, the suite and `eval_runs`: one EvalJob per active model with the suite
  tasks it still lacks at the current task version, model revision, model config and label rule (plus tasks an
  import already brought). Nothing new -> no job -> no lm-eval call.
- `run_evaluation` loads the model once (lm-eval's model registry) and calls `lm_eval.simple_evaluate` once per
  task with that model object and `log_samples=True`; each task's samples become loader Batches
  (tasks.ingest_lm_eval.batches_from_results) written as staging Parquet right away (atomic). It never writes the
  warehouse and never raises for a model or task failure: the failure is in the outcome.
- `record_outcomes` commits each task's staging files through the one loader (aggregate cross-check included) and
  writes one eval_runs row per (model, task), successful or not; then deletes the files.
- `evaluate` = validate + recover leftover staging (a run killed midway) + plan + run each + record.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import duckdb

import warehouse
from embedllm import settings
from embedllm.errors import ConfigError, EmbedLLMError
from embedllm.registry import PATH_BACKENDS, ModelEntry, check_gguf, get_model, list_models
from embedllm.suites import Suite, TaskInfo, load_suite, resolve_tasks, task_manager
from tasks.load import Batch, code_version, load_batches, read_staging, write_staging

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
    recorded: dict[str, str] | None = None         # cache_key / model_config read back from staging metadata

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
        text = json.dumps([self.model, self.revision, self.model_config, self.limit, self.samples,
                           [(t.task, t.version, t.label_rule, t.num_fewshot) for t in self.tasks]],
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class TaskOutcome:
    """What happened to one (model, task): staging files written, or the error."""

    task: str
    benchmark: str
    task_version: str
    label_rule: str
    status: str = "success"                       # success | failed
    error_type: str | None = None                 # model-load | out-of-memory | task | load | incomplete
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


def _now() -> datetime:
    """Return the current UTC time without tzinfo (DuckDB TIMESTAMP)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """Return 'Type: first line of message', at most LIMIT characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    msg = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return msg[:limit]


# ------------------------------------------------------------------------------------------------ planning

def _selected_models(con: duckdb.DuckDBPyConnection, models: list[str] | None) -> list[ModelEntry]:
    """Return the registry entries to evaluate: the named ones (must exist and be active) or every active one."""
    if not models:
        return list_models(con)
    entries = []
    for name in models:
        entry = get_model(con, name)
        if not entry.active:
            raise ConfigError(f"model {entry.name!r} was removed from the registry; re-add it with "
                              "`embedllm models add` to evaluate it again")
        if entry.source != "registry":
            raise ConfigError(f"model {entry.name!r} came from an import and cannot be evaluated; register a "
                              "loadable name or path with `embedllm models add`")
        entries.append(entry)
    return entries


def _task_plans(suite: Suite, infos: dict[str, TaskInfo]) -> list[TaskPlan]:
    """Return a TaskPlan per suite task with its current version."""
    return [TaskPlan(task=t.task, benchmark=t.benchmark, label_rule=str(t.label_rule), version=infos[t.task].version,
                     num_fewshot=t.num_fewshot if t.num_fewshot is not None else suite.num_fewshot,
                     leaves=infos[t.task].leaves, leaf_versions=infos[t.task].leaf_versions) for t in suite.tasks]


def _done_tasks(con: duckdb.DuckDBPyConnection, job: EvalJob, limit: int | None) -> set[tuple[str, str, str]]:
    """Return (task, version, rule) triples the model already has complete results for."""
    rows = warehouse.query(con, "eval_done_tasks", {"model": job.model, "revision": job.revision,
                                                    "model_config": job.model_config, "eval_limit": limit})
    done = {(r["task"], r["task_version"] or "", r["label_rule"]) for r in rows.to_dicts()}
    for r in warehouse.query(con, "eval_loaded_tasks", {"model": job.model}).to_dicts():
        covers = r["eval_limit"] is None or (limit is not None and r["eval_limit"] >= limit)
        if (covers and not r["partial"] and r["model_revision"] == job.revision
                and r["model_config"] == job.model_config):
            done.add((r["task"], r["task_version"] or "", r["label_rule"]))
    return done


def _imported(con: duckdb.DuckDBPyConnection, model: str) -> dict[str, tuple[str, str | None]]:
    """Return {task: (task_version, revision)} of tasks an import brought for MODEL."""
    rows = warehouse.query(con, "eval_imported_tasks", {"model": model}).to_dicts()
    return {r["task"]: (r["task_version"] or "", r["model_revision"]) for r in rows}


def _covered_by_import(plan: TaskPlan, imported: dict, revision: str | None) -> bool:
    """Return whether imported labels cover every leaf of the task at its current version and the revision."""
    if not imported:
        return False
    want = dict(plan.leaf_versions)
    return bool(want) and all(leaf in imported and _same_version(imported[leaf][0], v)
                              and (revision is None or imported[leaf][1] == revision) for leaf, v in want.items())


def _same_version(a: str, b: str) -> bool:
    """Return whether two version texts are equal (1 == 1.0)."""
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def plan_evaluations(con: duckdb.DuckDBPyConnection, suite: str = "demo", models: list[str] | None = None,
                     limit: int | None = None, *, samples: dict[str, list[int]] | None = None,
                     device: str | None = None) -> list[EvalJob]:
    """Return one EvalJob per model with the suite tasks it still lacks (validates suite, tasks, rules, models)."""
    if limit is not None and limit <= 0:
        raise ConfigError(f"--limit must be a positive number of documents per task, got {limit}")
    if samples and limit is not None:
        raise ConfigError("give either limit or samples (chosen doc ids), not both")
    st = load_suite(suite)
    infos = resolve_tasks(st)
    plans = _task_plans(st, infos)
    if samples:
        unknown = [t for t in samples if not any(t == p.task or t in p.leaves for p in plans)]
        if unknown:
            raise ConfigError(f"samples name task(s) not in suite {st.name}: {', '.join(unknown)}")
    jobs = []
    for entry in _selected_models(con, models):
        base = EvalJob(model=entry.name, backend=entry.backend, model_args=entry.lm_eval_model_args(),
                       suite=st.name, suite_path=str(st.path), tasks=(), revision=entry.revision,
                       eval_args=dict(entry.eval_args), limit=limit, samples=samples, device=device)
        todo = plans
        if samples:
            todo = [p for p in plans if p.task in samples or any(leaf in samples for leaf in p.leaves)]
        else:
            done = _done_tasks(con, base, limit)
            imported = _imported(con, entry.name)
            todo = [p for p in plans if (p.task, p.version, p.label_rule) not in done
                    and not _covered_by_import(p, imported, entry.revision)]
        if todo:
            jobs.append(EvalJob(**{**asdict_shallow(base), "tasks": tuple(todo)}))
    return jobs


def asdict_shallow(obj: Any) -> dict[str, Any]:
    """Return a dataclass's fields as a dict without deep-copying nested values."""
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}


# ------------------------------------------------------------------------------------------------- running

def _load_lm(job: EvalJob):
    """Return an lm-eval LM instance for the job's model (weights loaded once for all its tasks)."""
    import lm_eval.models  # noqa: F401  (registers the model classes)
    from lm_eval.api.registry import get_model as lm_eval_model

    args = dict(job.model_args)
    if args.get("gguf_file") and job.backend in PATH_BACKENDS and Path(str(args.get("pretrained", ""))).is_dir():
        check_gguf(Path(args["pretrained"]) / args["gguf_file"])   # a clear one-line error before a long load
    extra: dict[str, Any] = {"batch_size": job.eval_args.get("batch_size", args.pop("batch_size", DEFAULT_BATCH_SIZE))}
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
        if plan.task not in samples:          # chosen docs of some subtasks of a group: run those subtasks
            tasks = sorted(samples)
    kwargs: dict[str, Any] = dict(
        model=lm, tasks=tasks, num_fewshot=fewshot, limit=job.limit, samples=samples, log_samples=True,
        task_manager=tm, bootstrap_iters=0, apply_chat_template=ea.get("apply_chat_template", False),
        system_instruction=ea.get("system_instruction"), gen_kwargs=ea.get("gen_kwargs"))
    if "fewshot_as_multiturn" in ea:
        kwargs["fewshot_as_multiturn"] = ea["fewshot_as_multiturn"]
    results = lm_eval.simple_evaluate(**kwargs)
    if results is None:
        raise RuntimeError("lm-eval returned no results (not the rank-0 process)")
    return results


def _batches(job: EvalJob, plan: TaskPlan, results: dict) -> list[Batch]:
    """Return the loader Batches of one task's results, tagged with what planning needs to recover them."""
    from embedllm.labels import LabelRule
    from tasks.ingest_lm_eval import batches_from_results

    samples = results.pop("samples", None) or {}
    names = (plan.task, *plan.leaves)
    batches = batches_from_results(results, samples, model=job.model, kind=KIND,
                                   source=f"evaluate:{job.suite}:{plan.task}",
                                   rules={name: LabelRule.parse(plan.label_rule) for name in names},
                                   model_revision=job.revision, benchmark_of={name: plan.benchmark for name in names})
    for b in batches:
        b.meta.model_revision = job.revision
        b.meta.details.update({
            "suite": job.suite, "suite_task": plan.task, "suite_task_version": plan.version,
            "suite_label_rule": plan.label_rule, "benchmark": plan.benchmark, "eval_limit": job.limit,
            "partial": bool(job.samples), "job_key": job.cache_key, "model_config": job.model_config,
            "n_batches": len(batches), "eval_args": job.eval_args, "num_fewshot": plan.num_fewshot})
    return batches


def _is_oom(exc: BaseException) -> bool:
    """Return whether an exception means the machine ran out of memory."""
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or \
        type(exc).__name__ == "OutOfMemoryError"


def _run_task(lm, job: EvalJob, plan: TaskPlan, tm, staging: Path) -> TaskOutcome:
    """Return the outcome of one task: staging files written, or the error caught."""
    out = TaskOutcome(task=plan.task, benchmark=plan.benchmark, task_version=plan.version,
                      label_rule=plan.label_rule, started_at=_now())
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
        out.status, out.error_type, out.error = "failed", "out-of-memory" if _is_oom(exc) else "task", _one_line(exc)
        log.warning("model %s task %s failed: %s", job.model, plan.task, out.error)
    out.seconds = time.perf_counter() - t0
    return out


def run_evaluation(job: EvalJob, staging: Path, *, on_task: Callable[[EvalJob, TaskOutcome], None] | None = None
                   ) -> EvalOutcome:
    """Return the outcome of evaluating one model on its job's tasks; writes staging Parquet, never the warehouse."""
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
            t = TaskOutcome(task=plan.task, benchmark=plan.benchmark, task_version=plan.version,
                            label_rule=plan.label_rule, status="failed", error_type=kind, error=msg,
                            started_at=_now())
            outcome.tasks.append(t)
            if on_task:
                on_task(job, t)
        outcome.seconds = time.perf_counter() - t0
        return outcome
    outcome.load_model_seconds = time.perf_counter() - t0
    try:
        for plan in job.tasks:
            t = _run_task(lm, job, plan, tm, staging)
            outcome.lm_eval_calls += 1
            outcome.tasks.append(t)
            log.info("model %s task %s: %s, %d samples, %.1f s", job.model, plan.task, t.status, t.n_samples,
                     t.seconds)
            if on_task:
                on_task(job, t)
    finally:
        del lm
        gc.collect()
    outcome.seconds = time.perf_counter() - t0
    return outcome


# ----------------------------------------------------------------------------------------------- recording

def _reject(files: list[str]) -> None:
    """Move staging files that failed to load into staging/rejected/ so later runs do not trip on them."""
    for f in files:
        p = Path(f)
        if p.exists():
            (p.parent / "rejected").mkdir(exist_ok=True)
            shutil.move(str(p), p.parent / "rejected" / p.name)


def _load_task(con: duckdb.DuckDBPyConnection, job: EvalJob, t: TaskOutcome) -> None:
    """Commit a task's staging files through the loader (one transaction) and note the load ids on T."""
    present = [f for f in t.staging_files if Path(f).exists()]
    try:
        if present:
            load_batches(con, [read_staging(f) for f in present])
    except EmbedLLMError as exc:  # AggregateMismatch, InputError: this task's labels are refused
        t.status, t.error_type, t.error = "failed", "load", str(exc)
        _reject(present)
        return
    rows = warehouse.query(con, "eval_load_ids", {"model": job.model, "hashes": t.content_hashes}).to_dicts()
    found = {r["content_hash"]: r["load_id"] for r in rows}
    missing = [h for h in t.content_hashes if h not in found]
    if missing:
        t.status, t.error_type = "failed", "load"
        t.error = f"{len(missing)} staging batch(es) of task {t.task} are neither in staging nor in the warehouse"
    t.load_ids = [found[h] for h in t.content_hashes if h in found]


def record_outcomes(con: duckdb.DuckDBPyConnection, outcomes: list[EvalOutcome]) -> None:
    """Load each successful task's staging files (the one loader), write one eval_runs row per task, drop the files."""
    for outcome in outcomes:
        job = outcome.job
        for t in outcome.tasks:
            if t.status == "success":
                _load_task(con, job, t)
            details = {"staging_files": [Path(f).name for f in t.staging_files], "recovered": t.recovered,
                       "eval_args": job.eval_args, "backend": job.backend, "model_args": job.model_args,
                       "load_model_seconds": outcome.load_model_seconds, "aggregate": t.aggregate,
                       "num_fewshot": job.eval_args.get("num_fewshot")}
            warehouse.execute(con, "eval_insert_run", [
                uuid.uuid4().hex[:16], job.cache_key, job.model, job.model, job.revision, job.suite, t.task,
                t.benchmark, t.task_version, t.label_rule, job.model_config, t.status, t.error_type, t.error,
                job.limit, bool(job.samples), t.n_samples, t.load_ids, t.lm_eval_version, code_version(),
                json.dumps(details, default=str), t.started_at or _now(), t.seconds])
            if t.status == "success":
                for f in t.staging_files:
                    Path(f).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- recovery

def recover_staging(con: duckdb.DuckDBPyConnection, staging: Path) -> list[EvalOutcome]:
    """Load staging files a killed run left behind and record them as successful runs; return what was recovered."""
    files = sorted(Path(staging).glob("*.parquet")) if Path(staging).is_dir() else []
    groups: dict[tuple, list[tuple[str, Batch]]] = {}
    for f in files:
        b = read_staging(f)
        d = b.meta.details
        key = (b.meta.model, d.get("job_key"), d.get("suite_task"))
        groups.setdefault(key, []).append((str(f), b))
    outcomes = []
    for (model, job_key, suite_task), items in groups.items():
        d = items[0][1].meta.details
        if not job_key or not suite_task:       # not written by this stage: load it as the loader would
            load_batches(con, [b for _, b in items])
            for f, _ in items:
                Path(f).unlink(missing_ok=True)
            continue
        if len(items) != d.get("n_batches", len(items)):   # killed between two files of a group: run it again
            log.warning("dropping %d incomplete staging file(s) of %s/%s", len(items), model, suite_task)
            for f, _ in items:
                Path(f).unlink(missing_ok=True)
            continue
        job = EvalJob(model=model, backend="", model_args={}, suite=d.get("suite", ""), suite_path="",
                      tasks=(), revision=items[0][1].meta.model_revision, eval_args=d.get("eval_args") or {},
                      limit=d.get("eval_limit"), samples={"_recovered": []} if d.get("partial") else None,
                      recorded={"cache_key": job_key, "model_config": d.get("model_config")})
        t = TaskOutcome(task=suite_task, benchmark=d.get("benchmark", suite_task),
                        task_version=d.get("suite_task_version", ""), label_rule=d.get("suite_label_rule", ""),
                        staging_files=[f for f, _ in items], content_hashes=[b.meta.content_hash for _, b in items],
                        n_samples=sum(b.rows.height for _, b in items), lm_eval_version=items[0][1].meta.lm_eval_version,
                        started_at=_now(), recovered=True)
        outcome = EvalOutcome(job=job, tasks=[t])
        record_outcomes(con, [outcome])
        outcomes.append(outcome)
    if outcomes:
        log.info("recovered %d task result(s) from staging left by an interrupted run", len(outcomes))
    return outcomes


# ------------------------------------------------------------------------------------------------- the stage

def evaluation_staging() -> Path:
    """Return the staging folder of the evaluate stage (beside the warehouse)."""
    return settings.staging_dir() / "evaluate"


def evaluate(con: duckdb.DuckDBPyConnection, suite: str = "demo", models: list[str] | None = None,
             limit: int | None = None, progress: bool = True, *, samples: dict[str, list[int]] | None = None,
             staging: Path | None = None, device: str | None = None) -> list[EvalOutcome]:
    """Return the outcomes of evaluating every model that lacks results for the suite (nothing new: [])."""
    staging = Path(staging) if staging is not None else evaluation_staging()
    jobs = plan_evaluations(con, suite, models, limit, samples=samples, device=device)  # validates first
    if recover_staging(con, staging):
        jobs = plan_evaluations(con, suite, models, limit, samples=samples, device=device)
    if not jobs:
        log.info("nothing to evaluate: every model has results for suite %s", suite)
        return []
    total = sum(len(j.tasks) for j in jobs)
    bar = _progress_bar(total, progress)
    outcomes = []
    try:
        for job in jobs:
            bar.set_description(f"{job.model[-40:]}: loading")

            def step(j: EvalJob, t: TaskOutcome) -> None:
                bar.set_description(f"{j.model[-40:]}: {t.task}")
                bar.set_postfix_str(t.status)
                bar.update(1)

            outcome = run_evaluation(job, staging, on_task=step)
            record_outcomes(con, [outcome])
            outcomes.append(outcome)
    finally:
        bar.close()
    return outcomes


def _progress_bar(total: int, enabled: bool):
    """Return a tqdm bar over (model, task) pairs (disabled when progress is off)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="task", disable=not enabled, desc="evaluate", dynamic_ncols=True)


def summarize(outcomes: list[EvalOutcome]) -> list[dict[str, Any]]:
    """Return one row per (model, task): status, samples, seconds, error."""
    return [{"model": o.job.model, "task": t.task, "status": t.status, "samples": t.n_samples,
             "seconds": round(t.seconds, 1), "error": t.error or ""} for o in outcomes for t in o.tasks]
