"""Drift detection maths: the binomial disagreement test and the stable sentinel choice (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedllm.drift import binomial_tail, choose_sentinels, disagreement_test


def test_binomial_tail_matches_hand_computation():
    # P(X >= 2) for Binomial(3, 0.5) = (3 + 1) / 8
    assert binomial_tail(2, 3, 0.5) == pytest.approx(0.5)
    assert binomial_tail(0, 10, 0.3) == 1.0
    assert binomial_tail(3, 3, 0.1) == pytest.approx(0.001)
    assert binomial_tail(1, 4, 0.25) == pytest.approx(1 - 0.75**4)


def test_unchanged_answers_are_not_drift_and_a_swapped_model_is():
    stored = np.array([1, 0] * 16)
    assert not disagreement_test(stored, stored).drifted
    one_flip = stored.copy()
    one_flip[0] = 1 - one_flip[0]
    assert not disagreement_test(stored, one_flip).drifted
    swapped = np.array([1, 1, 0, 0] * 8)  # half the answers differ
    result = disagreement_test(stored, swapped)
    assert result.disagreements == 16 and result.drifted
    assert "16 of 32 sentinel answers changed" in result.line()


def test_drift_threshold_at_32_sentinels_is_six_disagreements():
    stored = np.zeros(32, dtype=int)
    five, six = stored.copy(), stored.copy()
    five[:5], six[:6] = 1, 1
    assert not disagreement_test(stored, five).drifted
    assert disagreement_test(stored, six).drifted
    assert disagreement_test(stored, six).p_value == pytest.approx(
        sum(math.comb(32, i) * 0.05**i * 0.95 ** (32 - i) for i in range(6, 33))
    )


def test_sentinels_are_stable_and_spread_over_benchmarks():
    ids = [f"q{i}" for i in range(30)]
    benches = ["a"] * 20 + ["b"] * 8 + ["c"] * 2
    first = choose_sentinels(ids, benches, n=9)
    assert first == choose_sentinels(list(reversed(ids)), list(reversed(benches)), n=9)
    assert len(set(first)) == 9
    counts = {b: sum(benches[ids.index(q)] == b for q in first) for b in "abc"}
    assert counts == {"a": 4, "b": 3, "c": 2}
    assert choose_sentinels(ids[:3], benches[:3], n=32) == choose_sentinels(ids[:3], benches[:3], n=3)
