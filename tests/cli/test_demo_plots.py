"""Plots readable on their own: box-plot markers explained, thresholds labelled, one validation point in place."""

from __future__ import annotations

import json

import pytest

from snake_world_eqm.evaluation import plots


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions build, kept open for inspection instead of being saved."""
    kept = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: kept.append(figure) or path)
    yield kept
    for figure in kept:
        plots.plt.close(figure)


def _texts(axis) -> list[str]:
    return [text.get_text() for text in axis.texts]


def test_box_plot_legend_names_mean_and_median(figures):
    result = {"play": {"eqm": {"apples_per_game": [3, 5, 40], "games": 6,
                               "by_start": {"3": {"games": 3}, "1": {"games": 3}}},
                       "random": {"apples_per_game": [0, 0, 1], "games": 6}}}
    plots.plot_apples_per_agent(result, "unused.png")
    axis = figures[0].axes[0]
    labels = [text.get_text() for text in axis.get_legend().get_texts()]
    assert any(label.startswith("mean") for label in labels) and "median" in labels
    legend_mean = axis.get_legend().legend_handles[0]
    assert legend_mean.get_marker() == "^"  # the triangle the box plot draws for the mean
    assert "16.0" in _texts(axis) and "0.3" in _texts(axis)  # each mean written beside its marker
    assert "3 seeds x 3-cell and 1-cell starts" in axis.get_title()


def test_adaptive_thresholds_are_labelled_as_thresholds(figures):
    result = {"fixed_steps": [{"num_steps": 1, "action_accuracy": 0.5, "mean_field_evaluations": 1.0},
                              {"num_steps": 10, "action_accuracy": 0.9, "mean_field_evaluations": 10.0}],
              "adaptive": [{"threshold": 0.5, "action_accuracy": 0.9, "mean_field_evaluations": 4.0},
                           {"threshold": 2.0, "action_accuracy": 0.6, "mean_field_evaluations": 2.0}]}
    plots.plot_adaptive_tradeoff(result, "unused.png")
    axis = figures[0].axes[0]
    assert sorted(_texts(axis)) == ["‖f‖<0.5", "‖f‖<2"]
    assert any("threshold" in text.get_text() for text in axis.get_legend().get_texts())


def test_one_validation_point_shares_the_training_step_axis(tmp_path, figures):
    rows = [{"kind": "train", "step": step, "train/loss": 1.0 / step} for step in range(10, 210, 10)]
    rows.append({"kind": "eval", "step": 200, "action_accuracy": 0.313})
    log = tmp_path / "train_log.jsonl"
    log.write_text("\n".join(json.dumps(row) for row in rows))
    plots.plot_training_curves(log, tmp_path / "curves.png")
    loss_axis, eval_axis = figures[0].axes
    assert eval_axis.get_xlim() == loss_axis.get_xlim()
    assert eval_axis.get_xlim()[0] == 0 and eval_axis.get_xlim()[1] >= 200
    low, high = eval_axis.get_ylim()
    assert 5 <= high - low <= 11 and low <= 31.3 <= high  # a readable band around the lone value
    assert "31.3" in _texts(eval_axis)


@pytest.mark.parametrize(("auroc", "expected"), [
    (0.403, "error-detection AUROC 0.403 (0.5 = chance, lower = worse)"),
    (0.81, "error-detection AUROC 0.810 (0.5 = chance, lower = worse)"),
    (float("nan"), "error-detection AUROC undefined (no right or no wrong actions)"),
])
def test_the_histogram_title_says_which_auroc_and_where_chance_is(figures, auroc, expected):
    # The AUROC of the final gradient norm for the model's own wrong actions; a bare "AUROC 0.403" read as a score.
    result = {"uncertainty": {"grad_norm": {"action_error_auroc": auroc},
                              "grad_norm_values": {"right": [0.1, 0.2, 0.3], "wrong": [0.15]}}}
    plots.plot_grad_norm_histograms(result, "unused.png")
    title = figures[0].axes[0].get_title()
    assert title.splitlines() == ["Final gradient norm of right and wrong actions", expected]
