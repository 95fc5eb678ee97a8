"""lm-eval output -> loader batches. Reads what any lm-eval 0.4.x wrote; shared by the importer and the evaluate stage.

Layouts handled by `read_lm_eval_dir`:
- >= 0.4.2: `<dir>[/<model folder>]/results_<timestamp>.json` + `samples_<task>_<timestamp>.json[l]`; several
  timestamped runs may sit side by side: each task is taken from the newest results file that holds it;
- 0.4.0-0.4.1: `<dir>/results.json` + `<model_args>_<task>.jsonl`;
- samples as one JSON array (<= 0.4.2, whatever the suffix) or JSON lines (>= 0.4.3), told apart by content.

Per-sample rows (`batches_from_results`) are read whichever way they were produced: from files (the CLI writes
`arguments` as {gen_args_i: {arg_j}} and log-likelihood tuples as strings) or from `simple_evaluate()` in memory
(tuples and numbers). Targets may be int or str. Generative tasks log one row per (doc, filter): the rule's filter
is kept (rows without a `filter` key, as before 0.4.3, come block by block in filter_list order). A doc's id is
lm-eval's `doc_hash`, recomputed as lm-eval does when absent (before 0.4.2). Groups: benchmark = the top-level
group name, one batch per subtask. A question's text is the logged prompt without description and few-shot
examples; for chat-templated runs it is the task's doc_to_text on the logged doc (see PromptExtractor).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from embedllm.errors import AggregateMismatch, ConfigError, InputError
from embedllm.ids import question_id
from embedllm.labels import DEFAULT_FILTER, LabelRule, rule_for
from tasks.load import AGGREGATE_TOLERANCE, Batch, Meta

KIND = "lm-eval-import"
_PRIVATE = "_embedllm"  # key read_lm_eval_dir adds to the results dict: per-task files, hashes and versions
# results_<timestamp>.json, or <stem>_<timestamp>.json when --output_path named a .json file (>= 0.4.2)
_STAMP = re.compile(
    r"^(?!samples_)(?P<stem>.+?)_(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)\.json$|"
    r"^results_(?P<stamp2>.+)\.json$"
)
_LAYOUT_HELP = (
    "expected an lm-eval --output_path folder: results_<timestamp>.json with "
    "samples_<task>_<timestamp>.jsonl (lm-eval >= 0.4.2), or results.json with <model>_<task>.jsonl "
    "(0.4.0-0.4.1), directly inside or one model folder down; run lm-eval with --log_samples"
)


# ------------------------------------------------------------------------------------------------- reading


def _json_error(path: Path, data: bytes, exc: orjson.JSONDecodeError, line_offset: int = 0) -> InputError:
    """Return an InputError naming file:line:column of a JSON syntax error."""
    pos = getattr(exc, "pos", 0) or 0
    line = data.count(b"\n", 0, pos) + 1 + line_offset
    col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    return InputError(
        f"{path}:{line}:{col}: malformed JSON ({str(exc).split(':')[0]}); re-run lm-eval or fix the file"
    )


def read_json_file(path: Path) -> Any:
    """Return the parsed content of a JSON file; InputError with file:line:column when malformed."""
    data = path.read_bytes()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _json_error(path, data, exc) from None


def read_samples_file(
    path: Path, *, metrics: tuple[str, ...] = (), multiple_choice: bool = False
) -> tuple[list[dict] | pl.DataFrame, str]:
    """Return (rows, sha256 of the bytes) of a samples file: one JSON array or JSON lines, told apart by content.

    JSON lines with doc_hash and filter (lm-eval >= 0.4.3) take a fast path when METRICS are given: polars reads
    only the fields the importer uses and returns a frame (FRAME_COLUMNS + metrics) instead of a list of dicts.
    Anything unusual falls back to full parsing, which names the file and line of a malformed one.
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if data.lstrip()[:1] == b"[":
        rows = read_json_file(path)
    else:
        frame = _fast_jsonl(data, metrics, multiple_choice) if metrics else None
        if frame is not None:
            return frame, digest
        try:  # the whole file as one array
            rows = orjson.loads(b"[" + b",".join(ln for ln in data.splitlines() if ln.strip()) + b"]")
        except orjson.JSONDecodeError:
            rows = _parse_jsonl_slowly(path, data)
    if not isinstance(rows, list) or any(not isinstance(r, dict) for r in rows):
        raise InputError(f"{path}: expected lm-eval samples (JSON objects, one per line or in one array)")
    return rows, digest


