"""Training the EqM world model and the behaviour-cloning baseline: their `TrainTask` for the engine.

`prepare_run` checks every input (flags, output folder, checkpoint to resume, dataset, config, one forward
pass) before anything is written and returns a `RunSetup`; `train` hands the task to `engine.train`. What the
run leaves in OUTPUT_DIR: the final model and its card at the root, best/, checkpoints/, metrics.json,
train_log.jsonl, logs/, training_curves.png.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snake_world_eqm.evaluation.plots import plot_training_curves
from snake_world_eqm.processes import capped_workers

from ..provenance import provenance
from . import engine
from .args import validate_args
from .data import (
    MultiSizeSplit,
    collate_rows,
    forward_columns,
    load_splits,
    make_eval_loader,
    make_multisize_eval_loader,
    make_multisize_train_loader,
    make_train_loader,
    size_weights_for,
)
from .errors import TrainingSetupError
from .flags import resolve_trackers
from .model_setup import build_config, build_model, model_classes, resolve_model_kind
from .outputs import command_line, place_run, save_final_model, save_model_folder
from .selection import DEFAULT_BEST_METRIC
from .validation import BASELINE_METRICS, EQM_METRICS, loss_components, validate

logger = logging.getLogger("snake_world_eqm.training")


@dataclass(frozen=True)
class RunSetup:
    """A world-model run, checked and resolved once from the flags (all failures are TrainingSetupError)."""

    engine: engine.EngineSettings
    kind: str  # eqm | baseline
    config: Any
    splits: Any
    datasets: tuple[str, ...]
    base_model: str | None  # --model-name-or-path
    size_weights: tuple[tuple[tuple[int, int], float], ...]
    batch_size: int
    num_workers: int

    @property
    def command(self) -> str:
        return self.engine.command


def prepare_run(args: argparse.Namespace, command: str | None = None) -> RunSetup:
    """All input checks, in the order that fails fastest; nothing is written yet. `args` is only read."""
    kind, saved_config = resolve_model_kind(args.model, args.model_name_or_path)
    validate_args(args)
    _check_best_metric(kind, args.best_metric)
    trackers = resolve_trackers(args.report_to, args.wandb)
    placement = place_run(args.output_dir, args.resume_from_checkpoint, args.overwrite_output_dir, kind,
                          protected=(args.model_name_or_path, *_names(args.dataset)))
    _check_base_model_outside_output(args.model_name_or_path, args.output_dir, placement.resume_from)
    splits = load_splits(args.dataset, kind, args.train_split, args.eval_split,
                         args.max_train_samples, args.max_eval_samples)
    config_set = list(args.config_set)
    if args.model_name_or_path is None and splits.board_sizes and not any(k == "fixed_board_size" for k, _ in config_set):
        # Several sizes: a new model runs on any size unless the user insists (then _check_sizes refuses);
        # a fixed-size checkpoint must be told explicitly (--config-set fixed_board_size=false).
        config_set.append(("fixed_board_size", False))
    datasets = tuple(_names(args.dataset))
    if saved_config is not None:  # before build_config, whose own size check would name one size only
        fixed = {k: v for k, v in config_set if k == "fixed_board_size"}
        _check_sizes(datasets, args.size_weights, saved_config.__class__.from_dict({**saved_config.to_dict(), **fixed}),
                     splits)
    config = build_config(args, kind, config_set, splits.board_height, splits.board_width, saved_config)
    _check_sizes(datasets, args.size_weights, config, splits)
    _smoke_test(kind, config, args.model_name_or_path, splits.train)
    command = command or command_line()
    flags = {**vars(args), "model": kind, "config_set": config_set, "run_id": placement.run_id, "command": command}
    settings = engine.EngineSettings.from_flags(
        args, run_id=placement.run_id, command=command, resume_from=placement.resume_from, trackers=trackers,
        flags=flags, best_metric=args.best_metric or DEFAULT_BEST_METRIC,
    )
    return RunSetup(settings, kind, config, splits, datasets, args.model_name_or_path, tuple(args.size_weights),
                    args.batch_size, args.num_workers)


def _check_best_metric(kind: str, name: str | None) -> None:
    known = EQM_METRICS if kind == "eqm" else BASELINE_METRICS
    if name is not None and name not in known and not (name == "loss" or name.startswith("loss_")):
        raise TrainingSetupError(f"--best-metric {name}: choose from {', '.join(known)}, loss or loss_<term>")


def _check_base_model_outside_output(source: str | None, output_dir: str, resume_from: Path | None) -> None:
    if source is not None and Path(source).exists() and resume_from is None:
        output, model = Path(output_dir).resolve(), Path(source).resolve()
        if model == output or output in model.parents:
            raise TrainingSetupError(f"--model-name-or-path {source} lies in --output-dir {output_dir}: a new "
                                     "run there would replace the model it starts from; choose another --output-dir")


def _check_sizes(datasets: tuple[str, ...], size_weights: list, config: Any, splits: Any) -> None:
    """A multi-size dataset needs a model that runs on any size; size weights need a multi-size dataset."""
    if splits.board_sizes and getattr(config, "fixed_board_size", False):  # the baseline config has no such field
        raise TrainingSetupError(
            f"--dataset {' '.join(datasets)} holds several board sizes ({', '.join(splits.board_sizes)}) but the model "
            f"is fixed to {config.board_height}x{config.board_width} boards (fixed_board_size=True); "
            "use --config-set fixed_board_size=false")
    if size_weights and not splits.board_sizes:
        raise TrainingSetupError("--size-weights needs a dataset with several board sizes")
    if size_weights:
        size_weights_for(splits.train, size_weights)  # names a size the dataset lacks


def _names(dataset: Any) -> list[str]:
    return [dataset] if isinstance(dataset, str) else list(dataset)


def _smoke_test(kind: str, config: Any, base_model: str | None, train: Any) -> None:
    """One forward on two rows (of each size), so a config the model cannot run fails before training starts."""
    _, model_cls = model_classes(kind)
    model = build_model(kind, config, base_model)
    columns = forward_columns(model_cls, train)
    parts = list(train.by_size.values()) if isinstance(train, MultiSizeSplit) else [train]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for part in parts:
            batch = collate_rows([part[i] for i in range(min(2, len(part)))])
            try:
                model(**{name: batch[name] for name in columns})
            except (ValueError, KeyError, TypeError, RuntimeError, NotImplementedError) as error:
                raise TrainingSetupError(f"the model cannot train with these settings: {error}") from error


def train(setup: RunSetup) -> dict[str, Any]:
    """Train through the engine; return the summary written to OUTPUT_DIR/metrics.json."""
    return engine.train(world_model_task(setup), setup.engine)


def world_model_task(setup: RunSetup) -> engine.TrainTask:
    """The EqM world model's (or the baseline's) pieces for the engine."""
    _, model_cls = model_classes(setup.kind)
    columns = forward_columns(model_cls, setup.splits.train)

    def build_loaders() -> tuple[Any, Any]:
        splits, seed = setup.splits, setup.engine.seed
        workers = capped_workers(setup.num_workers, "data loader workers")
        if isinstance(splits.train, MultiSizeSplit):  # one board size per batch
            weights = size_weights_for(splits.train, list(setup.size_weights))
            train_loader, _ = make_multisize_train_loader(splits.train, columns, setup.batch_size, seed, workers,
                                                          weights)
            eval_loader = (make_multisize_eval_loader(splits.eval, setup.batch_size, workers)
                           if splits.eval is not None else None)
        else:
            train_loader, _ = make_train_loader(splits.train, columns, setup.batch_size, seed, workers)
            eval_loader = (make_eval_loader(splits.eval, setup.batch_size, workers)
                           if splits.eval is not None else None)
        return train_loader, eval_loader

    def loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(**{name: batch[name] for name in columns})
        return out.loss, loss_components(out)

    def run_validation(accelerator: Any, model: Any, eval_loader: Any) -> dict[str, float]:
        return validate(accelerator, model, eval_loader, setup.kind, columns, setup.engine.seed)

    def save_best(run: engine.TrainingRun, folder: Path) -> None:
        save_model_folder(run.unwrapped_model, folder, _summary(setup, run, "running"), _card_info(setup))

    def save_final(run: engine.TrainingRun, summary: dict[str, Any]) -> None:
        output_dir = setup.engine.output_dir
        save_final_model(run.unwrapped_model, output_dir, summary, _card_info(setup))  # metrics.json included
        _plot_curves(output_dir)

    return engine.TrainTask(
        kind=setup.kind,
        build_model=lambda: build_model(setup.kind, setup.config, setup.base_model),
        build_loaders=build_loaders,
        loss=loss,
        batch_rows=lambda batch: len(batch["state"]),
        validate=run_validation,
        save_best=save_best,
        summarize=lambda run, stopped_because: _summary(setup, run, stopped_because),
        save_final=save_final,
        checkpoint_info={"config": setup.config.to_dict()},
        nan_hint="lower --learning-rate or the loss weights / gradient_multiplier",
    )


def _summary(setup: RunSetup, run: engine.TrainingRun, stopped_because: str) -> dict[str, Any]:
    state, acc, settings = run.state, run.accelerator, setup.engine
    return {
        "model": setup.kind,
        "dataset": _dataset_names(setup),
        "board_sizes": _trained_sizes(setup),
        "base_model": setup.base_model,
        "global_step": state.global_step,
        "max_steps": run.total_steps,
        "epochs_completed": round(run.epochs_completed(), 4),
        "samples_seen": state.samples_seen,
        "train_seconds": round(state.train_seconds, 3),
        "wall_seconds_this_invocation": round(run.wall_seconds(), 3),
        "samples_per_second": round(state.samples_seen / max(state.train_seconds, 1e-9), 2),  # forward+backward+step
        # Everything included (data, validation, checkpoints), this invocation only.
        "samples_per_second_wall": round((state.samples_seen - run.start_samples) / max(run.wall_seconds(), 1e-9), 2),
        "num_processes": acc.num_processes,
        "mixed_precision": acc.mixed_precision,
        "num_parameters": sum(p.numel() for p in run.unwrapped_model.parameters()),
        "stopped_because": stopped_because,
        "best_metric": settings.best_metric,
        "best_value": state.best_value,
        "best_step": state.best_step,
        "validation": state.last_validation,
        "validation_step": state.last_validation_step,
        "validation_split": setup.splits.eval_split,
        "evals": run.log.entries("eval") if acc.is_main_process else [],
        "command": setup.command,
        "provenance": provenance(setup.command),
    }


def _trained_sizes(setup: RunSetup) -> list[str]:
    """The board sizes the model trained on ("HxW"), also for a one-size dataset."""
    config = setup.config
    return list(setup.splits.board_sizes or [f"{config.board_height}x{config.board_width}"])


def _dataset_names(setup: RunSetup) -> str | list[str]:
    """The --dataset value as given: one name, or the list of mixed datasets."""
    return setup.datasets[0] if len(setup.datasets) == 1 else list(setup.datasets)


def _card_info(setup: RunSetup) -> dict[str, Any]:
    return {"dataset": _dataset_names(setup), "board_size": ", ".join(_trained_sizes(setup)),
            "command": setup.command, "repo_id": setup.engine.output_dir.name, "base_model": setup.base_model}


def _plot_curves(output_dir: Path) -> None:
    """training_curves.png beside the model; a plotting failure must never lose a finished run."""
    try:
        plot_training_curves(output_dir / "train_log.jsonl", output_dir / "training_curves.png")
    except Exception as error:  # noqa: BLE001
        logger.warning("could not plot training curves: %s", error)


__all__ = ["RunSetup", "prepare_run", "train", "world_model_task"]
