"""The seed design's inference snippet runs as written, on the shipped checkpoint.

The snippet below is the "Inference" section of SEED_EQM_WORLD_MODEL.md, copied line for line except its
import (`from model.model_eqm import ...` names the seed's own repository layout; ours is `snake_world_eqm`).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from snake_world_eqm import PRETRAINED_10X10
from snake_world_eqm.game import encode_observation, new_game, step

SEED_IMPORT = "from model.model_eqm import SnakeWorldEqM, SnakeWorldEqMConfig"
SEED_SNIPPET = textwrap.dedent("""
    from model.model_eqm import SnakeWorldEqM, SnakeWorldEqMConfig

    # Load model
    config = SnakeWorldEqMConfig.from_pretrained(model_path)
    model = SnakeWorldEqM.from_pretrained(model_path)

    # Sample action
    result = model.sample(current_obs)
    action = result['action']  # Discrete action
    latent_next = result['latent_next']  # Predicted next state (latent)

    # Optional: decode latent to grid
    next_state_hidden = model.from_latent(latent_next)
""")


def _run_seed_snippet(model_path, current_obs) -> dict:
    assert SEED_IMPORT in SEED_SNIPPET
    code = SEED_SNIPPET.replace(SEED_IMPORT, "from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig")
    namespace = {"model_path": model_path, "current_obs": current_obs}
    torch.manual_seed(0)
    exec(compile(code, "SEED_EQM_WORLD_MODEL.md", "exec"), namespace)
    return namespace


def test_seed_inference_snippet_runs_verbatim_and_decodes_the_next_board():
    state = new_game(10, 10, rng=0)
    current_obs = encode_observation(state)
    ns = _run_seed_snippet(PRETRAINED_10X10, current_obs)
    model, result, hidden = ns["model"], ns["result"], ns["next_state_hidden"]

    assert ns["config"].latent_dim == model.config.latent_dim
    assert ns["action"].shape == (1,) and 0 <= int(ns["action"]) < 4
    assert ns["latent_next"].shape == (1, model.config.latent_dim)
    # One argument gives exactly the two-argument decoding against the board that was sampled from...
    assert hidden.shape == (1, 10, 10, model.config.num_cell_classes)
    assert torch.equal(hidden, model.from_latent(ns["latent_next"], current_obs))
    assert torch.equal(hidden.argmax(-1), result.next_board)
    assert torch.equal(hidden.argmax(-1), model.decode_latent(ns["latent_next"], current_obs))
    # ...and that board is the game's real successor for the sampled action (no food eaten from this start).
    real = step(state, int(ns["action"]), np.random.default_rng(0))
    assert np.array_equal(hidden.argmax(-1)[0].numpy(), real.observation)


def test_one_argument_from_latent_refuses_a_latent_it_cannot_place():
    from snake_world_eqm import SnakeWorldEqM

    model = SnakeWorldEqM.from_pretrained(PRETRAINED_10X10).eval()
    first = encode_observation(new_game(10, 10, rng=0))
    second = encode_observation(new_game(10, 10, rng=1))
    with pytest.raises(ValueError, match="current_board"):
        model.from_latent(torch.zeros(1, model.config.latent_dim))  # nothing sampled yet
    old = model.sample(first).latent_next
    model.sample(second)
    # The last sample was for another board: decoding `old` against it would be silently wrong.
    with pytest.raises(ValueError, match="current_board"):
        model.from_latent(old)
    assert model.from_latent(old, first).shape == (1, 10, 10, model.config.num_cell_classes)
