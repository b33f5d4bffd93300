"""Model cards: the card of a model folder, its YAML metadata and the tables it quotes.

A card is generated with huggingface_hub's `ModelCard`/`ModelCardData`, so the YAML metadata (library, tags,
datasets, model-index `eval_results`) is written by the library that reads it. The tables put every claim beside
its measured number (`claims_table`), the closed-loop play (`play_table`) and, for a multi-size model, the
per-board-size results of `snake-eqm evaluate-sizes`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from snake_world_eqm.evaluation.by_size import markdown_table
from snake_world_eqm.hub.push import PACKAGE_DIR, check_model_folder, files_to_push, inside_folder
from snake_world_eqm.output_guard import atomic_write_text
from snake_world_eqm.shipped import PRETRAINED_10X10, PRETRAINED_MULTISIZE

# The metrics a card quotes first, when the evaluation JSON has them (flattened key → human name).
HEADLINE_METRICS = {
    "action_accuracy": "Action accuracy vs expert",
    "next_board_exact": "Next-board exact match",
    "next_board_cell_accuracy": "Next-board cell accuracy",
    "whatif_exact.mean": "What-if exact match (mean of 4 actions)",
    "validity": "Validity",
    "coherence": "Coherence",
    "play.eqm.mean_apples": "EqM agent mean apples",
    "play.planner.mean_apples": "Planner agent mean apples",
    "play.baseline.mean_apples": "Baseline agent mean apples",
    "play.expert.mean_apples": "Expert (teacher) mean apples",
    "play.random.mean_apples": "Random agent mean apples",
    "uncertainty.grad_norm.action_error_auroc": "Grad-norm AUROC (action errors)",
}

CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A Snake world model trained by **Equilibrium Matching (EqM)**: one time-invariant gradient field
jointly descends a latent of the next board and the action logits, conditioned on the current board.
The next board is decodable (`model.decode_latent(latent_next, board)`), any action can be held to
predict its successor ("what if"), and the gradient norm at the end of sampling is reported.

```python
from snake_world_eqm import SnakeWorldEqM
model = SnakeWorldEqM.from_pretrained("{{ repo_id }}")
out = model.sample(board)          # out.action, out.action_logits, out.latent_next, out.next_board, out.num_steps, out.grad_norm
```

## Results

{{ results_table }}

{{ extra }}

## Intended use

Research on world models, energy-based sampling and planning in a small, exactly simulated game.
{{ teacher }}

## Limits

{{ size_note }}
- Numbers are from held-out episodes of the dataset's test split and from seeded closed-loop games;
  they say nothing about other games.
- Food placement after eating is random; next-board exact match excludes it.

## How the numbers were made

```bash
{{ commands }}
```
"""


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested evaluation JSON → {"play.eqm.mean_apples": 12.3, ...}, numbers only."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            flat[name] = float(value)
        elif isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=f"{name}."))
    return flat


def _check(value: float | None, target: float | None, higher: bool = True) -> str:
    if value is None:
        return "not measured"
    if target is None:
        return "reported"
    met = value >= target if higher else value <= target
    return "met" if met else "**missed**"


def _ratio(agent: float | None, expert: float | None) -> float | None:
    """agent / expert apples; None (shown as "not measured") when either agent did not play."""
    return None if agent is None or not expert else agent / expert


def _played(flat: Mapping[str, Any], prefix: str) -> list[tuple[str, float]]:
    """(name after `prefix`, mean apples) of each agent whose play key starts with `prefix`: evaluate's
    expert-KIND agents (other experts beside the teacher) and eqm-votesK agents (K noise draws per move)."""
    return [(key.split(".")[1].removeprefix(prefix), value) for key, value in flat.items()
            if key.startswith(f"play.{prefix}") and key.endswith(".mean_apples") and key.count(".") == 2]