class JsonLines:
    """The non-blank lines of a JSONL file, split on first use (a fast-path row's `doc` is parsed only if needed)."""

    def __init__(self, path: Path):
        self.path, self._lines = path, None

    def doc(self, index: int) -> Any:
        """Return the `doc` of line INDEX (0-based, blank lines skipped)."""
        if self._lines is None:
            self._lines = [ln for ln in self.path.read_bytes().splitlines() if ln.strip()]
        return orjson.loads(self._lines[index]).get("doc")


FRAME_COLUMNS = ("doc_id", "doc_hash", "target", "filter", "context", "n_requests", "line")


def _fast_jsonl(data: bytes, metrics: tuple[str, ...], multiple_choice: bool) -> pl.DataFrame | None:
    """Return lm-eval >= 0.4.3 JSON lines as a frame (FRAME_COLUMNS + metrics), or None if they need full parsing."""
    schema: dict[str, Any] = {
        "doc_id": pl.Int64,
        "doc_hash": pl.String,
        "target": pl.String,
        "filter": pl.String,
        "arguments": pl.Struct({"gen_args_0": pl.Struct({"arg_0": pl.String})}),
    }
    if multiple_choice:
        schema["filtered_resps"] = pl.List(pl.List(pl.String))
    for m in metrics:
        schema.setdefault(m, pl.Float64)
    try:
        frame = pl.read_ndjson(io.BytesIO(data), schema=schema)
    except Exception:  # noqa: BLE001 - malformed or differently shaped: the slow path explains what is wrong
        return None
    frame = frame.with_columns(
        pl.col("arguments").struct.field("gen_args_0").struct.field("arg_0").alias("context"),
        (pl.col("filtered_resps").list.len() if multiple_choice else pl.lit(1)).cast(pl.Int64).alias("n_requests"),
        pl.int_range(pl.len()).alias("line"),
    )
    if frame.height == 0 or frame.select(pl.col("doc_hash", "filter", "doc_id", "context").null_count()).row(
        0
    ) != (0, 0, 0, 0):
        return None
    return frame.select(*FRAME_COLUMNS, *metrics)


def _parse_jsonl_slowly(path: Path, data: bytes) -> list[dict]:
    """Return the rows of a JSONL file line by line, raising InputError at the first malformed line."""
    rows = []
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{lineno}: malformed JSON line ({str(exc).split(':')[0]}); re-run lm-eval or fix the line"
            ) from None
    return rows


def _results_files(root: Path) -> list[Path]:
    """Return the results files directly in ROOT or one folder down; InputError for an unknown layout."""
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; {_LAYOUT_HELP}")
    found = sorted(
        p
        for pattern in ("*.json", "*/*.json")
        for p in root.glob(pattern)
        if p.name == "results.json" or _STAMP.match(p.name)
    )
    if not found:
        raise InputError(f"{root}: no lm-eval results file found; {_LAYOUT_HELP}")
    folders = sorted({p.parent for p in found})
    if len(folders) > 1:
        names = ", ".join(str(f.relative_to(root)) or "." for f in folders)
        raise InputError(
            f"{root}: holds lm-eval results of several runs/models ({names}); import one model folder at a time"
        )
    return found


def _stamp(path: Path) -> str:
    """Return the sortable timestamp of a results file ('' for the undated results.json of 0.4.0-0.4.1)."""
    m = _STAMP.match(path.name)
    return (m.group("stamp") or m.group("stamp2")) if m else ""


def _samples_file(results_file: Path, task: str, all_tasks: set[str]) -> Path:
    """Return the samples file of TASK written with RESULTS_FILE; InputError when it is missing."""
    folder, stamp = results_file.parent, _stamp(results_file)
    if stamp:
        for suffix in (".jsonl", ".json"):
            p = folder / f"samples_{task}_{stamp}{suffix}"
            if p.exists():
                return p
    else:  # 0.4.0-0.4.1: <model_args>_<task>.jsonl; a longer task name ending the same way must not match
        longer = [t for t in all_tasks if t != task and t.endswith(f"_{task}")]
        for p in sorted(folder.glob("*.json*")):
            if p == results_file or p.suffix not in (".json", ".jsonl"):
                continue
            if p.stem.endswith(f"_{task}") and not any(p.stem.endswith(f"_{t}") for t in longer):
                return p
    raise InputError(
        f"{folder}: no samples file for task {task} of {results_file.name} "
        f"(expected samples_{task}_{stamp or '<timestamp>'}.jsonl); run lm-eval with --log_samples"
    )


def run_model(res: dict) -> str:
    """Return which model an lm-eval results file is a run of: its model_name, else the pretrained model_args."""
    args = (res.get("config") or {}).get("model_args") or ""
    if isinstance(args, str):
        args = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    named = next((str(args[k]) for k in ("pretrained", "model", "path", "engine") if args.get(k)), None)
    return str(res.get("model_name") or named or args or "unknown")


