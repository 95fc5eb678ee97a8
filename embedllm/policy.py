"""The evaluation policy: how a pipeline run evaluates a model that is new, onboarded, or fully evaluated (no SQL).

Two settings, each a pipeline parameter and a registry-file field of the same name (the field overrides the
parameter for its model):

- `onboard_questions: N` (default 128; 0 = off): a registered model with no labels of its own, when a completed
  training run exists, is evaluated through lm-eval on the N questions that tell most about it
  (embedllm/onboarding.py chooses them) and placed in that run without retraining.
- `full_evaluation: never | nightly | budget:N` (default never): what later runs evaluate for an onboarded model.
  never = nothing more; nightly = the rest of the suite in the next run; budget:N = up to N more questions per run.
  The next training run absorbs whatever labels the model has by then.

`decide` maps a model's state to what the plan step does with it; it is plain logic, tested on hand-made states.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from embedllm.errors import ConfigError

DEFAULT_ONBOARD_QUESTIONS = 128
DEFAULT_FULL_EVALUATION = "never"
FULL_EVALUATION_VALUES = "never, nightly or budget:N (N questions per run, N >= 1)"
_BUDGET = re.compile(r"^budget\s*[:=]?\s*(\d+)$")

# What the plan step does with a model.
FULL = "full"  # evaluate every suite task it lacks (today's behaviour; a fresh warehouse; a full policy)
ONBOARD = "onboard"  # evaluate its chosen questions only, then place it in the latest run
BUDGET = "budget"  # evaluate up to N more questions it lacks
NOTHING = "nothing"  # onboarded with full_evaluation never: no more evaluation


def parse_full_evaluation(value: object, where: str = "full_evaluation") -> str:
    """Return the normalised full_evaluation value (never, nightly, budget:N); ConfigError naming WHERE otherwise."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in ("never", "nightly"):
        return text
    match = _BUDGET.match(text or "")
    if match and int(match.group(1)) >= 1:
        return f"budget:{int(match.group(1))}"
    raise ConfigError(f"{where}: {value!r} is not a full_evaluation value; use {FULL_EVALUATION_VALUES}")


def check_onboard_questions(value: object, where: str = "onboard_questions") -> int:
    """Return onboard_questions as an int >= 0; ConfigError naming WHERE otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"{where}: {value!r} is not a number of questions; use an integer >= 0 (0 turns onboarding off)"
        )
    return value


@dataclass(frozen=True)
class Policy:
    """How many questions onboard a new model, and what later runs evaluate for it."""

    onboard_questions: int = DEFAULT_ONBOARD_QUESTIONS
    full_evaluation: str = DEFAULT_FULL_EVALUATION

    @property
    def mode(self) -> str:
        """Return never, nightly or budget."""
        return self.full_evaluation.split(":")[0]

    @property
    def budget(self) -> int:
        """Return the questions per run of a budget:N policy (0 for never and nightly)."""
        return int(self.full_evaluation.split(":")[1]) if self.mode == "budget" else 0

    def text(self) -> str:
        """Return `onboard 128, then never` for reports."""
        first = f"onboard {self.onboard_questions}" if self.onboard_questions else "no onboarding"
        return f"{first}, then {self.full_evaluation}"


def make_policy(
    onboard_questions: object = DEFAULT_ONBOARD_QUESTIONS,
    full_evaluation: object = DEFAULT_FULL_EVALUATION,
    where: str = "pipeline parameter",
) -> Policy:
    """Return a checked Policy; one-line ConfigError naming WHERE and the field when a value is wrong."""
    return Policy(
        check_onboard_questions(onboard_questions, f"{where} onboard_questions"),
        parse_full_evaluation(full_evaluation, f"{where} full_evaluation"),
    )


def for_model(default: Policy, onboard_questions: int | None, full_evaluation: str | None) -> Policy:
    """Return the policy of one model: its own fields where set, the pipeline's DEFAULT elsewhere."""
    return Policy(
        default.onboard_questions if onboard_questions is None else int(onboard_questions),
        default.full_evaluation if full_evaluation is None else parse_full_evaluation(full_evaluation),
    )


@dataclass(frozen=True)
class ModelState:
    """What the plan step knows about a model: labels, an onboarding plan, a full evaluation, a run to join."""

    n_labels: int
    onboarded: bool  # it has an onboarding plan (evaluation_plan rows with reason 'onboard')
    full_started: bool  # it has a full (non-partial) evaluate run, successful or not
    run_exists: bool  # a completed training run exists to place it in


def decide(policy: Policy, state: ModelState) -> str:
    """Return what the plan step does with a model: FULL, ONBOARD, BUDGET or NOTHING."""
    if state.full_started:
        return FULL  # fully evaluated (or being): evaluate whatever it lacks, as always
    if state.onboarded and state.n_labels > 0:
        return {"never": NOTHING, "nightly": FULL, "budget": BUDGET}[policy.mode]
    if state.n_labels == 0 and state.run_exists and policy.onboard_questions > 0:
        return ONBOARD
    return FULL
