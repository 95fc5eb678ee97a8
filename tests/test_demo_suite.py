"""The offline demo suite: every item checked, every task loads through lm-eval's TaskManager from anywhere."""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO_TASKS = ["demo_arithmetic", "demo_knowledge", "demo_science", "demo_reading", "demo_logic", "demo_gen_math"]


def _load_generator():
    """Return scripts/make_demo_suite.py imported as a module."""
    spec = importlib.util.spec_from_file_location("make_demo_suite", ROOT / "scripts" / "make_demo_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def shipped_suite() -> dict[str, list[dict]]:
    """The rows of every demo task as shipped in embedllm/demo_suite/*.jsonl."""
    return gen.read_suite(gen.SUITE_DIR)


@pytest.fixture(scope="module")
def demo_dir() -> Path:
    """The demo_suite folder as the installed embedllm package exposes it."""
    return Path(str(importlib.resources.files("embedllm") / "demo_suite"))


def _task_manager(include_path: Path):
    """Return an lm-eval TaskManager over one folder only (the built-in index takes ~30 s to scan)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(include_path), include_defaults=False)


def _load_tasks(include_path: Path, names: list[str]) -> dict:
    """Return {task name: lm-eval Task} for the named tasks found under include_path."""
    loaded = _task_manager(include_path).load(names)
    tasks = loaded["tasks"] if isinstance(loaded, dict) and "tasks" in loaded else loaded
    return {name: task for name, task in tasks.items()}


# ------------------------------------------------------------------------------------------ content and checker


def test_shipped_items_pass_the_checker(shipped_suite):
    assert gen.check_suite(shipped_suite) == []


def test_shipped_files_are_what_the_generator_writes(shipped_suite):
    assert shipped_suite == gen.build_suite()


def test_counts_per_task_and_in_total(shipped_suite):
    counts = {task: len(rows) for task, rows in shipped_suite.items()}
    assert set(counts) == set(DEMO_TASKS)
    assert min(counts.values()) >= 40, counts
    assert sum(counts.values()) >= 300, counts


def test_ids_are_unique_across_the_suite(shipped_suite):
    ids = [row["id"] for rows in shipped_suite.values() for row in rows]
    assert len(ids) == len(set(ids))
    assert all(
        row["id"].startswith(gen.TASKS[task][1] + "-") for task, rows in shipped_suite.items() for row in rows
    )


def test_multiple_choice_keys_are_spread_over_positions(shipped_suite):
    for task in ["demo_arithmetic", "demo_knowledge", "demo_science", "demo_reading"]:
        positions = [row["answer"] for row in shipped_suite[task]]
        shares = [positions.count(i) / len(positions) for i in range(4)]
        assert max(shares) < 0.45, (task, shares)


@pytest.mark.parametrize(
    ("task", "mutate", "expected"),
    [
        ("demo_arithmetic", lambda r: r.update(answer=(r["answer"] + 1) % 4), "the facts give"),
        ("demo_knowledge", lambda r: r.update(choices=[r["choices"][0]] * 4), "not distinct"),
        ("demo_science", lambda r: r.update(answer=7), "not among"),
        ("demo_logic", lambda r: r.update(answer=(r["answer"] + 1) % len(r["choices"])), "the facts give"),
        ("demo_gen_math", lambda r: r.update(answer=str(int(r["answer"]) + 1)), "expression gives"),
        ("demo_reading", lambda r: r.update(question=""), "empty question"),
    ],
)
def test_checker_reports_a_broken_item(shipped_suite, task, mutate, expected):
    rows = json.loads(json.dumps(shipped_suite[task]))  # deep copy
    for row in rows[:5]:
        mutate(row)
    problems = gen.check_task(task, rows)
    assert len(problems) >= 5 and all(expected in p for p in problems[:5]), problems


def test_checker_reports_duplicate_ids(shipped_suite):
    rows = json.loads(json.dumps(shipped_suite["demo_science"]))
    rows[1]["id"] = rows[0]["id"]
    assert any("duplicate id" in p for p in gen.check_task("demo_science", rows))


def test_syllogisms_solved_by_model_checking():
    y, n, u = gen.YES, gen.NO, gen.UNKNOWN
    assert gen.solve_syllogism([["all", "a", "b"], ["all", "b", "c"]], ["all", "a", "c"]) == y
    assert gen.solve_syllogism([["all", "a", "b"], ["no", "b", "c"]], ["some", "a", "c"]) == n
    assert gen.solve_syllogism([["all", "a", "b"], ["some", "b", "c"]], ["all", "a", "c"]) == u
    assert gen.solve_syllogism([["all", "a", "b"], ["all", "a", "c"]], ["some", "b", "c"]) == y  # non-empty a
    for premises, conclusion, textbook in gen.SYLLOGISMS:
        assert gen.solve_syllogism([list(p) for p in premises], list(conclusion)) == textbook


def test_conditionals_solved_by_truth_table():
    assert gen.solve_conditional(["p", True], "q") == gen.YES  # modus ponens
    assert gen.solve_conditional(["q", False], "p") == gen.NO  # modus tollens
    assert gen.solve_conditional(["q", True], "p") == gen.UNKNOWN  # affirming the consequent
    assert gen.solve_conditional(["p", False], "q") == gen.UNKNOWN  # denying the antecedent


def test_orderings_sequences_weekdays_solved():
    assert gen.solve_order([["Ann", "Ben"], ["Ben", "Cara"]], "max") == "Ann"
    assert gen.solve_order([["Ben", "Cara"], ["Ann", "Ben"]], "min") == "Cara"
    with pytest.raises(ValueError):
        gen.solve_order([["Ann", "Ben"], ["Cara", "Dev"]], "max")  # two chains: no unique top
    assert gen.solve_sequence([3, 7, 11, 15]) == 19
    assert gen.solve_sequence([2, 6, 18, 54]) == 162
    with pytest.raises(ValueError):
        gen.solve_sequence([1, 2, 4, 7])
    assert gen.solve_weekday("Saturday", 3) == "Tuesday"
    assert gen.solve_weekday("Monday", -2) == "Saturday"
    assert gen.eval_expression("(5 + 4) * 8") == 72
    assert gen.eval_expression("84 / 7") == 12


# ------------------------------------------------------------------------------------------ lm-eval task loading


def test_every_task_loads_through_task_manager_from_another_directory(
    demo_dir, shipped_suite, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # relative data_files must not depend on the working directory
    tasks = _load_tasks(demo_dir, DEMO_TASKS)
    assert set(tasks) == set(DEMO_TASKS)
    for name, task in tasks.items():
        docs = list(task.test_docs())
        assert [d["id"] for d in docs] == [r["id"] for r in shipped_suite[name]]
        for doc in docs[:10]:
            prompt = task.doc_to_text(doc)
            assert prompt.endswith("\nAnswer:"), (name, prompt)
            assert doc["question"] in prompt
            if task.OUTPUT_TYPE == "multiple_choice":
                choices = task.doc_to_choice(doc)
                assert choices == doc["choices"] and 0 <= task.doc_to_target(doc) < len(choices)
            else:
                assert task.doc_to_target(doc) == doc["answer"]


def test_task_output_types_metrics_and_generation_stops(demo_dir):
    tasks = _load_tasks(demo_dir, DEMO_TASKS)
    for name in DEMO_TASKS[:-1]:
        assert tasks[name].OUTPUT_TYPE == "multiple_choice"
        assert {m["metric"] for m in tasks[name].config.metric_list} >= {"acc", "acc_norm"}
    gen_math = tasks["demo_gen_math"]
    assert gen_math.OUTPUT_TYPE == "generate_until"
    assert [m["metric"] for m in gen_math.config.metric_list] == ["exact_match"]
    kwargs = gen_math.config.generation_kwargs
    assert "\n" in kwargs["until"] and "Question:" in kwargs["until"]
    assert kwargs["max_gen_toks"] <= 32 and kwargs["do_sample"] is False
    assert {f["name"] for f in gen_math.config.filter_list} == {"strict-match", "flexible-extract"}


def test_gen_math_filters_extract_the_number(demo_dir):
    gen_math = _load_tasks(demo_dir, ["demo_gen_math"])["demo_gen_math"]
    responses = [[" 12"], [" 3 + 9 = 12."], [" She has 1,200 marbles"], [" twelve"]]

    def run(ensemble) -> list[str]:
        out = responses
        for make_filter in ensemble.filters:  # the same pipeline lm-eval applies: regex, then take_first
            out = make_filter().apply(out, [{}] * len(responses))
        return list(out)

    ensembles = {f.name: f for f in gen_math._filters}
    assert run(ensembles["strict-match"]) == ["12", "[invalid]", "[invalid]", "[invalid]"]
    assert run(ensembles["flexible-extract"]) == ["12", "12", "1,200", "[invalid]"]


def test_demo_group_holds_the_six_tasks(demo_dir):
    loaded = _task_manager(demo_dir).load(["demo"])
    tasks = loaded["tasks"] if isinstance(loaded, dict) and "tasks" in loaded else loaded
    names = {t.config.task for t in _flatten(tasks)}
    assert names == set(DEMO_TASKS)


def _flatten(obj) -> list:
    """Return the Task objects inside a (possibly nested) dict / Group structure from TaskManager.load."""
    from lm_eval.api.task import Task

    if isinstance(obj, Task):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _flatten(v)]
    children = getattr(obj, "children", None) or getattr(obj, "tasks", None) or []
    items = children.values() if isinstance(children, dict) else children
    return [t for c in items for t in _flatten(c)]


def test_a_copied_suite_reads_its_own_data(demo_dir, tmp_path, monkeypatch):
    copy = tmp_path / "elsewhere" / "demo_suite"
    shutil.copytree(demo_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    lines = (copy / "logic.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (copy / "logic.jsonl").write_text("".join(lines[:7]), encoding="utf-8")  # the copy differs from the original
    monkeypatch.chdir(tmp_path)
    task = _load_tasks(copy, ["demo_logic"])["demo_logic"]
    assert len(list(task.test_docs())) == 7


# ------------------------------------------------------------------------------------------ suite config


def test_demo_suite_config_names_tasks_benchmarks_and_rules(demo_dir):
    from embedllm.labels import LabelRule

    path = ROOT / "embedllm" / "config" / "suites" / "demo.yaml"
    suite = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert suite["name"] == "demo"
    assert (path.parent / suite["include_path"]).resolve() == demo_dir.resolve()
    entries = {e["task"]: e for e in suite["tasks"]}
    assert list(entries) == DEMO_TASKS
    assert [e["benchmark"] for e in entries.values()] == [
        "arithmetic",
        "knowledge",
        "science",
        "reading",
        "logic",
        "gen_math",
    ]
    for name, entry in entries.items():
        rule = LabelRule.parse(entry["label_rule"])
        if name == "demo_gen_math":
            assert (rule.metric, rule.filter) == ("exact_match", "flexible-extract")
        else:
            assert (rule.metric, rule.filter, rule.threshold) == ("acc", "none", None)


def test_demo_suite_folder_ships_inside_the_package(demo_dir):
    assert demo_dir.resolve() == (ROOT / "embedllm" / "demo_suite").resolve()
    shipped = {p.name for p in demo_dir.iterdir()}
    for filename, _ in gen.TASKS.values():
        assert filename in shipped
    for task in DEMO_TASKS:
        assert f"{task}.yaml" in shipped
