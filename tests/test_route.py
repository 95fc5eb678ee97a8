"""Routing on a tiny hand-set model whose probabilities are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedllm.errors import InputError
from embedllm.model import EmbedLLM, EmbedLLMConfig
from embedllm.routing import RouteBatch, Router, check_questions, normalised_costs, route_embeddings


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture
def hand_model():
    """q = e (identity projection), logit = p_m . q; model vectors (2,0), (0,2), (1,1)."""
    model = EmbedLLM(EmbedLLMConfig(n_models=3, question_dim=2, dim=2, noise_alpha=0.05))
    with torch.no_grad():
        model.question_proj.weight.copy_(torch.eye(2))
        model.question_proj.bias.zero_()
        model.classifier.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))  # out_1 - out_0 = sum(p * q)
        model.classifier.bias.zero_()
        model.model_embedding.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
    return model.eval()


def test_each_question_goes_to_the_model_with_the_highest_probability(hand_model):
    batch = route_embeddings(hand_model, np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=np.float32))
    # logits: east (2, 0, 1); north (0, 2, 1); diagonal (1, 1, 1) -> ties go to the first model
    np.testing.assert_allclose(batch.p[0], [sigmoid(2), sigmoid(0), sigmoid(1)], rtol=1e-6)
    assert batch.chosen.tolist() == [0, 1, 0]


def test_cost_weight_trades_probability_for_cost(hand_model):
    costs = normalised_costs([10.0, 0.0, 5.0], 3)
    np.testing.assert_allclose(costs, [1.0, 0.0, 0.5])
    batch = route_embeddings(hand_model, np.array([[1.0, 0.0]], dtype=np.float32), costs, cost_weight=0.5)
    # utilities: .8808 - .5 = .3808; .5 - 0 = .5; .7311 - .25 = .4811 -> model 1, then 2, then 0
    np.testing.assert_allclose(batch.utility[0], [sigmoid(2) - 0.5, 0.5, sigmoid(1) - 0.25], rtol=1e-6)
    assert batch.top(3).tolist() == [[1, 2, 0]]


def test_unknown_costs_count_as_free_and_no_costs_change_nothing():
    np.testing.assert_allclose(normalised_costs([None, 4.0, float("nan")], 3), [0.0, 1.0, 0.0])
    np.testing.assert_allclose(normalised_costs(None, 2), [0.0, 0.0])
    np.testing.assert_allclose(normalised_costs([None, None], 2), [0.0, 0.0])


def test_models_that_may_not_be_chosen_never_are(hand_model):
    batch = route_embeddings(
        hand_model, np.array([[1.0, 0.0]], dtype=np.float32), allowed=np.array([False, True, True])
    )
    assert batch.chosen.tolist() == [2] and batch.top(2).tolist() == [[2, 1]]


def test_given_model_vectors_replace_the_trained_table(hand_model):
    vectors = torch.tensor([[0.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])  # e.g. with an onboarded model
    batch = route_embeddings(hand_model, np.array([[1.0, 0.0]], dtype=np.float32), model_vectors=vectors)
    np.testing.assert_allclose(batch.p[0], [0.5, sigmoid(-3), 0.5, sigmoid(3)], rtol=1e-6)
    assert batch.chosen.tolist() == [3]


def test_routing_is_deterministic_even_if_the_model_was_left_in_training_mode(hand_model):
    hand_model.train()
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(route_embeddings(hand_model, q).p, route_embeddings(hand_model, q).p)


def test_top_orders_by_utility():
    batch = RouteBatch(p=np.zeros((1, 4)), utility=np.array([[0.1, 0.9, 0.5, 0.7]]), chosen=np.array([1]))
    assert batch.top(3).tolist() == [[1, 3, 2]] and batch.top(10).tolist() == [[1, 3, 2, 0]]


@pytest.fixture
def hand_router(hand_model):
    """A Router over the hand model's three vectors: a (cost 10), b (free, no cost), c (cost 5, inactive)."""
    return Router(
        run={"run_id": "r1", "embedder": "hand-2"},
        model=hand_model,
        vectors=hand_model.model_embedding.weight.detach().clone(),
        names=["a", "b", "c"],
        ids=[7, 8, 9],
        costs=[10.0, None, 5.0],
        active=np.array([True, True, False]),
    )