def runs_of_one_model(root: Path, parsed: list[tuple[Path, dict]], model: str | None) -> list[tuple[Path, dict]]:
    """Return the runs of one model: all when the folder holds one, else those of MODEL; refuse when unclear."""
    by_model: dict[str, list[tuple[Path, dict]]] = {}
    for f, res in parsed:
        by_model.setdefault(run_model(res), []).append((f, res))
    if len(by_model) == 1:
        return parsed
    wanted = [m for m in by_model if model and (m == model or Path(m).name == model or m.endswith("/" + model))]
    if len(wanted) == 1:
        return by_model[wanted[0]]
    raise InputError(
        f"{root} holds runs of {len(by_model)} different models ({', '.join(sorted(by_model))}): "
        "pass --model as one of them or point at one model's folder, so no labels are filed under "
        "the wrong model"
    )


def read_lm_eval_dir(
    path: str | Path, model: str | None = None
) -> tuple[dict, dict[str, list[dict] | pl.DataFrame]]:
    """Return (results, samples by task) from an lm-eval output folder of any 0.4.x version (newest run per task).

    Only runs of one model are read (see runs_of_one_model). A task's samples are a list of dicts as lm-eval logged
    them, or (lm-eval >= 0.4.3 JSON lines, the fast path) a polars frame of the fields the importer needs;
    batches_from_results takes either.
    """
    root = Path(path)
    files = sorted(_results_files(root), key=_stamp)
    parsed = [(f, read_json_file(f)) for f in files]
    for f, res in parsed:
        if not isinstance(res, dict) or "results" not in res or "configs" not in res:
            raise InputError(f"{f}: not an lm-eval results file (no `results`/`configs` keys); {_LAYOUT_HELP}")
    parsed = runs_of_one_model(root, parsed, model)
    newest_for: dict[str, tuple[Path, dict]] = {}
    for f, res in parsed:  # ascending time: later files overwrite
        for task in res["configs"]:
            newest_for[task] = (f, res)
    latest = parsed[-1][1]
    merged: dict[str, Any] = {k: v for k, v in latest.items() if k not in ("results", "configs")}
    for key in (
        "results",
        "configs",
        "versions",
        "n-shot",
        "higher_is_better",
        "n-samples",
        "group_subtasks",
        "groups",
    ):
        merged[key] = {}
        for _, res in parsed:
            merged[key].update(res.get(key) or {})
    samples: dict[str, list[dict] | pl.DataFrame] = {}
    private: dict[str, dict] = {}
    all_tasks = set(newest_for)
    for task, (f, res) in sorted(newest_for.items()):
        merged["results"][task] = res["results"].get(task, {})
        merged["configs"][task] = res["configs"][task]
        for key in ("versions", "n-shot", "higher_is_better", "n-samples"):
            if task in (res.get(key) or {}):
                merged[key][task] = res[key][task]
        sfile = _samples_file(f, task, all_tasks)
        config = res["configs"][task]
        metrics = tuple(
            sorted({k.split(",")[0] for k in res["results"].get(task, {}) if "," in k and "_stderr," not in k})
        )
        samples[task], digest = read_samples_file(
            sfile, metrics=metrics, multiple_choice=config.get("output_type") == "multiple_choice"
        )
        private[task] = {
            "results_file": str(f),
            "samples_file": str(sfile),
            "samples_sha256": digest,
            "lm_eval_version": res.get("lm_eval_version"),
            "config": res.get("config") or {},
            "chat_template": chat_run(res),  # that run's template settings (several runs may be merged)
            "system_instruction": res.get("system_instruction"),
        }
        if isinstance(samples[task], pl.DataFrame):
            private[task]["lines"] = JsonLines(sfile)
    merged[_PRIVATE] = private
    return merged, samples


# ------------------------------------------------------------------------------------------------ batches


def lm_eval_doc_hash(doc: Any) -> str:
    """Return lm-eval's doc_hash of a doc (sha256 of json.dumps(doc, indent=2, ensure_ascii=False))."""
    text = json.dumps(doc, indent=2, default=_non_serializable, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _non_serializable(o: Any) -> Any:
    """Return a JSON-able stand-in for numpy scalars and sets, as lm-eval's handle_non_serializable does."""
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, set):
        return list(o)
    return str(o)


