"""Evaluate stage: registered models x suite tasks -> lm-eval -> staging Parquet -> the one loader, per task.

- `plan_evaluations(db, ...)` reads the registry, the suite and `eval_runs` in one short session: one EvalJob per
  active model with the suite tasks it still lacks at the current task version, model revision, model config and
  label rule (plus tasks an import already brought). Nothing new -> no job -> no lm-eval call.
- lm-eval runs with NO warehouse connection open (tasks/lm_eval_run.py: staging Parquet only), so `embedllm sql`
  answers meanwhile; each finished task is committed at once by `load_outcome`: its staging files through the
  loader and its eval_runs row in ONE transaction of a short session, then the files are deleted.
- `recover_staging(db)` commits staging files a killed run left behind (and records them as successful runs).
- `evaluate(db, ...)` = validate + recover + plan + run each model, under the warehouse's run lock.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

import warehouse
from embedllm import registry, settings
from embedllm.common import code_version, dumps, utc_now
from embedllm.errors import ConfigError, EmbedLLMError
from embedllm.registry import ModelEntry
from embedllm.suites import Suite, TaskInfo, load_suite, resolve_tasks
from tasks import stage
from tasks.lm_eval_run import KIND, EvalJob, EvalOutcome, TaskOutcome, TaskPlan, run_evaluation  # noqa: F401
from tasks.load import Batch, LoadReport, check_batches, load_batches, read_staging
from tasks.stage import StageReport

log = logging.getLogger(__name__)


@dataclass
class EvaluateResult:
    """What an evaluation did: the outcome per model (one TaskOutcome per task) and the stage report."""

    outcomes: list[EvalOutcome] = field(default_factory=list)
    recovered: list[EvalOutcome] = field(default_factory=list)
    report: StageReport = field(default_factory=lambda: StageReport("evaluate"))

    @property
    def failed(self) -> list[tuple[str, TaskOutcome]]:
        """Return (model, task outcome) for every failed task."""
        return [(o.model, t) for o in self.outcomes for t in o.failed]


def evaluation_staging(db: str | Path) -> Path:
    """Return the staging folder of the evaluate stage (beside the warehouse)."""
    return settings.staging_dir(db) / "evaluate"


# ------------------------------------------------------------------------------------------------ planning


def selected_models(con: duckdb.DuckDBPyConnection, models: list[str] | None) -> list[ModelEntry]:
    """Return the registry entries to evaluate: the named ones (must exist and be active) or every active one."""
    rows = warehouse.query(con, "registry_list_models").to_dicts()
    if not models:
        return [registry.entry_from_row(r) for r in rows if r["active"] and r["source"] == "registry"]
    entries = []
    for name in models:
        entry = registry.entry_from_row(registry.find_row(rows, name))
        if not entry.active:
            raise ConfigError(
                f"model {entry.name!r} was removed from the registry; re-add it with "
                "`embedllm models add` to evaluate it again"
            )
        if entry.source != "registry":
            raise ConfigError(
                f"model {entry.name!r} came from an import and cannot be evaluated; register a "
                "loadable name or path with `embedllm models add`"
            )
        entries.append(entry)
    return entries


def _task_plans(suite: Suite, infos: dict[str, TaskInfo]) -> list[TaskPlan]:
    """Return a TaskPlan per suite task with its current version."""
    return [
        TaskPlan(
            task=t.task,
            benchmark=t.benchmark,
            label_rule=str(t.label_rule),
            version=infos[t.task].version,
            num_fewshot=t.num_fewshot if t.num_fewshot is not None else suite.num_fewshot,
            leaves=infos[t.task].leaves,
            leaf_versions=infos[t.task].leaf_versions,
        )
        for t in suite.tasks
    ]


def _done_tasks(con: duckdb.DuckDBPyConnection, job: EvalJob, limit: int | None) -> set[tuple[str, str, str]]:
    """Return (task, version, rule) triples the model already has complete results for."""
    rows = warehouse.query(
        con,
        "eval_done_tasks",
        {"model": job.model, "revision": job.revision, "model_config": job.model_config, "eval_limit": limit},
    )
    done = {(r["task"], r["task_version"] or "", r["label_rule"]) for r in rows.to_dicts()}
    for r in warehouse.query(con, "eval_loaded_tasks", {"model": job.model}).to_dicts():
        covers = r["eval_limit"] is None or (limit is not None and r["eval_limit"] >= limit)
        if (
            covers
            and not r["partial"]
            and r["model_revision"] == job.revision
            and r["model_config"] == job.model_config
        ):
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
    return bool(want) and all(
        leaf in imported
        and _same_version(imported[leaf][0], v)
        and (revision is None or imported[leaf][1] == revision)
        for leaf, v in want.items()
    )


def _same_version(a: str, b: str) -> bool:
    """Return whether two version texts are equal (1 == 1.0)."""
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def _check_request(limit: int | None, samples: dict | None) -> None:
    """Raise ConfigError for a non-positive limit or both limit and samples."""
    if limit is not None and limit <= 0:
        raise ConfigError(f"--limit must be a positive number of documents per task, got {limit}")
    if samples and limit is not None:
        raise ConfigError("give either limit or samples (chosen doc ids), not both")


def plan_jobs(
    con: duckdb.DuckDBPyConnection,
    suite: str,
    models: list[str] | None,
    limit: int | None,
    samples: dict[str, list[int]] | None,
    device: str | None,
) -> list[EvalJob]:
    """Return one EvalJob per model with the suite tasks it still lacks (validates suite, tasks, rules, models)."""
    _check_request(limit, samples)
    st = load_suite(suite)
    plans = _task_plans(st, resolve_tasks(st))
    if samples:
        unknown = [t for t in samples if not any(t == p.task or t in p.leaves for p in plans)]
        if unknown:
            raise ConfigError(f"samples name task(s) not in suite {st.name}: {', '.join(unknown)}")
    jobs = []
    for entry in selected_models(con, models):
        base = EvalJob(
            model=entry.name,
            backend=entry.backend,
            model_args=entry.lm_eval_model_args(),
            suite=st.name,
            suite_path=str(st.path),
            tasks=(),
            revision=entry.revision,
            eval_args=dict(entry.eval_args),
            limit=limit,
            samples=samples,
            device=device,
            api_key_env=entry.api_key_env,
        )
        if samples:
            todo = [p for p in plans if p.task in samples or any(leaf in samples for leaf in p.leaves)]
        else:
            done, imported = _done_tasks(con, base, limit), _imported(con, entry.name)
            todo = [
                p
                for p in plans
                if (p.task, p.version, p.label_rule) not in done
                and not _covered_by_import(p, imported, entry.revision)
            ]
        if todo:
            jobs.append(EvalJob(**{**asdict_shallow(base), "tasks": tuple(todo)}))
    return jobs


def plan_evaluations(
    db: str | Path,
    suite: str = "demo",
    models: list[str] | None = None,
    limit: int | None = None,
    *,
    samples: dict[str, list[int]] | None = None,
    device: str | None = None,
) -> list[EvalJob]:
    """Return the jobs still to run, read in one short session (no lock: planning writes nothing)."""
    with stage.session(db) as con:
        return plan_jobs(con, suite, models, limit, samples, device)


def asdict_shallow(obj: Any) -> dict[str, Any]:
    """Return a dataclass's fields as a dict without deep-copying nested values."""
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}


