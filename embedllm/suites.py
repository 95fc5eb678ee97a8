"""Benchmark suites as config: which lm-eval tasks a model is evaluated on, their benchmark names and label rules.

A suite is a YAML file in embedllm/config/suites/<name>.yaml (or anywhere, given by path):

    name: demo
    description: one line
    include_path: ../../demo_suite      # optional; relative to the YAML; folder(s) of lm-eval task YAMLs
    num_fewshot: 0                      # optional default for every task
    tasks:
      - task: demo_arithmetic           # a real lm-eval task, group or tag name
        benchmark: arithmetic           # stored in questions.benchmark (default: the task name)
        label_rule: acc                 # default: embedllm/config/label_rules.yaml
        num_fewshot: 3                  # optional, per task

`load_suite` parses and checks the file (label rules included); `resolve_tasks` checks every task against
lm-eval's TaskManager (with the suite's include_path) and returns each task's current version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from embedllm import settings
from embedllm.common import did_you_mean
from embedllm.errors import ConfigError
from embedllm.labels import LabelRule, rule_for

log = logging.getLogger(__name__)
SUITES_DIR = settings.CONFIG_DIR / "suites"
_SUITE_KEYS = {"name", "description", "include_path", "num_fewshot", "tasks"}
_TASK_KEYS = {"task", "benchmark", "label_rule", "num_fewshot"}


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: the lm-eval name, the benchmark it is stored under, its label rule."""

    task: str
    benchmark: str
    label_rule: LabelRule
    num_fewshot: int | None = None


@dataclass(frozen=True)
class Suite:
    """A named list of lm-eval tasks plus where their YAMLs live."""

    name: str
    path: Path
    tasks: tuple[SuiteTask, ...]
    description: str = ""
    include_path: tuple[Path, ...] = ()
    num_fewshot: int | None = None

    @property
    def task_names(self) -> list[str]:
        """Return the lm-eval task names in suite order."""
        return [t.task for t in self.tasks]

    def rules(self) -> dict[str, LabelRule]:
        """Return {task: label rule} (also applies to a group's subtasks through labels.rule_for)."""
        return {t.task: t.label_rule for t in self.tasks}

    def benchmark_of(self) -> dict[str, str]:
        """Return {task: benchmark name}."""
        return {t.task: t.benchmark for t in self.tasks}

    def get(self, task: str) -> SuiteTask:
        """Return the suite entry of TASK; ConfigError with did-you-mean when the suite has no such task."""
        for t in self.tasks:
            if t.task == task:
                return t
        raise ConfigError(f"suite {self.name} has no task {task!r}{_hint(task, self.task_names)}")


@dataclass(frozen=True)
class TaskInfo:
    """What lm-eval's task index says about one suite task."""

    task: str
    kind: str  # task | group | tag
    version: str  # metadata.version; for groups and tags their leaves' versions too
    leaves: tuple[str, ...] = field(default_factory=tuple)
    leaf_versions: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _hint(name: str, choices: list[str]) -> str:
    """Return ' (did you mean X?)' for the closest of CHOICES, or '' (embedllm.common.did_you_mean, no substrings)."""
    return did_you_mean(name, choices, substring=False)


def available_suites() -> list[str]:
    """Return the names of the suites shipped in embedllm/config/suites/."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def suite_file(name_or_path: str | Path) -> Path:
    """Return the YAML file of a suite given by name or path; ConfigError with did-you-mean for unknown names."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    as_path = path.suffix in (".yaml", ".yml") or "/" in text or isinstance(name_or_path, Path)
    candidate = SUITES_DIR / f"{text}.yaml"
    if not as_path and candidate.is_file():
        return candidate
    if as_path or path.is_file():
        if not path.is_file():
            raise ConfigError(
                f"suite file {path} does not exist: give a suite name ({', '.join(available_suites())})"
                " or the path of a suite YAML"
            )
        return path.resolve()
    names = available_suites()
    raise ConfigError(
        f"unknown suite {text!r}{_hint(text, names)}; available: {', '.join(names) or 'none'} "
        f"(add one as {SUITES_DIR}/<name>.yaml or pass a path)"
    )