def top_group(task: str, results: dict) -> str | None:
    """Return the outermost group holding TASK (group_subtasks, or the old per-config `group` field), else None."""
    parents = {sub: g for g, subs in (results.get("group_subtasks") or {}).items() for sub in subs}
    group = None
    seen = {task}
    name = task
    while name in parents and parents[name] not in seen:
        group = name = parents[name]
        seen.add(name)
    if group is None:
        old = (results.get("configs") or {}).get(task, {}).get("group")
        if isinstance(old, list):
            old = old[0] if old else None
        group = old if isinstance(old, str) and old != task else None
    return group


def _first_context(sample: dict) -> Any:
    """Return the context (first argument) of the sample's first request, whichever way it was logged."""
    args = sample.get("arguments")
    if isinstance(args, dict):  # CLI: {"gen_args_0": {"arg_0": ctx, "arg_1": ...}, ...}
        first = args.get("gen_args_0") or next(iter(args.values()), {})
        return first.get("arg_0") if isinstance(first, dict) else first
    if isinstance(args, (list, tuple)) and args:
        first = args[0]
        return first[0] if isinstance(first, (list, tuple)) and first else first
    return None


def _n_requests(sample: dict) -> int:
    """Return how many requests the sample made (one per choice for multiple-choice tasks)."""
    args = sample.get("arguments")
    return len(args) if isinstance(args, (dict, list, tuple)) else 0


# What a chat-templated prompt holds near its start (system or first user header, BOS as text): ChatML, Llama 3,
# Gemma, Phi/Zephyr, [INST]. Checked on the first 256 characters, so plain prompts cost one short scan each.
_CHAT_MARKERS = (
    r"<\|im_start\|>|<\|start_header_id\|>|<\|begin_of_text\|>|<start_of_turn>|<\|(?:system|user|assistant)\|>|"
    r"\[INST\]|<\|eot_id\|>|<\|im_end\|>|<end_of_turn>"
)
_CHAT_RE = re.compile(_CHAT_MARKERS)
# The user turns of the common template families, in the order tried; group 1 is the turn's text.
CHAT_FAMILIES: dict[str, re.Pattern] = {
    "ChatML": re.compile(r"<\|im_start\|>user(?:\n|<\|im_sep\|>)(.*?)<\|im_end\|>", re.S),
    "Llama 3": re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.S),
    "Gemma": re.compile(r"<start_of_turn>user\n(.*?)<end_of_turn>", re.S),
    "Phi/Zephyr": re.compile(r"<\|user\|>\n?(.*?)(?:<\|end\|>|</s>|<\|endoftext\|>|<\|assistant\|>)", re.S),
    "[INST]": re.compile(r"\[INST\](.*?)\[/INST\]", re.S),
}
_LLAMA2_SYSTEM = re.compile(r"^\s*<<SYS>>.*?<</SYS>>\s*", re.S)
# lm-eval dumps a callable doc_to_text as its source (inspect.getsource) or, failing that, its repr
_FUNCTION = re.compile(r"^\s*(?:@|def\s|async\s+def\s|lambda\b|<function\b|<bound method\b)|!function")


def last_user_turn(context: str) -> tuple[str, int, str] | None:
    """Return (text of the last user turn, number of user turns, family) of a chat-templated prompt, None if unknown."""
    for family, pattern in CHAT_FAMILIES.items():
        turns = pattern.findall(context)
        if turns:
            return _LLAMA2_SYSTEM.sub("", turns[-1]), len(turns), family
    return None


def looks_chat_templated(context: str) -> bool:
    """Return whether a prompt starts like the output of a chat template (template tokens in its first 256 chars)."""
    return _CHAT_RE.search(context, 0, 256) is not None


def chat_run(run: dict) -> bool:
    """Return whether an lm-eval results dict says the run applied a chat template (keys written since 0.4.3)."""
    return bool(run.get("chat_template") or run.get("chat_template_sha") or run.get("apply_chat_template"))


def _system_prompt(system_instruction: Any, description: str, delimiter: str) -> str:
    """Return the system message lm-eval builds (maybe_delimit(system_instruction, description, delimiter))."""
    prefix = system_instruction if isinstance(system_instruction, str) else ""
    if not prefix or not description:
        return prefix or description
    joined = prefix[-1].isspace() or description[0].isspace()
    return prefix + description if joined else prefix + delimiter + description