def test_router_ranks_allowed_active_models_by_hand_computed_utility(hand_router):
    east = np.array([[1.0, 0.0]], dtype=np.float32)
    (choice,) = hand_router.route(east, top_k=3, questions=["east"])
    # c is inactive: a (p = s(2)) then b (p = s(0)); top_k is capped at the 2 allowed models
    assert [c.model for c in choice.ranked] == ["a", "b"] and choice.question == "east"
    assert choice.p_correct == pytest.approx(sigmoid(2)) and choice.ranked[0].model_id == 7
    # cost among the candidates: a costs 10 / 10 = 1, b is free -> w = 0.5 gives a .8808 - .5 < b .5
    assert hand_router.route(east, cost_weight=0.5)[0].model == "b"
    assert [c.model for c in hand_router.route(east, allowed_names=["b"])[0].ranked] == ["b"]


def test_router_refuses_unknown_or_inactive_models_and_negative_cost_weight(hand_router):
    east = np.array([[1.0, 0.0]], dtype=np.float32)
    with pytest.raises(InputError, match="unknown model 'aa' for run r1 \\(did you mean 'a'\\?\\)"):
        hand_router.route(east, allowed_names=["aa"])
    with pytest.raises(InputError, match="no active model to route to among c"):
        hand_router.route(east, allowed_names=["c"])
    with pytest.raises(InputError, match="--cost-weight must be >= 0, got -1"):
        hand_router.route(east, cost_weight=-1)


def test_empty_or_blank_questions_are_refused_with_one_line():
    assert check_questions(["a", "b"]) == ["a", "b"]
    with pytest.raises(InputError, match="^the question is empty or blank: give the text to route$"):
        check_questions(["  \t "])
    with pytest.raises(InputError, match="^question 2 of 3 is empty or blank"):
        check_questions(["ok", "", "fine"])
    with pytest.raises(InputError, match="no question to route"):
        check_questions([])


@pytest.fixture
def shifted_router():
    """The hand model with a benchmark shift: a maths question is pushed north (+3 on q's 2nd axis), so b wins."""
    config = EmbedLLMConfig(n_models=3, question_dim=2, dim=2, benchmark_shift=True, benchmarks=["arc", "maths"])
    model = EmbedLLM(config)
    with torch.no_grad():
        model.question_proj.weight.copy_(torch.eye(2))
        model.question_proj.bias.zero_()
        model.classifier.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        model.classifier.bias.zero_()
        model.model_embedding.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        model.benchmark_shift.weight.copy_(
            torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 3.0]])
        )  # unknown, arc, maths
    model.meta = {"preset": "default"}
    return Router(
        run={"run_id": "r2", "embedder": "hand-2"},
        model=model.eval(),
        vectors=model.model_embedding.weight.detach().clone(),
        names=["a", "b", "c"],
        ids=[1, 2, 3],
        costs=[None, None, None],
        active=np.array([True, True, True]),
    )


def test_a_named_benchmark_moves_the_routing_as_its_shift_says(shifted_router):
    east = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    free, arc, maths = shifted_router.route(east, benchmarks=[None, "arc", "maths"])
    assert free.model == "a" and free.p_correct == pytest.approx(sigmoid(2))  # unknown row is zero: as text-only
    assert arc.model == "a" and arc.p_correct == pytest.approx(sigmoid(3))  # q = (1.5, 0): a's logit 3
    assert maths.model == "b" and maths.p_correct == pytest.approx(sigmoid(6))  # q = (1, 3): b's logit 6
    assert shifted_router.benchmarks == ["arc", "maths"]


def test_unknown_benchmarks_and_benchmarks_for_a_text_only_run_are_refused(shifted_router, hand_router):
    east = np.array([[1.0, 0.0]], dtype=np.float32)
    with pytest.raises(InputError, match="unknown benchmark 'math' for run r2 \\(did you mean 'maths'\\?\\)"):
        shifted_router.route(east, benchmarks=["math"])
    with pytest.raises(InputError, match="1 benchmarks for 2 questions"):
        shifted_router.route(np.repeat(east, 2, axis=0), benchmarks=["arc"])
    with pytest.raises(InputError, match="run r1 was trained without benchmark input"):
        hand_router.route(east, benchmarks=["arc"])
    assert hand_router.route(east, benchmarks=[None])[0].model == "a"  # unknown is always fine