# ----------------------------------------------------------------------------------------------- recording


def _reject(files: list[str]) -> None:
    """Move staging files that failed to load into staging/rejected/ so later runs do not trip on them."""
    for f in files:
        p = Path(f)
        if p.exists():
            (p.parent / "rejected").mkdir(exist_ok=True)
            shutil.move(str(p), p.parent / "rejected" / p.name)


def _run_row(job: EvalJob, outcome: EvalOutcome, t: TaskOutcome) -> list:
    """Return the eval_runs row of one (model, task) outcome, in the column order of eval_insert_run."""
    details = {
        "staging_files": [Path(f).name for f in t.staging_files],
        "recovered": t.recovered,
        "eval_args": job.eval_args,
        "backend": job.backend,
        "model_args": job.model_args,
        "load_model_seconds": outcome.load_model_seconds,
        "aggregate": t.aggregate,
        "num_fewshot": job.eval_args.get("num_fewshot"),
    }
    return [
        uuid.uuid4().hex[:16],
        job.cache_key,
        job.model,
        job.model,
        job.revision,
        job.suite,
        t.task,
        t.benchmark,
        t.task_version,
        t.label_rule,
        job.model_config,
        t.status,
        t.error_type,
        t.error,
        job.limit,
        bool(job.samples),
        t.n_samples,
        t.load_ids,
        t.lm_eval_version,
        code_version(),
        dumps(details),
        t.started_at or utc_now(),
        t.seconds,
    ]


