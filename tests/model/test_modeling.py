"""SnakeWorldEqM / SnakePolicyBaseline: shapes, input checks, save/load, Auto + remote code, sampling, learning."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

from snake_world_eqm import (
    SnakePolicyBaseline,
    SnakePolicyBaselineConfig,
    SnakeWorldEqM,
    SnakeWorldEqMConfig,
)
from snake_world_eqm.game import HEAD_ALONE, batched_successors, encode_observation, mask_food, new_game

torch.set_num_threads(1)

TINY = dict(
    d_model=16, num_layers=1, num_heads=2, dropout=0.0, cnn_channels=8, cnn_layers=1, latent_dim=8,
    latent_hidden_dim=16, decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=2,
)


def tiny(size=10, **overrides):
    return SnakeWorldEqMConfig(**{**TINY, "board_height": size, "board_width": size, **overrides})


def boards(n, size=10, seed=0):
    rng = np.random.default_rng(seed)
    states = [new_game(size, size, rng=rng, initial_length=int(rng.integers(1, min(6, size)))) for _ in range(n)]
    return states, np.stack([encode_observation(s) for s in states])


def batch(n, size=10, seed=0):
    """A training batch: random legal boards, random actions, true successors."""
    _, obs = boards(n, size, seed)
    succ = batched_successors(obs, np.random.default_rng(seed))[0]
    action = torch.randint(0, 4, (n,), generator=torch.Generator().manual_seed(seed))
    state, per_action = torch.from_numpy(obs).long(), torch.from_numpy(succ).long()
    return dict(state=state, action=action, next_state=per_action[torch.arange(n), action],
                next_state_per_action=per_action)


# ---------------------------------------------------------------------------------------------------------------
# shapes


@pytest.mark.parametrize("size", [4, 10, 32])
@pytest.mark.parametrize("encoder", [dict(), dict(use_cnn=True, cnn_mode="replace"), dict(use_cnn=True, cnn_mode="append")])
def test_shapes_across_board_sizes(size, encoder):
    torch.manual_seed(0)
    model = SnakeWorldEqM(tiny(size, **encoder))
    data = batch(3, size)
    out = model(**data)
    for name in ("loss", "loss_state", "loss_action", "loss_recon", "loss_whatif"):
        assert out[name].shape == () and torch.isfinite(out[name]), name
    assert out.action_logits.shape == (3, 4) and out.latent_next.shape == (3, 8)
    out.loss.backward()
    assert model.field_net.action_head[-1].weight.grad.abs().sum() > 0
    model.eval()
    s = model.sample(data["state"], num_steps=3, return_trajectory=True)
    assert s.action.shape == (3,) and s.action.dtype == torch.long
    assert s.action_logits.shape == (3, 4) and s.latent_next.shape == (3, 8)
    assert s.next_board.shape == (3, size, size) and s.num_steps.tolist() == [3, 3, 3]
    assert s.grad_norm.shape == (3,) and s.trajectory.shape == (4, 3, 12)
    assert model.from_latent(s.latent_next, data["state"]).shape == (3, size, size, 12)
    assert model.encode(data["state"]).shape == (3, 16)


def test_one_model_runs_on_every_size_when_not_fixed():
    model = SnakeWorldEqM(tiny(10, fixed_board_size=False)).eval()
    for size in (4, 7, 32):
        data = batch(2, size)
        assert torch.isfinite(model(**data).loss)
        assert model.sample(data["state"], num_steps=2).next_board.shape == (2, size, size)


def test_latent_is_normalised_and_death_is_zero():
    model = SnakeWorldEqM(tiny())
    data = batch(6)
    z = model.to_latent(data["next_state_per_action"].flatten(0, 1), data["state"].repeat_interleave(4, 0))
    dead = (data["next_state_per_action"].flatten(0, 1) == 0).flatten(1).all(1)
    assert dead.any() and (~dead).any()
    torch.testing.assert_close(z[~dead].pow(2).mean(-1), torch.ones(int((~dead).sum())), atol=2e-2, rtol=0)
    assert torch.all(z[dead] == 0)


# ---------------------------------------------------------------------------------------------------------------
# input checking


@pytest.fixture(scope="module")
def model10():
    torch.manual_seed(0)
    return SnakeWorldEqM(tiny()).eval()


def _illegal_two_heads():
    _, obs = boards(1)
    board = obs[0].copy()
    board[np.argwhere(board == 0)[0][0], np.argwhere(board == 0)[0][1]] = HEAD_ALONE
    return board


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda b: b[:, :8, :8], ValueError, "does not match"),
        (lambda b: b.astype(np.float32), TypeError, "integer"),
        (lambda b: np.full(b.shape, np.nan, dtype=np.float32), ValueError, "NaN"),
        (lambda b: b[:, None], ValueError, "shape"),
        (lambda b: b.astype(bool), TypeError, "integer"),
        (lambda b: np.where(b == 0, 12, b), ValueError, "cell codes"),
        (lambda b: b - 1, ValueError, "cell codes"),
        (lambda b: _illegal_two_heads(), ValueError, "not a legal"),
        (lambda b: "board", TypeError, "SnakeState"),
    ],
)
def test_bad_boards_raise_clear_errors(model10, make, error, match):
    _, obs = boards(2)
    with pytest.raises(error, match=match):
        model10.sample(make(obs))


def test_bad_actions_and_latents(model10):
    data = batch(2)
    with pytest.raises(ValueError, match="actions must be in"):
        model10.sample(data["state"], action=4)
    with pytest.raises(TypeError, match="actions must be integers"):
        model10.sample(data["state"], action=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="actions must have shape"):
        model10.sample(data["state"], action=[0, 1, 2])
    with pytest.raises(ValueError, match="latent must have shape"):
        model10.decode_latent(torch.zeros(2, 5), data["state"])
    with pytest.raises(ValueError, match="NaN"):
        model10.decode_latent(torch.full((2, 8), float("nan")), data["state"])
    with pytest.raises(ValueError, match="next_state_per_action"):
        model10(**{**data, "next_state_per_action": data["next_state_per_action"][:, :3]})
    with pytest.raises(ValueError, match="next_state must equal"):
        model10(**{**data, "next_state": data["state"]})
    with pytest.raises(TypeError, match="integer"):
        model10(**{**data, "state": data["state"].float()})
    with pytest.raises(ValueError, match="energy"):
        model10.energy(data["state"], torch.zeros(2, 8), torch.zeros(2, 4))


def test_input_forms_agree(model10):
    states, obs = boards(3)
    ref = model10.sample(torch.from_numpy(obs), generator=torch.Generator().manual_seed(1))
    for form in (obs, list(states), obs.astype(np.int64)):
        out = model10.sample(form, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(out.latent_next, ref.latent_next, rtol=0, atol=0)
    single = model10.sample(states[0], generator=torch.Generator().manual_seed(1))
    assert single.action.shape == (1,) and single.next_board.shape == (1, 10, 10)
    torch.testing.assert_close(model10.select_action(obs[0], generator=torch.Generator().manual_seed(1)),
                               model10.sample(obs[0], generator=torch.Generator().manual_seed(1)).action)


def test_terminal_board_is_accepted(model10):
    out = model10.sample(np.zeros((10, 10), dtype=np.int8), num_steps=2)
    assert out.next_board.shape == (1, 10, 10)


# ---------------------------------------------------------------------------------------------------------------
# sampling


def test_generator_reproducible_and_seed_dependent(model10):
    _, obs = boards(4)
    a = model10.sample(obs, generator=torch.Generator().manual_seed(3))
    b = model10.sample(obs, generator=torch.Generator().manual_seed(3))
    c = model10.sample(obs, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.latent_next, b.latent_next) and torch.equal(a.action_logits, b.action_logits)
    assert not torch.equal(a.latent_next, c.latent_next)


def test_init_scale_zero_starts_at_the_origin_and_is_deterministic(model10):
    """init_scale scales the start x0; 0 is NAG from the origin whatever the generator."""
    from snake_world_eqm.eqm import nag_descent

    _, obs = boards(3)
    a = model10.sample(obs, init_scale=0.0, generator=torch.Generator().manual_seed(1))
    b = model10.sample(obs, init_scale=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.latent_next, b.latent_next) and torch.equal(a.action_logits, b.action_logits)
    half = model10.sample(obs, init_scale=0.5, num_steps=3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        h = model10.encode(obs)
        origin = nag_descent(lambda p, i: model10.field(h[i], p), torch.zeros(3, 12), 10,
                             model10.config.eqm_step_size, model10.config.eqm_nag_momentum)
        x0 = 0.5 * torch.randn(3, 12, generator=torch.Generator().manual_seed(1))
        scaled = nag_descent(lambda p, i: model10.field(h[i], p), x0, 3,
                             model10.config.eqm_step_size, model10.config.eqm_nag_momentum)
    torch.testing.assert_close(a.action_logits, origin.x[:, 8:])
    torch.testing.assert_close(half.latent_next, scaled.x[:, :8])
    for bad in (-0.1, float("nan"), float("inf"), True, "0"):
        with pytest.raises(ValueError, match="init_scale"):
            model10.sample(obs, init_scale=bad)


def test_held_action_descends_state_only(model10):
    _, obs = boards(4)
    out = model10.sample(obs, action=2, return_trajectory=True)
    assert out.action.tolist() == [2] * 4
    expected = torch.zeros(4, 4)
    expected[:, 2] = model10.config.action_scale
    assert torch.equal(out.action_logits, expected)
    assert torch.all(out.trajectory[:, :, 8:] == expected)  # the action block never moves
    assert torch.all(out.action_grad_norm == 0)
    assert not torch.equal(out.trajectory[0, :, :8], out.trajectory[-1, :, :8])


def test_adaptive_threshold_stops_samples(model10):
    _, obs = boards(4)
    assert model10.sample(obs, num_steps=6).num_steps.tolist() == [6] * 4
    stopped = model10.sample(obs, num_steps=6, adaptive_threshold=1e6)
    assert stopped.num_steps.tolist() == [1] * 4 and torch.all(stopped.grad_norm < 1e6)


def test_sampler_matches_eqm_nag(model10):
    """sample() is exactly NAG on model.field from N(0, I) with the given generator."""
    from snake_world_eqm.eqm import nag_descent

    _, obs = boards(2)
    out = model10.sample(obs, num_steps=4, step_size=0.2, momentum=0.5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        h = model10.encode(obs)
        x0 = torch.randn(2, 12, generator=torch.Generator().manual_seed(5))
        ref = nag_descent(lambda p, i: model10.field(h[i], p), x0, 4, 0.2, 0.5)
    torch.testing.assert_close(out.latent_next, ref.x[:, :8])
    torch.testing.assert_close(out.action_logits, ref.x[:, 8:])


@pytest.mark.parametrize("energy_type", ["dot_product", "squared_l2"])
def test_explicit_energy_field_is_its_gradient(energy_type):
    torch.manual_seed(0)
    model = SnakeWorldEqM(tiny(use_explicit_energy=True, energy_type=energy_type))
    data = batch(3)
    latent = torch.randn(3, 8, requires_grad=True)
    action_vec = torch.randn(3, 4, requires_grad=True)
    energy = model.energy(data["state"], latent, action_vec)
    assert energy.shape == (3,)
    grad = torch.autograd.grad(energy.sum(), [latent, action_vec])
    field = model.field(model.encode(data["state"]), torch.cat([latent, action_vec], -1).detach())
    torch.testing.assert_close(field, torch.cat(grad, -1))
    out = model(**data)
    out.loss.backward()
    assert model.field_net.trunk[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        s = model.sample(data["state"], num_steps=3)
    assert torch.isfinite(s.latent_next).all() and s.num_steps.tolist() == [3, 3, 3]


# ---------------------------------------------------------------------------------------------------------------
# save / load / Auto / remote code


def test_save_load_roundtrip_exact(tmp_path, model10):
    data = batch(3)
    model10.save_pretrained(tmp_path)
    loaded = SnakeWorldEqM.from_pretrained(tmp_path).eval()
    assert not any(p.is_meta for p in loaded.parameters())
    for (name, p), (_, q) in zip(model10.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(p, q), name
    a = model10.sample(data["state"], generator=torch.Generator().manual_seed(0))
    b = loaded.sample(data["state"], generator=torch.Generator().manual_seed(0))
    for key in ("action", "action_logits", "latent_next", "next_board", "grad_norm"):
        assert torch.equal(a[key], b[key]), key
    torch.manual_seed(7)
    la = model10(**data)
    torch.manual_seed(7)
    lb = loaded(**data)
    assert torch.equal(la.loss, lb.loss)


def test_auto_classes_and_dtype(tmp_path, model10):
    model10.save_pretrained(tmp_path / "eqm")
    baseline = SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(model10.config))
    baseline.save_pretrained(tmp_path / "bc")
    assert type(AutoConfig.from_pretrained(tmp_path / "eqm")) is SnakeWorldEqMConfig
    assert type(AutoModel.from_pretrained(tmp_path / "eqm")) is SnakeWorldEqM
    assert type(AutoModel.from_pretrained(tmp_path / "bc")) is SnakePolicyBaseline
    config = json.loads((tmp_path / "eqm" / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_snake_world_eqm.SnakeWorldEqM"
    assert {"modeling_snake_world_eqm.py", "configuration_snake_world_eqm.py", "eqm.py"} <= set(os.listdir(tmp_path / "eqm"))
    doubled = SnakeWorldEqM.from_pretrained(tmp_path / "eqm", dtype=torch.float64)
    out = doubled.sample(batch(2)["state"], num_steps=2)
    assert out.latent_next.dtype == torch.float64


def test_remote_code_loads_offline_from_folder(tmp_path, model10):
    folder = tmp_path / "repo"
    model10.save_pretrained(folder)
    data = batch(2)
    np.save(tmp_path / "state.npy", data["state"].numpy())
    expected = model10.sample(data["state"], generator=torch.Generator().manual_seed(0)).latent_next
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        out = model.sample(np.load({str(tmp_path / 'state.npy')!r}), generator=torch.Generator().manual_seed(0))
        torch.save(out.latent_next, {str(tmp_path / 'remote.pt')!r})
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.equal(torch.load(tmp_path / "remote.pt"), expected)


# ---------------------------------------------------------------------------------------------------------------
# baseline


def test_baseline_forward_and_select_action():
    config = SnakePolicyBaselineConfig.from_eqm_config(tiny(use_cnn=True))
    model = SnakePolicyBaseline(config)
    eqm = SnakeWorldEqM(tiny(use_cnn=True))
    # Same encoder architecture, same size.
    assert sum(p.numel() for p in model.encoder.parameters()) == sum(p.numel() for p in eqm.encoder.parameters())
    data = batch(5)
    out = model(data["state"], data["action"])
    assert out.logits.shape == (5, 4) and out.loss.shape == ()
    assert model(data["state"]).loss is None
    states, _ = boards(2)
    assert model.select_action(states).shape == (2,)
    with pytest.raises(ValueError, match="does not match"):
        model.select_action(np.zeros((6, 6), dtype=np.int8))


# ---------------------------------------------------------------------------------------------------------------
# learning


def _toward_food(n, size, seed):
    """Learnable rule: step along the axis where the food is farther (ties: vertical)."""
    states, obs = boards(n, size, seed)
    dr = np.array([s.food[0] - s.head[0] for s in states])
    dc = np.array([s.food[1] - s.head[1] for s in states])
    action = np.where(np.abs(dr) >= np.abs(dc), np.where(dr < 0, 0, 2), np.where(dc > 0, 1, 3))
    succ = batched_successors(obs, np.random.default_rng(seed))[0]
    return torch.from_numpy(obs).long(), torch.from_numpy(action), torch.from_numpy(succ).long()


def test_short_training_learns_the_action_and_the_next_board():
    torch.manual_seed(0)
    size = 6
    state, action, succ = _toward_food(1500, size, seed=0)
    vstate, vaction, vsucc = _toward_food(300, size, seed=1)
    config = SnakeWorldEqMConfig.cpu_small(
        board_height=size, board_width=size, d_model=16, cnn_channels=16, cnn_layers=2, latent_dim=16,
        latent_hidden_dim=16, decoder_channels=16, decoder_layers=2, eqm_hidden_dim=32, eqm_num_layers=2,
    )
    model = SnakeWorldEqM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        idx = torch.randint(0, len(state), (32,))
        out = model(state[idx], action[idx], succ[idx, action[idx]], succ[idx])
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-25:]) < 0.4 * np.mean(losses[:25])

    model.eval()
    majority = np.bincount(vaction.numpy()).max() / len(vaction)
    out = model.sample(vstate, generator=torch.Generator().manual_seed(0), validate=False)
    accuracy = (out.action == vaction).float().mean().item()
    assert accuracy > majority + 0.4, (accuracy, majority)
    # The decoded next board beats copying the current board (food placement after eating excluded).
    truth = torch.from_numpy(mask_food(vsucc[torch.arange(len(vaction)), vaction].numpy()))
    predicted = torch.from_numpy(mask_food(out.next_board.numpy()))
    copy = torch.from_numpy(mask_food(vstate.numpy()))
    cell_acc, copy_acc = (predicted == truth).float().mean().item(), (copy == truth).float().mean().item()
    assert cell_acc > copy_acc + 0.02, (cell_acc, copy_acc)