class PromptExtractor:
    """Turns a request context into the question text: few-shot examples, description and chat template stripped.

    Plain prompts: the description is stripped and the context split on the few-shot delimiter (vectorised);
    doc_to_text is rendered only for a context holding an unexpected number of delimiters. Chat-templated prompts
    (CHAT set from the results file, or template tokens seen in the contexts): the question is the task's
    doc_to_text on the logged doc, as lm-eval computes it; when that cannot be rendered (a Python function), the
    last user turn of a known template family (CHAT_FAMILIES), minus a system prompt folded into it and, when the
    few-shot examples share that turn, minus them. Neither: InputError naming WHERE (never template tokens).
    """

    def __init__(
        self,
        config: dict,
        num_fewshot: int | None,
        *,
        chat: bool = False,
        system_instruction: str | None = None,
        where: str = "lm-eval samples",
    ):
        self.num_fewshot = int(num_fewshot if num_fewshot is not None else config.get("num_fewshot") or 0)
        self.delimiter = config.get("fewshot_delimiter", "\n\n") or "\n\n"
        description = config.get("description") or ""
        self.description = description if isinstance(description, str) and "{{" not in description else ""
        self.system_prompt = _system_prompt(system_instruction, self.description, self.delimiter)
        text = config.get("doc_to_text")
        self.doc_to_text = text if isinstance(text, str) and not _FUNCTION.search(text) else None
        self.multiple_input = config.get("doc_to_choice") is not None
        self.chat, self.where = chat, where
        self._compiled: Any = None

    def _render(self, doc: Any) -> str | None:
        """Return doc_to_text for the doc as lm-eval computes it (a doc field, else a Jinja template rendered with
        lm-eval's own environment), None if it cannot be."""
        spec = self.doc_to_text
        if spec is None or not isinstance(doc, dict):
            return None
        if spec in doc:
            value = doc[spec]
            return value if isinstance(value, str) else None
        if "{{" not in spec and "{%" not in spec:
            return None
        try:
            if self._compiled is None:
                from lm_eval.utils import env

                self._compiled = env.from_string(spec)
            text = self._compiled.render(**doc)
        except Exception:  # noqa: BLE001 - any template problem (missing field, bad syntax): fall back
            return None
        if text.isdigit() and self.multiple_input:  # a multiple-input task's doc_to_text is an index, not text
            return None
        return text

    def _strip_fewshot(self, text: str, context: str, doc: Any) -> str:
        """Return TEXT without its description and few-shot examples (rendering doc_to_text when ambiguous)."""
        if self.description and text.startswith(self.description):
            text = text[len(self.description) :]
        if self.num_fewshot > 0:
            if text.count(self.delimiter) != self.num_fewshot:  # an example or the question holds the delimiter
                rendered = self._render(doc() if callable(doc) else doc)
                if rendered and context.rstrip().endswith(rendered.rstrip()):
                    return rendered.strip()
            parts = text.split(self.delimiter, self.num_fewshot)
            if len(parts) == self.num_fewshot + 1:
                text = parts[-1]
        return text.strip()

    def _from_chat(self, context: str, doc: Any) -> str:
        """Return the question of a chat-templated context: doc_to_text on the doc, else the last user turn."""
        rendered = self._render(doc() if callable(doc) else doc)
        if rendered is not None:
            return rendered.strip()
        turn = last_user_turn(context)
        if turn is None:
            raise InputError(
                f"{self.where}: the prompts were rendered with a chat template, the task's doc_to_text cannot be "
                "applied to the logged doc (a Python function, or no doc logged) and the template is none of "
                f"{', '.join(CHAT_FAMILIES)}, so the question text would keep template tokens; nothing was "
                "imported: re-run lm-eval for this task without --apply_chat_template, or with a Jinja doc_to_text"
            )
        text, n_turns, _family = turn
        if self.system_prompt and text.startswith(self.system_prompt):  # templates with no system role (Gemma)
            text = text[len(self.system_prompt) :]
        if n_turns > 1:  # fewshot_as_multiturn: the examples are earlier turns, the last one is the question
            return text.strip()
        return self._strip_fewshot(text, text, doc)

    def __call__(self, context: Any, doc: Any) -> str:
        """Return the question text of one sample.

        DOC is the sample's doc or a zero-argument callable returning it (read only when needed)."""
        if not isinstance(context, str):  # chat-formatted or multiple-input contexts
            return json.dumps(context, ensure_ascii=False, default=str) if context is not None else ""
        if self.chat or looks_chat_templated(context):
            return self._from_chat(context, doc)
        return self._strip_fewshot(context, context, doc)

    def many(self, contexts: list, docs: list) -> list[str]:
        """Return the question texts of many samples: vectorised, per row only where splitting is ambiguous."""
        if not all(isinstance(c, str) for c in contexts):
            return [self(c, d) for c, d in zip(contexts, docs)]
        text = pl.Series(contexts, dtype=pl.String)
        if self.chat or text.str.slice(0, 256).str.contains(_CHAT_MARKERS).any():
            return [self._from_chat(c, d) for c, d in zip(contexts, docs)]
        if self.description:
            text = text.str.strip_prefix(self.description)
        if self.num_fewshot <= 0:
            return text.str.strip_chars().to_list()
        last = text.str.splitn(self.delimiter, self.num_fewshot + 1).struct.field(f"field_{self.num_fewshot}")
        out = last.fill_null(text).str.strip_chars().to_list()
        ambiguous = text.str.count_matches(self.delimiter, literal=True) != self.num_fewshot
        for i in ambiguous.arg_true().to_list():
            out[i] = self(contexts[i], docs[i])
        return out


