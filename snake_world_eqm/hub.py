"""Hub release: model cards and pushing model or dataset folders (`snake-eqm push`).

A card is generated with huggingface_hub's `ModelCard`/`ModelCardData`, so the YAML metadata
(library, tags, datasets, model-index `eval_results`) is written by the library that reads it.
Pushing uploads an allow-list of a folder's files (config, weights, card, remote code and named results for a
model; the card and data/*.parquet for a dataset), after checking the repo id, the folder and the Hub access.
Symlinks that lead out of the folder and dotfiles are never uploaded; `--dry-run` prints the list.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData

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
) -> ModelCard:
    """A model card whose metadata carries the evaluation metrics as model-index results."""
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
        teacher=TEACHERS.get((metrics or {}).get("config", {}).get("expert", "astar"), ""),
    )


def check_model_folder(model_dir: str | Path) -> Path:
    """Refuse to push a folder a user could not load: missing files or a config that does not parse."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder {path} does not exist")
    has_weights = (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()
    missing = [name for name, present in (("config.json", (path / "config.json").is_file()),
                                          ("model.safetensors", has_weights)) if not present]
    if missing:
        raise ValueError(f"model folder {path} lacks {', '.join(missing)}: save it with save_pretrained first")
    try:
        config = json.loads((path / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path / 'config.json'} is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path / 'config.json'} is not a JSON object")
    return path


def check_dataset_folder(dataset_dir: str | Path) -> Path:
    path = Path(dataset_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder {path} does not exist")
    if not (path / "README.md").is_file():
        raise ValueError(f"dataset folder {path} has no README.md card: build it with `python -m dataset_builder`")
    if not any(path.glob("data/**/*.parquet")):  # data/*.parquet, or data/HxW/*.parquet for several sizes
        raise ValueError(f"dataset folder {path} has no data/*.parquet files")
    return path


# ----------------------------------------------------------------------------------------------------------
# What a push may upload: an allow-list, never "everything in the folder"

# A model folder: what from_pretrained reads, the card, and named results. Everything else (dotfiles such as
# .env, keys, tracker folders like wandb/ or runs/, checkpoints/, best/, logs) stays home.
MODEL_ALLOWED_PATTERNS = (
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json", "README.md",
    "metrics.json", "eval.json", "eval_*.json", "evaluation*.json", "training_curves.png", "plots/*.png",
)
# data/HxW/*.parquet: one config per board size (a multi-size dataset, dataset_builder/multisize.py)
DATASET_ALLOWED_PATTERNS = ("README.md", "data/*.parquet", "data/[0-9]*x[0-9]*/*.parquet")


def check_repo_id(repo_id: str) -> str:
    """`org/name` with characters the Hub accepts; ValueError otherwise (checked before anything else)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"invalid repo_id {repo_id!r}: {str(error).splitlines()[0]}") from None
    return repo_id


def check_hub_access(api: HfApi, token: str | None = None) -> str:
    """Fail fast, before the folder is touched: offline mode, no token, a rejected token or no connection.

    Returns the user name the token belongs to."""
    from huggingface_hub import constants, get_token

    if constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConnectionError("HF_HUB_OFFLINE is set: pushing needs the network (unset it, or use --dry-run)")
    if not (token or api.token or get_token()):
        raise PermissionError("no Hugging Face token: run `hf auth login`, set HF_TOKEN or pass --token")
    try:
        user = api.whoami(token=token)
    except Exception as error:  # noqa: BLE001  (HTTP 401, DNS, timeouts: all mean "cannot push")
        raise ConnectionError(f"cannot reach the Hub with this token: {type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}") from None
    return str(user.get("name", "?")) if isinstance(user, Mapping) else "?"


def _inside(folder: Path, file: Path) -> bool:
    """The file (after following every symlink) lies inside the folder."""
    try:
        file.resolve(strict=True).relative_to(folder.resolve(strict=True))
    except (OSError, ValueError):
        return False
    return True


def allowed_files(folder: str | Path, patterns: tuple[str, ...], extra: tuple[str, ...] = ()) -> dict[str, Path]:
    """{path in repo: local file} of the folder's files matching an allowed pattern.

    Patterns are relative paths (fnmatch per path segment); a file whose name or folder starts with a dot, or
    that is a symlink leading outside the folder, is never included."""
    folder = Path(folder)
    found: dict[str, Path] = {}
    for pattern in (*patterns, *extra):
        for file in sorted(folder.glob(pattern)):
            relative = file.relative_to(folder).as_posix()
            if any(part.startswith(".") for part in relative.split("/")):
                continue
            if file.is_file() and _inside(folder, file):
                found[relative] = file
    return found


def skipped_files(folder: str | Path, allowed: Mapping[str, Any]) -> list[str]:
    """Everything under the folder that the allow-list leaves out (for the dry-run report); not followed into
    symlinked folders."""
    folder = Path(folder)
    skipped = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(files) + sorted(d for d in dirs if (Path(root) / d).is_symlink()):
            relative = (Path(root) / name).relative_to(folder).as_posix()
            if relative not in allowed:
                skipped.append(relative)
    return sorted(skipped)


def upload_folder_allowlisted(
    api: HfApi,
    folder: str | Path,
    repo_id: str,
    repo_type: str,
    allowed_paths: Mapping[str, str | Path | bytes] | Iterable[str],
    *,
    commit_message: str | None = None,
    revision: str | None = None,
    private: bool = False,
) -> Any:
    """Create the repo if needed and upload exactly `allowed_paths` ({path in repo: file under `folder`, or
    bytes}, or just relative paths, each uploaded under its own name) in one commit. Each local file is checked again to lie inside `folder` (symlinks resolved), so a
    caller's list cannot smuggle in a file from elsewhere. Reusable for model, dataset and Space repos."""
    if repo_type not in ("model", "dataset", "space"):
        raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}")
    check_repo_id(repo_id)
    folder = Path(folder)
    if not isinstance(allowed_paths, Mapping):
        allowed_paths = {str(name): str(name) for name in allowed_paths}
    operations = []
    for path_in_repo, source in sorted(allowed_paths.items()):
        if any(part in ("", ".", "..") or part.startswith(".") for part in path_in_repo.split("/")):
            raise ValueError(f"refusing to upload {path_in_repo!r}: hidden or not a plain relative path")
        if not isinstance(source, bytes):
            local = Path(source)
            local = local if local.is_absolute() else folder / local
            if not _inside(folder, local) or not local.is_file():
                raise ValueError(f"refusing to upload {local}: not a file inside {folder}")
            source = str(local.resolve())
        operations.append(CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=source))
    if not operations:
        raise ValueError(f"nothing to upload from {folder}")
    space_sdk = {"space_sdk": "gradio"} if repo_type == "space" else {}
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **space_sdk)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    return api.create_commit(
        repo_id=repo_id,
        operations=operations,
        repo_type=repo_type,
        revision=revision,
        commit_message=commit_message or f"Upload {repo_type} with snake-world-eqm",
    )


