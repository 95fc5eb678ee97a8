"""lm-eval importer: every 0.4.x layout, label rules, the aggregate cross-check, bad input, idempotency.

Fixtures were recorded by scripts/record_lm_eval_fixtures.py from the real harness on a tiny random model:
tests/fixtures/lm_eval/jsonl (lm-eval 0.4.13, two timestamped runs), old_json_array (0.4.0-style, derived) and
chat (--apply_chat_template --fewshot_as_multiturn --num_fewshot 2 --system_instruction, a ChatML tiny model).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from embedllm.errors import AggregateMismatch, ConfigError, InputError
from embedllm.ids import question_id
from embedllm.labels import LabelRule, parse_overrides, rule_for
from tasks.ingest_lm_eval import (
    PromptExtractor,
    batches_from_results,
    import_lm_eval_dir,
    lm_eval_doc_hash,
    read_lm_eval_dir,
)
from tasks.load import load_batches

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval"
JSONL = FIXTURES / "jsonl"
OLD = FIXTURES / "old_json_array"
RULES = {"fx_mc": "acc", "fx_gen": "exact_match,flexible-extract", "fx_cont": "p_correct>0.5"}


def _batches(path, rules=RULES, model="tiny-lm"):
    results, samples = read_lm_eval_dir(path, model)
    return {
        b.meta.task: b
        for b in batches_from_results(
            results,
            samples,
            model=model,
            kind="lm-eval-import",
            source=str(path),
            rules=parse_overrides([f"{k}={v}" for k, v in rules.items()]),
        )
    }


def _newest_results(folder: Path) -> Path:
    return max(folder.glob("results_*.json"), key=lambda p: p.name)


# ------------------------------------------------------------------------------------------------ label rules


@pytest.mark.parametrize(
    "text, metric, filt, thr, canonical",
    [
        ("acc", "acc", "none", None, "acc"),
        ("acc_norm", "acc_norm", "none", None, "acc_norm"),
        ("exact_match,flexible-extract", "exact_match", "flexible-extract", None, "exact_match,flexible-extract"),
        ("mc2>0.5", "mc2", "none", 0.5, "mc2>0.5"),
        (
            " exact_match , strict-match > 0.25 ",
            "exact_match",
            "strict-match",
            0.25,
            "exact_match,strict-match>0.25",
        ),
    ],
)
def test_label_rule_text_parses_to_metric_filter_threshold(text, metric, filt, thr, canonical):
    rule = LabelRule.parse(text)
    assert (rule.metric, rule.filter, rule.threshold) == (metric, filt, thr)
    assert str(rule) == canonical and LabelRule.parse(str(rule)) == rule
    assert rule.key == f"{metric},{filt}"


@pytest.mark.parametrize("bad", ["", ">0.5", "acc>high", "acc,,x>"])
def test_malformed_label_rule_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="label rule"):
        LabelRule.parse(bad)


def test_default_rules_cover_paper_tasks_groups_and_globs():
    assert rule_for("gsm8k") == LabelRule("exact_match", "flexible-extract")
    assert rule_for("truthfulqa_mc2") == LabelRule("acc", "none", 0.5)
    assert rule_for("mmlu_abstract_algebra") == LabelRule("acc")  # glob mmlu_*
    assert rule_for("some_subtask", group="mmlu") == LabelRule("acc")  # via its group
    assert rule_for("gsm8k", {"gsm8k": "exact_match,strict-match"}).filter == "strict-match"


def test_unknown_task_without_rule_suggests_close_names():
    with pytest.raises(ConfigError, match=r"no label rule for task gsm8kk .*did you mean 'gsm8k'"):
        rule_for("gsm8kk")


def test_label_rule_override_needs_task_equals_rule():
    with pytest.raises(ConfigError, match="expected TASK=RULE"):
        parse_overrides(["gsm8k"])


# ---------------------------------------------------------------------------------------------- reading


def test_jsonl_layout_gives_one_batch_per_task_with_lm_eval_aggregates():
    batches = _batches(JSONL)
    assert set(batches) == {"fx_mc", "fx_cont", "fx_gen"}
    results = json.loads(_newest_results(JSONL / "tiny-lm").read_text())
    for task, b in batches.items():
        rule = LabelRule.parse(RULES[task])
        assert b.meta.aggregate_value == results["results"][task][rule.key]
        assert b.rows["value"].mean() == pytest.approx(b.meta.aggregate_value, abs=1e-9)
        assert b.meta.lm_eval_version == "0.4.13"
        assert b.meta.task_version == str(results["versions"][task])
        assert len(b.meta.task_config_hash) == 64 and len(b.meta.content_hash) == 64
    assert batches["fx_mc"].rows["benchmark"].unique().to_list() == ["fx_suite"]  # group name
    assert batches["fx_cont"].rows["benchmark"].unique().to_list() == ["fx_suite"]
    assert batches["fx_gen"].rows["benchmark"].unique().to_list() == ["fx_gen"]


def test_newest_run_per_task_is_taken_when_several_runs_sit_side_by_side():
    assert len(list((JSONL / "tiny-lm").glob("results_*.json"))) == 2  # older fx_mc --limit 4, then full run
    results, samples = read_lm_eval_dir(JSONL)
    assert len(samples["fx_mc"]) == 12
    assert results["_embedllm"]["fx_mc"]["results_file"].endswith(_newest_results(JSONL / "tiny-lm").name)


def test_question_ids_come_from_task_and_doc_hash_and_prompts_lose_few_shot_examples():
    b = _batches(JSONL)["fx_mc"]
    first = json.loads((sorted((JSONL / "tiny-lm").glob("samples_fx_mc_*.jsonl"))[-1]).read_text().splitlines()[0])
    assert b.rows["question_id"][0] == question_id("fx_mc", first["doc_hash"])
    assert first["doc_hash"] == lm_eval_doc_hash(first["doc"])  # the fallback reproduces lm-eval's hash
    context = first["arguments"]["gen_args_0"]["arg_0"]
    assert context.count("Question:") == 3  # two few-shot examples + the question
    assert b.rows["prompt"][0] == "Question: What is 2 + 3?\nAnswer:"
    assert b.rows["n_choices"].to_list()[:3] == [4, 3, 4]
    assert b.rows["target"][0] == "1"


def test_prompt_falls_back_to_splitting_few_shot_delimiters_without_a_template():
    extract = PromptExtractor(
        {
            "num_fewshot": 2,
            "fewshot_delimiter": "\n\n",
            "doc_to_text": "!function x.y",
            "description": "Maths.\n\n",
        },
        None,
    )
    ctx = "Maths.\n\nQ: 1+1?\nA: 2\n\nQ: 2+2?\nA: 4\n\nQ: 3+3?\nA:"
    assert extract(ctx, {"q": "3+3"}) == "Q: 3+3?\nA:"


def test_ambiguous_few_shot_split_renders_doc_to_text_for_that_doc():
    extract = PromptExtractor({"num_fewshot": 1, "fewshot_delimiter": "\n\n", "doc_to_text": "Q: {{q}}\nA:"}, None)
    tricky = "Q: first para\n\nsecond para\nA: x\n\nQ: the question\nA:"  # the example holds the delimiter
    plain = "Q: one\nA: y\n\nQ: other\nA:"
    docs = [lambda: {"q": "the question"}, lambda: (_ for _ in ()).throw(AssertionError("doc read needlessly"))]
    assert extract.many([tricky, plain], docs) == ["Q: the question\nA:", "Q: other\nA:"]
    assert extract(tricky, {"q": "the question"}) == "Q: the question\nA:"


def test_generative_task_keeps_only_the_rule_filter_rows():
    flexible = _batches(JSONL)["fx_gen"]
    strict = _batches(JSONL, {**RULES, "fx_gen": "exact_match,strict-match"})["fx_gen"]
    assert flexible.rows.height == strict.rows.height == 10  # samples file has 20 rows: 10 docs x 2 filters
    assert flexible.rows["label"].mean() == pytest.approx(0.4) and strict.rows["label"].sum() == 0
    assert strict.meta.aggregate_value == 0.0


def test_threshold_rule_labels_raw_values_and_checks_their_mean():
    b = _batches(JSONL)["fx_cont"]
    values, labels = b.rows["value"].to_list(), b.rows["label"].to_list()
    assert any(0 < v < 1 and v != 0.5 for v in values)  # really continuous
    assert labels == [int(v > 0.5) for v in values]
    assert b.meta.label_rule == "p_correct>0.5"


def test_old_json_array_layout_gives_the_same_questions_and_labels():
    new, old = _batches(JSONL), _batches(OLD)
    raw = json.loads((OLD / "pretrained__tiny-lm_fx_mc.jsonl").read_text())
    assert isinstance(raw, list) and isinstance(raw[0]["target"], int) and "doc_hash" not in raw[0]
    for task in new:
        assert (
            old[task]
            .rows.select("question_id", "label", "prompt", "benchmark")
            .equals(new[task].rows.select("question_id", "label", "prompt", "benchmark"))
        )
        assert old[task].meta.aggregate_value == new[task].meta.aggregate_value
    assert old["fx_mc"].rows["target"][0] == "1"  # int target stored as text


def test_samples_as_simple_evaluate_returns_them_give_the_same_batches():
    results, samples = read_lm_eval_dir(JSONL)
    in_memory = {}
    for task in samples:
        raw = Path(results["_embedllm"][task]["samples_file"]).read_text().splitlines()
        converted = []
        for r in map(json.loads, raw):
            args = [tuple(a.values()) for a in r["arguments"].values()]
            converted.append(
                {**r, "arguments": args, "target": int(r["target"]) if r["target"].isdigit() else r["target"]}
            )
        in_memory[task] = converted
    results = {k: v for k, v in results.items() if k != "_embedllm"}
    rules = parse_overrides([f"{k}={v}" for k, v in RULES.items()])
    api = {
        b.meta.task: b
        for b in batches_from_results(results, in_memory, model="m", kind="evaluate", source="api", rules=rules)
    }
    files = _batches(JSONL, model="m")
    for task in files:
        assert api[task].rows.equals(files[task].rows)


def test_lm_eval_0_4_2_names_with_json_array_content_are_read(tmp_path):
    d = tmp_path / "run" / "model-folder"
    d.mkdir(parents=True)
    stamp = "2024-05-01T00-00-00.000001"
    shutil.copy(OLD / "results.json", d / f"results_{stamp}.json")
    for task in ("fx_mc", "fx_cont", "fx_gen"):
        shutil.copy(OLD / f"pretrained__tiny-lm_{task}.jsonl", d / f"samples_{task}_{stamp}.json")
    assert {t: b.rows.height for t, b in _batches(tmp_path / "run").items()} == {
        "fx_mc": 12,
        "fx_cont": 10,
        "fx_gen": 10,
    }


def test_output_path_named_as_a_json_file_is_read(tmp_path):
    # lm_eval --output_path out/my_run.json writes out/my_run_<timestamp>.json + out/samples_<task>_<timestamp>.jsonl
    src = JSONL / "tiny-lm"
    newest = _newest_results(src)
    stamp = newest.stem.removeprefix("results_")
    (tmp_path / "out").mkdir()
    shutil.copy(newest, tmp_path / "out" / f"my_run_{stamp}.json")
    for f in src.glob(f"samples_*_{stamp}.jsonl"):
        shutil.copy(f, tmp_path / "out" / f.name)
    assert {t: b.rows.height for t, b in _batches(tmp_path / "out").items()} == {
        "fx_mc": 12,
        "fx_cont": 10,
        "fx_gen": 10,
    }


# ------------------------------------------------------------------------------------------- loading


def test_import_loads_labels_with_provenance_and_twice_changes_nothing(con, warehouse_path):
    rules = parse_overrides([f"{k}={v}" for k, v in RULES.items()])
    first = import_lm_eval_dir(warehouse_path, JSONL, model="tiny-lm", rules=rules, revision="abc123").load
    assert (first.n_labels, first.n_new_questions, first.n_new_models) == (32, 32, 1)
    second = import_lm_eval_dir(warehouse_path, JSONL, model="tiny-lm", rules=rules, revision="abc123").load
    assert second.loaded == [] and sorted(second.skipped) == ["tiny-lm/fx_cont", "tiny-lm/fx_gen", "tiny-lm/fx_mc"]
    assert con.sql("SELECT count(*) FROM loads").fetchall()[0][0] == 3
    rows = con.sql(
        "SELECT task, lm_eval_version, model_revision, label_rule, aggregate_value, sample_mean "
        "FROM loads ORDER BY task"
    ).fetchall()
    assert rows[1] == ("fx_gen", "0.4.13", "abc123", "exact_match,flexible-extract", 0.4, pytest.approx(0.4))
    assert con.sql("SELECT benchmark, accuracy, n_questions FROM leaderboard ORDER BY benchmark").fetchall() == [
        ("fx_gen", pytest.approx(0.4), 10),
        ("fx_suite", pytest.approx((3 + 5) / 22), 22),
    ]


def test_tampered_aggregate_is_refused_naming_task_and_both_numbers(con, warehouse_path, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(JSONL, copy)
    res_file = _newest_results(copy / "tiny-lm")
    data = json.loads(res_file.read_text())
    data["results"]["fx_mc"]["acc,none"] = 0.9
    res_file.write_text(json.dumps(data))
    with pytest.raises(AggregateMismatch, match=r"task fx_mc: .*0\.250000.*0\.900000"):
        import_lm_eval_dir(
            warehouse_path, copy, model="tiny-lm", rules=parse_overrides([f"{k}={v}" for k, v in RULES.items()])
        )
    assert con.sql("SELECT count(*) FROM correctness").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM questions").fetchall()[0][0] == 0


def test_metric_that_is_not_zero_one_needs_a_threshold():
    with pytest.raises(ConfigError, match=r"fx_cont: per-sample p_correct is .*not 0/1; give a threshold"):
        _batches(JSONL, {**RULES, "fx_cont": "p_correct"})


def test_unknown_filter_or_metric_names_what_lm_eval_reported():
    with pytest.raises(
        ConfigError,
        match=r"fx_gen: lm-eval's results have no exact_match,loose \(they have "
        r"exact_match,flexible-extract, exact_match,strict-match\)",
    ):
        _batches(JSONL, {**RULES, "fx_gen": "exact_match,loose"})
    with pytest.raises(
        ConfigError, match=r"fx_mc: lm-eval's results have no f1,none \(they have acc,none, acc_norm,none\)"
    ):
        _batches(JSONL, {**RULES, "fx_mc": "f1"})


def test_malformed_json_line_names_file_and_line(tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(JSONL, copy)
    samples = sorted((copy / "tiny-lm").glob("samples_fx_gen_*.jsonl"))[-1]
    lines = samples.read_text().splitlines()
    lines[2] = lines[2][:40]
    samples.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"{samples.name}:3: malformed JSON line"):
        read_lm_eval_dir(copy)


def test_malformed_results_json_names_file_line_and_column(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    (d / "results.json").write_text('{\n  "results": {,\n}')
    with pytest.raises(InputError, match=r"results\.json:2:\d+: malformed JSON"):
        read_lm_eval_dir(d)


def test_unknown_layout_says_what_was_expected(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"no lm-eval results file found; expected an lm-eval --output_path"):
        read_lm_eval_dir(tmp_path)
    with pytest.raises(InputError, match="not a directory"):
        read_lm_eval_dir(tmp_path / "missing")


def test_missing_samples_file_asks_for_log_samples(tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(JSONL, copy)
    for f in (copy / "tiny-lm").glob("samples_fx_cont_*"):
        f.unlink()
    with pytest.raises(InputError, match=r"no samples file for task fx_cont .*--log_samples"):
        read_lm_eval_dir(copy)


def test_results_of_several_model_folders_are_refused(tmp_path):
    shutil.copytree(JSONL / "tiny-lm", tmp_path / "a")
    shutil.copytree(JSONL / "tiny-lm", tmp_path / "b")
    with pytest.raises(InputError, match=r"several runs/models \(a, b\)"):
        read_lm_eval_dir(tmp_path)


def test_failed_import_leaves_nothing_even_after_good_tasks(con, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(JSONL, copy)
    res_file = _newest_results(copy / "tiny-lm")
    data = json.loads(res_file.read_text())
    data["results"]["fx_gen"]["exact_match,flexible-extract"] = 0.1  # fx_cont and fx_mc are fine
    res_file.write_text(json.dumps(data))
    results, samples = read_lm_eval_dir(copy)
    batches = batches_from_results(
        results,
        samples,
        model="m",
        kind="lm-eval-import",
        source="x",
        rules=parse_overrides([f"{k}={v}" for k, v in RULES.items()]),
    )
    with pytest.raises(AggregateMismatch, match="task fx_gen"):
        load_batches(con, batches)
    assert con.sql("SELECT count(*) FROM loads").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM models").fetchall()[0][0] == 0


@pytest.mark.parametrize("keep", [4, 11])
def test_samples_file_cut_at_a_line_boundary_is_refused_against_n_samples(tmp_path, keep):
    """A trimmed samples file whose mean may still match lm-eval's aggregate is caught by the row count."""
    copy = tmp_path / "out"
    shutil.copytree(JSONL, copy)
    samples = sorted((copy / "tiny-lm").glob("samples_fx_mc_*.jsonl"))[-1]
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(lines[:keep]) + "\n")
    with pytest.raises(InputError, match=rf"task fx_mc has {keep} sample rows but lm-eval evaluated 12"):
        _batches(copy)