def _int_or_none(value: Any, where: str) -> int | None:
    """Return VALUE as a non-negative int or None; ConfigError naming WHERE otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: num_fewshot must be a non-negative integer, got {value!r}")
    return value


def _parse_task(item: Any, i: int, file: Path) -> SuiteTask:
    """Return one SuiteTask from the i-th item of `tasks:`; ConfigError naming file and entry."""
    where = f"{file}: tasks[{i}]"
    if isinstance(item, str):
        item = {"task": item}
    if not isinstance(item, dict) or not isinstance(item.get("task"), str) or not item["task"].strip():
        raise ConfigError(f"{where}: expected a mapping with `task: <lm-eval task name>`")
    extra = sorted(set(item) - _TASK_KEYS)
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(extra)}{_hint(extra[0], sorted(_TASK_KEYS))}; "
            f"allowed: {', '.join(sorted(_TASK_KEYS))}"
        )
    task = item["task"].strip()
    try:
        rule = LabelRule.parse(item["label_rule"]) if item.get("label_rule") else rule_for(task)
    except ConfigError as exc:
        raise ConfigError(f"{where} ({task}): {exc}") from None
    return SuiteTask(
        task=task,
        benchmark=str(item.get("benchmark") or task),
        label_rule=rule,
        num_fewshot=_int_or_none(item.get("num_fewshot"), where),
    )


@functools.lru_cache(maxsize=16)
def _load_suite_file(file: Path, mtime: float) -> Suite:
    """Return the parsed suite of FILE (cached per modification time)."""
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{file}{at}: malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list) or not data["tasks"]:
        raise ConfigError(f"{file}: expected a mapping with a non-empty `tasks:` list")
    extra = sorted(set(data) - _SUITE_KEYS)
    if extra:
        raise ConfigError(f"{file}: unknown key(s) {', '.join(extra)}{_hint(extra[0], sorted(_SUITE_KEYS))}")
    tasks = tuple(_parse_task(item, i, file) for i, item in enumerate(data["tasks"]))
    dupes = sorted({t.task for t in tasks if [x.task for x in tasks].count(t.task) > 1})
    if dupes:
        raise ConfigError(f"{file}: task(s) listed twice: {', '.join(dupes)}")
    inc = data.get("include_path") or []
    inc = [inc] if isinstance(inc, str) else inc
    include = []
    for p in inc:
        folder = (file.parent / str(p)).resolve()
        if not folder.is_dir():
            raise ConfigError(f"{file}: include_path {p} -> {folder} is not a folder of lm-eval task YAMLs")
        include.append(folder)
    return Suite(
        name=str(data.get("name") or file.stem),
        path=file,
        tasks=tasks,
        description=str(data.get("description") or ""),
        include_path=tuple(include),
        num_fewshot=_int_or_none(data.get("num_fewshot"), str(file)),
    )


def load_suite(name_or_path: str | Path) -> Suite:
    """Return the suite named NAME (embedllm/config/suites/NAME.yaml) or read from a path, with its label rules."""
    file = suite_file(name_or_path)
    return _load_suite_file(file, file.stat().st_mtime)


# ------------------------------------------------------------------------------------------ lm-eval tasks


@functools.lru_cache(maxsize=8)
def _task_manager(include_path: tuple[str, ...], include_defaults: bool):
    """Return an lm-eval TaskManager for these folders (indexing lm-eval's own ~15k YAMLs takes ~10 s)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include_path) or None, include_defaults=include_defaults)


def task_manager(suite: Suite):
    """Return a TaskManager that knows every task of SUITE; lm-eval's built-in tasks are indexed only if needed."""
    include = tuple(str(p) for p in suite.include_path)
    if include:
        tm = _task_manager(include, False)
        if all(name in tm.task_index for name in suite.task_names):
            return tm
    return _task_manager(include, True)


def cache_root() -> Path:
    """Return embedllm's cache folder ($EMBEDLLM_CACHE, else $XDG_CACHE_HOME/embedllm, else ~/.cache/embedllm)."""
    import os

    base = os.environ.get("EMBEDLLM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "embedllm"
    )
    return Path(base).expanduser()


def _version_of(entry) -> str:
    """Return metadata.version of an index entry as text ('' when absent)."""
    meta = (entry.cfg or {}).get("metadata") or {}
    version = meta.get("version") if isinstance(meta, dict) else None
    return "" if version is None else str(version)


def _children(entry) -> list[str]:
    """Return the names a group or tag entry stands for (none for a task)."""
    from lm_eval.tasks._index import Kind

    if entry.kind == Kind.TAG:
        return sorted(entry.tags)
    if entry.kind != Kind.GROUP:
        return []
    raw = (entry.cfg or {}).get("task") or []
    names = [
        c if isinstance(c, str) else (c.get("task") or c.get("group"))
        for c in (raw if isinstance(raw, list) else [raw])
    ]
    return [n for n in names if isinstance(n, str)]


def _summary(index: dict) -> dict[str, dict]:
    """Return {name: {kind, version, children}} of an lm-eval task index (plain data: cacheable as JSON)."""
    return {
        name: {
            "kind": e.kind.name.lower().replace("py_task", "task"),
            "version": _version_of(e),
            "children": _children(e),
        }
        for name, e in index.items()
    }


def _lm_eval_tasks_dir() -> tuple[str, Path]:
    """Return (lm-eval version, folder of its built-in task YAMLs) without importing lm-eval (~1 s)."""
    import importlib.util
    from importlib import metadata

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("lm-eval is not installed: pip install 'lm-eval>=0.4.13,<0.5'")
    return metadata.version("lm-eval"), Path(list(spec.submodule_search_locations)[0]) / "tasks"


def _cached_summary(key: str, build) -> dict[str, dict]:
    """Return the index summary cached under KEY in cache_root(), building and writing it on a miss."""
    file = cache_root() / f"lm_eval_task_index-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if file.exists():
        try:
            return json.loads(file.read_text())
        except (OSError, ValueError):
            pass
    summary = build()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(summary))
        os.replace(tmp, file)
    except OSError as exc:  # a read-only cache only costs time
        log.debug("cannot cache the task index in %s: %s", file, exc)
    return summary


