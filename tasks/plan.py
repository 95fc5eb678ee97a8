"""Plan stage: which registered models a pipeline run evaluates, and on what, under the evaluation policy.

    plan_run(db, suite, models, limit, policy)   read every model's state (labels, onboarding plan, full runs,
        a completed training run) -> embedllm.policy.decide per model -> evaluation jobs:
          full     every suite task the model lacks (tasks.evaluate's planner, as without a policy)
          onboard  the questions that tell most about it, chosen in the latest completed run (tasks/onboard.py)
          budget   up to N more questions it has no label for
          nothing  onboarded with full_evaluation never
        -> the onboard and budget pairs are written to `evaluation_plan` in one transaction, BEFORE lm-eval runs,
           so validation checks each such model against what it was asked to answer (a sparse matrix by plan).

The policy maths is embedllm/policy.py; the question choice embedllm/onboarding.py. Planning without a policy
(the evaluate flow, `embedllm evaluate`) is tasks.evaluate.plan_evaluations: every model fully.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

import warehouse
from embedllm.common import utc_now
from embedllm.errors import ConfigError
from embedllm.policy import BUDGET, FULL, NOTHING, ONBOARD, ModelState, Policy, decide, for_model
from tasks import stage
from tasks.lm_eval_run import EvalJob
from tasks.stage import StageReport


@dataclass
class Decision:
    """What the plan does with one model: the action, its policy, and the questions planned (onboard, budget)."""

    model: str
    model_id: int
    action: str
    policy: Policy
    question_ids: list[str] = field(default_factory=list)
    run_id: str | None = None  # the run onboarding questions were chosen in

    def text(self) -> str:
        """Return `name: onboard on 12 questions (run R)` for the plan's note."""
        if self.action == ONBOARD:
            return f"{self.model}: onboard on {len(self.question_ids)} questions (run {self.run_id})"
        if self.action == BUDGET:
            return (
                f"{self.model}: budget of {len(self.question_ids)} more questions ({self.policy.full_evaluation})"
            )
        if self.action == NOTHING:
            return f"{self.model}: onboarded, full_evaluation never: nothing more"
        return f"{self.model}: full evaluation"


@dataclass
class RunPlan:
    """The evaluation jobs of a pipeline run and the decision behind each model."""

    jobs: list[EvalJob]
    decisions: list[Decision]
    report: StageReport = field(default_factory=lambda: StageReport("plan"))

    def of(self, action: str) -> list[Decision]:
        """Return the decisions with one action."""
        return [d for d in self.decisions if d.action == action]


# ------------------------------------------------------------------------------------------------ deciding


def model_states(con: duckdb.DuckDBPyConnection, models: list[str] | None) -> list[dict]:
    """Return the plan_model_states rows (of the named models only, when given)."""
    rows = warehouse.query(con, "plan_model_states").to_dicts()
    if models:
        from embedllm import registry

        names = {registry.find_row(rows, n)["name"] for n in models}  # one-line error for an unknown name
        rows = [r for r in rows if r["name"] in names]
    return rows


def decisions_for(rows: list[dict], default: Policy) -> list[Decision]:
    """Return the decision for every model state row (no questions chosen yet)."""
    out = []
    for r in rows:
        policy = for_model(default, r["onboard_questions"], r["full_evaluation"])
        state = ModelState(
            n_labels=int(r["n_labels"]),
            onboarded=bool(r["onboarded"]),
            full_started=bool(r["full_started"]),
            run_exists=bool(r["run_exists"]),
        )
        out.append(Decision(r["name"], int(r["model_id"]), decide(policy, state), policy))
    return out


def choose_onboarding(db: str | Path, decisions: list[Decision], suite: str, seed: int) -> dict[str, dict]:
    """Fill in each onboarding decision's questions (chosen in the latest run); return {model: lm-eval samples}."""
    from embedllm.onboarding import choose_for_view, samples_for
    from tasks.onboard import read_view, suite_tasks

    view = read_view(db)  # the latest completed run, its checkpoint and questions (one short session)
    tasks = suite_tasks(suite)
    samples = {}
    for d in decisions:
        eligible = (view.doc_id >= 0) & pl.Series(view.task).is_in(tasks).to_numpy()
        n_bench = len(set(view.benchmark[eligible]))
        if d.policy.onboard_questions < n_bench:
            raise ConfigError(
                f"onboard_questions {d.policy.onboard_questions} for model {d.model} is smaller than the "
                f"number of benchmarks of suite {suite} in run {view.run_id} ({n_bench}); set onboard_questions "
                f">= {n_bench} (the pipeline parameter or the model's registry field), or 0 to evaluate it fully"
            )
        d.question_ids = choose_for_view(view, d.policy.onboard_questions, seed, tasks=tasks)
        d.run_id = view.run_id
        samples[d.model] = samples_for(view, d.question_ids)
    return samples


