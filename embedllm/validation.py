"""Validation on frames: the expectations, their thresholds, Great Expectations runs and the results.

GE 1.x has no DuckDB dialect, so every check runs on a pandas frame pulled from DuckDB (tasks/validate.py pulls
them): the label rows themselves (null, 0/1, unique (model, question)), the questions, and small per-model /
per-benchmark summary frames for the matrix-level checks (coverage of the suite, all-equal labels, accuracy below
chance, split shares, labels pointing at unknown questions). Each frame gets one ExpectationSuite and one
ValidationDefinition in an ephemeral GE context; thresholds come from embedllm/config/validation.yaml. Data
Docs (static HTML) are written offline into the folder the caller names.

An expectation whose metric raised inside GE is an ERROR (the check could not be computed), distinct from a
FAILURE (the data does not meet it); both make the run unsuccessful.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from embedllm import settings
from embedllm.common import did_you_mean, jsonable
from embedllm.errors import ConfigError, PipelineStopped

DEFAULT_CONFIG = settings.CONFIG_DIR / "validation.yaml"
DOCS_SITE = "embedllm"
PASS, FAIL, ERROR = "pass", "fail", "error"


class ValidationFailed(PipelineStopped):
    """The warehouse did not pass validation (a failed or errored expectation): training must not start."""


# ------------------------------------------------------------------------------------------------- config


def _merge(base: dict, override: dict, where: str) -> dict:
    """Return BASE with OVERRIDE's keys merged in; raise ConfigError on unknown keys or a value of the wrong kind."""
    merged = dict(base)
    for key, value in override.items():
        if key not in base:
            hint = did_you_mean(str(key), base, substring=False) or f" (known: {', '.join(base)})"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        default = base[key]
        if isinstance(default, dict) and key != "targets":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
            merged[key] = _merge(default, value, f"{where}: {key}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
            merged[key] = value
        elif not isinstance(value, type(default)):
            raise ConfigError(f"{where}: {key} must be a {type(default).__name__}, got {value!r}")
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict:
    """Return the mapping in a YAML file; raise ConfigError when it is missing or not a mapping."""
    if not path.exists():
        raise ConfigError(f"validation config {path} does not exist: pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"validation config {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"validation config {path} must hold a mapping of sections (labels:, splits:, ...)")
    return data


def load_config(path: str | Path | None = None) -> dict:
    """Return the validation thresholds: the packaged validation.yaml with the file at PATH merged over it."""
    config = _read_yaml(DEFAULT_CONFIG)
    if path is not None:
        config = _merge(config, _read_yaml(Path(path)), str(path))
    targets = config["splits"]["targets"]
    if set(targets) != {"train", "val", "test"} or not all(isinstance(v, (int, float)) for v in targets.values()):
        raise ConfigError(f"{path or DEFAULT_CONFIG}: splits.targets must give a number for train, val and test")
    if not math.isclose(sum(targets.values()), 1.0, abs_tol=1e-6):
        raise ConfigError(f"{path or DEFAULT_CONFIG}: splits.targets must sum to 1, got {sum(targets.values())}")
    if int(config["report"]["examples"]) < 1 or int(config["coverage"]["examples"]) < 1:
        raise ConfigError(f"{path or DEFAULT_CONFIG}: report.examples and coverage.examples must be >= 1")
    return config


# ------------------------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    """A frame the checks read; index columns identify a row in failure examples."""

    name: str
    index_columns: tuple[str, ...]


FRAMES: dict[str, Frame] = {
    f.name: f
    for f in [
        Frame("labels", ("model_id", "question_id")),
        Frame("questions", ("question_id", "task")),
        Frame("label_questions", ("question_id", "n_labels")),
        Frame("split_shares", ("split", "n_questions", "share", "target")),
        Frame("coverage", ("model", "plan", "n_expected", "missing_by_benchmark", "missing_examples")),
        Frame("model_benchmarks", ("model", "benchmark", "n_labels")),
        Frame("chance", ("model", "benchmark", "n_labels", "chance")),
    ]
}


def constant_frame(cells: Any, cfg: dict) -> Any:
    """Return the (model, benchmark) cells with enough labels for the all-equal-labels check."""
    keep = cells["n_labels"] >= cfg["constant_labels"]["min_questions"]
    return cells.loc[keep, ["model", "benchmark", "n_labels", "accuracy"]].reset_index(drop=True)


def chance_frame(cells: Any, cfg: dict) -> Any:
    """Return the cells with enough multiple-choice labels, their accuracy there, chance and the floor below it."""
    c = cfg["chance"]
    mc = cells.loc[
        cells["n_mc"] >= c["min_questions"], ["model", "benchmark", "n_mc", "mc_accuracy", "chance", "chance_sd"]
    ]
    mc = mc.rename(columns={"n_mc": "n_labels", "mc_accuracy": "accuracy"}).reset_index(drop=True)
    spread = (mc["chance_sd"].astype(float) * float(c["sigmas"])).clip(lower=float(c["margin"]))
    mc["chance_floor"] = mc["chance"].astype(float) - spread
    return mc.drop(columns=["chance_sd"])


# ------------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One expectation: the frame it reads, what it means, and how to build it from the config."""

    name: str
    frame: str
    column: str
    description: str
    build: Callable[[Any, dict], Any]  # (great_expectations.expectations module, config) -> Expectation


CHECKS: list[Check] = [
    Check(
        "labels_present",
        "labels",
        "(table)",
        "the warehouse holds at least one label",
        lambda E, c: E.ExpectTableRowCountToBeBetween(min_value=1),
    ),
    Check(
        "label_not_null",
        "labels",
        "label",
        "every label is set",
        lambda E, c: E.ExpectColumnValuesToNotBeNull(column="label"),
    ),
    Check(
        "label_in_set",
        "labels",
        "label",
        "labels are 0 or 1",
        lambda E, c: E.ExpectColumnValuesToBeInSet(column="label", value_set=list(c["labels"]["allowed"])),
    ),
    Check(
        "label_pair_unique",
        "labels",
        "model_id, question_id",
        "one label per (model, question)",
        lambda E, c: E.ExpectCompoundColumnsToBeUnique(column_list=["model_id", "question_id"]),
    ),
    Check(
        "labels_reference_questions",
        "label_questions",
        "known",
        "every labelled question exists in questions",
        lambda E, c: E.ExpectColumnValuesToBeInSet(column="known", value_set=[True]),
    ),
    Check(
        "prompt_not_null",
        "questions",
        "prompt",
        "every question has a prompt",
        lambda E, c: E.ExpectColumnValuesToNotBeNull(column="prompt"),
    ),
    Check(
        "prompt_not_blank",
        "questions",
        "prompt",
        "prompts are not empty or blank",
        lambda E, c: E.ExpectColumnValuesToMatchRegex(column="prompt", regex=c["questions"]["prompt_pattern"]),
    ),
    Check(
        "benchmark_not_null",
        "questions",
        "benchmark",
        "every question has a benchmark",
        lambda E, c: E.ExpectColumnValuesToNotBeNull(column="benchmark"),
    ),
    Check(
        "benchmark_not_blank",
        "questions",
        "benchmark",
        "benchmark names are not empty",
        lambda E, c: E.ExpectColumnValuesToMatchRegex(
            column="benchmark", regex=c["questions"]["benchmark_pattern"]
        ),
    ),
    Check(
        "split_not_null",
        "questions",
        "split",
        "every question has a split",
        lambda E, c: E.ExpectColumnValuesToNotBeNull(column="split"),
    ),
    Check(
        "split_in_set",
        "questions",
        "split",
        "splits are train, val or test",
        lambda E, c: E.ExpectColumnValuesToBeInSet(column="split", value_set=list(c["splits"]["targets"])),
    ),
    Check(
        "split_shares",
        "split_shares",
        "deviation",
        "split shares are within tolerance of their targets",
        lambda E, c: E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="allowed_deviation", column_B="deviation", or_equal=True
        ),
    ),
    Check(
        "suite_questions_present",
        "coverage",
        "n_scope",
        "the warehouse holds questions of the suite",
        lambda E, c: E.ExpectColumnValuesToBeBetween(column="n_scope", min_value=1),
    ),
    Check(
        "coverage",
        "coverage",
        "n_missing",
        "every active model has labels for every question it was asked to answer (the suite's, or its "
        "evaluation plan's: onboarding, budgets, imported partial data)",
        lambda E, c: E.ExpectColumnValuesToBeBetween(
            column="n_missing", min_value=0, max_value=c["coverage"]["max_missing_per_model"]
        ),
    ),
    Check(
        "labels_not_constant",
        "model_benchmarks",
        "accuracy",
        "no model has all-equal labels on a benchmark with enough questions",
        lambda E, c: E.ExpectColumnValuesToBeBetween(
            column="accuracy", min_value=0, max_value=1, strict_min=True, strict_max=True
        ),
    ),
    Check(
        "above_chance",
        "chance",
        "accuracy",
        "multiple-choice accuracy is not far below chance (1/n_choices)",
        lambda E, c: E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="accuracy", column_B="chance_floor", or_equal=True
        ),
    ),
]


