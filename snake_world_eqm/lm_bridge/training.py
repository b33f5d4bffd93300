"""Train the LM bridge on a Snake dataset (`snake-eqm lm-train`, `hub_scripts/train_lm_bridge.py`).

The world model is frozen, so its features are computed once per board (the expensive part: one EqM sample
plus, with what-if, four more) and the LM is then trained on cached tensors, through the package's one
training engine (`snake_world_eqm.training.engine`): checkpoints and `--resume-from-checkpoint latest|PATH`,
the NaN guard, a clean stop on SIGINT/SIGTERM or `--max-train-minutes`, trackers, train_log.jsonl. Evaluation
is on held-out episodes: the LM *generates* its answer and the parser reads it; nothing is teacher-forced.

    snake-eqm lm-train --dataset snake_world_dataset --eqm-model outputs/eqm --output-dir outputs/lm_bridge
    snake-eqm lm-train ... --lm-name-or-path HuggingFaceTB/SmolLM2-135M      # a real Hub LM, frozen by default
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    LlamaConfig,
    PreTrainedConfig,
    PreTrainedTokenizerBase,
)

from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
from snake_world_eqm.data import collate, load_snake_dataset
from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM
from snake_world_eqm.output_guard import move_files_into
from snake_world_eqm.pretrained import load_model
from snake_world_eqm.provenance import provenance
from snake_world_eqm.training import engine, exit_code
from snake_world_eqm.training.checkpoints import fsync_tree
from snake_world_eqm.training.data import EpochShuffleSampler
from snake_world_eqm.training.flags import check_common_flags, resolve_trackers
from snake_world_eqm.training.outputs import place_run

from .args import build_parser
from .modeling_lm_bridge import SnakeLMBridge, SnakeWorldFeatures
from .text import SnakeAnswer, answers_from_columns, build_tokenizer, encode_examples

FEATURE_FIELDS = ("latent_next", "action_logits", "encoder_hidden", "whatif", "eqm_action")
TEXT_FIELDS = ("input_ids", "attention_mask", "labels")
LABEL_COLUMNS = ("state", "action", "event", "event_per_action")


# ---------------------------------------------------------------------- building the parts


def tiny_text_config(
    arch: str,
    tokenizer: PreTrainedTokenizerBase,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
) -> PreTrainedConfig:
    """A small causal LM config (Llama- or GPT-2-style) over `tokenizer`'s vocabulary, built offline."""
    if hidden_size % num_heads:
        raise ValueError(f"lm hidden size {hidden_size} must be divisible by the number of heads {num_heads}")
    ids = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if arch == "llama":
        return LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=2 * hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=128,
            **ids,
        )
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=num_heads,
            n_positions=128,
            **ids,
        )
    raise ValueError(f"unknown --lm-arch {arch!r}; expected 'llama' or 'gpt2'")


