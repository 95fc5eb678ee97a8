#!/usr/bin/env python
"""Record the lm-eval output fixtures the importer tests read, by running the REAL harness on a tiny random model.

    python scripts/record_lm_eval_fixtures.py        # 1-2 minutes on a 2-core CPU, offline

What it does:
1. builds a tiny random Llama with `embedllm.tiny_lm.build_tiny_lm` in a temp dir;
2. runs the lm-eval CLI (`--log_samples`) twice from tests/fixtures/tasks/ (the task YAMLs use relative data paths):
   run A: `fx_mc --limit 4` (an older, partial run), then run B: the group `fx_suite` (fx_mc + fx_cont) and
   `fx_gen` (generative, two filters). Both runs land in one model folder, so the fixture holds two timestamped
   runs and the importer must take the newest per task;
3. copies that model folder verbatim to tests/fixtures/lm_eval/jsonl/tiny-lm/ (the >= 0.4.3 layout:
   results_<ts>.json + samples_<task>_<ts>.jsonl). The only edit: absolute paths of the temp dir and of this
   checkout inside the results JSON are replaced by `<tmp>` and `<repo>` so the fixture does not depend on the
   machine that recorded it (this also changes nothing the importer reads);
4. derives tests/fixtures/lm_eval/old_json_array/ from run B, shaped as lm-eval 0.4.0-0.4.1 wrote it:
   - `results.json` at the top (no model folder), without the keys old versions did not write
     (group_subtasks, task_hashes, higher_is_better, n-samples, lm_eval_version and the tracker's extra fields);
     group membership is kept the old way, as `group: [fx_suite]` inside each subtask's config, and the group's
     entry moves from `results` to `groups`;
   - samples as ONE JSON array per task (indent=2) in a file named `pretrained__tiny-lm_<task>.jsonl`
     (old versions used the .jsonl suffix for a JSON array);
   - each sample loses the keys added in 0.4.2/0.4.3 (`filter`, `metrics`, `doc_hash`, `prompt_hash`,
     `target_hash`): generative rows then come block by block per filter, in filter_list order, as old versions
     logged them;
   - `arguments` becomes a list of [context, continuation-or-gen_kwargs] lists and `resps`/`filtered_resps`
     hold real numbers and booleans instead of the strings the newer CLI writes;
   - `target` becomes an int where it is a digit string (old versions dumped doc_to_target's raw value), so the
     two fixtures cover both int and string targets.
5. records tests/fixtures/lm_eval/chat/tiny-chat-lm/ from a third run of the same tiny model with a ChatML-like
   chat template set on its tokenizer (CHATML_TEMPLATE): `fx_mc,fx_gen --apply_chat_template --fewshot_as_multiturn
   --num_fewshot 2 --system_instruction ...`. The logged prompts then hold `<|im_start|>` turns: the system
   instruction, two few-shot examples as earlier user/assistant turns and the question as the last user turn.

    python scripts/record_lm_eval_fixtures.py chat   # only step 5: the other fixtures stay byte for byte
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TASKS = REPO / "tests" / "fixtures" / "tasks"
OUT = REPO / "tests" / "fixtures" / "lm_eval"
OLD_DROP_RESULT_KEYS = {
    "group_subtasks",
    "task_hashes",
    "higher_is_better",
    "n-samples",
    "lm_eval_version",
    "model_source",
    "model_name",
    "model_name_sanitized",
    "system_instruction",
    "system_instruction_sha",
    "fewshot_as_multiturn",
    "chat_template",
    "chat_template_sha",
    "start_time",
    "end_time",
    "total_evaluation_time_seconds",
    "upper_git_hash",
    "tokenizer_pad_token",
    "tokenizer_eos_token",
    "tokenizer_bos_token",
    "eot_token_id",
    "max_length",
    "transformers_version",
}
NEW_SAMPLE_KEYS = ("filter", "metrics", "doc_hash", "prompt_hash", "target_hash")
SYSTEM_INSTRUCTION = "You are a careful assistant. Answer with the option only."


def run_lm_eval(model_dir: Path, out: Path, tasks: str, extra: list[str]) -> None:
    """Run the lm-eval CLI with sample logging from the fixture task folder."""
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(out.parent / "hf_home"),
        TOKENIZERS_PARALLELISM="false",
    )
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir}",
        "--tasks",
        tasks,
        "--include_path",
        ".",
        "--output_path",
        str(out),
        "--log_samples",
        "--device",
        "cpu",
        "--batch_size",
        "4",
        *extra,
    ]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=TASKS, env=env, check=True)


def scrub(text: str, tmp: Path) -> str:
    """Return text with the temp dir and checkout paths replaced by placeholders."""
    return text.replace(str(tmp), "<tmp>").replace(str(REPO), "<repo>")


def old_arguments(args) -> list:
    """Return the old list-of-lists form of a sample's `arguments` (newer CLI writes {gen_args_i: {arg_j: ..}})."""
    if isinstance(args, dict):
        return [
            [a[k] for k in sorted(a, key=lambda s: int(s.split("_")[1]))]
            for _, a in sorted(args.items(), key=lambda kv: int(kv[0].split("_")[-1]))
        ]
    return args


