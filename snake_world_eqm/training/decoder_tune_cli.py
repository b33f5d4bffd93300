"""`snake-eqm tune-decoder`: retrain a world model's decoder on the latents its sampler reaches.

    snake-eqm tune-decoder --model snake_world_eqm/checkpoints/snake-eqm-multisize \
        --dataset data/route-10x10 data/dagger-round-4-10x10 ... --output-dir runs/multisize-tuned

The encoder and the EqM field are kept bit for bit (the agent's moves do not change); only the decoder learns
(`snake_world_eqm.training.decoder_tune`), or with `--part food-head` only a small head that says where new food
appears after an apple (every predicted board stays as it was; the dream draws the food from it). The result is a model folder (`from_pretrained` loads it) with
`metrics.json` (the tuning summary). The parser imports no torch, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys

from snake_world_eqm.argtypes import positive_float, positive_int, probability

log = logging.getLogger("snake_world_eqm.tune_decoder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm tune-decoder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="world-model folder or repo id to start from")
    parser.add_argument("--dataset", nargs="+", required=True,
                        help="dataset folders or repo ids with next_state_per_action (a multi-size one: every size)")
    parser.add_argument("--output-dir", required=True, help="new folder for the tuned model")
    parser.add_argument("--overwrite", action="store_true", help="replace a model this command wrote before")
    parser.add_argument("--steps", type=positive_int, default=2000)
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3)
    parser.add_argument("--whatif-fraction", type=probability, default=0.5)
    parser.add_argument("--origin-fraction", type=probability, default=0.5)
    parser.add_argument("--encoder-fraction", type=probability, default=0.25)
    parser.add_argument("--eat-fraction", type=probability, default=0.25)
    parser.add_argument("--no-descent-food-loss", dest="descent_food_loss", action="store_false",
                        help="score descent latents against the next board without its new food (the latent does "
                             "not name it): the decoder learns the snake alone from them")
    parser.add_argument("--max-rows-per-size", type=positive_int, default=None,
                        help="use at most this many training rows of each board size")
    parser.add_argument("--part", choices=("decoder", "food-head"), default="decoder",
                        help="decoder: retrain the decoder; food-head: add (or retrain) the food head alone, "
                             "which says where new food appears, and leave every predicted board as it was")
    parser.add_argument("--global-context", choices=("keep", "on"), default="on",
                        help="with --part decoder, on: give the decoder whole-board context (new weights start "
                             "at zero, so the tuned decoder starts as the old one); keep: the checkpoint's own "
                             "setting (--part food-head always keeps it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    return parser


def load_rows(datasets: list[str], max_rows: int | None) -> dict:
    """{"HxW": column arrays} of the training splits of every dataset (sizes of several datasets joined)."""
    import numpy as np

    from snake_world_eqm.data.loading import load_snake_dataset, to_numpy_columns

    from .decoder_tune import COLUMNS

    rows: dict[str, dict] = {}
    for name in datasets:
        for size, split in load_snake_dataset(name, split="train", required=COLUMNS, board_size="all").items():
            columns = to_numpy_columns(split, list(COLUMNS))
            if size in rows:
                columns = {key: np.concatenate([rows[size][key], columns[key]]) for key in COLUMNS}
            rows[size] = columns
    if max_rows is not None:
        rows = {size: {key: value[:max_rows] for key, value in columns.items()} for size, columns in rows.items()}
    return rows


def run(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from snake_world_eqm.output_guard import OutputLock, guard_output_folder

    # the folder is checked before torch loads: a refused output costs no time
    output = guard_output_folder(args.output_dir, "training run", args.overwrite, "--output-dir",
                                 (args.model, *args.dataset))
    import torch

    from snake_world_eqm.pretrained import load_config, load_model

    from .decoder_tune import DecoderTuneConfig, tune_decoder
    from .outputs import save_model_folder

    config = DecoderTuneConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                               whatif_fraction=args.whatif_fraction, origin_fraction=args.origin_fraction,
                               encoder_fraction=args.encoder_fraction, eat_fraction=args.eat_fraction,
                               part=args.part.replace("-", "_"), descent_food_loss=args.descent_food_loss,
                               seed=args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model_config = load_config(args.model)
    new_context = config.part == "decoder" and args.global_context == "on" and not model_config.decoder_global_context
    new_food_head = config.part == "food_head" and not model_config.food_head
    model_config.decoder_global_context = model_config.decoder_global_context or new_context
    model_config.food_head = model_config.food_head or new_food_head
    model = load_model(args.model, kind="eqm", config=model_config, allow_partial=new_context or new_food_head)
    if new_context:
        for block in model.decoder.blocks:  # start as the old decoder: the context adds nothing until trained
            torch.nn.init.zeros_(block.context.weight)
            torch.nn.init.zeros_(block.context.bias)
    rows = load_rows(args.dataset, args.max_rows_per_size)
    log.info("tuning the decoder on %s", {size: len(columns["state"]) for size, columns in rows.items()})
    with OutputLock(output, "--output-dir"):
        summary = tune_decoder(model, rows, config, log=lambda entry: log.info("%s", entry))
        summary.update(base_model=str(args.model), datasets=[str(name) for name in args.dataset],
                       global_context=bool(model.config.decoder_global_context),
                       food_head=bool(model.config.food_head))
        command = shlex.join(["snake-eqm", "tune-decoder", *argv])
        save_model_folder(model, output, summary, {"dataset": args.dataset, "base_model": str(args.model),
                                                   "board_size": "multi" if len(rows) > 1 else next(iter(rows)),
                                                   "command": command})
    log.info("tuned model written to %s", output)
    return summary


def main(argv: list[str] | None = None) -> int:
    """0 when done, 2 on bad input (one line on stderr)."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        summary = run(argv)
    except (ValueError, FileNotFoundError) as error:
        print(f"snake-eqm tune-decoder: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({key: summary[key] for key in ("samples", "final_loss", "seconds", "rows")}))
    return 0


__all__ = ["build_parser", "load_rows", "main", "run"]