def files_to_push(folder: str | Path, repo_type: str) -> dict[str, Path | bytes]:
    """The allow-listed files of a checked model or dataset folder, remote-code files included for a model."""
    if repo_type == "model":
        path = check_model_folder(folder)
        files = allowed_files(path, MODEL_ALLOWED_PATTERNS, _auto_map_files(path))
        # The package's own source (outside the folder) travels as bytes: the upload only reads inside it.
        files.update({name: source.read_bytes() for name, source in _remote_code_files(path, files).items()})
        return files
    if repo_type == "dataset":
        return allowed_files(check_dataset_folder(folder), DATASET_ALLOWED_PATTERNS)
    if repo_type == "space":  # the app's Space folder (snake_world_eqm.app.build_space_folder)
        from snake_world_eqm.app import SPACE_FILES, check_space_folder

        return allowed_files(check_space_folder(folder), SPACE_FILES)
    raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool = False,
    commit_message: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    api: HfApi | None = None,
    card: str | None = None,
    dry_run: bool = False,
) -> Any:
    """Upload the allow-listed files of a model, dataset or Space folder in one commit.

    Order matters: the repo id, the folder and the Hub access are checked before anything is built or sent.
    `card` (markdown) replaces the folder's README.md in the upload without touching the folder. With
    `dry_run` nothing is sent and the {path in repo: source} mapping is returned."""
    if repo_type not in ("model", "dataset", "space"):
        raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}")
    check_repo_id(repo_id)
    files: dict[str, Any] = dict(files_to_push(folder, repo_type))
    if card is not None:
        files["README.md"] = card.encode()
    if dry_run:
        return files
    api = api or HfApi(token=token)
    check_hub_access(api, token)
    return upload_folder_allowlisted(api, folder, repo_id, repo_type, files, commit_message=commit_message,
                                     revision=revision, private=private)