def build_language_model(args: argparse.Namespace) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A pretrained LM by name/path (its own tokenizer), or a tiny one from a config with the local tokenizer."""
    if args.lm_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(args.lm_name_or_path)
        if tokenizer.eos_token_id is None:
            raise ValueError(
                f"the tokenizer of {args.lm_name_or_path} has no EOS token; answers could not end"
            )
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of the loss anyway
        return AutoModelForCausalLM.from_pretrained(args.lm_name_or_path), tokenizer
    tokenizer = build_tokenizer()
    config = tiny_text_config(args.lm_arch, tokenizer, args.lm_hidden_size, args.lm_layers, args.lm_heads)
    return AutoModelForCausalLM.from_config(config), tokenizer


def load_world_model(args: argparse.Namespace) -> torch.nn.Module:
    """The trained EqM model from `--eqm-model`, or (for smoke tests only) a random-init tiny one."""
    if args.eqm_model:
        return load_model(args.eqm_model, kind="eqm")
    config = SnakeWorldEqMConfig.cpu_small(board_height=args.board_size, board_width=args.board_size)
    return SnakeWorldEqM(config).eval()


def build_bridge(args: argparse.Namespace) -> SnakeLMBridge:
    language_model, tokenizer = build_language_model(args)
    freeze = {"auto": bool(args.lm_name_or_path), "yes": True, "no": False}[args.freeze_lm]
    return SnakeLMBridge.from_parts(
        language_model,
        world_model=load_world_model(args),
        tokenizer=tokenizer,
        num_prefix_tokens=args.num_prefix_tokens,
        use_encoder_hidden=args.use_encoder_hidden,
        use_whatif=args.use_whatif,
        freeze_language_model=freeze,
        prompt=args.prompt,
    )


# ---------------------------------------------------------------------- data: boards → features + texts


def split_columns(dataset, max_rows: int | None, seed: int) -> dict[str, torch.Tensor]:
    """The columns the bridge needs from one split, as tensors (a seeded random subset if `max_rows`)."""
    if max_rows is not None and max_rows < len(dataset):
        dataset = dataset.shuffle(seed=seed).select(range(max_rows))
    return collate(dataset.select_columns(list(LABEL_COLUMNS)).with_format("numpy")[:])


@torch.no_grad()
def compute_features(
    bridge: SnakeLMBridge, boards: torch.Tensor, batch_size: int = 512, seed: int = 0, progress: bool = True
) -> dict[str, torch.Tensor]:
    """World-model features of every board, batched, on CPU (the world model is frozen: computed once)."""
    generator = torch.Generator(device=bridge.device).manual_seed(seed)
    chunks: dict[str, list[torch.Tensor]] = {}
    for start in tqdm(range(0, len(boards), batch_size), desc="world-model features", disable=not progress):
        features = bridge.world_features(boards[start : start + batch_size], generator=generator)
        for name in FEATURE_FIELDS:
            value = getattr(features, name)
            if value is not None:
                chunks.setdefault(name, []).append(value.cpu())
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def answers_of(columns: dict[str, torch.Tensor]) -> list[SnakeAnswer]:
    return answers_from_columns(columns["action"], columns["event"], columns["event_per_action"])


def features_object(
    features: dict[str, torch.Tensor], device: torch.device | None = None
) -> SnakeWorldFeatures:
    return SnakeWorldFeatures(**{k: v.to(device) if device else v for k, v in features.items()})


# ---------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_bridge(
    bridge: SnakeLMBridge,
    features: dict[str, torch.Tensor],
    answers: list[SnakeAnswer],
    batch_size: int = 256,
    prompt: str | None = None,
) -> dict[str, float]:
    """Generate, parse and score against the dataset's labels; an unparsable field counts as wrong."""
    bridge.eval()
    lm_action, lm_ok, eats, deadly = [], [], [], []
    for start in range(0, len(answers), batch_size):
        chunk = {k: v[start : start + batch_size] for k, v in features.items()}
        decision = bridge.decide(features=features_object(chunk, bridge.device), prompt=prompt)
        lm_action += [a.action for a in decision.answers]
        lm_ok += decision.parsed_ok.tolist()
        eats += [a.eats for a in decision.answers]
        deadly += [a.deadly for a in decision.answers]
    return score_answers(answers, lm_action, eats, deadly, features)


def score_answers(
    answers: list[SnakeAnswer],
    lm_action: list[int | None],
    eats: list[bool | None],
    deadly: list[frozenset[int] | None],
    features: dict[str, torch.Tensor],
) -> dict[str, float]:
    n = len(answers)
    expert = torch.tensor([a.action for a in answers])
    eqm = features["eqm_action"].cpu()
    lm = torch.tensor([a if a is not None else -1 for a in lm_action])
    changed = (lm != eqm) & (lm >= 0)
    metrics = {
        "num_states": n,
        "lm_action_accuracy": (lm == expert).float().mean().item(),
        "lm_action_accuracy_with_eqm_fallback": torch.where(lm >= 0, lm, eqm)
        .eq(expert)
        .float()
        .mean()
        .item(),
        "eqm_action_accuracy": (eqm == expert).float().mean().item(),
        "lm_action_parse_rate": (lm >= 0).float().mean().item(),
        "lm_overrides_eqm_rate": changed.float().mean().item(),
        "lm_override_correct_rate": (lm[changed] == expert[changed]).float().mean().item()
        if changed.any()
        else float("nan"),
        "deadly_accuracy": sum(d == a.deadly for d, a in zip(deadly, answers)) / n,
        "eat_accuracy": sum(e == a.eats for e, a in zip(eats, answers)) / n,
    }
    if "whatif" in features:
        # How well the world model's own what-if predictions name the deadly moves (what the LM can read).
        terminal = features["whatif"].view(n, -1, 2)[..., 0].bool()
        truth = torch.zeros_like(terminal)
        for i, a in enumerate(answers):
            truth[i, list(a.deadly)] = True
        metrics["whatif_deadly_accuracy"] = (terminal == truth).all(dim=1).float().mean().item()
    return metrics


