"""The evaluate function: held-out metrics, what-if, adaptive compute, uncertainty, energy, and play.

`evaluate(...)` returns one JSON-ready dict with stable keys (see `RESULT_KEYS`); the evaluate CLI,
`hub_scripts/evaluate.py` and `benchmarks/evaluate.py` all call it, so the model card numbers come
from one place.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from snake_world_eqm.agents.base import accepts_validate, sample_model
from snake_world_eqm.agents.factory import make_agent
from snake_world_eqm.agents.planner import ModelPlanner, PlannerAgent, imagined_risk
from snake_world_eqm.agents.simple import EqMAgent
from snake_world_eqm.data.loading import check_columns
from snake_world_eqm.evaluation import metrics
from snake_world_eqm.evaluation.closed_loop import (
    START_LENGTHS,
    default_max_steps,
    play_both_starts,
    play_games,
)
from snake_world_eqm.game.batched import batched_step
from snake_world_eqm.game.encoding import BODY_LEFT, BODY_UP, EMPTY, FOOD, HEAD_ALONE, validate_observation
from snake_world_eqm.game.expert import expert_actions
from snake_world_eqm.game.state import ACTION_NAMES, DEATH_EVENTS

FIXED_STEP_COUNTS = (1, 2, 3, 5, 10, 20)
REFERENCE_STEPS = 10  # the seed's default step count, the reference of the adaptive-compute claim
RESULT_KEYS = ("action_accuracy", "next_board_exact", "next_board_cell_accuracy", "whatif_exact",
               "whatif_cell_accuracy", "validity", "coherence", "play", "fixed_steps", "adaptive",
               "adaptive_summary", "uncertainty", "energy_auroc", "energy", "config")

# What each headline number means, for model cards (eval_results) and readers of the JSON.
METRIC_DESCRIPTIONS = {
    "action_accuracy": "sampled action equals the expert's, held-out test rows",
    "next_board_exact": "decoded next board for the expert's action (held) equals the true one; food "
                        "placement ignored after eating",
    "next_board_cell_accuracy": "fraction of cells right in that board (same food rule)",
    "whatif_exact": "per held action (up/right/down/left) and mean: predicted successor equals the true one, "
                    "deaths (all-empty board) included",
    "validity": "freely sampled board equals the successor of some action (a legal transition)",
    "coherence": "freely sampled board equals the successor of the action sampled with it",
    "play.<agent>.mean_apples": "apples per game over the seeded games from both start kinds (three-cell and "
                                "one-cell snakes, same seeds), step cap config.max_steps (20 x cells by default); "
                                "each start kind under play.<agent>.by_start",
    "adaptive_summary.evaluation_reduction": "fewer field evaluations than 10 fixed steps at the cheapest "
                                             "threshold within 0.5 accuracy points",
    "uncertainty.grad_norm.action_error_auroc": "AUROC of the final gradient norm for wrong actions",
    "uncertainty.<signal>.fatal_decision_auroc": "AUROC of the signal for fatal decisions: on states the EqM agent "
                                                 "visits, its sampled action loses the game within k moves "
                                                 "(uncertainty.fatal_decisions.k) under the expert's continuation",
    "energy_auroc": "AUROC separating corrupted (illegal) boards from real ones by energy or gradient norm",
}


@dataclass
class EvalConfig:
    """Every knob of an evaluation; stored in the JSON under "config" so numbers are reproducible."""

    split: str = "test"
    max_rows: int = 1000
    batch_size: int = 512
    games: int = 100
    play_seed: int = 1000
    max_steps: int | None = None  # None: 20 x cells (2,000 on 10x10), enough to fill the board
    start_lengths: tuple[int, ...] = START_LENGTHS
    sample_seed: int = 0
    agents: tuple[str, ...] = ("eqm", "planner", "baseline", "expert", "random")
    expert: str = "astar"  # the "expert" agent and the continuation of fatal labels: the data's teacher
    planner_options: dict = field(default_factory=dict)  # PlannerConfig overrides; {} is the best measured planner
    fixed_steps: tuple[int, ...] = FIXED_STEP_COUNTS
    thresholds: tuple[float, ...] | None = None  # None: chosen from the measured gradient norms
    adaptive_max_steps: int = 20
    spread_seeds: int = 4
    fatal_games: int = 8  # EqM-agent games per start kind whose visited states label fatal decisions (0: off)
    fatal_horizon: int = 10  # k: a decision is fatal if the game is lost within k moves under the expert's play
    fatal_max_states: int = 1500  # every fatal state plus a uniform sample of the others, for the costly signals
    risk_horizon: int = 8  # imagined steps of the planner's risk signal
    command: str = ""
    extra: dict = field(default_factory=dict)


def load_rows(dataset, max_rows: int) -> dict[str, np.ndarray]:
    """The first `max_rows` rows of a split (whole episodes come first: rows are in episode order)."""
    check_columns(dataset, ["state", "action", "next_state", "event", "next_state_per_action",
                            "event_per_action"])
    names = ["state", "action", "next_state", "event", "next_state_per_action", "event_per_action"]
    batch = dataset.select_columns(names).with_format("numpy")[: min(max_rows, len(dataset))]
    columns = {}
    for name in names:
        values = batch[name]
        columns[name] = np.stack(list(values)) if values.dtype == object else np.asarray(values)
    columns = {name: value.astype(np.int64) for name, value in columns.items()}
    if columns["state"].shape[0] == 0:
        raise ValueError("the evaluation split has no rows")
    return columns


def run_sampler(model, boards: np.ndarray, batch_size: int, seed: int, action: np.ndarray | None = None,
                **kwargs) -> dict[str, np.ndarray]:
    """`model.sample` over all boards in batches; returns numpy arrays of every per-row output."""
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    pieces: dict[str, list[np.ndarray]] = {}
    for start in range(0, boards.shape[0], batch_size):
        chunk = slice(start, start + batch_size)
        out = sample_model(model, boards[chunk], generator=generator,
                           action=None if action is None else action[chunk], **kwargs)
        for name in ("action", "action_logits", "next_board", "num_steps", "grad_norm", "latent_next",
                     "action_grad_norm"):
            value = getattr(out, name, None)
            if isinstance(value, torch.Tensor):
                pieces.setdefault(name, []).append(value.detach().float().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in pieces.items()}


def _board_metrics(predicted: np.ndarray, target: np.ndarray, events: np.ndarray) -> tuple[float, float]:
    exact = metrics.exact_match(predicted, target, events)
    cells = metrics.cell_accuracy(predicted, target, events)
    return float(exact.mean()), float(cells.mean())


def held_out_metrics(model, rows: dict[str, np.ndarray], cfg: EvalConfig,
                     progress: bool = True) -> tuple[dict, dict]:
    """Action accuracy, next-board and what-if match, validity, coherence; also returns the raw runs."""
    states, expert = rows["state"], rows["action"]
    free = run_sampler(model, states, cfg.batch_size, cfg.sample_seed)
    whatif_exact, whatif_cells, held_boards = {}, {}, []
    for action, name in enumerate(tqdm(ACTION_NAMES, desc="what-if", disable=not progress, leave=False)):
        held = run_sampler(model, states, cfg.batch_size, cfg.sample_seed + 1 + action,
                           action=np.full(states.shape[0], action))
        held_boards.append(held)
        whatif_exact[name], whatif_cells[name] = _board_metrics(
            held["next_board"], rows["next_state_per_action"][:, action], rows["event_per_action"][:, action])
    whatif_exact["mean"] = float(np.mean([whatif_exact[n] for n in ACTION_NAMES]))
    whatif_cells["mean"] = float(np.mean([whatif_cells[n] for n in ACTION_NAMES]))
    # The expert-action prediction is the held run of the expert's action, row by row.
    expert_board = np.stack([held_boards[a]["next_board"][i] for i, a in enumerate(expert)])
    expert_grad = np.array([held_boards[a]["grad_norm"][i] for i, a in enumerate(expert)])
    exact_expert = metrics.exact_match(expert_board, rows["next_state"], rows["event"])
    chosen = free["action"].astype(np.int64)
    result = {
        "action_accuracy": float((chosen == expert).mean()),
        "next_board_exact": float(exact_expert.mean()),
        "next_board_cell_accuracy": float(metrics.cell_accuracy(expert_board, rows["next_state"],
                                                                rows["event"]).mean()),
        "whatif_exact": whatif_exact,
        "whatif_cell_accuracy": whatif_cells,
        "validity": float(metrics.validity(free["next_board"], rows["next_state_per_action"],
                                           rows["event_per_action"]).mean()),
        "coherence": float(metrics.coherence(free["next_board"], chosen, rows["next_state_per_action"],
                                             rows["event_per_action"]).mean()),
        "free_next_board_exact": float(metrics.exact_match(
            free["next_board"], rows["next_state_per_action"][np.arange(chosen.size), chosen],
            rows["event_per_action"][np.arange(chosen.size), chosen]).mean()),
        "rows": int(states.shape[0]),
    }
    runs = {"free": free, "expert_board_wrong": ~exact_expert, "expert_grad_norm": expert_grad}
    return result, runs


def fixed_step_curve(model, rows: dict[str, np.ndarray], cfg: EvalConfig, progress: bool = True) -> list[dict]:
    """Accuracy and final gradient norm at each fixed number of sampling steps (adaptive off)."""
    curve = []
    for steps in tqdm(cfg.fixed_steps, desc="fixed steps", disable=not progress, leave=False):
        run = run_sampler(model, rows["state"], cfg.batch_size, cfg.sample_seed, num_steps=steps,
                          adaptive_threshold=None)
        curve.append({
            "num_steps": int(steps),
            "action_accuracy": float((run["action"].astype(np.int64) == rows["action"]).mean()),
            "mean_field_evaluations": float(run["num_steps"].mean()),
            "median_grad_norm": float(np.median(run["grad_norm"])),
        })
    return curve


def choose_thresholds(curve: list[dict], configured: float | None, max_points: int = 6) -> list[float]:
    """Thresholds spanning the gradient norms the sampler actually reaches (plus the configured one).

    Candidates are 0.5x, 1x and 2x the median final norm at each fixed step count; values within 10%
    of a kept one are merged, and at most `max_points` evenly spread ones are kept (each costs a pass).
    """
    candidates = []
    for point in curve:
        norm = point["median_grad_norm"]
        if point["num_steps"] > 1 and math.isfinite(norm) and norm > 0:
            candidates += [norm * 0.5, norm, norm * 2.0]
    kept: list[float] = []
    for value in sorted(candidates):
        if not kept or value > kept[-1] * 1.1:
            kept.append(float(f"{value:.4g}"))
    if len(kept) > max_points:
        picks = np.linspace(0, len(kept) - 1, max_points).round().astype(int)
        kept = [kept[i] for i in sorted(set(picks.tolist()))]
    if configured and float(configured) not in kept:
        kept = sorted(kept + [float(configured)])
    return kept


def adaptive_curve(model, rows: dict[str, np.ndarray], thresholds: list[float], cfg: EvalConfig,
                   progress: bool = True) -> list[dict]:
    points = []
    for threshold in tqdm(thresholds, desc="adaptive", disable=not progress, leave=False):
        run = run_sampler(model, rows["state"], cfg.batch_size, cfg.sample_seed,
                          num_steps=cfg.adaptive_max_steps, adaptive_threshold=threshold)
        points.append({
            "threshold": float(threshold),
            "max_steps": int(cfg.adaptive_max_steps),
            "action_accuracy": float((run["action"].astype(np.int64) == rows["action"]).mean()),
            "mean_field_evaluations": float(run["num_steps"].mean()),
            "median_field_evaluations": float(np.median(run["num_steps"])),
        })
    return points


def summarise_adaptive(fixed: list[dict], adaptive: list[dict]) -> dict:
    """The claim's test: the threshold saving the most evaluations vs 10 fixed steps within 0.5 points."""
    reference = next((p for p in fixed if p["num_steps"] == REFERENCE_STEPS), None)
    if reference is None:
        return {"reference_steps": REFERENCE_STEPS, "best": None, "note": "10 fixed steps not measured"}
    eligible = [p for p in adaptive if p["action_accuracy"] >= reference["action_accuracy"] - 0.005]
    best = max(eligible, key=lambda p: -p["mean_field_evaluations"], default=None)
    summary = {"reference_steps": REFERENCE_STEPS, "reference_accuracy": reference["action_accuracy"],
               "reference_field_evaluations": reference["mean_field_evaluations"], "best": best}
    if best is not None:
        summary["evaluation_reduction"] = 1.0 - best["mean_field_evaluations"] / reference["mean_field_evaluations"]
        summary["accuracy_change"] = best["action_accuracy"] - reference["action_accuracy"]
        summary["meets_claim"] = bool(summary["evaluation_reduction"] >= 0.4)
    else:
        summary["meets_claim"] = False
    return summary


