"""OUTPUT_DIR/best holds the weights of the best validation (not the worst, not the last).

Real validation of a few-step run gives nearly flat metrics, so the loop's `validate` is replaced by a
script of known values whose best is neither the first nor the last evaluation; the weights in best/
must then be those of the checkpoint written at that step.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import snake_world_eqm.training.world_model as loop_module
from snake_world_eqm.training import checkpoints, main
from snake_world_eqm.training.selection import is_improvement, lower_is_better
from tests.training_helpers import QUIET, TINY_EQM, build_tiny_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "snake", num_samples=200)


def test_losses_go_down_and_everything_else_goes_up():
    assert lower_is_better("loss") and lower_is_better("loss_state")
    assert not lower_is_better("action_accuracy") and not lower_is_better("next_board_exact")
    assert is_improvement("action_accuracy", 0.5, None) and is_improvement("loss", 9.0, None)
    assert is_improvement("action_accuracy", 0.6, 0.5) and not is_improvement("action_accuracy", 0.4, 0.5)
    assert is_improvement("loss", 0.4, 0.5) and not is_improvement("loss", 0.6, 0.5)
    assert not is_improvement("action_accuracy", 0.5, 0.5) and not is_improvement("loss", 0.5, 0.5)  # ties keep the first


def _scripted_validation(monkeypatch, metric: str, values: list[float]) -> None:
    script = iter(values)

    def fake_validate(*args, **kwargs):
        value = next(script)
        return {metric: value, "action_accuracy" if metric != "action_accuracy" else "loss": 0.5, "num_rows": 16.0}

    monkeypatch.setattr(loop_module, "validate", fake_validate)


def _weights(folder):
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize(
    ("metric", "values", "best_step"),
    [
        ("action_accuracy", [0.5, 0.9, 0.7, 0.3], 2),  # higher is better; the worst (0.3) comes last
        ("loss", [2.0, 1.0, 1.5, 3.0], 2),  # lower is better; the worst (3.0) comes last
        ("action_accuracy", [0.6, 0.6, 0.2, 0.1], 1),  # a tie keeps the earlier step
    ],
)
def test_best_folder_holds_the_weights_of_the_best_evaluation(dataset, tmp_path, monkeypatch, metric, values, best_step):
    _scripted_validation(monkeypatch, metric, values)
    out = tmp_path / "run"
    argv = ["--dataset", str(dataset), "--output-dir", str(out), "--batch-size", "8", "--max-eval-samples", "8",
            "--warmup-steps", "1", "--learning-rate", "1e-2", "--max-steps", str(len(values)), "--eval-every", "1",
            "--save-every", "1", "--checkpoints-total-limit", "10", "--best-metric", metric, *TINY_EQM, *QUIET]
    assert main(argv) == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["best_step"] == best_step and summary["best_value"] == values[best_step - 1]
    assert json.loads((out / "best" / "metrics.json").read_text())["best_step"] == best_step

    kept = dict(checkpoints.complete_checkpoints(out / "checkpoints"))
    best, at_best = _weights(out / "best"), _weights(kept[best_step])
    assert best.keys() == at_best.keys() and all(torch.equal(best[k], at_best[k]) for k in best)
    # The weights really changed between steps, so matching the best step's checkpoint means something.
    final = _weights(out)
    assert any(not torch.equal(best[k], final[k]) for k in best)