def _note_load_ids(con: duckdb.DuckDBPyConnection, job: EvalJob, t: TaskOutcome) -> None:
    """Set T's load ids from the loads its content hashes made; fail T when one is missing (inside the load)."""
    rows = warehouse.query(con, "eval_load_ids", {"model": job.model, "hashes": t.content_hashes}).to_dicts()
    found = {r["content_hash"]: r["load_id"] for r in rows}
    missing = [h for h in t.content_hashes if h not in found]
    if missing:
        t.status, t.error_type = "failed", "load"
        t.error = f"{len(missing)} staging batch(es) of task {t.task} are neither in staging nor in the warehouse"
    t.load_ids = [found[h] for h in t.content_hashes if h in found]


def load_task(db: str | Path, outcome: EvalOutcome, t: TaskOutcome) -> None:
    """Commit one task's staging files and its eval_runs row in one transaction of a short session."""
    job = outcome.job
    batches: list[Batch] = []
    if t.status == "success":
        present = [f for f in t.staging_files if Path(f).exists()]
        try:
            batches = [read_staging(f) for f in present]
            check_batches(batches)  # AggregateMismatch, InputError: refused
        except EmbedLLMError as exc:
            t.status, t.error_type, t.error = "failed", "load", str(exc)
            _reject(present)
            batches = []

    def record(con: duckdb.DuckDBPyConnection, _report: LoadReport) -> None:
        if t.status == "success":
            _note_load_ids(con, job, t)
        warehouse.execute(con, "eval_insert_run", _run_row(job, outcome, t))

    with stage.session(db) as con:
        load_batches(con, batches, then=record)
    if t.status == "success":
        for f in t.staging_files:
            Path(f).unlink(missing_ok=True)


def load_outcomes(db: str | Path, outcomes: list[EvalOutcome], *, wait: float = 0.0) -> StageReport:
    """Commit every task of the outcomes (one transaction per (model, task)) under the run lock; return the report."""
    with stage.writing(db, "load", wait=wait) as report:
        for outcome in outcomes:
            for t in outcome.tasks:
                load_task(db, outcome, t)
        failed = [o for o in outcomes if o.failed]
        report.note = f"{len(outcomes) - len(failed)} model(s) loaded, {len(failed)} with failures" + (
            ": " + "; ".join(f"{o.model}: {o.error}" for o in failed) if failed else ""
        )
    return report


# ---------------------------------------------------------------------------------------------- recovery


def _recovered_outcome(model: str, job_key: str, suite_task: str, items: list[tuple[str, Batch]]) -> EvalOutcome:
    """Return the outcome of a staged task group a killed run left behind (as if it had just run)."""
    d = items[0][1].meta.details
    job = EvalJob(
        model=model,
        backend="",
        model_args={},
        suite=d.get("suite", ""),
        suite_path="",
        tasks=(),
        revision=items[0][1].meta.model_revision,
        eval_args=d.get("eval_args") or {},
        limit=d.get("eval_limit"),
        samples={"_recovered": []} if d.get("partial") else None,
        recorded={"cache_key": job_key, "model_config": d.get("model_config")},
    )
    t = TaskOutcome(
        task=suite_task,
        benchmark=d.get("benchmark", suite_task),
        task_version=d.get("suite_task_version", ""),
        label_rule=d.get("suite_label_rule", ""),
        staging_files=[f for f, _ in items],
        content_hashes=[b.meta.content_hash for _, b in items],
        n_samples=sum(b.rows.height for _, b in items),
        lm_eval_version=items[0][1].meta.lm_eval_version,
        started_at=utc_now(),
        recovered=True,
    )
    return EvalOutcome(job=job, tasks=[t])