def uncertainty_metrics(model, rows: dict[str, np.ndarray], runs: dict, cfg: EvalConfig) -> dict:
    """AUROC of each uncertainty signal for action errors and next-board errors (higher = more unsure)."""
    free = runs["free"]
    wrong_action = free["action"].astype(np.int64) != rows["action"]
    logits = free["action_logits"]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    spread_actions = [free["action"].astype(np.int64)]
    for extra in range(1, cfg.spread_seeds):
        run = run_sampler(model, rows["state"], cfg.batch_size, cfg.sample_seed + 100 + extra)
        spread_actions.append(run["action"].astype(np.int64))
    stacked = np.stack(spread_actions, axis=1)
    agreement = np.stack([(stacked == a).sum(axis=1) for a in range(4)], axis=1).max(axis=1) / stacked.shape[1]
    signals = {
        "grad_norm": free["grad_norm"],
        "softmax_uncertainty": 1.0 - probs.max(axis=1),
        "seed_disagreement": 1.0 - agreement,
    }
    if "action_grad_norm" in free:
        signals["action_grad_norm"] = free["action_grad_norm"]
    energy = explicit_energies(model, rows["state"], free, cfg.batch_size)
    if isinstance(energy, str):
        unavailable = {"energy": {"action_error_auroc": None, "note": energy}}
    else:
        signals["energy"], unavailable = energy, {}
    result = {name: {"action_error_auroc": metrics.auroc(score, wrong_action)} for name, score in signals.items()}
    result["grad_norm"]["next_board_error_auroc"] = metrics.auroc(runs["expert_grad_norm"],
                                                                  runs["expert_board_wrong"])
    result.update(unavailable)
    result["action_error_rate"] = float(wrong_action.mean())
    result["next_board_error_rate"] = float(runs["expert_board_wrong"].mean())
    result["spread_seeds"] = int(cfg.spread_seeds)
    result["grad_norm_values"] = {"right": free["grad_norm"][~wrong_action].tolist(),
                                  "wrong": free["grad_norm"][wrong_action].tolist()}
    if cfg.fatal_games > 0:
        fatal = fatal_decision_metrics(model, rows["state"].shape[1], rows["state"].shape[2], cfg)
        for name, auroc in fatal.pop("auroc").items():
            result.setdefault(name, {})["fatal_decision_auroc"] = auroc
        result["fatal_decisions"] = fatal
    return result


