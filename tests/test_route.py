"""Routing on a tiny hand-set model whose probabilities are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedllm.model import EmbedLLM, EmbedLLMConfig
from tasks.route import RouteBatch, normalised_costs, route_embeddings


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture
def hand_model():
    """q = e (identity projection), logit = p_m . q; model vectors (2,0), (0,2), (1,1)."""
    model = EmbedLLM(EmbedLLMConfig(n_models=3, question_dim=2, dim=2, noise_alpha=0.05))
    with torch.no_grad():
        model.question_proj.weight.copy_(torch.eye(2))
        model.question_proj.bias.zero_()
        model.classifier.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))   # out_1 - out_0 = sum(p * q)
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
    batch = route_embeddings(hand_model, np.array([[1.0, 0.0]], dtype=np.float32),
                             allowed=np.array([False, True, True]))
    assert batch.chosen.tolist() == [2] and batch.top(2).tolist() == [[2, 1]]


def test_given_model_vectors_replace_the_trained_table(hand_model):
    vectors = torch.tensor([[0.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])   # e.g. with an onboarded model
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
