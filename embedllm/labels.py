"""Label rules: how one lm-eval per-sample metric becomes a 0/1 correctness label.

Text syntax `metric[,filter][>threshold]`: `acc`, `acc_norm`, `exact_match,flexible-extract`, `acc>0.5`.
Without a filter lm-eval's default filter `none` is meant; without a threshold the per-sample metric must be 0 or 1,
with one the label is `value > threshold`. Defaults per task live in embedllm/config/label_rules.yaml (keys are
task names, group names or globs); callers pass overrides (from `--label-rule TASK=RULE` or a suite) on top.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from embedllm import settings
from embedllm.common import did_you_mean
from embedllm.errors import ConfigError

DEFAULT_FILTER = "none"
RULES_FILE = settings.CONFIG_DIR / "label_rules.yaml"
_SYNTAX = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_.\-]+)\s*(?:,\s*(?P<filter>[^>]+?))?"
    r"\s*(?:>\s*(?P<thr>[-+0-9.eE]+))?\s*$"
)


@dataclass(frozen=True)
class LabelRule:
    """A metric, the lm-eval filter whose rows count, and an optional threshold for continuous metrics."""

    metric: str
    filter: str = DEFAULT_FILTER
    threshold: float | None = None

    @classmethod
    def parse(cls, text: str) -> LabelRule:
        """Return the rule written as `metric[,filter][>threshold]`; raise ConfigError on bad syntax."""
        if isinstance(text, LabelRule):
            return text
        m = _SYNTAX.match(str(text))
        if not m:
            raise ConfigError(
                f"bad label rule {text!r}: expected metric[,filter][>threshold], "
                "e.g. acc, exact_match,flexible-extract or acc>0.5"
            )
        thr = m.group("thr")
        try:
            threshold = float(thr) if thr is not None else None
        except ValueError:
            raise ConfigError(f"bad label rule {text!r}: threshold {thr!r} is not a number") from None
        return cls(
            metric=m.group("metric"), filter=(m.group("filter") or DEFAULT_FILTER).strip(), threshold=threshold
        )

    @property
    def key(self) -> str:
        """Return lm-eval's results key for this metric and filter, e.g. 'exact_match,flexible-extract'."""
        return f"{self.metric},{self.filter}"

    def __str__(self) -> str:
        """Return the canonical text form (the filter omitted when it is `none`)."""
        text = self.metric if self.filter == DEFAULT_FILTER else f"{self.metric},{self.filter}"
        return text if self.threshold is None else f"{text}>{self.threshold:g}"


@functools.lru_cache(maxsize=8)
def _load_defaults(path: str) -> dict[str, str]:
    """Return the task -> rule-text mapping of a label_rules.yaml file."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    rules = data.get("rules", data) if isinstance(data, dict) else None
    if not isinstance(rules, dict):
        raise ConfigError(f"{path}: expected a mapping `rules: {{task: rule}}`")
    return {str(k): str(v) for k, v in rules.items()}


def default_rules(path: str | Path | None = None) -> dict[str, LabelRule]:
    """Return the default rules from embedllm/config/label_rules.yaml (or PATH), parsed."""
    return {k: LabelRule.parse(v) for k, v in _load_defaults(str(path or RULES_FILE)).items()}


def _lookup(name: str, table: dict[str, LabelRule]) -> LabelRule | None:
    """Return the rule for NAME from TABLE: an exact key first, then the first matching glob."""
    if name in table:
        return table[name]
    for pattern, rule in table.items():
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(name, pattern):
            return rule
    return None


def rule_for(
    task: str,
    overrides: dict[str, LabelRule | str] | None = None,
    *,
    group: str | None = None,
    defaults: dict[str, LabelRule] | None = None,
) -> LabelRule:
    """Return the rule for TASK: overrides (task, then its group), then defaults; ConfigError with did-you-mean."""
    given = {k: LabelRule.parse(v) for k, v in (overrides or {}).items()}
    table = defaults if defaults is not None else default_rules()
    for source in (given, table):
        for name in (task, group):
            if name is not None and (rule := _lookup(name, source)) is not None:
                return rule
    known = sorted(set(given) | set(table))
    raise ConfigError(
        f"no label rule for task {task}{did_you_mean(task, known, substring=False)}: pass --label-rule {task}=METRIC[,FILTER][>THRESHOLD] "
        f"or add it to {RULES_FILE}"
    )


def parse_overrides(items: list[str] | None) -> dict[str, LabelRule]:
    """Return {task: rule} from CLI items 'TASK=RULE'; raise ConfigError naming a malformed item."""
    out: dict[str, LabelRule] = {}
    for item in items or []:
        task, sep, text = item.partition("=")
        if not sep or not task.strip() or not text.strip():
            raise ConfigError(
                f"--label-rule {item!r}: expected TASK=RULE, e.g. gsm8k=exact_match,flexible-extract"
            )
        out[task.strip()] = LabelRule.parse(text)
    return out