class _RecordingAgent:
    """Wraps an agent and keeps every board it was asked about (the states it actually visits)."""

    def __init__(self, agent) -> None:
        self.agent, self.name, self.deterministic = agent, agent.name, agent.deterministic
        self.boards: list[np.ndarray] = []

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        self.boards.append(np.asarray(obs).copy())
        return self.agent.act_batch(obs)


def visited_states(model, height: int, width: int, cfg: EvalConfig) -> np.ndarray:
    """Boards the EqM agent visits in `cfg.fatal_games` games from each start kind (seeds after the play
    seeds, so they are not the scored games); its own mistakes make fatal decisions common there."""
    boards = []
    for length in cfg.start_lengths:
        # From EqM's noise start: that agent errs more often, which gives the AUROC more fatal decisions.
        recorder = _RecordingAgent(EqMAgent(model, seed=cfg.sample_seed + 200, init_scale=1.0))
        play_games(recorder, height, width, cfg.fatal_games, cfg.play_seed + 10_000, max_steps=1000,
                   progress=False, start_length=length)
        boards += recorder.boards
    return np.concatenate(boards).astype(np.int64)


def fatal_labels(boards: np.ndarray, actions: np.ndarray, horizon: int, seed: int = 0,
                 expert: str = "astar") -> np.ndarray:
    """(N,) the action loses the game within `horizon` moves when `expert` plays every move after it.

    Measured with the rules engine (evaluation measures; only the planner must not use it)."""
    deaths = [int(event) for event in DEATH_EVENTS]
    rng = np.random.default_rng(seed)
    current, alive = boards.astype(np.int8), np.ones(len(boards), dtype=bool)
    fatal = np.zeros(len(boards), dtype=bool)
    moves = np.asarray(actions, dtype=np.int64)
    for move in range(horizon):
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        if move > 0:
            moves = np.zeros(len(boards), dtype=np.int64)
            moves[rows] = expert_actions(current[rows], expert)
        nxt, _, events, terminated = batched_step(current[rows], moves[rows], rng)
        died = np.isin(events, deaths)
        fatal[rows[died]] = True
        alive[rows[np.asarray(terminated)]] = False
        current[rows] = nxt
    return fatal


