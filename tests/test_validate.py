"""Validation with real Great Expectations on small real warehouses: one hand-made defect per expectation.

The clean warehouse (loaded through tasks.load.load_batches) passes every expectation; each defect test breaks
one thing and checks that exactly the expectation meant for it fails, with its unexpected count and examples.
Defects the schema forbids (null or out-of-range labels, duplicate pairs, null prompts) are made in a copy of the
table without constraints, as a warehouse restored from an export could hold.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import yaml

from embedllm.errors import ConfigError
from embedllm.ids import question_id
from embedllm.validation import CHECKS, ERROR, FAIL, ValidationFailed, load_config, run_checks
from tasks.load import Batch, Meta, load_batches
from tasks.validate import collect_frames, current_validation, validate

MODELS = ("m1", "m2", "m3")
# benchmark -> (task, n questions, n_choices or None for generative, accuracy the labels are drawn with)
BENCHMARKS = {
    "mc": ("mc_task", 60, 4, 0.6),
    "gen": ("gen_task", 60, None, 0.5),
    "tiny": ("tiny_task", 10, None, 0.5),
}


def _split(i: int) -> str:
    """Return an exact 80/10/10 split by position."""
    return "train" if i % 10 < 8 else ("val" if i % 10 == 8 else "test")


def _qid(benchmark: str, i: int) -> str:
    """Return the question id of the i-th question of a test benchmark."""
    return question_id(BENCHMARKS[benchmark][0], str(i))


def _batches() -> list[Batch]:
    """Return the clean warehouse's batches: 3 models x 3 benchmarks, all covered, sensible accuracies."""
    rng = np.random.default_rng(7)
    batches = []
    for model in MODELS:
        for bench, (task, n, choices, acc) in BENCHMARKS.items():
            labels = (rng.random(n) < acc).astype(np.int8)
            labels[:2] = [0, 1]  # never all-equal by chance
            if bench == "tiny" and model == "m1":
                labels[:] = 0  # all-equal on a small benchmark is allowed
            rows = pl.DataFrame(
                {
                    "question_id": [_qid(bench, i) for i in range(n)],
                    "benchmark": bench,
                    "task": task,
                    "doc_id": list(range(n)),
                    "prompt": [f"{bench} question {i}?" for i in range(n)],
                    "n_choices": [choices] * n,
                    "split": [_split(i) for i in range(n)],
                    "label": labels,
                },
                schema_overrides={"n_choices": pl.Int64},
            )
            batches.append(
                Batch(
                    Meta(
                        kind="lm-eval-import",
                        content_hash=f"{model}-{task}",
                        model=model,
                        task=task,
                        source=f"test/{model}/{task}",
                    ),
                    rows,
                )
            )
    return batches


@pytest.fixture
def clean(con):
    """A connection to a warehouse holding the clean matrix."""
    load_batches(con, _batches())
    return con


def relax(con, table: str) -> None:
    """Replace TABLE by a copy without constraints (NOT NULL, CHECK, PRIMARY KEY)."""
    con.execute(f"CREATE TABLE {table}_relaxed AS SELECT * FROM {table}")
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE {table}_relaxed RENAME TO {table}")


def model_id(con, name: str) -> int:
    """Return a model's id."""
    return con.execute("SELECT model_id FROM models WHERE name = ?", [name]).fetchall()[0][0]


def validated(db, **kwargs):
    """Return the validation run the validate stage made now on the warehouse at db (never a skipped one)."""
    done = validate(db, **kwargs)
    assert done.result is not None and not done.report.skipped, done.headline()
    assert done.report.rows == {"validation_runs": 1}
    return done.result


def failing(result) -> set[str]:
    """Return the names of the checks that did not pass."""
    return {c.check for c in result.checks if c.status != "pass"}


def test_clean_warehouse_passes_every_expectation(clean, warehouse_path):
    result = validated(warehouse_path, data_docs=False)
    assert result.success, result.summary_markdown()
    assert len(result.checks) == len(CHECKS) >= 15
    assert result.frame_rows["labels"] == 3 * 130 and result.frame_rows["questions"] == 130
    assert all(c.unexpected_count in (0, None) for c in result.checks)


def test_empty_warehouse_fails_labels_present(con, warehouse_path):
    result = validated(warehouse_path, data_docs=False)
    assert failing(result) == {"labels_present"}
    assert result.check("labels_present").examples == [{"observed_value": 0}]