# ---------------------------------------------------------------------- training


def make_loader(
    features: dict[str, torch.Tensor], texts: dict[str, torch.Tensor], batch_size: int, shuffle: bool,
    seed: int = 0,
) -> tuple[DataLoader, list[str]]:
    """A loader of (features..., texts...) tuples and their names; shuffled in an order set by (seed, epoch)
    only, and with its own generator (a new iterator draws no number from the global RNG), so a resumed run
    sees the same batches and the same dropout as an uninterrupted one."""
    names = [k for k in FEATURE_FIELDS if k in features and k != "eqm_action"]
    dataset = TensorDataset(*([features[k] for k in names] + [texts[k] for k in TEXT_FIELDS]))
    sampler = EpochShuffleSampler(len(dataset), seed) if shuffle else None
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=False,
                        generator=torch.Generator().manual_seed(seed))
    return loader, names + list(TEXT_FIELDS)


def bridge_task(
    bridge: SnakeLMBridge,
    loader: DataLoader,
    names: list[str],
    eval_features: dict[str, torch.Tensor] | None = None,
    eval_answers: list[SnakeAnswer] | None = None,
    summarize=None,
    save_final=None,
) -> engine.TrainTask:
    """The LM bridge's pieces for the engine: teacher-forced loss on cached features; validation generates."""

    def loss(model: Any, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return model(**dict(zip(names, batch))).loss, {}

    def validate(accelerator: Any, model: Any, data: Any) -> dict[str, float]:
        features, answers = data
        return evaluate_bridge(accelerator.unwrap_model(model), features, answers)

    has_eval = eval_features is not None and eval_answers is not None
    return engine.TrainTask(
        kind="lm_bridge",
        label="lm-bridge",
        build_model=lambda: bridge,
        build_loaders=lambda: (loader, (eval_features, eval_answers) if has_eval else None),
        loss=loss,
        batch_rows=lambda batch: len(batch[0]),
        validate=validate if has_eval else None,
        summarize=summarize,
        save_final=save_final,
        nan_hint="lower --learning-rate",
    )


def train_bridge(
    bridge: SnakeLMBridge, loader: DataLoader, names: list[str], settings: engine.EngineSettings
) -> list[dict]:
    """Train `bridge` on `loader` through the engine (no validation); return the logged losses."""
    engine.train(bridge_task(bridge, loader, names), settings)
    return history_of(settings.output_dir)


def history_of(output_dir: Path) -> list[dict]:
    """The training losses of a run, [{step, loss, lr}], from its train_log.jsonl."""
    path = Path(output_dir) / "train_log.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return [{"step": row["step"], "loss": row["train/loss"], "lr": row["train/learning_rate"]}
            for row in rows if row.get("kind") == "train"]


# ---------------------------------------------------------------------- command line


@dataclass(frozen=True)
class LMBridgeSetup:
    """An `lm-train` run, checked and resolved once from the flags."""

    args: argparse.Namespace  # the bridge's own flags (world model, LM, prompt); read, never changed
    engine: engine.EngineSettings


