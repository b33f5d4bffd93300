"""Flags of `snake-eqm lm-train` / `hub_scripts/train_lm_bridge.py`.

The data, optimisation, checkpoint and logging flags are the training engine's, shared with `snake-eqm train`
(`snake_world_eqm.training.flags`), with defaults for a tiny LM; the world-model, LM and bridge flags are this
command's own. Kept apart from the training code (and free of torch and transformers) so that `--help`
answers at once.
"""

from __future__ import annotations

import argparse

from snake_world_eqm.argtypes import positive_int
from snake_world_eqm.training.flags import add_common_training_flags, add_data_flags

DEFAULT_PROMPT = "what next ?"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snake-eqm lm-train",
        description="Train a causal LM to read the EqM world model's prediction (prefix projector) and answer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_flags(parser, several_datasets=False, eval_split="test", max_train_samples=20_000,
                   max_eval_samples=2_000)
    world = parser.add_argument_group("world model")
    world.add_argument("--eqm-model", default=None, help="trained SnakeWorldEqM folder or repo id")
    world.add_argument(
        "--random-eqm", action="store_true", help="use a random-init tiny world model (smoke tests only)"
    )
    world.add_argument("--board-size", type=positive_int, default=10, help="board size of the --random-eqm model")
    lm = parser.add_argument_group("language model")
    lm.add_argument("--lm-name-or-path", default=None, help="any AutoModelForCausalLM on the Hub or on disk")
    lm.add_argument(
        "--lm-arch", choices=("llama", "gpt2"), default="llama", help="tiny LM built from a config"
    )
    lm.add_argument("--lm-hidden-size", type=positive_int, default=128)
    lm.add_argument("--lm-layers", type=positive_int, default=2)
    lm.add_argument("--lm-heads", type=positive_int, default=4)
    lm.add_argument(
        "--freeze-lm",
        choices=("auto", "yes", "no"),
        default="auto",
        help="auto: frozen iff --lm-name-or-path",
    )
    bridge = parser.add_argument_group("bridge")
    bridge.add_argument("--num-prefix-tokens", type=positive_int, default=4)
    bridge.add_argument("--use-encoder-hidden", action=argparse.BooleanOptionalAction, default=True)
    bridge.add_argument("--use-whatif", action=argparse.BooleanOptionalAction, default=True)
    bridge.add_argument("--prompt", default=DEFAULT_PROMPT)
    optim, run = add_common_training_flags(
        parser, epochs=3, batch_size=64, learning_rate=1e-3, weight_decay=0.0, warmup_steps=None,
        gradient_clip=0.0, seed=0, output_dir=None, log_every=50, project_name="lm_bridge",
    )
    optim.add_argument("--feature-batch-size", type=positive_int, default=512,
                       help="boards per world-model call when the features are computed (once, before training)")
    optim.add_argument(
        "--num-threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (1 is fastest for tiny LMs on a busy CPU)",
    )
    run.add_argument("--eval-every", type=positive_int, default=None,
                     help="also score the LM's generated answers on the held-out split every N steps "
                          "(default: only at the end)")
    return parser
