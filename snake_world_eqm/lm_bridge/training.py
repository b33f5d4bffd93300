"""Train the LM bridge on a Snake dataset with Accelerate (`snake-eqm lm-train`, `hub_scripts/train_lm_bridge.py`).

The world model is frozen, so its features are computed once per board (the expensive part: one EqM sample
plus, with what-if, four more) and the LM is then trained on cached tensors. Evaluation is on held-out
episodes: the LM *generates* its answer and the parser reads it; nothing is teacher-forced.

    snake-eqm lm-train --dataset snake_world_dataset --eqm-model outputs/eqm --output-dir outputs/lm_bridge
    snake-eqm lm-train ... --lm-name-or-path HuggingFaceTB/SmolLM2-135M      # a real Hub LM, frozen by default
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator
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

from snake_world_eqm.data import collate, load_snake_dataset
from snake_world_eqm.provenance import provenance

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
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
    from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM

    if args.eqm_model:
        return SnakeWorldEqM.from_pretrained(args.eqm_model).eval()
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
    features: dict[str, torch.Tensor], texts: dict[str, torch.Tensor], batch_size: int, shuffle: bool
):
    names = [k for k in FEATURE_FIELDS if k in features and k != "eqm_action"]
    tensors = [features[k] for k in names] + [texts[k] for k in TEXT_FIELDS]
    loader = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, drop_last=False)
    return loader, names + list(TEXT_FIELDS)


def train_bridge(
    bridge: SnakeLMBridge, loader, names: list[str], args, accelerator: Accelerator
) -> list[dict]:
    params = [p for p in bridge.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: the projector has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    total = args.max_steps or args.epochs * len(loader)
    warmup = min(100, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, warmup, total))
    bridge, optimizer, loader, scheduler = accelerator.prepare(bridge, optimizer, loader, scheduler)
    history, step, started, out_of_time = [], 0, time.monotonic(), False
    bar = tqdm(total=total, desc="lm-bridge", disable=not accelerator.is_local_main_process)
    while step < total:
        for batch in loader:
            with accelerator.accumulate(bridge):
                loss = bridge(**dict(zip(names, batch))).loss
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            step += 1
            bar.update(1)
            if step % args.log_every == 0 or step == total:
                record = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0]}
                history.append(record)
                accelerator.log({"train/loss": record["loss"], "train/lr": record["lr"]}, step=step)
                bar.set_postfix(loss=f"{record['loss']:.4f}")
            out_of_time = (
                args.time_limit_minutes and time.monotonic() - started > 60 * args.time_limit_minutes
            )
            if step >= total or out_of_time:
                break
        if out_of_time:
            accelerator.print(
                f"stopped at step {step}/{total}: --time-limit-minutes {args.time_limit_minutes} reached"
            )
            break
    bar.close()
    if history and history[-1]["step"] != step:  # stopped by the time limit between two log points
        history.append({"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0]})
    return history


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------------- command line


def _check_args(args: argparse.Namespace) -> None:
    if bool(args.eqm_model) == bool(args.random_eqm):
        raise SystemExit(
            "give exactly one of --eqm-model PATH (a trained world model) or --random-eqm (smoke tests)"
        )
    for name in (
        "max_train_samples",
        "max_eval_samples",
        "epochs",
        "batch_size",
        "num_prefix_tokens",
        "log_every",
    ):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_steps is not None and args.max_steps < 1:
        raise SystemExit(f"--max-steps must be >= 1, got {args.max_steps}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_args(args)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
    )
    progress = accelerator.is_local_main_process
    dataset = load_snake_dataset(args.dataset, required=LABEL_COLUMNS)
    for split in (args.train_split, args.eval_split):
        if split not in dataset:
            raise SystemExit(f"split {split!r} is not in {args.dataset}; it has {list(dataset)}")
    train_cols = split_columns(dataset[args.train_split], args.max_train_samples, args.seed)
    eval_cols = split_columns(dataset[args.eval_split], args.max_eval_samples, args.seed)

    bridge = build_bridge(args)
    started = time.monotonic()
    train_features = compute_features(
        bridge, train_cols["state"], args.feature_batch_size, args.seed, progress
    )
    eval_features = compute_features(
        bridge, eval_cols["state"], args.feature_batch_size, args.seed + 1, progress
    )
    feature_seconds = time.monotonic() - started
    train_answers, eval_answers = answers_of(train_cols), answers_of(eval_cols)
    texts = encode_examples(bridge.tokenizer, train_answers, prompt=bridge.config.prompt)
    loader, names = make_loader(train_features, texts, args.batch_size, shuffle=True)

    if args.report_to != "none":
        accelerator.init_trackers("lm_bridge", config=_tracker_config(args))
    started = time.monotonic()
    history = train_bridge(bridge, loader, names, args, accelerator)
    train_seconds = time.monotonic() - started
    bridge = accelerator.unwrap_model(bridge)

    metrics = evaluate_bridge(bridge, eval_features, eval_answers)
    metrics.update(
        eval_split=args.eval_split,
        num_train_states=len(train_answers),
        feature_seconds=round(feature_seconds, 1),
        train_seconds=round(train_seconds, 1),
        train_steps=history[-1]["step"] if history else 0,
        final_train_loss=history[-1]["loss"] if history else None,
        provenance=provenance(),  # command, code revision, machine, date: docs/results/README.md
    )
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        bridge.save_pretrained(output_dir)
        (output_dir / "lm_bridge_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (output_dir / "lm_bridge_history.json").write_text(json.dumps(history) + "\n")
        print(json.dumps(metrics, indent=2))
    accelerator.end_training()
    return 0


def _tracker_config(args: argparse.Namespace) -> dict:
    # Trackers accept only scalars and strings.
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items()}


__all__ = [
    "build_bridge",
    "build_parser",
    "compute_features",
    "evaluate_bridge",
    "main",
    "score_answers",
    "tiny_text_config",
    "train_bridge",
]
