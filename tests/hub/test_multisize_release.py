"""Release: the shipped multi-size checkpoint is small, says which sizes it saw, and predicts on unseen sizes."""

from __future__ import annotations

import json

import pytest
import torch

from snake_world_eqm import PRETRAINED_MULTISIZE, SnakeWorldEqM
from snake_world_eqm.evaluation.by_size import evaluation_rows
from snake_world_eqm.evaluation.metrics import exact_match

TRAINED = ["6x6", "7x9", "8x8", "8x12", "10x10", "12x9", "11x13", "12x12", "14x14", "16x16"]


@pytest.fixture(scope="module")
def shipped():
    return SnakeWorldEqM.from_pretrained(PRETRAINED_MULTISIZE).eval()


def test_multisize_checkpoint_is_small_size_free_and_names_its_sizes(shipped):
    files = {path.name for path in PRETRAINED_MULTISIZE.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "metrics.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert sum(path.stat().st_size for path in PRETRAINED_MULTISIZE.iterdir()) < 10_000_000
    assert shipped.config.fixed_board_size is False
    assert json.loads((PRETRAINED_MULTISIZE / "metrics.json").read_text())["board_sizes"] == TRAINED
    card = (PRETRAINED_MULTISIZE / "README.md").read_text()
    assert f"Trained on the board sizes {', '.join(TRAINED)}" in card


@pytest.mark.parametrize("size", [(9, 9), (13, 13), (10, 14)])
def test_multisize_checkpoint_predicts_next_boards_on_sizes_it_never_saw(shipped, size):
    rows = evaluation_rows(*size, num_rows=48, seed=99, games=4, expert="route")  # its teacher
    with torch.no_grad():
        board = shipped.sample(rows["state"], action=rows["action"], generator=torch.Generator().manual_seed(0),
                               validate=False).next_board.numpy()
        action = shipped.sample(rows["state"], generator=torch.Generator().manual_seed(1), validate=False).action.numpy()
    # Loose floors (the measured numbers are in docs/results/every_size.md): an untrained model scores ~0.
    assert exact_match(board, rows["next_state"], rows["event"]).mean() >= 0.9
    assert (action == rows["action"]).mean() >= 0.8