def _filter_error(task: str, rule: LabelRule, have: list[str]) -> ConfigError:
    """Return the error for a rule whose filter the samples do not have."""
    return ConfigError(
        f"task {task}: no samples for filter {rule.filter!r} (the samples have {', '.join(have)}); "
        f"pass --label-rule {task}={rule.metric},{have[0]}"
    )


def _select_filter(task: str, rows: list[dict], rule: LabelRule, config: dict) -> list[dict]:
    """Return the rows of the rule's filter (lm-eval logs one row per (doc, filter) for generative tasks)."""
    if rows and "filter" in rows[0]:
        chosen = [r for r in rows if r.get("filter", DEFAULT_FILTER) == rule.filter]
        if not chosen:
            raise _filter_error(task, rule, sorted({str(r.get("filter")) for r in rows}))
        return chosen
    names = [f.get("name") for f in (config.get("filter_list") or []) if isinstance(f, dict)] or [DEFAULT_FILTER]
    if rule.filter not in names:
        raise _filter_error(task, rule, names)
    if len(rows) % len(names):
        raise InputError(f"task {task}: {len(rows)} samples do not split evenly over filters {', '.join(names)}")
    block = len(rows) // len(names)
    i = names.index(rule.filter)
    return rows[i * block : (i + 1) * block]


def _value(task: str, row: dict, rule: LabelRule) -> float:
    """Return the row's per-sample metric as a float; ConfigError if it is missing or not a number."""
    if rule.metric not in row:
        have = [k for k in (row.get("metrics") or []) if k in row] or [
            k for k, v in row.items() if isinstance(v, (int, float)) and k != "doc_id"
        ]
        raise ConfigError(
            f"task {task}: samples have no metric {rule.metric!r} (they have {', '.join(have)}); "
            f"pass --label-rule {task}=METRIC"
        )
    v = row[rule.metric]
    if isinstance(v, str):
        v = {"True": 1.0, "False": 0.0}.get(v, v)
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ConfigError(
            f"task {task}: per-sample {rule.metric} is {v!r}, not a number; "
            "use a metric that lm-eval scores per sample"
        ) from None


def _rows_digest(hashes: list[str], values: list[float]) -> str:
    """Return a content hash of in-memory samples (their doc hashes and metric values, in order)."""
    h = hashlib.sha256()
    for d, v in zip(hashes, values):
        h.update(f"{d}|{v!r}\n".encode())
    return h.hexdigest()


def task_config_hash(config: dict) -> str:
    """Return the sha256 of a task's config as canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _aggregate(task: str, results: dict, rule: LabelRule) -> float:
    """Return lm-eval's aggregate for the rule's metric and filter; ConfigError if lm-eval did not report it."""
    entry = (results.get("results") or {}).get(task) or {}
    if rule.key not in entry:
        have = sorted(k for k in entry if "," in k and "_stderr" not in k)
        raise ConfigError(
            f"task {task}: lm-eval's results have no {rule.key} (they have {', '.join(have)}); "
            f"pass --label-rule {task}=METRIC[,FILTER]"
        )
    return float(entry[rule.key])


def _check_before_dedupe(task: str, values: list[float], agg: float, rule: LabelRule, source: str) -> None:
    """Raise AggregateMismatch when the mean of all per-sample values differs from lm-eval's aggregate."""
    mean = sum(values) / len(values)
    if abs(mean - agg) > AGGREGATE_TOLERANCE:
        raise AggregateMismatch(
            f"task {task}: mean per-sample {rule} is {mean:.6f} but lm-eval's aggregate is "
            f"{agg:.6f} ({source}); check the label rule for this task or re-run lm-eval"
        )


def _columns_from_rows(task: str, rows: list[dict], rule: LabelRule, config: dict) -> dict[str, list]:
    """Return the per-sample columns of in-memory rows (python API or fully parsed files) for the rule's filter."""
    rows = _select_filter(task, rows, rule, config)
    hashes = [r.get("doc_hash") or lm_eval_doc_hash(r.get("doc")) for r in rows]
    targets = [
        t if isinstance(t, str) else json.dumps(t, ensure_ascii=False, default=str)
        for t in (r.get("target") for r in rows)
    ]
    return {
        "doc_id": [r.get("doc_id") for r in rows],
        "doc_hash": hashes,
        "target": targets,
        "context": [_first_context(r) for r in rows],
        "n_requests": [_n_requests(r) for r in rows],
        "value": [_value(task, r, rule) for r in rows],
        "doc": [r.get("doc") for r in rows],
    }