def test_null_label_fails_label_not_null(clean, warehouse_path):
    relax(clean, "correctness")
    clean.execute(
        "UPDATE correctness SET label = NULL WHERE question_id = ? AND model_id = ?",
        [_qid("gen", 3), model_id(clean, "m2")],
    )
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"label_not_null"}
    check = c.check("label_not_null")
    assert check.status == FAIL and check.unexpected_count == 1
    assert check.examples[0]["question_id"] == _qid("gen", 3)


def test_label_outside_zero_one_fails_label_in_set(clean, warehouse_path):
    relax(clean, "correctness")
    clean.execute("UPDATE correctness SET label = 2 WHERE question_id IN (?, ?)", [_qid("gen", 5), _qid("gen", 6)])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"label_in_set"}
    assert c.check("label_in_set").unexpected_count == 6  # two questions x three models
    assert {str(ex["label"]) for ex in c.check("label_in_set").examples} == {"2"}


def test_duplicate_model_question_pair_fails_label_pair_unique(clean, warehouse_path):
    relax(clean, "correctness")
    clean.execute(
        "INSERT INTO correctness SELECT * FROM correctness WHERE question_id = ? AND model_id = ?",
        [_qid("mc", 4), model_id(clean, "m1")],
    )
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"label_pair_unique"}
    check = c.check("label_pair_unique")
    assert check.unexpected_count == 2  # both rows of the pair
    assert check.examples[0]["question_id"] == _qid("mc", 4)


def test_labels_of_unknown_question_fail_labels_reference_questions(clean, warehouse_path):
    clean.execute("INSERT INTO correctness VALUES (?, 'ghost-question', 1, 1.0, 'x')", [model_id(clean, "m1")])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"labels_reference_questions"}
    assert c.check("labels_reference_questions").examples[0]["question_id"] == "ghost-question"


def test_null_prompt_fails_prompt_not_null(clean, warehouse_path):
    relax(clean, "questions")
    clean.execute("UPDATE questions SET prompt = NULL WHERE question_id = ?", [_qid("mc", 1)])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"prompt_not_null"}
    assert c.check("prompt_not_null").examples[0]["task"] == "mc_task"


def test_blank_prompt_fails_prompt_not_blank(clean, warehouse_path):
    clean.execute("UPDATE questions SET prompt = ' \t ' WHERE question_id = ?", [_qid("gen", 9)])
    clean.execute("UPDATE questions SET prompt = '' WHERE question_id = ?", [_qid("gen", 10)])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"prompt_not_blank"}
    assert c.check("prompt_not_blank").unexpected_count == 2


def test_null_benchmark_fails_benchmark_not_null(clean, warehouse_path):
    relax(clean, "questions")
    clean.execute("UPDATE questions SET benchmark = NULL WHERE question_id = ?", [_qid("gen", 2)])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"benchmark_not_null"}


def test_empty_benchmark_fails_benchmark_not_blank(clean, warehouse_path):
    clean.execute("UPDATE questions SET benchmark = '' WHERE question_id = ?", [_qid("gen", 2)])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"benchmark_not_blank"}


def test_null_split_fails_split_not_null(clean, warehouse_path):
    relax(clean, "questions")
    clean.execute("UPDATE questions SET split = NULL WHERE question_id = ?", [_qid("gen", 2)])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"split_not_null"}


def test_unknown_split_fails_split_in_set(clean, warehouse_path):
    relax(clean, "questions")
    clean.execute("UPDATE questions SET split = 'dev' WHERE question_id = ?", [_qid("gen", 2)])
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"split_in_set"}
    assert c.check("split_in_set").examples[0]["split"] == "dev"


def test_skewed_split_shares_fail_split_shares(clean, warehouse_path):
    clean.execute("UPDATE questions SET split = 'test' WHERE split = 'train' AND benchmark = 'mc'")
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"split_shares"}
    assert {ex["split"] for ex in c.check("split_shares").examples} == {"train", "test"}


def test_missing_labels_fail_coverage_and_list_the_gap(clean, warehouse_path):
    clean.execute(
        "DELETE FROM correctness WHERE model_id = ? AND question_id IN "
        "(SELECT question_id FROM questions WHERE task = 'mc_task' AND doc_id IN (2, 3, 5, 8, 10, 11, 40))",
        [model_id(clean, "m2")],
    )
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"coverage"}
    check = c.check("coverage")
    assert check.unexpected_count == 1
    gap = check.examples[0]
    assert gap["model"] == "m2" and gap["n_missing"] in (7, "7") and gap["missing_by_benchmark"] == "mc: 7"
    assert gap["missing_examples"] == "mc_task#2, mc_task#3, mc_task#5"