def prepare_run(args: argparse.Namespace, command: str) -> LMBridgeSetup:
    """Every check that needs no model: flags, trackers, OUTPUT_DIR and the checkpoint to resume."""
    if bool(args.eqm_model) == bool(args.random_eqm):
        raise SystemExit(
            "give exactly one of --eqm-model PATH (a trained world model) or --random-eqm (smoke tests)"
        )
    check_common_flags(args)
    trackers = resolve_trackers(args.report_to, args.wandb)
    placement = place_run(args.output_dir, args.resume_from_checkpoint, args.overwrite_output_dir, "lm_bridge",
                          protected=(args.eqm_model, args.dataset))
    settings = engine.EngineSettings.from_flags(
        args, run_id=placement.run_id, command=command, resume_from=placement.resume_from, trackers=trackers,
        flags={**vars(args), "run_id": placement.run_id, "command": command},
    )
    return LMBridgeSetup(args, settings)


def run(argv: list[str] | None = None) -> dict:
    """Parse, check, compute the features, train, evaluate; return the metrics (lm_bridge_metrics.json)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    setup = prepare_run(args, shlex.join(["snake-eqm", "lm-train", *argv]))
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    set_seed(args.seed)
    dataset = load_snake_dataset(args.dataset, required=LABEL_COLUMNS)
    for split in (args.train_split, args.eval_split):
        if split not in dataset:
            raise SystemExit(f"split {split!r} is not in {args.dataset}; it has {list(dataset)}")
    train_cols = split_columns(dataset[args.train_split], args.max_train_samples, args.seed)
    eval_cols = split_columns(dataset[args.eval_split], args.max_eval_samples, args.seed)

    bridge = build_bridge(args)
    progress = not args.disable_progress_bar
    started = time.monotonic()
    train_features = compute_features(bridge, train_cols["state"], args.feature_batch_size, args.seed, progress)
    eval_features = compute_features(bridge, eval_cols["state"], args.feature_batch_size, args.seed + 1, progress)
    feature_seconds = time.monotonic() - started
    train_answers, eval_answers = answers_of(train_cols), answers_of(eval_cols)
    texts = encode_examples(bridge.tokenizer, train_answers, prompt=bridge.config.prompt)
    loader, names = make_loader(train_features, texts, args.batch_size, shuffle=True, seed=args.seed)

    def summarize(run: engine.TrainingRun, stopped_because: str) -> dict[str, Any]:
        history = history_of(setup.engine.output_dir) if run.accelerator.is_main_process else []
        return {
            **(run.state.last_validation or {}),
            "eval_split": args.eval_split,
            "num_train_states": len(train_answers),
            "feature_seconds": round(feature_seconds, 1),
            "train_seconds": round(run.state.train_seconds, 1),
            "train_steps": run.state.global_step,
            "final_train_loss": history[-1]["loss"] if history else None,
            "stopped_because": stopped_because,
            "provenance": provenance(setup.engine.command),  # command, code revision, machine, date
        }

    saved: list[dict[str, Any]] = []  # filled on the main process only, which prints the metrics

    def save_final(run: engine.TrainingRun, metrics: dict[str, Any]) -> None:
        saved.append(metrics)
        output_dir = setup.engine.output_dir
        staging = output_dir / ".tmp-final"  # written beside, flushed, renamed: a kill keeps the previous model
        shutil.rmtree(staging, ignore_errors=True)
        run.unwrapped_model.save_pretrained(staging)
        (staging / "lm_bridge_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / "lm_bridge_history.json").write_text(json.dumps(history_of(output_dir)) + "\n")
        fsync_tree(staging)
        move_files_into(staging, output_dir, last=("config.json",))

    task = bridge_task(bridge, loader, names, eval_features, eval_answers, summarize, save_final)
    metrics = engine.train(task, setup.engine)
    if saved:
        print(json.dumps(saved[0], indent=2))
    return metrics


def main(argv: list[str] | None = None) -> int:
    """`snake-eqm lm-train`: 0 when done, 2 on bad input, 1 when the loss became NaN/inf, 128+N after signal N."""
    return exit_code("snake-eqm lm-train", run, argv)


__all__ = [
    "bridge_task",
    "build_bridge",
    "build_parser",
    "compute_features",
    "evaluate_bridge",
    "main",
    "run",
    "score_answers",
    "tiny_text_config",
    "train_bridge",
]