def _columns_from_frame(
    task: str, frame: pl.DataFrame, rule: LabelRule, lines: JsonLines | None
) -> dict[str, list]:
    """Return the per-sample columns of a fast-path frame for the rule's filter."""
    chosen = frame.filter(pl.col("filter") == rule.filter)
    if chosen.height == 0:
        raise _filter_error(task, rule, sorted(frame["filter"].unique().to_list()))
    if rule.metric not in chosen.columns or chosen[rule.metric].null_count():
        raise ConfigError(f"task {task}: samples have no metric {rule.metric!r}; pass --label-rule {task}=METRIC")
    cols = {c: chosen[c].to_list() for c in ("doc_id", "doc_hash", "target", "context", "n_requests")}
    cols["value"] = chosen[rule.metric].to_list()
    cols["doc"] = (
        [functools.partial(lines.doc, i) for i in chosen["line"].to_list()] if lines else [None] * chosen.height
    )
    return cols


def _check_sample_count(task: str, n_rows: int, results: dict, src: str) -> None:
    """Refuse a samples file with fewer or more rows than lm-eval's `n-samples` says it evaluated for the task."""
    expected = ((results.get("n-samples") or {}).get(task) or {}).get("effective")
    if expected is not None and int(expected) != n_rows:
        raise InputError(
            f"{src}: task {task} has {n_rows} sample rows but lm-eval evaluated {expected} (n-samples in the results "
            "file): the samples file is truncated or from another run; copy the whole --output_path folder"
        )


def batch_for_task(
    task: str,
    results: dict,
    rows: list[dict] | pl.DataFrame,
    *,
    model: str,
    kind: str,
    source: str,
    rule: LabelRule,
    benchmark: str,
    model_revision: str | None,
) -> Batch:
    """Return the Batch of one task: labelled rows plus provenance, aggregate taken from lm-eval's results."""
    config = (results.get("configs") or {}).get(task) or {}
    private = (results.get(_PRIVATE) or {}).get(task) or {}
    src = private.get("samples_file") or source
    output_type = config.get("output_type")
    agg = _aggregate(task, results, rule)
    if isinstance(rows, pl.DataFrame):
        cols = _columns_from_frame(task, rows, rule, private.get("lines"))
    else:
        cols = _columns_from_rows(task, rows, rule, config)
    if not cols["doc_id"]:
        raise InputError(f"{src}: task {task} has no samples")
    extract = PromptExtractor(
        config,
        (results.get("n-shot") or {}).get(task),
        chat=private["chat_template"] if "chat_template" in private else chat_run(results),
        system_instruction=private.get("system_instruction", results.get("system_instruction")),
        where=f"{src}: task {task}",
    )
    qids = [question_id(task, h) for h in cols["doc_hash"]]
    prompts = extract.many(cols["context"], cols["doc"])
    values, hashes = cols["value"], cols["doc_hash"]
    doc_ids, targets = cols["doc_id"], cols["target"]
    n_choices = cols["n_requests"] if output_type == "multiple_choice" else [None] * len(qids)
    n_samples = len(qids)
    _check_sample_count(task, n_samples, results, src)
    bad = next((v for v in values if v not in (0.0, 1.0)), None) if rule.threshold is None else None
    if bad is not None:
        raise ConfigError(
            f"task {task}: per-sample {rule.metric} is {bad}, not 0/1; give a threshold, "
            f"e.g. --label-rule {task}={rule.metric if rule.filter == DEFAULT_FILTER else rule.key}>0.5"
        )
    frame = pl.DataFrame(
        {
            "question_id": qids,
            "benchmark": benchmark,
            "task": task,
            "doc_id": doc_ids,
            "doc_hash": hashes,
            "prompt": prompts,
            "target": targets,
            "n_choices": n_choices,
            "output_type": output_type,
            "value": values,
        },
        schema_overrides={"doc_id": pl.Int64, "n_choices": pl.Int64, "value": pl.Float64},
    )
    label = pl.col("value") if rule.threshold is None else (pl.col("value") > rule.threshold)
    frame = frame.with_columns(label.cast(pl.Int8).alias("label"))
    details: dict[str, Any] = {"n_samples": n_samples, "filter": rule.filter}
    aggregate: float | None = agg
    if frame["question_id"].n_unique() < frame.height:  # identical docs: one question; check all rows first
        _check_before_dedupe(task, values, agg, rule, src)
        details["duplicate_docs"] = frame.height - frame["question_id"].n_unique()
        frame = frame.unique("question_id", keep="first", maintain_order=True)
        aggregate = None
    digest = private.get("samples_sha256") or _rows_digest(hashes, values)
    run_config = private.get("config") or results.get("config") or {}
    revision = model_revision or run_config.get("model_sha") or run_config.get("model_revision") or None
    version = (results.get("versions") or {}).get(task)
    meta = Meta(
        kind=kind,
        content_hash=hashlib.sha256(f"{digest}|{rule}".encode()).hexdigest(),
        source=src,
        model=model,
        task=task,
        task_version=None if version is None else str(version),
        task_config_hash=task_config_hash(config),
        lm_eval_version=private.get("lm_eval_version") or results.get("lm_eval_version"),
        model_revision=revision,
        label_rule=str(rule),
        aggregate_value=aggregate,
        details=details,
    )
    return Batch(meta=meta, rows=frame)