def test_coverage_with_suite_counts_only_the_suites_questions(clean, warehouse_path, tmp_path):
    clean.execute(
        "DELETE FROM correctness WHERE model_id = ? AND question_id IN "
        "(SELECT question_id FROM questions WHERE benchmark = 'gen')",
        [model_id(clean, "m3")],
    )
    suite = tmp_path / "only_mc.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "only_mc",
                "tasks": [
                    {"task": "mc_task", "benchmark": "mc", "label_rule": "acc"},
                    {"task": "tiny_task", "benchmark": "tiny", "label_rule": "acc"},
                ],
            }
        )
    )
    assert failing(validated(warehouse_path, data_docs=False)) == {"coverage"}
    assert validated(warehouse_path, suite=str(suite), data_docs=False).success


def test_suite_without_questions_in_the_warehouse_fails_suite_questions_present(clean, warehouse_path, tmp_path):
    suite = tmp_path / "elsewhere.yaml"
    suite.write_text(yaml.safe_dump({"name": "elsewhere", "tasks": [{"task": "other_task", "label_rule": "acc"}]}))
    c = validated(warehouse_path, suite=str(suite), data_docs=False)
    assert failing(c) == {"suite_questions_present"}
    assert c.check("suite_questions_present").unexpected_count == len(MODELS)


def test_inactive_model_need_not_cover_the_suite(clean, warehouse_path):
    clean.execute(
        "DELETE FROM correctness WHERE model_id = ? AND question_id IN "
        "(SELECT question_id FROM questions WHERE benchmark = 'gen')",
        [model_id(clean, "m3")],
    )
    clean.execute("UPDATE models SET active = false WHERE name = 'm3'")
    assert validated(warehouse_path, data_docs=False).success


def test_all_equal_labels_fail_labels_not_constant(clean, warehouse_path):
    clean.execute(
        "UPDATE correctness SET label = 1 WHERE model_id = ? AND question_id IN "
        "(SELECT question_id FROM questions WHERE benchmark = 'gen')",
        [model_id(clean, "m3")],
    )
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"labels_not_constant"}
    example = c.check("labels_not_constant").examples[0]
    assert (example["model"], example["benchmark"]) == ("m3", "gen")
    # m1's all-zero labels on the 10-question benchmark are below min_questions (50) and not flagged
    assert all(ex["benchmark"] != "tiny" for ex in c.check("labels_not_constant").examples)


def test_accuracy_far_below_chance_fails_above_chance(clean, warehouse_path):
    clean.execute(
        "UPDATE correctness SET label = CASE WHEN question_id IN (?, ?) THEN 1 ELSE 0 END "
        "WHERE model_id = ? AND question_id IN (SELECT question_id FROM questions WHERE benchmark = 'mc')",
        [_qid("mc", 0), _qid("mc", 1), model_id(clean, "m2")],
    )
    c = validated(warehouse_path, data_docs=False)
    assert failing(c) == {"above_chance"}
    example = c.check("above_chance").examples[0]
    assert (example["model"], example["benchmark"]) == ("m2", "mc")
    assert float(example["chance"]) == pytest.approx(0.25)


def test_margin_from_config_decides_below_chance(clean, warehouse_path, tmp_path):
    clean.execute(
        "UPDATE correctness SET label = CASE WHEN question_id IN (?, ?) THEN 1 ELSE 0 END "
        "WHERE model_id = ? AND question_id IN (SELECT question_id FROM questions WHERE benchmark = 'mc')",
        [_qid("mc", 0), _qid("mc", 1), model_id(clean, "m2")],
    )
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("chance:\n  margin: 0.3\n")
    assert validated(warehouse_path, config_path=lenient, data_docs=False).success