def other_model_run(folder: Path, name: str) -> None:
    """Copy the newest fx_mc run into FOLDER as a newer run of another model (its samples files too)."""
    src = _newest_results(JSONL / "tiny-lm")
    stamp = "2026-11-30T00-00-00.000000"
    data = json.loads(src.read_text())
    data["model_name"], data["config"]["model_args"] = name, {"pretrained": name}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"results_{stamp}.json").write_text(json.dumps(data))
    for f in (JSONL / "tiny-lm").glob(f"samples_*_{src.stem.removeprefix('results_')}.jsonl"):
        shutil.copy(f, folder / f.name.replace(src.stem.removeprefix("results_"), stamp))


def test_a_folder_with_runs_of_two_models_is_refused_or_narrowed_to_the_named_one(tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(JSONL, copy)
    other_model_run(copy / "tiny-lm", "org/other-model")  # side by side with tiny-lm's runs
    with pytest.raises(InputError, match=r"holds runs of 2 different models \(<tmp>/tiny-lm, org/other-model\)"):
        _batches(copy, model="my-name")
    mine = _batches(copy, model="tiny-lm")  # the named model's runs only
    assert all("2026-11-30" not in b.meta.source for b in mine.values()) and set(mine) == set(RULES)
    theirs = _batches(copy, model="org/other-model")
    assert theirs and all("2026-11-30" in b.meta.source for b in theirs.values())


# ---------------------------------------------------------------------------------------- chat templates

CHAT = FIXTURES / "chat"  # a real run with --apply_chat_template --fewshot_as_multiturn --num_fewshot 2
CHAT_RULES = {"fx_mc": "acc", "fx_gen": "exact_match,flexible-extract"}
TEMPLATE_TOKENS = ("<|im_start|>", "<|im_end|>", "system", "assistant")


def _chat_samples(folder: Path = CHAT) -> dict[str, list[dict]]:
    """Return the recorded chat run's samples by task, as lm-eval logged them."""
    (run,) = folder.iterdir()
    return {
        task: [json.loads(line) for line in next(run.glob(f"samples_{task}_*.jsonl")).read_text().splitlines()]
        for task in CHAT_RULES
    }


def _doc_to_text(doc: dict) -> str:
    """Return the fixture tasks' doc_to_text ("Question: {{question}}\\nAnswer:") computed by hand."""
    return f"Question: {doc['question']}\nAnswer:"


def _copy_with_configs(tmp_path: Path, edit) -> Path:
    """Return a copy of the chat fixture whose results file went through EDIT(results dict)."""
    copy = tmp_path / "chat"
    shutil.copytree(CHAT, copy)
    (res_file,) = (copy / "tiny-chat-lm").glob("results_*.json")
    data = json.loads(res_file.read_text())
    edit(data)
    res_file.write_text(json.dumps(data))
    return copy


def test_chat_fixture_is_a_real_multiturn_chat_run():
    (res_file,) = (CHAT / "tiny-chat-lm").glob("results_*.json")
    results = json.loads(res_file.read_text())
    assert results["fewshot_as_multiturn"] is True and "<|im_start|>" in results["chat_template"]
    assert results["n-shot"] == {"fx_mc": 2, "fx_gen": 2} and results["system_instruction"]
    for rows in _chat_samples().values():
        context = rows[0]["arguments"]["gen_args_0"]["arg_0"]
        assert context.startswith(f"<|im_start|>system\n{results['system_instruction']}<|im_end|>")
        assert context.count("<|im_start|>user\n") == 3 and context.count("Question:") == 3  # 2 shots + question


def test_chat_template_run_stores_each_docs_doc_to_text_without_template_or_few_shot_turns(con, warehouse_path):
    rules = parse_overrides([f"{k}={v}" for k, v in CHAT_RULES.items()])
    import_lm_eval_dir(warehouse_path, CHAT, model="tiny-chat-lm", rules=rules)
    stored = dict(con.sql("SELECT question_id, prompt FROM questions").fetchall())
    expected = {
        question_id(task, r["doc_hash"]): _doc_to_text(r["doc"])
        for task, rows in _chat_samples().items()
        for r in rows
    }
    assert stored == expected and len(stored) == 12 + 10
    assert not any(tok in p for p in stored.values() for tok in TEMPLATE_TOKENS)


def test_chat_run_without_run_metadata_is_detected_from_the_prompts():
    """simple_evaluate() in memory, or results stripped of the chat keys: the template tokens give it away."""
    results, _ = read_lm_eval_dir(CHAT)
    for key in ("chat_template", "chat_template_sha", "fewshot_as_multiturn", "system_instruction", "_embedllm"):
        results.pop(key, None)
    rules = parse_overrides([f"{k}={v}" for k, v in CHAT_RULES.items()])
    samples = _chat_samples()
    for task, b in {
        b.meta.task: b for b in batches_from_results(results, samples, model="m", rules=rules)
    }.items():
        by_hash = {r["doc_hash"]: _doc_to_text(r["doc"]) for r in samples[task]}
        assert b.rows["prompt"].to_list() == [by_hash[h] for h in b.rows["doc_hash"].to_list()]


def test_chat_run_whose_doc_to_text_is_a_function_falls_back_to_the_last_user_turn(tmp_path):
    def to_function(data):
        for cfg in data["configs"].values():  # lm-eval logs a callable doc_to_text as its source
            cfg["doc_to_text"] = (
                "def doc_to_text(doc):\n    return 'Question: ' + doc['question'] + '\\nAnswer:'\n"
            )

    batches = _batches(_copy_with_configs(tmp_path, to_function), CHAT_RULES, model="tiny-chat-lm")
    samples = _chat_samples()
    for task, b in batches.items():
        by_hash = {r["doc_hash"]: _doc_to_text(r["doc"]) for r in samples[task]}
        assert b.rows["prompt"].to_list() == [by_hash[h] for h in b.rows["doc_hash"].to_list()]


def test_chat_run_in_an_unknown_template_with_a_function_doc_to_text_is_refused(con, warehouse_path, tmp_path):
    copy = _copy_with_configs(
        tmp_path, lambda data: data["configs"]["fx_mc"].update(doc_to_text="def doc_to_text(doc): ...")
    )
    (samples,) = (copy / "tiny-chat-lm").glob("samples_fx_mc_*.jsonl")
    samples.write_text(samples.read_text().replace("<|im_start|>", "<|turn|>").replace("<|im_end|>", "<|/turn|>"))
    rules = parse_overrides([f"{k}={v}" for k, v in CHAT_RULES.items()])
    with pytest.raises(
        InputError,
        match=r"samples_fx_mc_.*\.jsonl: task fx_mc: the prompts were rendered with a "
        r"chat template.*without --apply_chat_template",
    ) as err:
        import_lm_eval_dir(warehouse_path, copy, model="tiny-chat-lm", rules=rules)
    assert "\n" not in str(err.value)
    assert con.sql("SELECT count(*) FROM questions").fetchall()[0][0] == 0  # fx_gen was fine: nothing written


FAMILIES = {  # one rendered prompt per template family: system, one few-shot turn, then the question
    "ChatML": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ: 1+1?<|im_end|>\n<|im_start|>assistant\n"
    "2<|im_end|>\n<|im_start|>user\nQ: 3+3?<|im_end|>\n<|im_start|>assistant\n",
    "Llama 3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>"
    "user<|end_header_id|>\n\nQ: 1+1?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n2<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nQ: 3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "Gemma": "<bos><start_of_turn>user\nBe brief.\n\nQ: 1+1?<end_of_turn>\n<start_of_turn>model\n2<end_of_turn>\n"
    "<start_of_turn>user\nQ: 3+3?<end_of_turn>\n<start_of_turn>model\n",
    "Phi-3": "<|system|>\nBe brief.<|end|>\n<|user|>\nQ: 1+1?<|end|>\n<|assistant|>\n2<|end|>\n<|user|>\nQ: 3+3?<|end|>\n"
    "<|assistant|>\n",
    "Zephyr": "<|system|>\nBe brief.</s>\n<|user|>\nQ: 1+1?</s>\n<|assistant|>\n2</s>\n<|user|>\nQ: 3+3?</s>\n"
    "<|assistant|>\n",
    "Mistral": "<s>[INST] Q: 1+1? [/INST]2</s>[INST] Q: 3+3? [/INST]",
    "Llama 2": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nQ: 1+1? [/INST] 2 </s><s>[INST] Q: 3+3? [/INST]",
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_last_user_turn_is_the_question_in_each_template_family(family):
    extract = PromptExtractor(
        {"num_fewshot": 1, "doc_to_text": "!function utils.doc_to_text"}, None, system_instruction="Be brief."
    )
    assert extract(FAMILIES[family], {"q": "3+3"}) == "Q: 3+3?"
    assert extract.many([FAMILIES[family]] * 2, [None, None]) == ["Q: 3+3?"] * 2


def test_system_prompt_folded_into_the_only_user_turn_is_stripped():
    """Gemma's template has no system role: it prefixes the system prompt to the first user turn."""
    extract = PromptExtractor(
        {"num_fewshot": 0, "doc_to_text": "def f(doc): ..."}, None, system_instruction="Be brief."
    )
    ctx = "<bos><start_of_turn>user\nBe brief.\n\nQ: 3+3?<end_of_turn>\n<start_of_turn>model\n"
    assert extract(ctx, None) == "Q: 3+3?"


def test_single_turn_chat_prompt_loses_its_few_shot_examples_by_the_delimiter():
    """fewshot_as_multiturn=False: lm-eval folds the examples into the one user turn, joined by the delimiter."""
    extract = PromptExtractor(
        {"num_fewshot": 2, "fewshot_delimiter": "\n\n", "doc_to_text": "def f(doc): ..."}, None
    )
    ctx = "<|im_start|>user\nQ: 1+1?\nA: 2\n\nQ: 2+2?\nA: 4\n\nQ: 3+3?\nA:<|im_end|>\n<|im_start|>assistant\n"
    assert extract(ctx, None) == "Q: 3+3?\nA:"


def test_doc_to_text_naming_a_doc_field_gives_that_field_for_chat_prompts():
    extract = PromptExtractor({"num_fewshot": 0, "doc_to_text": "query"}, None, chat=True)
    assert extract("<|im_start|>user\nanything<|im_end|>\n", {"query": "What is 3+3?"}) == "What is 3+3?"
