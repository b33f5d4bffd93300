"""Calibration measures: ECE and reliability bins on hand-made probabilities, and the vote smoothing fit."""

import numpy as np
import pytest

from snake_world_eqm.evaluation.calibration import (
    expected_calibration_error,
    fit_vote_smoothing,
    reliability_bins,
    vote_probabilities,
)


def test_a_calibrated_forecaster_has_zero_ece_and_an_overconfident_one_its_gap():
    # 10 rows at confidence 0.8 of which 8 right: calibrated. The same rows claimed at 1.0: gap 0.2.
    labels = np.array([0] * 8 + [1] * 2)
    calibrated = np.tile([0.8, 0.2, 0.0, 0.0], (10, 1))
    overconfident = np.tile([1.0, 0.0, 0.0, 0.0], (10, 1))
    assert expected_calibration_error(calibrated, labels) == pytest.approx(0.0)
    assert expected_calibration_error(overconfident, labels) == pytest.approx(0.2)
    table = reliability_bins(calibrated, labels, bins=10)
    assert sum(row["rows"] for row in table) == 10
    full = [row for row in table if row["rows"]]
    assert len(full) == 1 and full[0]["confidence"] == pytest.approx(0.8) and full[0]["accuracy"] == pytest.approx(0.8)


def test_ece_weights_bins_by_their_rows():
    labels = np.array([0, 0, 0, 1])
    probs = np.array([[0.95, 0.05, 0, 0]] * 3 + [[0.55, 0.45, 0, 0]])
    # bin (0.9, 1.0]: 3 rows, all right, confidence 0.95 -> gap 0.05; bin (0.5, 0.6]: 1 row, wrong -> gap 0.55
    assert expected_calibration_error(probs, labels) == pytest.approx(0.75 * 0.05 + 0.25 * 0.55)


def test_vote_probabilities_smooth_and_sum_to_one():
    votes = np.array([[8, 0, 0, 0], [4, 4, 0, 0]])
    probs = vote_probabilities(votes, 0.5)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs[0, 0] == pytest.approx(8.5 / 10) and probs[1, 0] == pytest.approx(probs[1, 1])
    with pytest.raises(ValueError, match="smoothing"):
        vote_probabilities(votes, 0.0)


def test_the_fitted_smoothing_follows_how_often_unanimous_votes_are_wrong():
    rng = np.random.default_rng(0)
    votes = np.tile([8, 0, 0, 0], (1000, 1))
    rarely_wrong = np.where(rng.random(1000) < 0.01, 1, 0)
    often_wrong = np.where(rng.random(1000) < 0.2, 1, 0)
    assert fit_vote_smoothing(votes, rarely_wrong) < fit_vote_smoothing(votes, often_wrong)
    # the fit is what a calibrated forecaster would say: P(top) close to the observed accuracy
    probs = vote_probabilities(votes, fit_vote_smoothing(votes, often_wrong))
    assert probs[0, 0] == pytest.approx(1 - often_wrong.mean(), abs=0.03)
