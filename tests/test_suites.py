"""Suites: YAML parsing, label rules, did-you-mean, and task names checked against lm-eval's real task index."""

from __future__ import annotations

from pathlib import Path

import lm_eval.tasks
import pytest

from embedllm.errors import ConfigError
from embedllm.suites import SUITES_DIR, load_suite, resolve_tasks

LM_EVAL_TASKS = Path(lm_eval.tasks.__file__).parent
PAPER_FOLDERS = [
    "mmlu/default",
    "truthfulqa",
    "siqa",
    "piqa",
    "medmcqa",
    "mathqa",
    "logiqa",
    "gsm8k",
    "gpqa",
    "asdiv",
]
DEMO_SUITE = SUITES_DIR.parent.parent / "demo_suite"


def write_suite(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    """Write a suite YAML into tmp_path and return its path."""
    path = tmp_path / name
    path.write_text(text)
    return path


def test_paper_suite_names_the_ten_benchmarks_with_rules():
    suite = load_suite("paper")
    assert suite.task_names == [
        "mmlu",
        "truthfulqa_mc2",
        "social_iqa",
        "piqa",
        "medmcqa",
        "mathqa",
        "logiqa",
        "gsm8k",
        "gpqa_main_zeroshot",
        "asdiv",
    ]
    rules = {t.task: str(t.label_rule) for t in suite.tasks}
    assert rules["gsm8k"] == "exact_match,flexible-extract"
    assert rules["truthfulqa_mc2"] == "acc>0.5"
    assert sorted(suite.benchmark_of().values()) == sorted(
        ["mmlu", "truthfulqa", "social_iqa", "piqa", "medmcqa", "mathqa", "logiqa", "gsm8k", "gpqa", "asdiv"]
    )


def test_paper_tasks_exist_in_lm_eval_index():
    """Real lm-eval index over the folders holding the paper's tasks (the full index is the slow test below)."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=[str(LM_EVAL_TASKS / f) for f in PAPER_FOLDERS], include_defaults=False)
    infos = resolve_tasks(load_suite("paper"), tm)
    assert infos["mmlu"].kind == "group" and len(infos["mmlu"].leaves) == 57
    assert infos["gsm8k"].kind == "task" and infos["gsm8k"].version == "3.0"


@pytest.mark.slow
def test_paper_tasks_exist_in_full_lm_eval_index():
    infos = resolve_tasks(load_suite("paper"))
    assert set(infos) == set(load_suite("paper").task_names)


def test_demo_suite_resolves_without_indexing_lm_eval_builtins():
    from embedllm.suites import task_manager

    suite = load_suite("demo")
    tm = task_manager(suite)
    assert "mmlu" not in tm.task_index  # only the include_path was indexed: fast
    infos = resolve_tasks(suite, tm)
    assert set(infos) == set(suite.task_names) and all(i.version for i in infos.values())
    assert suite.include_path == (DEMO_SUITE.resolve(),)


def test_unknown_suite_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown suite 'dmeo' \(did you mean 'demo'\?\)"):
        load_suite("dmeo")


def test_suite_by_path_with_user_include_path(tmp_path):
    path = write_suite(
        tmp_path,
        f"name: mine\ninclude_path: {DEMO_SUITE}\ntasks:\n"
        "  - demo_logic\n  - {task: demo_gen_math, benchmark: sums, num_fewshot: 2}\n",
    )
    suite = load_suite(path)
    assert suite.name == "mine" and suite.get("demo_gen_math").benchmark == "sums"
    assert suite.get("demo_gen_math").num_fewshot == 2
    assert str(suite.get("demo_logic").label_rule) == "acc"  # default from label_rules.yaml
    assert set(resolve_tasks(suite)) == {"demo_logic", "demo_gen_math"}


def test_unknown_task_did_you_mean(tmp_path):
    path = write_suite(
        tmp_path, f"include_path: {DEMO_SUITE}\ntasks:\n  - {{task: demo_logik, label_rule: acc}}\n"
    )
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(DEMO_SUITE), include_defaults=False)  # the CLI also indexes lm-eval's own
    with pytest.raises(ConfigError, match=r"unknown task 'demo_logik'.*did you mean 'demo_logic'"):
        resolve_tasks(load_suite(path), tm)


def test_task_without_label_rule_is_refused(tmp_path):
    path = write_suite(tmp_path, "tasks:\n  - task: hellaswag_xyz\n")
    with pytest.raises(ConfigError, match=r"tasks\[0\] \(hellaswag_xyz\): no label rule for task hellaswag_xyz"):
        load_suite(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("tasks: [\n", r"mine\.yaml:\d+:\d+: malformed YAML"),
        ("tasks: []\n", "non-empty `tasks:` list"),
        ("taks: [demo_logic]\n", "non-empty `tasks:` list"),
        (
            "tasks: [demo_logic]\nnum_fewshots: 2\n",
            r"unknown key\(s\) num_fewshots \(did you mean 'num_fewshot'\?\)",
        ),
        ("tasks:\n  - {task: demo_logic, rule: acc}\n", r"tasks\[0\]: unknown key\(s\) rule"),
        ("tasks: [demo_logic, demo_logic]\n", "listed twice: demo_logic"),
        ("include_path: nowhere\ntasks: [demo_logic]\n", "include_path nowhere"),
        ("tasks:\n  - {task: demo_logic, label_rule: 'acc>>1'}\n", "bad label rule"),
        ("tasks:\n  - {task: demo_logic, num_fewshot: -1}\n", "num_fewshot must be a non-negative integer"),
    ],
)
def test_malformed_suite_is_one_line_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_suite(write_suite(tmp_path, text))
    assert "\n" not in str(err.value)


def test_suite_name_wins_over_a_same_named_folder_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    assert load_suite("demo").path == SUITES_DIR / "demo.yaml"