def batches_from_results(
    results: dict,
    samples: dict[str, list[dict] | pl.DataFrame],
    *,
    model: str,
    kind: str = KIND,
    source: str = "lm-eval",
    rules: dict[str, LabelRule] | None = None,
    model_revision: str | None = None,
    benchmark_of: dict[str, str] | None = None,
) -> list[Batch]:
    """Return one Batch per task in SAMPLES (benchmark = benchmark_of, else the top-level group, else the task)."""
    benchmark_of = benchmark_of or {}
    batches = []
    for task in sorted(samples):
        group = top_group(task, results)
        rule = rule_for(task, rules, group=group)
        benchmark = benchmark_of.get(task) or (benchmark_of.get(group) if group else None) or group or task
        batches.append(
            batch_for_task(
                task,
                results,
                samples[task],
                model=model,
                kind=kind,
                source=source,
                rule=rule,
                benchmark=benchmark,
                model_revision=model_revision,
            )
        )
    return batches


# ------------------------------------------------------------------------------------------- the entry point


@dataclass
class LmEvalImport:
    """What importing an lm-eval folder did: one summary row per task, the loader's report, the stage report."""

    directory: str
    model: str
    lm_eval_version: str | None
    tasks: list[dict[str, Any]]  # task, benchmark, label_rule, labels, new_questions, mean, aggregate, status
    load: Any  # tasks.load.LoadReport
    report: Any  # tasks.stage.StageReport


def _task_rows(batches: list[Batch], model: str, load, new_by_task: dict[str, int]) -> list[dict[str, Any]]:
    """Return the per-task summary rows of an import (what `embedllm import lm-eval` prints)."""
    return [
        {
            "task": b.meta.task,
            "benchmark": b.rows["benchmark"][0],
            "label_rule": b.meta.label_rule,
            "labels": b.rows.height,
            "new_questions": new_by_task.get(b.meta.task, 0),
            "mean": float(b.rows["value"].mean()),
            "aggregate": b.meta.aggregate_value,
            "status": "already loaded" if f"{model}/{b.meta.task}" in load.skipped else "loaded",
        }
        for b in batches
    ]


def import_lm_eval_dir(
    db: str | Path,
    directory: str | Path,
    *,
    model: str,
    rules: dict[str, LabelRule] | None = None,
    revision: str | None = None,
    wait: float = 0.0,
) -> LmEvalImport:
    """Read an lm-eval output folder (no connection open) and load it through the one loader in one transaction."""
    import warehouse
    from tasks import stage
    from tasks.load import load_batches

    if not model.strip():
        raise InputError("--model is empty: give the name to file the labels under, e.g. --model my-org/my-model")
    results, samples = read_lm_eval_dir(directory, model)
    batches = batches_from_results(
        results, samples, model=model, kind=KIND, source=str(directory), rules=rules, model_revision=revision
    )
    with stage.writing(db, "import", wait=wait) as report:
        with stage.session(db) as con:
            load = load_batches(con, batches)
            loaded = warehouse.query(con, "import_loads_by_id", [load.loaded]) if load.loaded else None
        new_by_task = (
            {r["task"]: r["n_new_questions"] for r in loaded.iter_rows(named=True)} if loaded is not None else {}
        )
        report.note = f"{directory} ({model}): {load.n_labels} labels, {len(load.skipped)} task(s) already loaded"
    return LmEvalImport(
        directory=str(directory),
        model=model,
        lm_eval_version=batches[0].meta.lm_eval_version if batches else None,
        tasks=_task_rows(batches, model, load, new_by_task),
        load=load,
        report=report,
    )
