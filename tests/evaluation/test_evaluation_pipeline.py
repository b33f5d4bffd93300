"""The evaluate pipeline end to end on a tiny generated dataset.

A perfect (simulator-backed) model must score perfectly on every held-out metric, which checks the
metric plumbing (food masking, what-if columns, coherence indexing); a tiny random model must run
through the CLI and produce every stable key, plots included.
"""

import json
import math

import numpy as np
import pytest
import torch

from snake_world_eqm.evaluation.evaluate import RESULT_KEYS, EvalConfig, corrupt_boards, evaluate
from snake_world_eqm.evaluation.oracle import OracleWorldModel

SIZE = 6


@pytest.fixture(scope="module")
def tiny_dataset():
    from snake_world_eqm.data import GenerationConfig, generate_dataset_dict

    config = GenerationConfig(num_samples=400, height=SIZE, width=SIZE, seed=5, split_fractions=(0.5, 0.1, 0.4))
    return generate_dataset_dict(config, progress=False)


def _small_cfg(**overrides) -> EvalConfig:
    settings = dict(max_rows=80, batch_size=64, games=3, max_steps=40, fixed_steps=(1, 2, 10), adaptive_max_steps=4,
                    spread_seeds=2, planner_options={"horizon": 2, "rollouts": 1},
                    fatal_games=1, fatal_horizon=3, fatal_max_states=60, risk_horizon=2, agents=("eqm", "planner", "expert", "random"))
    settings.update(overrides)
    return EvalConfig(**settings)


def test_a_perfect_model_scores_perfectly(tiny_dataset):
    result = evaluate(OracleWorldModel(SIZE, SIZE, seed=3), tiny_dataset["test"], cfg=_small_cfg(), progress=False)
    assert result["action_accuracy"] == 1.0
    assert result["next_board_exact"] == 1.0 and result["next_board_cell_accuracy"] == 1.0
    assert result["whatif_exact"]["mean"] == 1.0
    assert result["validity"] == 1.0 and result["coherence"] == 1.0
    # The test rows contain apples, so food masking was exercised (the oracle places its own food).
    assert (np.asarray(tiny_dataset["test"]["event"][:80]) == 1).any()
    assert result["play"]["expert"]["mean_apples"] > result["play"]["random"]["mean_apples"]
    assert math.isnan(result["uncertainty"]["grad_norm"]["action_error_auroc"])  # no errors to rank
    assert set(RESULT_KEYS) <= set(result)


class _WrongFreeActionOracle(OracleWorldModel):
    """Exact for every held action, but its free sample takes another action (and that action's true board)."""

    def sample(self, obs, action=None, **kwargs):
        if action is None:
            expert = super().sample(obs, **kwargs).action
            action = (expert + 1) % 4
        return super().sample(obs, action=action, **kwargs)


def test_next_board_exact_holds_the_expert_action_not_the_free_sample(tiny_dataset):
    # A perfect oracle cannot tell the two apart; this model can: its held boards are all right, its free
    # sample picks another action. next_board_exact is about the held expert action, so it stays perfect.
    from snake_world_eqm.evaluation.evaluate import held_out_metrics, load_rows

    rows = load_rows(tiny_dataset["test"], 80)
    result, _ = held_out_metrics(_WrongFreeActionOracle(SIZE, SIZE, seed=3), rows, _small_cfg())
    assert result["action_accuracy"] == 0.0
    assert result["next_board_exact"] == 1.0 and result["next_board_cell_accuracy"] == 1.0
    assert result["whatif_exact"]["mean"] == 1.0
    # The free board is its own action's successor (coherent, valid) but not the expert's.
    assert result["coherence"] == 1.0 and result["validity"] == 1.0 and result["free_next_board_exact"] == 1.0
    expert_next = rows["next_state"]
    free_boards = _WrongFreeActionOracle(SIZE, SIZE, seed=3).sample(rows["state"]).next_board.numpy()
    assert (free_boards != expert_next).any(axis=(1, 2)).mean() > 0.5  # the two definitions really differ here