def _auto_map_modules(folder: Path) -> set[str]:
    auto_map = json.loads((folder / "config.json").read_text()).get("auto_map", {}) or {}
    references = [ref for value in auto_map.values() for ref in (value if isinstance(value, list) else [value])]
    return {ref.split(".")[0] for ref in references if isinstance(ref, str) and "--" not in ref}


def _auto_map_files(folder: Path) -> tuple[str, ...]:
    """The remote-code files the config's auto_map names (and eqm.py, which the modeling file imports)."""
    modules = _auto_map_modules(folder)
    if modules:
        modules.add("eqm")
    return tuple(f"{module}.py" for module in sorted(modules) if module.isidentifier())


def _remote_code_files(folder: Path, present: Mapping[str, Path]) -> dict[str, Path]:
    """The library's own source for every module the config's `auto_map` names but the folder lacks,
    so `AutoModel.from_pretrained(repo, trust_remote_code=True)` works from the pushed repo."""
    package_dir = Path(__file__).resolve().parent
    missing = {}
    for name in _auto_map_files(folder):
        if name not in present and (package_dir / name).is_file():
            missing[name] = package_dir / name
    return missing


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
    if training.is_file() and _inside(path, training):
        train_metrics = _read_json(training, "the folder's metrics.json")
        commands.append(train_metrics.get("command", "# training command not recorded"))
        extra += (f"### Training\n\n{train_metrics.get('global_step')} optimizer steps, "
                  f"{train_metrics.get('samples_seen')} samples, {train_metrics.get('train_seconds')} s at "
                  f"{train_metrics.get('samples_per_second')} samples/s (mixed precision: {train_metrics.get('mixed_precision')}, "
                  f"{train_metrics.get('num_processes')} process(es)).\n\n")
    size_note = None
    if not config.get("fixed_board_size", True):
        sizes = json.loads(training.read_text()).get("board_sizes") if training.is_file() else None
        board = ", ".join(sizes) if sizes else "several sizes"
        size_note = (f"- Trained on the board sizes {board} (one model, `fixed_board_size=False`); it runs on any "
                     "size from 4x4 to 32x32. Sizes it never saw are measured separately; rows and columns "
                     "beyond the largest trained size have untrained position embeddings.")
    if metrics and "sizes" in metrics:  # a `snake-eqm evaluate-sizes` result: one row per board size
        from snake_world_eqm.evaluation.by_size import markdown_table

        commands.append((metrics.get("config") or {}).get("command") or "# evaluation command not recorded")
        extra += "### Per board size (seen and unseen in training)\n\n" + markdown_table(metrics)
        metrics = None
    elif metrics:
        commands.append((metrics.get("config") or {}).get("command") or "# evaluation command not recorded")
        extra += "### Claims, measured\n\n" + claims_table(metrics) + "\n\n### Closed-loop play\n\n" + play_table(metrics)
    return build_model_card(metrics, repo_id=repo_id, dataset_id=dataset_id, board_size=board,
                            commands=commands or None, extra_markdown=extra, size_note=size_note)


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
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".card-") as staging:
        card.save(Path(staging) / "README.md")
        os.replace(Path(staging) / "README.md", target)
    return target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm push", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a folder written by save_pretrained")
    parser.add_argument("--dataset-dir", help="a folder written by `python -m dataset_builder`")
    parser.add_argument("--repo-id", help="target repo, e.g. org/snake-eqm (not with --space-id)")
    parser.add_argument("--space-id", default=None, help="build and push the demo Space (snake_world_eqm/app.py) "
                        "here, e.g. org/snake-eqm-demo; --model-id names the model it runs")
    parser.add_argument("--model-id", default=None, help="with --space-id: the Hub model the Space loads")
    parser.add_argument("--space-dir", default=None, help="with --space-id: keep the built Space folder here")
    parser.add_argument("--package-spec", default=None, help="with --space-id: the pip requirement that installs "
                        "snake-world-eqm in the Space (default snake-world-eqm[app]==VERSION)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--commit-message", default=None)
    parser.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    parser.add_argument("--token", default=None, help="defaults to the cached login / HF_TOKEN")
    parser.add_argument("--metrics-json", default=None, help="evaluation JSON to put in the model card")
    parser.add_argument("--dataset-id", default="org/snake-world", help="dataset named in the model card")
    parser.add_argument("--command", action="append", default=[], dest="commands",
                        help="another command the card should quote (dataset build, baseline training); repeatable")
    parser.add_argument("--card-only", action="store_true",
                        help="only (re)write the model folder's README.md card, push nothing")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the files that would be uploaded (and those left out), upload nothing")
    return parser


