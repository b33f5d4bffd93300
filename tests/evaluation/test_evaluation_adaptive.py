"""The adaptive-compute summary and threshold choice, on hand-made curves."""

import pytest

from snake_world_eqm.evaluation.evaluate import choose_thresholds, summarise_adaptive


def _fixed(steps, accuracy):
    return {"num_steps": steps, "action_accuracy": accuracy, "mean_field_evaluations": float(steps),
            "median_grad_norm": 1.0 / steps}


def test_summary_picks_the_cheapest_threshold_within_half_a_point():
    fixed = [_fixed(5, 0.85), _fixed(10, 0.90), _fixed(20, 0.91)]
    adaptive = [
        {"threshold": 0.1, "action_accuracy": 0.899, "mean_field_evaluations": 5.0},  # -0.1 point, half the cost
        {"threshold": 0.5, "action_accuracy": 0.880, "mean_field_evaluations": 3.0},  # cheaper but -2 points
        {"threshold": 0.05, "action_accuracy": 0.905, "mean_field_evaluations": 8.0},
    ]
    summary = summarise_adaptive(fixed, adaptive)
    assert summary["best"]["threshold"] == 0.1
    assert summary["evaluation_reduction"] == pytest.approx(0.5)
    assert summary["accuracy_change"] == pytest.approx(-0.001)
    assert summary["meets_claim"] is True


def test_summary_says_no_when_no_threshold_keeps_accuracy():
    summary = summarise_adaptive([_fixed(10, 0.9)], [{"threshold": 1.0, "action_accuracy": 0.8,
                                                      "mean_field_evaluations": 2.0}])
    assert summary["best"] is None and summary["meets_claim"] is False
    assert summarise_adaptive([_fixed(5, 0.9)], [])["best"] is None  # no 10-step reference measured


def test_thresholds_span_the_reached_norms_and_stay_few():
    curve = [{"num_steps": n, "median_grad_norm": g} for n, g in [(1, 5.0), (2, 3.0), (3, 2.0), (5, 1.0),
                                                                  (10, 0.3), (20, 0.05)]]
    thresholds = choose_thresholds(curve, configured=0.2)
    assert thresholds == sorted(thresholds) and 0.2 in thresholds
    assert len(thresholds) <= 7 and min(thresholds) == 0.025 and max(thresholds) == 6.0
    assert choose_thresholds([{"num_steps": 1, "median_grad_norm": 1.0}], None) == []  # one step: nothing to stop
