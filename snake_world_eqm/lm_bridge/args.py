"""Flags of `snake-eqm lm-train` / `hub_scripts/train_lm_bridge.py`.

Kept apart from the training loop (and free of torch and transformers) so that `--help` answers at once.
"""

from __future__ import annotations

import argparse

DEFAULT_PROMPT = "what next ?"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snake-eqm lm-train",
        description="Train a causal LM to read the EqM world model's prediction (prefix projector) and answer.",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset", required=True, help="dataset folder or Hub repo id (built by dataset_builder)"
    )
    data.add_argument("--train-split", default="train")
    data.add_argument("--eval-split", default="test", help="held-out split for the final numbers")
    data.add_argument("--max-train-samples", type=int, default=20_000)
    data.add_argument("--max-eval-samples", type=int, default=2_000)
    world = parser.add_argument_group("world model")
    world.add_argument("--eqm-model", default=None, help="trained SnakeWorldEqM folder or repo id")
    world.add_argument(
        "--random-eqm", action="store_true", help="use a random-init tiny world model (smoke tests only)"
    )
    world.add_argument("--board-size", type=int, default=10, help="board size of the --random-eqm model")
    lm = parser.add_argument_group("language model")
    lm.add_argument("--lm-name-or-path", default=None, help="any AutoModelForCausalLM on the Hub or on disk")
    lm.add_argument(
        "--lm-arch", choices=("llama", "gpt2"), default="llama", help="tiny LM built from a config"
    )
    lm.add_argument("--lm-hidden-size", type=int, default=128)
    lm.add_argument("--lm-layers", type=int, default=2)
    lm.add_argument("--lm-heads", type=int, default=4)
    lm.add_argument(
        "--freeze-lm",
        choices=("auto", "yes", "no"),
        default="auto",
        help="auto: frozen iff --lm-name-or-path",
    )
    bridge = parser.add_argument_group("bridge")
    bridge.add_argument("--num-prefix-tokens", type=int, default=4)
    bridge.add_argument("--use-encoder-hidden", action=argparse.BooleanOptionalAction, default=True)
    bridge.add_argument("--use-whatif", action=argparse.BooleanOptionalAction, default=True)
    bridge.add_argument("--prompt", default=DEFAULT_PROMPT)
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--max-steps", type=int, default=None, help="overrides --epochs")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--gradient-accumulation-steps", type=int, default=1)
    train.add_argument("--time-limit-minutes", type=float, default=None, help="stop training after this long")
    train.add_argument("--feature-batch-size", type=int, default=512)
    train.add_argument("--log-every", type=int, default=50)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--num-threads",
        type=int,
        default=None,
        help="torch CPU threads (1 is fastest for tiny LMs on a busy CPU)",
    )
    train.add_argument("--report-to", choices=("tensorboard", "wandb", "none"), default="tensorboard")
    train.add_argument("--output-dir", required=True)
    return parser
