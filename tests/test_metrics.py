"""Metrics on tiny tables whose values are computed by hand in the comments."""

import math

import numpy as np
import pytest

from embedllm import metrics


def test_accuracy_thresholds_at_half_and_ignores_unlabelled_cells():
    # labelled cells: 0.9->1 right, 0.6->1 wrong (label 0), 0.4->0 wrong (label 1); the -1 cell is skipped
    assert metrics.accuracy([1, 0, 1, -1], [0.9, 0.6, 0.4, 0.99]) == pytest.approx(1 / 3)


def test_auc_counts_correctly_ordered_positive_negative_pairs():
    # pairs (pos, neg): (.8,.6) yes, (.8,.2) yes, (.4,.6) no, (.4,.2) yes -> 3/4
    assert metrics.auc([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2]) == pytest.approx(0.75)


def test_auc_gives_half_credit_to_ties_and_nan_for_one_class():
    assert metrics.auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert math.isnan(metrics.auc([1, 1], [0.2, 0.9]))


def test_log_loss_of_two_cells():
    # -(ln 0.8 + ln 0.6) / 2
    assert metrics.log_loss([1, 0], [0.8, 0.4]) == pytest.approx((0.2231435513 + 0.5108256238) / 2)


def test_log_loss_clips_certain_mistakes():
    assert metrics.log_loss([1], [0.0]) == pytest.approx(-math.log(1e-7))


def test_ece_weights_each_bin_gap_by_its_share():
    # bin [0, .1): labels 0,1 (mean .5) vs p .05 -> gap .45, share 1/2; bin [.9, 1]: 1,1 vs .95 -> .05, share 1/2
    assert metrics.ece([0, 1, 1, 1], [0.05, 0.05, 0.95, 0.95]) == pytest.approx(0.25)


def test_ece_puts_probability_one_in_the_last_bin():
    assert metrics.ece([1, 1], [1.0, 1.0]) == pytest.approx(0.0)
    assert metrics.ece([0], [1.0]) == pytest.approx(1.0)


def test_calibration_curve_lists_non_empty_bins():
    curve = metrics.calibration_curve([0, 1, 1], [0.05, 0.05, 0.95])
    assert curve == {
        "mean_p": pytest.approx([0.05, 0.95]),
        "mean_label": pytest.approx([0.5, 1.0]),
        "count": [2, 1],
    }


def test_routing_accuracy_scores_the_label_of_the_argmax_model():
    p = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.7]])
    y = np.array([[0, 1], [0, 1], [1, 0]])
    # chosen models 0, 1, 1 -> labels 0, 1, 0
    assert metrics.routing_accuracy(y, p) == pytest.approx(1 / 3)


def test_routing_only_chooses_among_labelled_models_and_skips_unlabelled_questions():
    p = np.array([[0.9, 0.2], [0.3, 0.8], [0.5, 0.5]])
    y = np.array([[-1, 1], [0, 1], [-1, -1]])
    # question 1: only model 1 labelled -> 1; question 2: model 1 -> 1; question 3 skipped
    assert metrics.routing_accuracy(y, p) == pytest.approx(1.0)


def test_single_best_uses_train_accuracy_and_scores_on_test():
    train = np.array([[1, 1], [1, 0], [1, 0], [0, 1]])  # model 0: 3/4, model 1: 2/4
    test = np.array([[0, 1], [1, 1], [0, 1]])  # model 0 on test: 1/3 (model 1 would be 1.0)
    assert metrics.single_best_accuracy(train, test) == pytest.approx(1 / 3)


def test_oracle_counts_questions_some_model_got_right():
    y = np.array([[0, 0], [1, 0], [0, -1], [-1, -1]])
    assert metrics.oracle_accuracy(y) == pytest.approx(1 / 3)


def test_correctness_metrics_prefixes_keys():
    out = metrics.correctness_metrics(np.array([[1, 0]]), np.array([[0.8, 0.4]]), prefix="test_")
    assert set(out) == {"test_accuracy", "test_auc", "test_log_loss", "test_ece"}
    assert out["test_accuracy"] == 1.0 and out["test_auc"] == 1.0


def test_average_ranks_share_ties():
    assert metrics.average_ranks(np.array([0.3, 0.1, 0.3, 0.2])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_calibration_bins_and_ece_hand_computed():
    # two bins: [0, .5) holds .05 (label 0) and .15 (label 1); [.5, 1] holds .95 twice (labels 1, 0)
    p = np.array([0.05, 0.15, 0.95, 0.95])
    y = np.array([0, 1, 1, 0])
    conf, frac, counts = metrics.calibration_bins(y, p, n_bins=2)
    assert counts.tolist() == [2, 2] and conf.tolist() == pytest.approx([0.1, 0.95])
    assert frac.tolist() == [0.5, 0.5]
    # gaps |.5 - .1| = .4 and |.5 - .95| = .45, each bin holding half the cells
    assert metrics.ece(y, p, n_bins=2) == pytest.approx((2 * 0.4 + 2 * 0.45) / 4)


def test_calibration_bins_mark_empty_bins_and_skip_unlabelled_cells():
    conf, frac, counts = metrics.calibration_bins([1, -1], [0.95, 0.05], n_bins=2)
    assert counts.tolist() == [0, 1] and math.isnan(conf[0]) and math.isnan(frac[0])
    assert conf[1] == pytest.approx(0.95) and frac[1] == 1.0


def test_pearson_of_a_hand_computed_case_and_none_when_constant():
    # x = (1, 2, 3), y = (1, 3, 2): cov = 0.5 (sample) = 1/3 (population); var 2/3 each -> r = 0.5
    assert metrics.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert metrics.pearson([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)
    assert metrics.pearson([1, 1, 1], [1, 2, 3]) is None and metrics.pearson([1], [2]) is None