def test_corrupted_boards_are_all_illegal(tiny_dataset):
    from snake_world_eqm.game import validate_observation

    states = np.asarray(tiny_dataset["test"].with_format("numpy")[:30]["state"])
    corrupted, kinds = corrupt_boards(states, seed=0)
    assert set(kinds.tolist()) == {0, 1, 2}
    for board in corrupted:
        with pytest.raises(ValueError):
            validate_observation(board.astype(np.int8))


def _tiny_models():
    from snake_world_eqm.configuration_snake_world_eqm import SnakePolicyBaselineConfig, SnakeWorldEqMConfig
    from snake_world_eqm.modeling_snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM

    torch.manual_seed(0)
    config = SnakeWorldEqMConfig.cpu_small(
        board_height=SIZE, board_width=SIZE, d_model=16, cnn_channels=16, cnn_layers=1, latent_dim=8,
        latent_hidden_dim=16, decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=1)
    baseline = SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(config))
    return SnakeWorldEqM(config), baseline


def test_evaluate_cli_writes_json_and_plots(tiny_dataset, tmp_path):
    from snake_world_eqm.evaluation.cli import main

    model, baseline = _tiny_models()
    model.save_pretrained(tmp_path / "model")
    baseline.save_pretrained(tmp_path / "baseline")
    tiny_dataset.save_to_disk(str(tmp_path / "data"))
    code = main(["--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data"),
                 "--baseline", str(tmp_path / "baseline"), "--json", str(tmp_path / "out.json"),
                 "--plots", str(tmp_path / "plots"), "--max-rows", "40", "--games", "2", "--max-steps", "20",
                 "--fixed-steps", "1,2,10", "--adaptive-max-steps", "4", "--spread-seeds", "2",
                 "--planner-horizon", "2", "--planner-gate", "always", "--fatal-games", "1", "--fatal-horizon", "3",
                 "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert set(RESULT_KEYS) <= set(result)
    assert set(result["play"]) == {"eqm", "planner", "baseline", "expert", "random"}
    assert [p["num_steps"] for p in result["fixed_steps"]] == [1, 2, 10]
    assert all(p["mean_field_evaluations"] == p["num_steps"] for p in result["fixed_steps"])
    assert all(p["mean_field_evaluations"] <= 4 for p in result["adaptive"])
    for key in ("action_accuracy", "next_board_exact", "validity", "coherence"):
        assert 0.0 <= result[key] <= 1.0
    assert result["config"]["max_steps"] == 20 and result["config"]["games"] == 2
    assert "grad_norm_values" not in result["uncertainty"]
    assert result["uncertainty"]["fatal_decisions"]["k"] == 3
    assert "fatal_decision_auroc" in result["uncertainty"]["seed_disagreement"]
    assert result["play"]["planner"]["planner_config"]["gate"] == "always"
    assert result["play"]["planner"]["cost"]["decisions"] > 0
    # Every headline metric of the model card names a key that evaluate really writes (a misspelt key
    # would silently drop its row from the card).
    from snake_world_eqm.hub import HEADLINE_METRICS, flatten_metrics

    assert set(HEADLINE_METRICS) - set(flatten_metrics(result)) == set()
    assert "NaN" not in (tmp_path / "out.json").read_text()  # strict JSON: undefined AUROCs are null
    pngs = sorted(path.name for path in (tmp_path / "plots").iterdir())
    assert pngs == ["accuracy_vs_steps.png", "adaptive_tradeoff.png", "apples_per_agent.png",
                    "grad_norm_histograms.png"]


def test_the_expert_agent_is_the_datas_teacher_and_other_experts_play_by_name(monkeypatch):
    from snake_world_eqm.evaluation.cli import build_parser, config_from_args
    from snake_world_eqm.evaluation.evaluate import build_agents, fatal_labels

    argv = ["--model", "m", "--dataset", "d", "--agents", "expert,expert-astar", "--expert", "fill"]
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    agents = build_agents(cfg.agents, model=None, baseline=None, cfg=cfg)
    assert {name: agent.kind for name, agent in agents.items()} == {"expert": "fill", "expert-astar": "astar"}
    assert build_parser().parse_args(["--model", "m", "--dataset", "d"]).expert == "auto"
    # eqm-votesK is the EqM agent averaging K noise draws per move; K must be a positive integer.
    argv = ["--model", "m", "--dataset", "d", "--agents", "eqm-votes4"]
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    assert build_agents(cfg.agents, model=torch.nn.Linear(1, 1), baseline=None, cfg=cfg)["eqm-votes4"].votes == 4
    # eqm plays from the origin (deterministic); eqm-noise is the same agent from EqM's noise start.
    argv = ["--model", "m", "--dataset", "d", "--agents", "eqm,eqm-noise"]
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    agents = build_agents(cfg.agents, model=torch.nn.Linear(1, 1), baseline=None, cfg=cfg)
    assert {name: agent.init_scale for name, agent in agents.items()} == {"eqm": 0.0, "eqm-noise": 1.0}
    for bad in ("eqm-votes0", "eqm-votes", "eqm-votesx"):
        argv = ["--model", "m", "--dataset", "d", "--agents", bad]
        with pytest.raises(SystemExit, match="unknown agent"):
            config_from_args(build_parser().parse_args(argv), argv)
    # Fatal labels are continued by the named expert.
    import snake_world_eqm.evaluation.evaluate as evaluate_module
    import snake_world_eqm.game as game

    kinds = []
    real = game.expert_actions
    monkeypatch.setattr(evaluate_module, "expert_actions",
                        lambda obs, kind="astar": kinds.append(kind) or real(obs, kind))
    board = game.encode_observation(game.new_game(6, 6, rng=0))[None].astype(np.int64)
    fatal_labels(board, np.array([int(real(board.astype(np.int8), "fill")[0])]), 3, expert="fill")
    assert kinds and set(kinds) == {"fill"}


def test_cli_rejects_bad_flags(tmp_path, capsys):
    from snake_world_eqm.evaluation.cli import main

    with pytest.raises(SystemExit, match="unknown agent"):
        main(["--model", "m", "--dataset", "d", "--agents", "eqm,robot"])
    for flag, value, expected in (("--games", "0", "a positive integer"), ("--seed", "-1", "a seed from 0 to"),
                                  ("--adaptive-max-steps", "20000", "from 1 to 1000"),
                                  ("--device", "cuda:7", "cuda:7"), ("--device", "tpu", "a device such as")):
        with pytest.raises(SystemExit) as exit_:
            main(["--model", "m", "--dataset", "d", flag, value])
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert exit_.value.code == 2 and flag in last and expected in last, last
    with pytest.raises(SystemExit, match="--fixed-steps"):
        main(["--model", "m", "--dataset", "d", "--fixed-steps", "1,x"])


def test_explicit_energy_is_measured_when_the_model_has_one(tiny_dataset):
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
    from snake_world_eqm.evaluation.evaluate import (
        energy_metrics,
        held_out_metrics,
        load_rows,
        uncertainty_metrics,
    )
    from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM

    config = SnakeWorldEqMConfig.cpu_small(
        board_height=SIZE, board_width=SIZE, d_model=16, cnn_channels=16, cnn_layers=1, latent_dim=8,
        latent_hidden_dim=16, decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=1,
        use_explicit_energy=True, eqm_sampling_steps=2)
    model = SnakeWorldEqM(config).eval()
    cfg = _small_cfg(max_rows=24, spread_seeds=2)
    rows = load_rows(tiny_dataset["test"], cfg.max_rows)
    _, runs = held_out_metrics(model, rows, cfg)
    uncertainty = uncertainty_metrics(model, rows, runs, cfg)
    energy = energy_metrics(model, rows, runs, cfg)
    if "explicit_energy_auroc" in energy:
        assert energy["signal"] == "explicit_energy" and 0.0 <= energy["auroc"] <= 1.0
    else:  # model.energy() without validate=False rejects illegal boards: reported, not dropped
        assert "not a legal Snake observation" in energy["explicit_energy"]
        assert energy["signal"] == "grad_norm" and energy["auroc"] == energy["grad_norm_auroc"]
    auroc = uncertainty["energy"]["action_error_auroc"]
    assert math.isnan(auroc) or 0.0 <= auroc <= 1.0
