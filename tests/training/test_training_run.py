"""Short in-process training runs: what a run leaves behind, the baseline, accumulation, the time
budget, and the validation metrics against an oracle and a wrong model."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM, cli
from snake_world_eqm.data import collate, load_snake_dataset
from snake_world_eqm.game.encoding import EMPTY, FOOD
from snake_world_eqm.training import checkpoints, main
from snake_world_eqm.training.validation import eqm_row_metrics
from tests.training_helpers import QUIET, TINY_EQM, build_tiny_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "snake")


def _run(dataset, out, *extra, entry=main):
    argv = ["--dataset", str(dataset), "--output-dir", str(out), "--batch-size", "16", "--max-eval-samples", "16",
            "--warmup-steps", "2", *TINY_EQM, *QUIET, *extra]
    assert entry(argv) == 0
    return json.loads((out / "metrics.json").read_text())


def test_eqm_run_leaves_loadable_models_checkpoints_and_logs(dataset, tmp_path):
    out = tmp_path / "run"
    summary = _run(dataset, out, "--max-steps", "6", "--eval-every", "3", "--save-every", "2",
                   "--checkpoints-total-limit", "2", "--log-every", "2", "--report-to", "tensorboard")
    assert summary["global_step"] == 6 and summary["stopped_because"] == "max_steps"
    assert summary["samples_seen"] == 6 * 16 and summary["samples_per_second"] > 0
    assert 0.0 <= summary["validation"]["action_accuracy"] <= 1.0
    assert summary["validation"]["num_rows"] == 16
    assert [e["step"] for e in summary["evals"]] == [3, 6]

    final = SnakeWorldEqM.from_pretrained(out)
    best = SnakeWorldEqM.from_pretrained(out / "best")
    assert final.config.board_height == 6 and final.config.d_model == 16
    boards = load_snake_dataset(dataset, split="validation").with_format("numpy")[:4]["state"]
    sample = final.sample(boards, num_steps=2)
    assert sample.next_board.shape == (4, 6, 6)
    assert (out / "best" / "config.json").read_text() == (out / "config.json").read_text()
    assert best.config.d_model == 16
    best_summary = json.loads((out / "best" / "metrics.json").read_text())
    assert best_summary["best_step"] == summary["best_step"]

    # Only the newest two complete checkpoints survive; the last one holds the final weights.
    kept = checkpoints.complete_checkpoints(out / "checkpoints")
    assert [step for step, _ in kept] == [4, 6]
    state = checkpoints.read_state(kept[-1][1])
    assert state["loop"]["global_step"] == 6 and state["model_kind"] == "eqm"
    saved, last = load_file(out / "model.safetensors"), load_file(kept[-1][1] / "model.safetensors")
    assert saved.keys() == last.keys() and all(torch.equal(saved[k], last[k]) for k in saved)

    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    train_rows = [row for row in log if row["kind"] == "train"]
    assert [row["step"] for row in train_rows] == [2, 4, 6]
    assert all(np.isfinite(row["train/loss"]) for row in train_rows)
    # Warmup of 2 steps reaches the peak learning rate; the cosine ends at zero on the last step.
    learning_rates = [row["train/learning_rate"] for row in train_rows]
    assert learning_rates[0] == pytest.approx(3e-4) and learning_rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert {"train/loss_state", "train/loss_action", "train/loss_recon", "train/loss_whatif"} <= set(train_rows[0])
    assert list((out / "logs").rglob("events.out.tfevents*")), "tensorboard wrote no event file"
    card = (out / "README.md").read_text()
    assert "action_accuracy" in card and "snake-eqm train" in card


def test_baseline_trains_on_the_same_pipeline_with_the_same_encoder(dataset, tmp_path):
    out = tmp_path / "baseline"
    # Through `snake-eqm train` (the console script's main), as a user would call it.
    summary = _run(dataset, out, "--model", "baseline", "--max-steps", "4", "--eval-every", "2",
                   entry=lambda argv: cli.main(["train", *argv]))
    assert summary["model"] == "baseline" and summary["global_step"] == 4
    model = SnakePolicyBaseline.from_pretrained(out)
    assert (model.config.d_model, model.config.num_layers, model.config.num_heads) == (16, 1, 2)
    assert model.config.head_hidden_dim == 16  # from_eqm_config: the EqM field width
    assert 0.0 <= summary["validation"]["action_accuracy"] <= 1.0


def test_gradient_accumulation_counts_optimizer_steps(dataset, tmp_path):
    summary = _run(dataset, tmp_path / "accum", "--max-steps", "3", "--gradient-accumulation-steps", "2",
                   "--eval-every", "100", "--save-every", "100")
    assert summary["global_step"] == 3
    assert summary["samples_seen"] == 3 * 2 * 16


def test_every_seed_flag_reaches_the_saved_config(dataset, tmp_path):
    out = tmp_path / "seed_flags"
    seed_flags = ["--epochs", "3", "--batch-size", "16", "--d-model", "16", "--num-layers", "1", "--num-heads", "4",
                  "--use-cnn", "--cnn-mode", "append", "--latent-dim", "12", "--eqm-hidden-dim", "24",
                  "--eqm-num-layers", "2", "--gradient-schedule", "truncated", "--gradient-multiplier", "2.5",
                  "--eqm-sampling-steps", "4", "--eqm-step-size", "0.2", "--eqm-nag-momentum", "0.5",
                  "--eqm-adaptive-threshold", "0.01", "--output-dir", str(out)]
    argv = ["--dataset", str(dataset), *seed_flags, "--max-steps", "2", "--max-eval-samples", "8",
            "--config-set", "decoder_channels=8", "--cnn-channels", "8", "--cnn-layers", "1", *QUIET]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    expected = {"d_model": 16, "num_layers": 1, "num_heads": 4, "use_cnn": True, "cnn_mode": "append",
                "latent_dim": 12, "eqm_hidden_dim": 24, "eqm_num_layers": 2, "gradient_schedule": "truncated",
                "gradient_multiplier": 2.5, "eqm_sampling_steps": 4, "eqm_step_size": 0.2, "eqm_nag_momentum": 0.5,
                "eqm_adaptive_threshold": 0.01, "board_height": 6, "board_width": 6}
    assert {key: config[key] for key in expected} == expected


def test_time_budget_stops_cleanly_and_saves(dataset, tmp_path):
    out = tmp_path / "budget"
    summary = _run(dataset, out, "--max-steps", "100000", "--max-train-minutes", "0.0001", "--eval-every", "1000")
    assert summary["stopped_because"] == "time_budget"
    assert summary["global_step"] < 100000
    assert (out / "checkpoints" / f"checkpoint-{summary['global_step']}" / "training_state.json").is_file()
    SnakeWorldEqM.from_pretrained(out)


def test_epochs_bound_the_run_and_leftover_temp_checkpoints_are_ignored(dataset, tmp_path):
    out = tmp_path / "epochs"
    leftover = out / "checkpoints" / ".tmp-checkpoint-99"
    leftover.mkdir(parents=True)
    summary = _run(dataset, out, "--epochs", "1", "--batch-size", "64", "--eval-every", "1000", "--save-every", "1000")
    train_rows = len(load_snake_dataset(dataset, split="train"))
    assert summary["stopped_because"] == "epochs"
    assert summary["global_step"] == train_rows // 64  # drop_last
    assert not leftover.exists()


# ---------------------------------------------------------------------------------------------------------
# Validation metrics, checked against models whose answers are known
# ---------------------------------------------------------------------------------------------------------


class _ScriptedModel:
    """Answers `sample` with boards from the batch: the truth, or the unchanged current board."""

    def __init__(self, batch, truthful: bool, free_action_shift: int = 0):
        self.batch, self.truthful, self.free_action_shift = batch, truthful, free_action_shift

    def sample(self, state, action=None, generator=None, validate=True):
        chosen = (self.batch["action"] + self.free_action_shift) % 4 if action is None else action
        rows = torch.arange(len(state))
        if self.truthful:
            board = self.batch["next_state_per_action"][rows, chosen].clone()
            # Food respawns at random after eating: put it elsewhere; the metrics must not care.
            ate = self.batch["event_per_action"][rows, chosen] == 1
            for i in torch.nonzero(ate).flatten().tolist():
                food = board[i] == FOOD
                empty = torch.nonzero(board[i] == EMPTY)
                if food.any() and len(empty):
                    board[i][food] = EMPTY
                    board[i][tuple(empty[-1])] = FOOD
        else:
            board = state.clone()
        n = len(state)
        return SimpleNamespace(action=chosen, next_board=board, num_steps=torch.full((n,), 3), grad_norm=torch.zeros(n))


def _batch_with_eating(dataset):
    split = load_snake_dataset(dataset, split="train").with_format("numpy")
    events = np.asarray(split["event"])
    eat_rows = np.flatnonzero(events == 1)[:8].tolist()
    other = np.flatnonzero(events != 1)[:8].tolist()
    assert eat_rows, "the tiny dataset should contain eating transitions"
    return collate(split[eat_rows + other])


def test_validation_metrics_of_an_oracle_are_one(dataset):
    batch = _batch_with_eating(dataset)
    rows = eqm_row_metrics(_ScriptedModel(batch, truthful=True), batch, torch.Generator())
    for name in ("action_accuracy", "next_board_exact", "free_next_board_exact", "validity", "coherence",
                 "whatif_exact.mean"):
        assert rows[name].min().item() == 1.0, name


def test_validation_next_board_exact_holds_the_expert_action(dataset):
    # Exact for every held action, but the free sample takes the next action over: next_board_exact (held
    # expert action) stays 1 while the free sample's board against the expert's successor is 0.
    batch = _batch_with_eating(dataset)
    rows = eqm_row_metrics(_ScriptedModel(batch, truthful=True, free_action_shift=1), batch, torch.Generator())
    assert rows["action_accuracy"].max().item() == 0.0
    assert rows["next_board_exact"].min().item() == 1.0 and rows["whatif_exact.mean"].min().item() == 1.0
    assert rows["coherence"].min().item() == 1.0
    different = (batch["next_state_per_action"][torch.arange(len(batch["action"])), (batch["action"] + 1) % 4]
                 != batch["next_state"]).flatten(1).any(1)
    torch.testing.assert_close(rows["free_next_board_exact"], (~different).float())


def test_validation_metrics_of_a_model_that_predicts_no_change_are_zero(dataset):
    batch = _batch_with_eating(dataset)
    rows = eqm_row_metrics(_ScriptedModel(batch, truthful=False), batch, torch.Generator())
    assert rows["action_accuracy"].min().item() == 1.0  # it copies the expert's action...
    for name in ("next_board_exact", "free_next_board_exact", "validity", "coherence", "whatif_exact.mean"):
        assert rows[name].max().item() == 0.0, name  # ...but a board never stays the same after a step
    assert 0.0 < rows["next_board_cell_accuracy"].mean().item() < 1.0