@dataclass
class CheckResult:
    """The outcome of one expectation: pass, fail (the data) or error (the metric raised inside GE)."""

    check: str
    frame: str
    expectation: str
    column: str
    description: str
    status: str
    element_count: int | None = None
    unexpected_count: int | None = None
    examples: list = field(default_factory=list)
    message: str | None = None

    def examples_text(self, limit: int = 3, width: int = 200) -> str:
        """Return the first examples as one short line."""
        text = "; ".join(
            f"({format_example(ex)})" if isinstance(ex, dict) else format_example(ex)
            for ex in self.examples[:limit]
        )
        return text if len(text) <= width else text[: width - 1] + "…"


def format_value(value: Any, width: int = 80) -> str:
    """Return a value as text: floats to 4 significant digits, text with spaces or commas quoted, long text cut."""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = "null" if value is None else str(value)
    if "." in text:
        try:
            return f"{float(text):.4g}"
        except ValueError:
            pass
    text = text if len(text) <= width else text[: width - 1] + "…"
    return repr(text) if not text.strip() or any(ch in text for ch in ", \t") else text


def format_example(example: Any) -> str:
    """Return one failure example as text: a row's identifying columns, then the checked values."""
    if isinstance(example, dict):
        return "  ".join(f"{k}={format_value(v)}" for k, v in example.items())
    return format_value(example)