def test_metric_error_is_reported_as_error_not_failure(clean, warehouse_path, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("questions:\n  prompt_pattern: '(unclosed'\n")
    c = validated(warehouse_path, config_path=broken, data_docs=False)
    assert not c.success
    check = c.check("prompt_not_blank")
    assert check.status == ERROR and "missing )" in check.message
    assert [x.check for x in c.errors] == ["prompt_not_blank"] and c.failed == []
    row = clean.execute(
        "SELECT success, n_failed, n_errors FROM validation_runs WHERE run_id = ?", [c.run_id]
    ).fetchall()[0]
    assert row == (False, 0, 1)
    with pytest.raises(ValidationFailed, match="prompt_not_blank \\(error\\)"):
        c.raise_for_failure()


def test_frame_missing_a_column_is_an_error_for_its_checks_only(clean):
    cfg = load_config()
    frames = collect_frames(clean, cfg)
    frames["labels"] = frames["labels"].drop(columns=["label"])
    results, _ = run_checks(frames, cfg)
    status = {r.check: r.status for r in results}
    assert status["label_not_null"] == status["label_in_set"] == ERROR
    assert status["label_pair_unique"] == "pass" and status["coverage"] == "pass"
    assert "label" in next(r for r in results if r.check == "label_in_set").message


def test_run_is_recorded_and_data_docs_written(clean, warehouse_path):
    c = validated(warehouse_path)
    assert c.success
    docs = warehouse_path.parent / "wh_data_docs"
    assert c.data_docs_path == docs / "index.html" and c.data_docs_path.exists()
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == len({ch.frame for ch in CHECKS})
    assert any(c.run_id in str(p) for p in pages)
    assert "values must belong to this set" in (docs / "expectations" / "labels.html").read_text()
    row = clean.execute(
        "SELECT success, n_expectations, n_failed, n_errors, data_docs_path, summary FROM validation_runs"
    ).fetchall()
    assert len(row) == 1
    success, n_exp, n_failed, n_errors, path, summary = row[0]
    assert (success, n_exp, n_failed, n_errors, path) == (True, len(CHECKS), 0, 0, str(c.data_docs_path))
    assert {ch["check"] for ch in json.loads(summary)["checks"]} == {ch.name for ch in CHECKS}


def test_summary_markdown_lists_failures_with_examples(clean, warehouse_path):
    clean.execute(
        "DELETE FROM correctness WHERE model_id = ? AND question_id = ?", [model_id(clean, "m1"), _qid("gen", 0)]
    )
    text = validated(warehouse_path, data_docs=False).summary_markdown()
    assert "validation FAILED" in text and "| coverage | FAIL | n_missing | 1 |" in text and "gen_task#0" in text


def test_config_unknown_key_is_refused_with_did_you_mean(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("chance:\n  margn: 0.2\n")
    with pytest.raises(ConfigError, match="unknown key 'margn' \\(did you mean 'margin'\\?\\)"):
        load_config(bad)
    bad.write_text("splits:\n  targets: {train: 0.7, val: 0.1, test: 0.1}\n")
    with pytest.raises(ConfigError, match="sum to 1"):
        load_config(bad)


def test_cli_validate_prints_failures_and_exits_non_zero(clean, warehouse_path):
    from typer.testing import CliRunner

    import embedllm.cli.validate  # noqa: F401  (registers the command)
    from embedllm.cli.app import app

    clean.execute(
        "DELETE FROM correctness WHERE model_id = ? AND question_id = ?", [model_id(clean, "m3"), _qid("mc", 7)]
    )
    clean.close()
    result = CliRunner().invoke(
        app, ["validate", "--no-docs", "--warehouse", str(warehouse_path)], terminal_width=120
    )
    assert result.exit_code == 1 and isinstance(result.exception, ValidationFailed)
    assert "FAILED coverage" in result.output and "model=m3" in result.output and "mc_task#7" in result.output
    assert f"validation FAILED: {len(CHECKS)} expectations, 1 failed, 0 errors" in result.output


def test_a_passing_run_is_current_until_the_next_load_or_another_suite_or_config(clean, warehouse_path, tmp_path):
    first = validated(warehouse_path, data_docs=False)
    again = validate(warehouse_path, data_docs=False)
    assert again.result is None and again.report.skipped and again.run_id == first.run_id and again.success
    assert "validation up to date: run " + first.run_id in again.headline() and again.report.rows == {}
    assert current_validation(clean)["run_id"] == first.run_id
    assert current_validation(clean, suite="demo") is None  # another suite checks other things
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("chance:\n  margin: 0.3\n")
    assert current_validation(clean, config_path=lenient) is None  # so do other thresholds
    assert validated(warehouse_path, data_docs=False, force=True).run_id != first.run_id
    late = pl.DataFrame(
        {
            "question_id": [question_id("late_task", "0")],
            "benchmark": "late",
            "task": "late_task",
            "prompt": "a late question?",
            "label": [1],
        }
    )
    load_batches(
        clean, [Batch(Meta(kind="lm-eval-import", content_hash="late", model="m1", task="late_task"), late)]
    )
    assert current_validation(clean) is None  # something was loaded since