def print_upload_plan(folder: str | Path, files: Mapping[str, Any], out=None) -> None:
    """What a push sends, one file a line, then what it leaves behind."""
    out = out or sys.stdout
    print(f"would upload {len(files)} file(s) from {folder}:", file=out)
    for name, source in sorted(files.items()):
        size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
        origin = " (generated / from the package)" if isinstance(source, bytes) else ""
        print(f"  {name}  {size} bytes{origin}", file=out)
    skipped = skipped_files(folder, files)
    if skipped:
        print(f"left out ({len(skipped)}, not on the allow-list or a link out of the folder): "
              + ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else ""), file=out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.space_id:
        return _push_space(args)
    if not args.repo_id:
        raise SystemExit("snake-eqm push: --repo-id is required (or --space-id for the demo Space)")
    if bool(args.model_dir) == bool(args.dataset_dir):
        raise SystemExit("snake-eqm push: give exactly one of --model-dir or --dataset-dir")
    if args.card_only and not args.model_dir:
        raise SystemExit("snake-eqm push: --card-only needs --model-dir")
    try:
        return _push_command(args)
    except (ValueError, OSError) as error:  # OSError covers ConnectionError, PermissionError, FileNotFoundError
        print(f"snake-eqm push: error: {error}", file=sys.stderr)
        return 1


def _push_command(args: argparse.Namespace) -> int:
    """Checks first (repo id, folder, Hub access), then the card in memory, then one upload."""
    check_repo_id(args.repo_id)
    folder, repo_type = (args.model_dir, "model") if args.model_dir else (args.dataset_dir, "dataset")
    if args.card_only:
        print(f"wrote {write_model_card(folder, args.metrics_json, args.repo_id, args.dataset_id, args.commands)}")
        return 0
    # Local checks (folder, card inputs) before the network; the card is built in memory, the folder untouched.
    card = None
    if repo_type == "model":
        card = str(render_model_card(folder, args.metrics_json, args.repo_id, args.dataset_id, args.commands))
    files = push_folder(folder, args.repo_id, repo_type=repo_type, card=card, dry_run=True)
    if args.dry_run:
        print_upload_plan(folder, files)
        return 0
    api = HfApi(token=args.token)
    print(f"pushing as {check_hub_access(api, args.token)}", file=sys.stderr)
    info = upload_folder_allowlisted(api, folder, args.repo_id, repo_type, files, private=args.private,
                                     commit_message=args.commit_message, revision=args.revision)
    if card is not None:  # the folder's card now matches the Hub's (written only after the upload succeeded)
        write_model_card(folder, args.metrics_json, args.repo_id, args.dataset_id, args.commands)
    print(f"pushed {folder} to {args.repo_id} ({repo_type}): {getattr(info, 'commit_url', info)}")
    return 0


def _push_space(args: argparse.Namespace) -> int:
    from snake_world_eqm.app import push_space

    if args.model_dir or args.dataset_dir or args.repo_id or args.card_only:
        raise SystemExit("snake-eqm push: --space-id takes --model-id, not --model-dir/--dataset-dir/--repo-id/"
                         "--card-only")
    if not args.model_id:
        raise SystemExit("snake-eqm push: --space-id needs --model-id (the Hub model the Space runs)")
    try:
        info = push_space(args.space_id, args.model_id, folder=args.space_dir, package_spec=args.package_spec,
                          private=args.private, token=args.token, commit_message=args.commit_message,
                          revision=args.revision)
    except (ValueError, OSError) as error:  # OSError: no token, offline, no connection (check_hub_access)
        raise SystemExit(f"snake-eqm push: {error}") from None
    print(f"pushed the Space for {args.model_id} to {args.space_id}: {getattr(info, 'commit_url', info)}")
    return 0