def _raised(exception_info: dict | None) -> str | None:
    """Return the message of an exception GE caught while computing a metric, or None."""
    info = exception_info or {}
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "metric raised an exception").strip()
    return None


def _check_result(check: Check, ge_result: Any, n_examples: int) -> CheckResult:
    """Return our CheckResult for one GE ExpectationValidationResult."""
    message = _raised(ge_result.exception_info)
    result = ge_result.result or {}
    examples = result.get("partial_unexpected_index_list") or result.get("partial_unexpected_list") or []
    if not examples and "observed_value" in result and not ge_result.success:
        examples = [{"observed_value": result["observed_value"]}]
    status = ERROR if message else (PASS if ge_result.success else FAIL)
    order = FRAMES[check.frame].index_columns
    examples = [
        {k: ex[k] for k in sorted(ex, key=lambda k: order.index(k) if k in order else len(order))}
        if isinstance(ex, dict)
        else ex
        for ex in examples
    ]
    unexpected = result.get("unexpected_count")
    return CheckResult(
        check=check.name,
        frame=check.frame,
        expectation=ge_result.expectation_config.type,
        column=check.column,
        description=check.description,
        status=status,
        element_count=result.get("element_count"),
        unexpected_count=unexpected,
        examples=jsonable(examples[:n_examples]) if status == FAIL else [],
        message=message,
    )


def _gx_context(docs_dir: Path | None) -> Any:
    """Return an ephemeral GE context (no analytics, no progress bars) with a local Data Docs site at DOCS_DIR."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars={"globally": False, "metric_calculations": False},
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    if docs_dir is not None:
        context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def run_checks(
    frames: dict[str, Any],
    cfg: dict,
    *,
    docs_dir: Path | None = None,
    run_id: str | None = None,
    checks: list[Check] | None = None,
) -> tuple[list[CheckResult], Path | None]:
    """Run every check's expectation with GE on its frame; return the results and the Data Docs index (if written)."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    checks = CHECKS if checks is None else checks
    n_examples = int(cfg["report"]["examples"])
    context = _gx_context(docs_dir)
    source = context.data_sources.add_pandas("warehouse")
    ge_run = RunIdentifier(run_name=run_id or uuid.uuid4().hex[:12], run_time=datetime.now(UTC))
    by_name = {c.name: c for c in checks}
    results: dict[str, CheckResult] = {}
    for frame_name in dict.fromkeys(c.frame for c in checks):
        frame = FRAMES[frame_name]
        suite = context.suites.add(gx.ExpectationSuite(name=frame_name))
        for check in (c for c in checks if c.frame == frame_name):
            expectation = check.build(gx.expectations, cfg)
            expectation.meta = {"check": check.name, "description": check.description}
            expectation.notes = check.description
            suite.add_expectation(expectation)
        batch = source.add_dataframe_asset(frame_name).add_batch_definition_whole_dataframe("all")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=frame_name, data=batch, suite=suite)
        )
        present = [c for c in frame.index_columns if c in frames[frame_name].columns]
        result_format = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": n_examples,
            "unexpected_index_column_names": present,
        }
        run = definition.run(
            batch_parameters={"dataframe": frames[frame_name]}, result_format=result_format, run_id=ge_run
        )
        for ge_result in run.results:
            check = by_name[ge_result.expectation_config.meta["check"]]
            results[check.name] = _check_result(check, ge_result, n_examples)
    docs_index = None
    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
        docs_index = Path(docs_dir) / "index.html"
    return [results[c.name] for c in checks], docs_index