def budget_samples(con: duckdb.DuckDBPyConnection, d: Decision, tasks: list[str]) -> dict[str, list[int]]:
    """Fill in a budget decision's questions (up to N it lacks); return its lm-eval samples ({} when none left)."""
    rows = warehouse.query(
        con, "plan_budget_questions", {"model_id": d.model_id, "tasks": tasks, "n": d.policy.budget}
    )
    d.question_ids = rows["question_id"].to_list()
    samples: dict[str, list[int]] = {}
    for task, doc in zip(rows["task"].to_list(), rows["doc_id"].to_list()):
        samples.setdefault(task, []).append(int(doc))
    return {t: sorted(v) for t, v in sorted(samples.items())}


# ------------------------------------------------------------------------------------------------ writing


def record_plan(con: duckdb.DuckDBPyConnection, decisions: list[Decision]) -> int:
    """Write the onboard and budget pairs to evaluation_plan in one transaction; return the pairs given."""
    now = utc_now()
    frame = pl.DataFrame(
        [
            {"model_id": d.model_id, "question_id": q, "reason": d.action, "run_id": d.run_id, "planned_at": now}
            for d in decisions
            if d.action in (ONBOARD, BUDGET)
            for q in d.question_ids
        ],
        schema={
            "model_id": pl.Int32,
            "question_id": pl.String,
            "reason": pl.String,
            "run_id": pl.String,
            "planned_at": pl.Datetime("us"),
        },
    )
    with warehouse.transaction(con):
        for d in decisions:
            if d.action == ONBOARD:
                warehouse.execute(con, "plan_clear_onboarding", {"model_id": d.model_id})
        if frame.height:
            con.register("_plan", frame.to_arrow())
            try:
                warehouse.execute(con, "plan_insert")
            finally:
                con.unregister("_plan")
    return frame.height


# ------------------------------------------------------------------------------------------------ the stage


def plan_note(plan: RunPlan) -> str:
    """Return the plan's one-line note: models to evaluate, and what the policy decided for the others."""
    evaluated = {j.model for j in plan.jobs}
    policy = [d.text() for d in plan.decisions if d.action == NOTHING or d.model in evaluated]
    head = (
        f"{len(plan.jobs)} model(s) to evaluate"
        if plan.jobs
        else "every model has results for every task it is to answer: nothing to evaluate"
    )
    return head + (": " + "; ".join(policy) if policy else "")


def plan_run(
    db: str | Path,
    suite: str,
    models: list[str] | None,
    limit: int | None,
    policy: Policy,
    *,
    device: str | None = None,
    seed: int = 0,
    wait: float = 0.0,
) -> RunPlan:
    """Return the run's evaluation jobs under POLICY after recording the onboard and budget pairs it planned."""
    from tasks.evaluate import plan_jobs, selected_models
    from tasks.onboard import suite_tasks

    with stage.writing(db, "plan", wait=wait) as report:
        with stage.session(db) as con:
            if models:
                selected_models(con, models)  # one-line errors for unknown, removed or imported names
            decisions = decisions_for(model_states(con, models), policy)
        onboard = [d for d in decisions if d.action == ONBOARD]
        samples = choose_onboarding(db, onboard, suite, seed) if onboard else {}
        jobs: list[EvalJob] = []
        with stage.session(db) as con:
            full = [d.model for d in decisions if d.action == FULL]
            if full:
                jobs += plan_jobs(con, suite, full, limit, None, device)
            for d in onboard:
                jobs += plan_jobs(con, suite, [d.model], None, samples[d.model], device)
            tasks = suite_tasks(suite) if any(d.action == BUDGET for d in decisions) else []
            for d in (d for d in decisions if d.action == BUDGET):
                chosen = budget_samples(con, d, tasks)
                if chosen:
                    jobs += plan_jobs(con, suite, [d.model], None, chosen, device)
            record_plan(con, decisions)
        result = RunPlan(jobs=jobs, decisions=decisions, report=report)
        report.note = plan_note(result)
    result.report = report
    return result