def destringify(value):
    """Return a stringified log-likelihood response with real numbers/booleans (how old versions wrote it)."""
    if isinstance(value, list):
        return [destringify(v) for v in value]
    if value in ("True", "False"):
        return value == "True"
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", value):
        return float(value)
    return value


def old_sample(sample: dict, output_type: str) -> dict:
    """Return one sample shaped like lm-eval 0.4.0-0.4.1 logged it."""
    s = {k: v for k, v in sample.items() if k not in NEW_SAMPLE_KEYS}
    s["arguments"] = old_arguments(s["arguments"])
    if output_type != "generate_until":
        s["resps"] = destringify(s["resps"])
        s["filtered_resps"] = destringify(s["filtered_resps"])
    if isinstance(s.get("target"), str) and s["target"].isdigit():
        s["target"] = int(s["target"])
    return s


def write_old_format(run_dir: Path, results_file: Path, dest: Path) -> None:
    """Derive the old JSON-array fixture from one new-format run (see the module docstring)."""
    results = json.loads(results_file.read_text())
    stamp = results_file.stem.removeprefix("results_")
    groups = results.get("group_subtasks", {})
    old = {k: v for k, v in results.items() if k not in OLD_DROP_RESULT_KEYS}
    old["groups"] = {g: old["results"].pop(g) for g in groups if g in old["results"]}
    for group, subtasks in groups.items():
        for t in subtasks:
            old["configs"][t]["group"] = [group]
    dest.mkdir(parents=True)
    (dest / "results.json").write_text(json.dumps(old, indent=2, ensure_ascii=False))
    for task, cfg in results["configs"].items():
        rows = [
            json.loads(line)
            for line in (run_dir / f"samples_{task}_{stamp}.jsonl").read_text().splitlines()
            if line.strip()
        ]
        converted = [old_sample(r, cfg["output_type"]) for r in rows]
        (dest / f"pretrained__tiny-lm_{task}.jsonl").write_text(
            json.dumps(converted, indent=2, ensure_ascii=False)
        )


def copy_run(out: Path, dest: Path, tmp: Path) -> Path:
    """Copy the one model folder lm-eval wrote under OUT to DEST (paths scrubbed in results files); return DEST."""
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for f in sorted(run_dir.iterdir()):
        text = f.read_text()
        (dest / f.name).write_text(scrub(text, tmp) if f.name.startswith("results_") else text)
    return dest


def record_chat(tmp: Path) -> None:
    """Record the chat-template fixture (step 5 of the module docstring)."""
    from embedllm.tiny_lm import CHATML_TEMPLATE, build_tiny_lm

    model = build_tiny_lm(tmp / "tiny-chat-lm", chat_template=CHATML_TEMPLATE)
    flags = ["--apply_chat_template", "--fewshot_as_multiturn", "--num_fewshot", "2"]
    run_lm_eval(model, tmp / "chat-out", "fx_mc,fx_gen", [*flags, "--system_instruction", SYSTEM_INSTRUCTION])
    shutil.rmtree(OUT / "chat", ignore_errors=True)
    copy_run(tmp / "chat-out", OUT / "chat" / "tiny-chat-lm", tmp)


def main() -> None:
    """Record the fixtures from real lm-eval runs (all, or with the argument `chat` only the chat-template one)."""
    from embedllm.tiny_lm import build_tiny_lm

    if sys.argv[1:] == ["chat"]:
        with tempfile.TemporaryDirectory() as tmp_name:
            record_chat(Path(tmp_name))
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_lm(tmp / "tiny-lm")
        out = tmp / "out"
        run_lm_eval(model, out, "fx_mc", ["--limit", "4"])
        run_lm_eval(model, out, "fx_suite,fx_gen", [])
        shutil.rmtree(OUT / "old_json_array", ignore_errors=True)
        dest = copy_run(out, OUT / "jsonl" / "tiny-lm", tmp)
        newest = max(dest.glob("results_*.json"), key=lambda p: p.name)
        write_old_format(dest, newest, OUT / "old_json_array")
        record_chat(tmp)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