def builtin_index() -> dict[str, dict]:
    """Return the summary of lm-eval's built-in tasks, cached on disk per lm-eval install (indexing takes ~10 s)."""
    version, tasks_dir = _lm_eval_tasks_dir()
    key = f"builtin|{version}|{tasks_dir}|{tasks_dir.stat().st_mtime_ns}"
    return _cached_summary(key, lambda: _summary(_task_manager((), True).task_index))


def include_index(include: tuple[str, ...]) -> dict[str, dict]:
    """Return the summary of the task YAMLs in INCLUDE folders, cached per file list, sizes and mtimes."""
    files = sorted(p for root in include for p in Path(root).glob("**/*.yaml") if "__pycache__" not in p.parts)
    stats = [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files]
    key = json.dumps(["include", _lm_eval_tasks_dir()[0], list(include), stats])
    return _cached_summary(key, lambda: _summary(_task_manager(include, False).task_index))


def suite_index(suite: Suite) -> dict[str, dict]:
    """Return the task index summary a suite needs: its include_path, plus lm-eval's built-ins if a task is there."""
    include = tuple(str(p) for p in suite.include_path)
    own = include_index(include) if include else {}
    if all(name in own for name in suite.task_names):
        return own
    return {**builtin_index(), **own}


def _leaves(name: str, index: dict[str, dict], seen: set[str] | None = None) -> list[str]:
    """Return the leaf task names under a task, group or tag of an index summary."""
    seen = set() if seen is None else seen
    if name in seen or name not in index:
        return []
    seen.add(name)
    if index[name]["kind"] == "task":
        return [name]
    out: list[str] = []
    for child in index[name]["children"]:
        out += _leaves(child, index, seen)
    return out


def resolve_tasks(suite: Suite, tm=None) -> dict[str, TaskInfo]:
    """Return {task: TaskInfo} for every suite task; ConfigError (did-you-mean) for a task lm-eval does not know."""
    index = _summary(tm.task_index) if tm is not None else suite_index(suite)
    out = {}
    for t in suite.tasks:
        if t.task not in index:
            where = f" or {', '.join(str(p) for p in suite.include_path)}" if suite.include_path else ""
            raise ConfigError(
                f"unknown task {t.task!r} in suite {suite.name} ({suite.path})"
                f"{_hint(t.task, sorted(index))}: not in lm-eval's task registry{where}"
            )
        entry = index[t.task]
        leaves = tuple(_leaves(t.task, index))
        leaf_versions = tuple((leaf, index[leaf]["version"]) for leaf in leaves)
        if entry["kind"] == "task":
            out[t.task] = TaskInfo(t.task, "task", entry["version"], leaves, leaf_versions)
            continue
        digest = hashlib.sha256(json.dumps(leaf_versions).encode()).hexdigest()[:8]
        out[t.task] = TaskInfo(t.task, entry["kind"], f"{entry['version'] or '-'}+{digest}", leaves, leaf_versions)
    return out