def _eqm_variants(flat: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(label, mean apples) of the EqM agents played beside the default one (origin start): eqm-noise (one
    noise draw, EqM's N(0, I) start) and eqm-votesK."""
    noise = flat.get("play.eqm-noise.mean_apples")
    return [*([("EqM agent from one noise draw", noise)] if noise is not None else []),
            *((f"EqM agent with {votes} noise votes", apples) for votes, apples in _played(flat, "eqm-votes"))]


def claims_table(metrics: Mapping[str, Any]) -> str:
    """The seed's claims and our targets, each with its measured number and whether it was met.

    Nothing is left out because it looks bad: a missing number says "not measured".
    """
    flat = flatten_metrics(metrics)
    get = flat.get
    expert_apples = get("play.expert.mean_apples")
    rows = [
        ("EqM action accuracy vs expert", get("action_accuracy"), 0.95),
        ("next-board exact, expert action held (food respawn excluded)", get("next_board_exact"), 0.98),
        ("next-board exact of the joint sample (bounded by action accuracy)", get("free_next_board_exact"), None),
        ("what-if exact match, mean of 4 held actions", get("whatif_exact.mean"), 0.97),
        ("validity (decoded board is a legal successor)", get("validity"), 0.99),
        ("coherence (board follows the model's own action)", get("coherence"), 0.99),
        ("EqM agent apples / expert apples", _ratio(get("play.eqm.mean_apples"), expert_apples), 0.85),
        ("planner apples / expert apples", _ratio(get("play.planner.mean_apples"), expert_apples), 1.0),
        *[(f"EqM agent apples / {kind} expert apples", _ratio(get("play.eqm.mean_apples"), other), 0.85)
          for kind, other in _played(flat, "expert-")],
        *[(f"{variant} apples / {kind} apples", _ratio(apples, other), 0.85)
          for variant, apples in _eqm_variants(flat)
          for kind, other in [("expert", expert_apples), *((f"{k} expert", a) for k, a in _played(flat, "expert-"))]],
        ("adaptive compute: fewer field evaluations than 10 steps (≤0.5 pt loss)", get("adaptive_summary.evaluation_reduction"), 0.40),
        ("grad-norm AUROC for action errors", get("uncertainty.grad_norm.action_error_auroc"), 0.8),
        ("action-block field norm AUROC for action errors", get("uncertainty.action_grad_norm.action_error_auroc"), 0.8),
        ("noise-seed disagreement AUROC for action errors", get("uncertainty.seed_disagreement.action_error_auroc"), 0.8),
        ("softmax uncertainty AUROC for action errors", get("uncertainty.softmax_uncertainty.action_error_auroc"), 0.8),
        ("grad-norm AUROC for next-board errors", get("uncertainty.grad_norm.next_board_error_auroc"), None),
        ("grad norm separates illegal from real boards (AUROC)", get("energy_auroc"), None),
    ]
    lines = ["| claim / target | measured | target | verdict |", "|---|---|---|---|"]
    for name, value, target in rows:
        shown = "–" if value is None else f"{value:.3f}"
        lines.append(f"| {name} | {shown} | {'–' if target is None else target} | {_check(value, target)} |")
    baseline, planner = get("play.baseline.mean_apples"), get("play.planner.mean_apples")
    if baseline is not None and planner is not None:
        verdict = "met" if planner > baseline else "**missed**"
        lines.append(f"| planner apples > baseline apples | {planner:.2f} vs {baseline:.2f} | strictly more | {verdict} |")
    return "\n".join(lines)


def play_table(metrics: Mapping[str, Any]) -> str:
    play = metrics.get("play") or {}
    if not play:
        return ""
    lines = ["| agent | start | mean apples (95% CI) | median | mean fill | steps/apple | wins | deaths | "
             "stalls/loops | capped |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for agent, stats in play.items():
        runs = [("both", stats)] + [(f"{length}-cell", run) for length, run in (stats.get("by_start") or {}).items()]
        for start, run in runs:
            lines.append(_play_row(agent, start, run))
    return "\n".join(lines)


def _play_row(agent: str, start: str, stats: Mapping[str, Any]) -> str:
    low, high = stats.get("mean_apples_ci95") or (float("nan"), float("nan"))
    low, high = (float("nan") if low is None else low), (float("nan") if high is None else high)
    per_apple = stats.get("steps_per_apple")
    return (f"| {agent} | {start} | {stats.get('mean_apples', float('nan')):.2f} ({low:.1f}-{high:.1f}) | "
            f"{stats.get('median_apples', float('nan')):.1f} | {stats.get('mean_fill', float('nan')):.3f} | "
            f"{'-' if per_apple is None else f'{per_apple:.1f}'} | {stats.get('wins', 0)} | {stats.get('deaths', 0)} | "
            f"{stats.get('stalls', 0)}/{stats.get('loops', 0)} | {stats.get('capped', 0)} |")


def _results_table(flat: Mapping[str, float]) -> str:
    rows = [(label, flat[key]) for key, label in HEADLINE_METRICS.items() if key in flat]
    if not rows:
        return "No evaluation was run for this checkpoint."
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {label} | {value:.4g} |" for label, value in rows]
    return "\n".join(lines)


# What the card says about the expert that labelled the data (evaluate records it as config.expert).
TEACHERS = {
    "astar": "The expert the model imitates is an A* planner with a tail-reachability check.",
    "fill": "The expert the model imitates fills the board: the A* path while the snake is short, then safe "
            "shortcuts along a Hamiltonian cycle.",
    "heuristic": "The expert the model imitates moves greedily toward the food, avoiding dead ends.",
    "cycle": "The expert the model imitates follows a fixed Hamiltonian cycle.",
    "route": "The expert the model imitates takes safe shortcuts along one fixed Hamiltonian cycle.",
}


RESULTS_FILE = "eval_results.json"  # beside the card, as huggingface_sb3 / lerobot cards carry theirs
ENV_ID = "snake_world_eqm/Snake-v0"


def _apples(stats: Mapping[str, Any]) -> list[float]:
    values = stats.get("apples_per_game")
    if values is None and isinstance(stats.get("by_start"), Mapping):
        values = [value for run in stats["by_start"].values() if isinstance(run, Mapping)
                  for value in run.get("apples_per_game") or []]
    return [float(value) for value in values or []]


def play_results(metrics: Mapping[str, Any] | None, board_size: str = "10x10") -> dict:
    """The closed-loop results in the field's pattern (huggingface_sb3's results.json): per board size and
    agent the mean ± std of apples per game and the number of episodes, with the date and the evaluation
    command. Reads a `snake-eqm evaluate` result or a `snake-eqm evaluate-sizes` one (`sizes`)."""
    metrics = metrics or {}
    per_size = ([(entry.get("size"), entry.get("play") or {}) for entry in metrics["sizes"]]
                if isinstance(metrics.get("sizes"), list) else [(board_size, metrics.get("play") or {})])
    entries = []
    for size, play in per_size:
        for agent, stats in play.items():
            if not isinstance(stats, Mapping) or stats.get("mean_apples") is None:
                continue
            apples = _apples(stats)
            std = None
            if len(apples) >= 2:
                mean = sum(apples) / len(apples)
                std = round((sum((a - mean) ** 2 for a in apples) / (len(apples) - 1)) ** 0.5, 3)
            entries.append({"env_id": ENV_ID, "board_size": size, "agent": agent,
                            "mean_apples": round(float(stats["mean_apples"]), 3), "std_apples": std,
                            "n_eval_episodes": int(stats.get("games") or len(apples)),
                            "deaths": stats.get("deaths"), "wins": stats.get("wins")})
    config = metrics.get("config") or {}
    return {"results": entries, "eval_datetime": (metrics.get("provenance") or {}).get("date"),
            "evaluation_command": config.get("command"), "expert": config.get("expert")}


def play_results_markdown(results: Mapping[str, Any]) -> str:
    """The results JSON as a table: board, agent, mean ± std apples, episodes; then the date and command."""
    lines = ["### Closed-loop results (" + RESULTS_FILE + ")", "",
             "| board | agent | apples per game (mean ± std) | episodes | deaths |", "|---|---|---|---|---|"]
    for entry in results["results"]:
        spread = "" if entry["std_apples"] is None else f" ± {entry['std_apples']:.2f}"
        lines.append(f"| {entry['board_size']} | {entry['agent']} | {entry['mean_apples']:.2f}{spread} | "
                     f"{entry['n_eval_episodes']} | {entry['deaths']} |")
    lines += ["", f"Evaluated {results.get('eval_datetime') or '(date not recorded)'} with:", "",
              "```bash", results.get("evaluation_command") or "# evaluation command not recorded", "```"]
    return "\n".join(lines)


def play_eval_results(results: Mapping[str, Any]) -> list[EvalResult]:
    """model-index entries: one per board size (the dataset), one metric per agent, value "mean +/- std"."""
    return [
        EvalResult(task_type="reinforcement-learning", task_name="Snake (closed-loop play)",
                   dataset_type=ENV_ID, dataset_name=f"Snake {entry['board_size']}",
                   metric_type="mean_apples", metric_name=f"mean apples per game ({entry['agent']})",
                   metric_value=(f"{entry['mean_apples']:.2f} +/- {entry['std_apples']:.2f}"
                                 if entry["std_apples"] is not None else f"{entry['mean_apples']:.2f}"),
                   verified=False)
        for entry in results.get("results", [])
    ]


def build_model_card(
    metrics: Mapping[str, Any] | None,
    *,
    repo_id: str = "org/snake-eqm",
    dataset_id: str = "org/snake-world",
    board_size: str = "10x10",
    commands: list[str] | None = None,
    extra_markdown: str = "",
    license: str = "apache-2.0",
    base_model: str | None = None,
    extra_datasets: list[str] | None = None,
    size_note: str | None = None,
    play_summary: Mapping[str, Any] | None = None,
    teacher: str | None = None,
) -> ModelCard:
    """A model card whose metadata carries the evaluation metrics as model-index results, with one entry per
    board size and agent for closed-loop play (`play_summary`, default `play_results(metrics, board_size)`).
    `teacher` is the expert kind the model imitates (default: the evaluation's config.expert, else astar)."""
    flat = flatten_metrics(metrics or {})
    eval_results = [
        EvalResult(
            task_type="reinforcement-learning",
            task_name="Snake next-board and action prediction",
            dataset_type=dataset_id,
            dataset_name=f"Snake {board_size} (held-out episodes)",
            dataset_split="test",
            metric_type=key,
            metric_name=label,
            metric_value=round(flat[key], 6),
        )
        for key, label in HEADLINE_METRICS.items()
        if key in flat
    ]
    play_summary = play_summary or play_results(metrics, board_size)
    eval_results += play_eval_results(play_summary)
    if play_summary["results"]:
        extra_markdown += "\n\n" + play_results_markdown(play_summary)
    card_data = ModelCardData(
        library_name="transformers",
        license=license,
        tags=["snake", "world-model", "equilibrium-matching", "energy-based-model", "reinforcement-learning"],
        datasets=list(dict.fromkeys([dataset_id, *(extra_datasets or [])])),
        base_model=base_model,
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
    )
    return ModelCard.from_template(
        card_data,
        template_str=CARD_TEMPLATE,
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        results_table=_results_table(flat),
        extra=extra_markdown,
        board_size=board_size,
        size_note=size_note or f"- Trained for one board size ({board_size}); other sizes need another model.",
        commands="\n".join(commands or ["# (commands not recorded)"]),
        teacher=TEACHERS.get(teacher or (metrics or {}).get("config", {}).get("expert", "astar"), ""),
    )


def render_model_card(model_dir: str | Path, metrics_json: str | Path | None, repo_id: str, dataset_id: str,
                      extra_commands: list[str] | None = None) -> ModelCard:
    """The model card of a model folder from an evaluation JSON (if given); writes nothing.

    The card quotes the training command (from the folder's metrics.json), `extra_commands` (e.g. how the
    dataset and the baseline were made) and the evaluation command (from the evaluation JSON)."""
    path = check_model_folder(model_dir)
    metrics = _read_json(metrics_json, "--metrics-json") if metrics_json else None
    config = json.loads((path / "config.json").read_text())
    board = f"{config.get('board_height', '?')}x{config.get('board_width', '?')}"
    commands, extra = list(extra_commands or []), ""
    training = path / "metrics.json"
    # The expert the evaluation names (`snake-eqm evaluate`: expert; evaluate-sizes: teacher), else training's.
    evaluation_config = (metrics or {}).get("config") or {}
    teacher = evaluation_config.get("expert") or evaluation_config.get("teacher")
    if training.is_file() and inside_folder(path, training):
        train_metrics = _read_json(training, "the folder's metrics.json")
        teacher = teacher or train_metrics.get("expert")
        commands.append(train_metrics.get("command", "# training command not recorded"))
        extra += (f"### Training\n\n{train_metrics.get('global_step')} optimizer steps, "
                  f"{train_metrics.get('samples_seen')} samples, {train_metrics.get('train_seconds')} s at "
                  f"{train_metrics.get('samples_per_second')} samples/s (mixed precision: {train_metrics.get('mixed_precision')}, "
                  f"{train_metrics.get('num_processes')} process(es)).\n\n")
    size_note = None
    play_summary = play_results(metrics, board)
    if not config.get("fixed_board_size", True):
        sizes = json.loads(training.read_text()).get("board_sizes") if training.is_file() else None
        board = ", ".join(sizes) if sizes else "several sizes"
        size_note = (f"- Trained on the board sizes {board} (one model, `fixed_board_size=False`); it runs on any "
                     "size from 4x4 to 32x32. Sizes it never saw are measured separately; rows and columns "
                     "beyond the largest trained size have untrained position embeddings.")
    if metrics and "sizes" in metrics:  # a `snake-eqm evaluate-sizes` result: one row per board size
        commands.append((metrics.get("config") or {}).get("command") or "# evaluation command not recorded")
        extra += "### Per board size (seen and unseen in training)\n\n" + markdown_table(metrics)
        metrics = None
    elif metrics:
        commands.append((metrics.get("config") or {}).get("command") or "# evaluation command not recorded")
        extra += "### Claims, measured\n\n" + claims_table(metrics) + "\n\n### Closed-loop play\n\n" + play_table(metrics)
    return build_model_card(metrics, repo_id=repo_id, dataset_id=dataset_id, board_size=board,
                            commands=commands or None, extra_markdown=extra, size_note=size_note,
                            play_summary=play_summary, teacher=teacher)


def _read_json(path: str | Path, what: str) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} {path} is not a JSON object")
    return value


def write_model_card(model_dir: str | Path, metrics_json: str | Path | None, repo_id: str, dataset_id: str,
                     extra_commands: list[str] | None = None) -> Path:
    """Regenerate README.md of a model folder (see `render_model_card`); written by rename, never half."""
    card = render_model_card(model_dir, metrics_json, repo_id, dataset_id, extra_commands)
    target = Path(model_dir) / "README.md"
    config = json.loads((Path(model_dir) / "config.json").read_text())
    board = f"{config.get('board_height', '?')}x{config.get('board_width', '?')}"
    results = play_results(_read_json(metrics_json, "--metrics-json"), board) if metrics_json else None
    _remove_stale_card_writes(Path(model_dir))
    if results and results["results"]:
        atomic_write_text(Path(model_dir) / RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    atomic_write_text(target, str(card))
    return target


def _remove_stale_card_writes(model_dir: Path) -> None:
    """What a card rewrite killed midway left: `.tmp-` files of an atomic write (and older `.card-` folders)."""
    for stale in (*model_dir.glob(".card-*"), *model_dir.glob(".tmp-README.md-*"),
                  *model_dir.glob(f".tmp-{RESULTS_FILE}-*")):
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()


def add_remote_code(model_dir: str | Path, link: bool = False) -> list[str]:
    """Put beside a model folder's weights the remote-code files a push would add (`hub.push.files_to_push`:
    the modules its config's `auto_map` names, with what they import), from the installed package, so
    `AutoModel.from_pretrained(folder, trust_remote_code=True)` loads the folder itself in a fresh interpreter.

    Copies by default; `link=True` writes relative symlinks instead (the checkpoints shipped inside the package:
    they can never go stale, wheels carry them as files, and a push of such a folder sends the package's source).
    Returns the names written (files already the package's are left alone); each is written by rename.
    """
    folder = Path(model_dir)
    written = []
    for name in sorted(files_to_push(folder, "model")):
        source = PACKAGE_DIR / name
        if not name.endswith(".py") or not source.is_file():
            continue
        target = folder / name
        if link and target.is_symlink() and target.resolve() == source.resolve():
            continue
        if not link and not target.is_symlink() and target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        staging = folder / f".code-{os.getpid()}-{name}"
        if link:
            staging.unlink(missing_ok=True)
            staging.symlink_to(os.path.relpath(source, folder))
        else:
            staging.write_bytes(source.read_bytes())
            os.chmod(staging, 0o644)
        os.replace(staging, target)
        written.append(name)
    return written


def refresh_shipped() -> dict[str, list[str]]:
    """`add_remote_code(link=True)` for every checkpoint shipped in the package; {folder: names written}."""
    return {str(folder): add_remote_code(folder, link=True) for folder in (PRETRAINED_10X10, PRETRAINED_MULTISIZE)}