def fatal_decision_metrics(model, height: int, width: int, cfg: EvalConfig) -> dict:
    """AUROC of each uncertainty signal for fatal decisions on states the EqM agent visits in play.

    The decision at a state is the model's sampled action there; it is fatal when the game is lost within
    k = `fatal_horizon` moves under the expert's continuation. Fatal decisions are rare on the expert's
    own (test) rows, so the states come from the EqM agent's games; all fatal ones are kept, and the
    others are sampled uniformly (which leaves an AUROC unbiased) to bound the cost of the costly signals.
    """
    boards = visited_states(model, height, width, cfg)
    free = run_sampler(model, boards, cfg.batch_size, cfg.sample_seed + 300)
    fatal = fatal_labels(boards, free["action"].astype(np.int64), cfg.fatal_horizon, seed=cfg.sample_seed,
                         expert=cfg.expert)
    rng = np.random.default_rng(cfg.sample_seed)
    others = np.flatnonzero(~fatal)
    keep_others = max(cfg.fatal_max_states - int(fatal.sum()), 0)
    if others.size > keep_others:
        others = np.sort(rng.choice(others, size=keep_others, replace=False))
    kept = np.sort(np.concatenate([np.flatnonzero(fatal), others]))
    boards, labels = boards[kept], fatal[kept]
    free = {name: value[kept] for name, value in free.items()}
    logits = free["action_logits"]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    actions = [free["action"].astype(np.int64)] + [
        run_sampler(model, boards, cfg.batch_size, cfg.sample_seed + 400 + extra)["action"].astype(np.int64)
        for extra in range(1, cfg.spread_seeds)]
    stacked = np.stack(actions, axis=1)
    agreement = np.stack([(stacked == a).sum(axis=1) for a in range(4)], axis=1).max(axis=1) / stacked.shape[1]
    signals = {"grad_norm": free["grad_norm"], "softmax_uncertainty": 1.0 - probs.max(axis=1),
               "seed_disagreement": 1.0 - agreement}
    if "action_grad_norm" in free:
        signals["action_grad_norm"] = free["action_grad_norm"]
    energy = explicit_energies(model, boards, free, cfg.batch_size)
    if not isinstance(energy, str):
        signals["energy"] = energy
    planner = ModelPlanner(model, seed=cfg.sample_seed + 500, horizon=cfg.risk_horizon)
    signals["imagined_risk"] = imagined_risk(planner, boards, cfg.risk_horizon)
    return {
        "auroc": {name: metrics.auroc(score, labels) for name, score in signals.items()},
        "k": int(cfg.fatal_horizon), "states_visited": int(len(fatal)), "fatal_visited": int(fatal.sum()),
        "states_scored": int(len(kept)), "fatal_scored": int(labels.sum()),
        "games_per_start": int(cfg.fatal_games), "seeds": [cfg.play_seed + 10_000, cfg.play_seed + 10_000 + cfg.fatal_games - 1],
        "eqm_native_signals": ["grad_norm", "action_grad_norm", "seed_disagreement", "energy"],
        "imagined_risk_horizon": int(cfg.risk_horizon),
        "how": "states the EqM agent visits in its own games; decision = the model's sampled action; fatal = "
               "the game is lost within k moves when the expert plays every move after it",
    }