# ------------------------------------------------------------------------------------------------- the run


@dataclass
class ValidationResult:
    """One validation run: every check's outcome, where the Data Docs are, and how long it took."""

    run_id: str
    created_at: datetime
    checks: list[CheckResult]
    suite: str | None = None
    config_path: str | None = None
    seconds: float = 0.0
    data_docs_path: Path | None = None
    frame_rows: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """Return whether every expectation passed (no failure, no error)."""
        return all(c.status == PASS for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        """Return the checks the data did not meet."""
        return [c for c in self.checks if c.status == FAIL]

    @property
    def errors(self) -> list[CheckResult]:
        """Return the checks whose metric raised inside GE."""
        return [c for c in self.checks if c.status == ERROR]

    def raise_for_failure(self) -> None:
        """Raise ValidationFailed naming the failed and errored checks, unless the run succeeded."""
        if self.success:
            return
        bad = ", ".join(f"{c.check} ({c.status})" for c in self.failed + self.errors)
        where = f"; details in Data Docs {self.data_docs_path}" if self.data_docs_path else ""
        raise ValidationFailed(
            f"validation run {self.run_id} did not pass: {bad}{where}; fix the data or the "
            "thresholds in embedllm/config/validation.yaml, then run `embedllm validate` again"
        )

    def check(self, name: str) -> CheckResult:
        """Return the result of the named check."""
        for c in self.checks:
            if c.check == name:
                return c
        raise KeyError(f"no check named {name!r}: known {', '.join(c.check for c in self.checks)}")

    def summary(self) -> dict:
        """Return the JSON-able summary stored in validation_runs.summary."""
        return {
            "suite": self.suite,
            "config_path": self.config_path,
            "seconds": round(self.seconds, 3),
            "frame_rows": self.frame_rows,
            "checks": [asdict(c) for c in self.checks],
        }

    def headline(self) -> str:
        """Return one line: passed/failed with counts."""
        verdict = "passed" if self.success else "FAILED"
        return (
            f"validation {verdict}: {len(self.checks)} expectations, {len(self.failed)} failed, "
            f"{len(self.errors)} errors ({self.frame_rows.get('labels', 0):,} labels, "
            f"{self.frame_rows.get('questions', 0):,} questions, {self.seconds:.1f} s)"
        )

    def summary_markdown(self) -> str:
        """Return a Markdown report: the headline, one table row per expectation, the Data Docs path."""
        lines = [
            f"**{self.headline()}**",
            "",
            f"run `{self.run_id}`" + (f", suite `{self.suite}`" if self.suite else ", all questions"),
            "",
            "| check | status | column | unexpected | examples |",
            "|---|---|---|---|---|",
        ]
        for c in self.checks:
            detail = c.message if c.status == ERROR else c.examples_text()
            count = "" if c.unexpected_count is None else f"{c.unexpected_count:,}"
            lines.append(
                f"| {c.check} | {c.status.upper()} | {c.column} | {count} | {(detail or '').replace('|', '/')} |"
            )
        if self.data_docs_path:
            lines += ["", f"Data Docs: [{self.data_docs_path}]({Path(self.data_docs_path).as_uri()})"]
        return "\n".join(lines)


def suite_scope(suite: str) -> tuple[list[str], list[str]]:
    """Return the (task names, benchmark names) of a suite, via embedllm.suites or, before it exists, its YAML."""
    try:
        from embedllm.suites import load_suite
    except ImportError:
        load_suite = None
    if load_suite is not None:
        loaded = load_suite(suite)
        return [t.task for t in loaded.tasks], [t.benchmark for t in loaded.tasks]
    path = (
        Path(suite)
        if Path(suite).suffix in (".yaml", ".yml")
        else settings.CONFIG_DIR / "suites" / f"{suite}.yaml"
    )
    data = _read_yaml(path) if path.exists() else None
    if data is None or not isinstance(data.get("tasks"), list):
        raise ConfigError(f"unknown suite {suite!r}: no suite YAML with a tasks: list at {path}")
    tasks = [t for t in data["tasks"] if isinstance(t, dict) and "task" in t]
    return [str(t["task"]) for t in tasks], [str(t.get("benchmark", t["task"])) for t in tasks]