def _staged_groups(staging: Path) -> dict[tuple, list[tuple[str, Batch]]]:
    """Return staging files grouped by (model, job key, suite task)."""
    groups: dict[tuple, list[tuple[str, Batch]]] = {}
    for f in sorted(staging.glob("*.parquet")) if staging.is_dir() else []:
        b = read_staging(f)
        groups.setdefault(
            (b.meta.model, b.meta.details.get("job_key"), b.meta.details.get("suite_task")), []
        ).append((str(f), b))
    return groups


def recover_staging(db: str | Path, *, wait: float = 0.0) -> EvaluateResult:
    """Load staging files a killed run left behind and record them as successful runs; return what was recovered."""
    result = EvaluateResult(report=StageReport("resume"))
    groups = _staged_groups(evaluation_staging(db))
    with stage.writing(db, "resume", wait=wait) as report:
        for (model, job_key, suite_task), items in groups.items():
            files = [f for f, _ in items]
            if not job_key or not suite_task:  # not written by this stage: load it as the loader would
                with stage.session(db) as con:
                    load_batches(con, [b for _, b in items])
            elif len(items) != items[0][1].meta.details.get("n_batches", len(items)):
                log.warning("dropping %d incomplete staging file(s) of %s/%s", len(items), model, suite_task)
            else:  # a whole task result: record it as the run would have
                outcome = _recovered_outcome(model, job_key, suite_task, items)
                load_task(db, outcome, outcome.tasks[0])
                result.recovered.append(outcome)
                continue
            for f in files:
                Path(f).unlink(missing_ok=True)
        n_files = sum(len(v) for v in groups.values())
        report.note = (
            f"{n_files} staging file(s) left by an interrupted run: {len(result.recovered)} task result(s) "
            "recovered"
            if n_files
            else "no staging files left by an interrupted run"
        )
    result.report = report
    return result


# ------------------------------------------------------------------------------------------------- the stage


def evaluate(
    db: str | Path,
    suite: str = "demo",
    models: list[str] | None = None,
    limit: int | None = None,
    *,
    samples: dict[str, list[int]] | None = None,
    device: str | None = None,
    wait: float = 0.0,
    progress: bool = False,
) -> EvaluateResult:
    """Return the outcomes of evaluating every model that lacks results for the suite (nothing new: none)."""
    result = EvaluateResult()
    with stage.writing(db, "evaluate", wait=wait) as report:
        jobs = plan_evaluations(db, suite, models, limit, samples=samples, device=device)  # validates first
        result.recovered = recover_staging(db).recovered
        if result.recovered:
            jobs = plan_evaluations(db, suite, models, limit, samples=samples, device=device)
        bar = _progress_bar(sum(len(j.tasks) for j in jobs), progress)
        try:
            for job in jobs:
                bar.set_description(f"{job.model[-40:]}: loading")

                def step(outcome: EvalOutcome, t: TaskOutcome) -> None:
                    load_task(db, outcome, t)  # committed as soon as lm-eval finished it
                    bar.set_description(f"{outcome.model[-40:]}: {t.task}")
                    bar.set_postfix_str(t.status)
                    bar.update(1)

                result.outcomes.append(run_evaluation(job, evaluation_staging(db), on_task=step))
        finally:
            bar.close()
        n_failed = len(result.failed)
        report.note = (
            f"{len(jobs)} model(s), {sum(len(o.tasks) for o in result.outcomes)} task(s), {n_failed} failed"
            if jobs
            else f"nothing to evaluate: every model has results for suite {suite}"
        )
    result.report = report
    return result


def _progress_bar(total: int, enabled: bool):
    """Return a tqdm bar over (model, task) pairs (disabled when progress is off)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="task", disable=not enabled, desc="evaluate", dynamic_ncols=True)


def summarize(outcomes: list[EvalOutcome]) -> list[dict[str, Any]]:
    """Return one row per (model, task): status, samples, seconds, error."""
    return [
        {
            "model": o.job.model,
            "task": t.task,
            "status": t.status,
            "samples": t.n_samples,
            "seconds": round(t.seconds, 1),
            "error": t.error or "",
        }
        for o in outcomes
        for t in o.tasks
    ]
