"""Drift of a model behind an unchanged name: a fixed sentinel set re-asked each run, and a test of the answers.

A model whose revision can move (a branch name such as `main`, an API endpoint) may change behind the same
registry entry. Each pipeline run re-asks it a small fixed set of sentinel questions (chosen once per warehouse,
spread over benchmarks) and compares the fresh 0/1 labels with the stored ones.

The test: lm-eval scoring of an unchanged model is deterministic up to numerical noise (batch composition,
kernels), which flips at most a few near-tie answers. Under the null hypothesis "unchanged", each sentinel answer
disagrees with the stored label independently with probability at most `noise` (default 5 %). The number of
disagreements K out of n is then at most Binomial(n, noise), and the one-sided p-value is P(X >= K). Drift is
declared when p < alpha (default 0.01): with n = 32 and noise = 5 %, that is 6 or more disagreements. A
different model behind the name disagrees on roughly half the answers its accuracy leaves uncertain, far above
that threshold; an unchanged one disagrees on none or one.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np

SENTINELS = 32
NOISE = 0.05
ALPHA = 0.01
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PINNED_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9._-]*==[^=\s]+$")  # `package: DIST` entries: DIST==VERSION


def binomial_tail(k: int, n: int, p: float) -> float:
    """Return P(X >= k) for X ~ Binomial(n, p), computed exactly."""
    if k <= 0:
        return 1.0
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


@dataclass(frozen=True)
class DriftTest:
    """The outcome of comparing fresh sentinel answers with stored labels."""

    n: int  # sentinel questions compared
    disagreements: int
    p_value: float  # P(X >= disagreements) under Binomial(n, noise)
    noise: float
    alpha: float

    @property
    def drifted(self) -> bool:
        """Return whether the disagreements are beyond what numerical noise allows."""
        return self.n > 0 and self.p_value < self.alpha

    def line(self) -> str:
        """Return the test as one line: `7 of 32 sentinel answers changed (p = 0.0012 < 0.01)`."""
        verdict = "<" if self.drifted else ">="
        return (
            f"{self.disagreements} of {self.n} sentinel answers changed "
            f"(p = {self.p_value:.2g} {verdict} {self.alpha:g} under {self.noise:.0%} noise)"
        )


def disagreement_test(
    stored: np.ndarray, fresh: np.ndarray, *, noise: float = NOISE, alpha: float = ALPHA
) -> DriftTest:
    """Return the drift test of fresh 0/1 labels against the stored labels of the same questions."""
    stored, fresh = np.asarray(stored, dtype=np.int8), np.asarray(fresh, dtype=np.int8)
    if stored.shape != fresh.shape:
        raise ValueError(f"stored and fresh labels differ in shape: {stored.shape} vs {fresh.shape}")
    n, k = int(stored.size), int((stored != fresh).sum())
    return DriftTest(n=n, disagreements=k, p_value=binomial_tail(k, n, noise), noise=noise, alpha=alpha)


def sentinel_rank(question_id: str, salt: str = "sentinel") -> str:
    """Return a stable pseudo-random sort key of a question (the same on every run and machine)."""
    return hashlib.sha256(f"{salt}/{question_id}".encode()).hexdigest()


def choose_sentinels(question_ids: list[str], benchmarks: list[str], n: int = SENTINELS) -> list[str]:
    """Return n question ids spread round-robin over benchmarks, each benchmark's in stable hash order."""
    by_benchmark: dict[str, list[str]] = {}
    for qid, bench in sorted(zip(question_ids, benchmarks), key=lambda qb: sentinel_rank(qb[0])):
        by_benchmark.setdefault(bench, []).append(qid)
    queues = [by_benchmark[b] for b in sorted(by_benchmark)]
    chosen: list[str] = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    return chosen


def revision_can_move(revision: str | None, base_url: str | None = None) -> bool:
    """Return whether what a registry entry names can change behind it: no revision, a branch or tag, an endpoint.

    A commit sha and a pinned PyPI distribution (`DIST==VERSION`, what `package:` entries record) cannot."""
    if base_url:
        return True
    if revision is None:
        return True
    pinned = revision.strip().lower()
    return not (_COMMIT.match(pinned) or _PINNED_PACKAGE.match(pinned))