def corrupt_boards(boards: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Illegal versions of real boards: a second food, a second head, or a body cell removed.

    Returns (corrupted boards, kind index per board: 0 extra food, 1 extra head, 2 broken body).
    """
    rng = np.random.default_rng(seed)
    corrupted, kinds = [], []
    for index, board in enumerate(boards):
        kind = index % 3
        candidate = board.copy()
        target_cells = np.argwhere(board == EMPTY) if kind < 2 else np.argwhere(
            (board >= BODY_UP) & (board <= BODY_LEFT))
        if len(target_cells) == 0:
            continue
        row, col = target_cells[rng.integers(len(target_cells))]
        candidate[row, col] = (FOOD, HEAD_ALONE, EMPTY)[kind]
        try:
            validate_observation(candidate.astype(np.int8))
        except ValueError:
            corrupted.append(candidate)
            kinds.append(kind)
    if not corrupted:
        raise ValueError("could not corrupt any board (every board empty?)")
    return np.stack(corrupted), np.array(kinds)


def energy_metrics(model, rows: dict[str, np.ndarray], runs: dict, cfg: EvalConfig) -> dict:
    """Do real boards sit lower in the landscape than illegal ones? AUROC of grad norm (and energy)."""
    real = rows["state"]
    corrupted, kinds = corrupt_boards(real, cfg.sample_seed)
    fake = run_sampler(model, corrupted, cfg.batch_size, cfg.sample_seed + 7)
    scores = np.concatenate([runs["free"]["grad_norm"], fake["grad_norm"]])
    labels = np.concatenate([np.zeros(real.shape[0], bool), np.ones(corrupted.shape[0], bool)])
    by_kind = {}
    for kind, name in enumerate(("extra_food", "extra_head", "broken_body")):
        chosen = kinds == kind
        if chosen.any():
            kind_scores = np.concatenate([runs["free"]["grad_norm"], fake["grad_norm"][chosen]])
            kind_labels = np.concatenate([np.zeros(real.shape[0], bool), np.ones(int(chosen.sum()), bool)])
            by_kind[name] = metrics.auroc(kind_scores, kind_labels)
    result = {"signal": "grad_norm", "grad_norm_auroc": metrics.auroc(scores, labels), "by_kind": by_kind,
              "corrupted_boards": int(corrupted.shape[0]), "real_boards": int(real.shape[0])}
    explicit = explicit_energy_auroc(model, real, corrupted, runs, fake, cfg.batch_size)
    result.update(explicit)
    result["auroc"] = result.get("explicit_energy_auroc", result["grad_norm_auroc"])
    if "explicit_energy_auroc" in result:
        result["signal"] = "explicit_energy"
    return result


def explicit_energies(model, boards: np.ndarray, run: dict[str, np.ndarray], batch_size: int) -> np.ndarray | str:
    """E(board, sampled latent, sampled action block) per row, or why it is not available."""
    if not getattr(model.config, "use_explicit_energy", False) or not hasattr(model, "energy"):
        return "not available (use_explicit_energy is off)"
    device = next(model.parameters()).device
    # Corrupted boards must be scored, not rejected: skip the legality check where energy() allows it.
    extra = {"validate": False} if accepts_validate(model, "energy") else {}
    pieces = []
    try:
        for start in range(0, boards.shape[0], batch_size):
            chunk = slice(start, start + batch_size)
            obs = torch.as_tensor(boards[chunk], dtype=torch.long, device=device)
            latent = torch.as_tensor(run["latent_next"][chunk], device=device)
            action_vec = torch.as_tensor(run["action_logits"][chunk], device=device)
            with torch.no_grad():
                pieces.append(model.energy(obs, latent, action_vec, **extra).reshape(-1).float().cpu().numpy())
    except Exception as error:  # report why rather than drop the metric silently
        return f"failed: {type(error).__name__}: {error}"
    return np.concatenate(pieces)


def explicit_energy_auroc(model, real, corrupted, runs, fake, batch_size: int = 512) -> dict:
    """AUROC of the explicit energy for corrupted (positive) against real boards, when the model has one."""
    real_energy = explicit_energies(model, real, runs["free"], batch_size)
    if isinstance(real_energy, str):
        return {"explicit_energy": real_energy}
    fake_energy = explicit_energies(model, corrupted, fake, batch_size)
    if isinstance(fake_energy, str):
        return {"explicit_energy": fake_energy}
    labels = np.concatenate([np.zeros(len(real), bool), np.ones(len(corrupted), bool)])
    return {"explicit_energy_auroc": metrics.auroc(np.concatenate([real_energy, fake_energy]), labels)}


def build_agents(names, model, baseline, cfg: EvalConfig) -> dict:
    """The named agents (`agents.make_agent`); the baseline is left out when no baseline model is given."""
    return {name: make_agent(name, model, baseline=baseline, seed=cfg.sample_seed, expert=cfg.expert,
                             planner_options=cfg.planner_options)
            for name in names if not (name == "baseline" and baseline is None)}


def evaluate(model, dataset, baseline=None, cfg: EvalConfig | None = None, progress: bool = True) -> dict:
    """Every number of the model card, from one held-out split and one list of play seeds."""
    cfg = cfg or EvalConfig()
    model.eval()
    timer = _PartTimer()
    rows = load_rows(dataset, cfg.max_rows)
    height, width = rows["state"].shape[1:]
    with timer("held_out"):
        result, runs = held_out_metrics(model, rows, cfg, progress=progress)
    with timer("fixed_steps"):
        result["fixed_steps"] = fixed_step_curve(model, rows, cfg, progress=progress)
    thresholds = list(cfg.thresholds) if cfg.thresholds else choose_thresholds(
        result["fixed_steps"], getattr(model.config, "eqm_adaptive_threshold", None))
    with timer("adaptive"):
        result["adaptive"] = adaptive_curve(model, rows, thresholds, cfg, progress=progress)
        result["adaptive_summary"] = summarise_adaptive(result["fixed_steps"], result["adaptive"])
    with timer("uncertainty"):
        result["uncertainty"] = uncertainty_metrics(model, rows, runs, cfg)
    with timer("energy"):
        result["energy"] = energy_metrics(model, rows, runs, cfg)
    result["energy_auroc"] = result["energy"]["auroc"]
    result["play"] = {}
    for name, agent in build_agents(cfg.agents, model, baseline, cfg).items():
        with timer(f"play_{name}"):
            result["play"][name] = play_both_starts(agent, int(height), int(width), cfg.games, cfg.play_seed,
                                                    cfg.max_steps, progress=progress,
                                                    start_lengths=tuple(cfg.start_lengths))
        if isinstance(agent, PlannerAgent):
            result["play"][name]["planner_config"] = asdict(agent.config)
            result["play"][name]["cost"] = agent.stats.as_dict()
    config = asdict(cfg)
    config.update({"board_height": int(height), "board_width": int(width),
                   "max_steps": cfg.max_steps or default_max_steps(int(height), int(width)),
                   "play_seeds": [cfg.play_seed, cfg.play_seed + cfg.games - 1],
                   "default_num_steps": getattr(model.config, "eqm_sampling_steps", None),
                   "seconds_by_part": timer.seconds})
    result["config"] = config
    return result


def json_ready(value):
    """Strict-JSON copy of a result: NaN/inf (e.g. an AUROC with one class absent) become null."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


class _PartTimer:
    """Wall-clock seconds of each part of an evaluation (reported, never asserted)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 2)
