"""The Accelerate training loop shared by the EqM world model and the behaviour-cloning baseline."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from snake_world_eqm.processes import capped_workers

from ..provenance import provenance
from . import checkpoints as ckpt
from .args import (
    NonFiniteLossError,
    TrainingSetupError,
    hparams_for_trackers,
    resolve_trackers,
    validate_args,
)
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
from .model_setup import build_config, build_model, model_classes, resolve_model_kind
from .outputs import (
    RUN_RESULTS,
    JsonlLog,
    clear_run_outputs,
    command_line,
    new_run_id,
    read_run_id,
    run_artifacts,
    save_final_model,
    save_model_folder,
    write_run_file,
)
from .selection import is_improvement
from .validation import BASELINE_METRICS, EQM_METRICS, _loss_components, validate

logger = logging.getLogger("snake_world_eqm.training")


@dataclass
class LoopState:
    """Everything besides model/optimizer/scheduler/RNG that a resume needs (training_state.json)."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    samples_seen: int = 0
    train_seconds: float = 0.0  # time in forward/backward/step, summed over resumed runs
    best_value: float | None = None
    best_step: int | None = None
    last_validation: dict[str, float] | None = None
    last_validation_step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSetup:
    """Inputs checked before any training (all failures are TrainingSetupError)."""

    args: argparse.Namespace
    trackers: list[str]
    resume_from: Path | None
    splits: Any
    config: Any


def prepare_run(args: argparse.Namespace) -> RunSetup:
    """All input checks, in the order that fails fastest; nothing is written yet."""
    saved_config = resolve_model_kind(args)
    validate_args(args)
    _check_best_metric(args)
    trackers = resolve_trackers(args.report_to, args.wandb)
    resume_from = _resolve_resume(args)
    _check_output_dir(args, resume_from)
    splits = load_splits(args.dataset, args.model, args.train_split, args.eval_split,
                         args.max_train_samples, args.max_eval_samples)
    fresh = getattr(args, "model_name_or_path", None) is None
    if fresh and splits.board_sizes and not any(key == "fixed_board_size" for key, _ in args.config_set):
        # Several sizes: a new model runs on any size unless the user insists (then _check_sizes refuses);
        # a fixed-size checkpoint must be told explicitly (--config-set fixed_board_size=false).
        args.config_set = [*args.config_set, ("fixed_board_size", False)]
    if saved_config is not None:  # before build_config, whose own size check would name one size only
        _check_sizes(args, saved_config.__class__.from_dict({**saved_config.to_dict(), **dict(
            (k, v) for k, v in args.config_set if k == "fixed_board_size")}), splits)
    config = build_config(args, splits.board_height, splits.board_width, saved_config)
    _check_sizes(args, config, splits)
    _smoke_test(args, config, splits.train)
    return RunSetup(args, trackers, resume_from, splits, config)


def _check_best_metric(args: argparse.Namespace) -> None:
    known = EQM_METRICS if args.model == "eqm" else BASELINE_METRICS
    name = args.best_metric
    if name is not None and name not in known and not (name == "loss" or name.startswith("loss_")):
        raise TrainingSetupError(f"--best-metric {name}: choose from {', '.join(known)}, loss or loss_<term>")


def _resolve_resume(args: argparse.Namespace) -> Path | None:
    """The checkpoint to resume, checked file by file; `latest` only looks at OUTPUT_DIR's own run."""
    if args.resume_from_checkpoint is None:
        return None
    try:
        if args.resume_from_checkpoint == "latest":
            run_id = None if getattr(args, "overwrite_output_dir", False) else read_run_id(args.output_dir)
            path = ckpt.latest_checkpoint(ckpt.checkpoints_dir(args.output_dir), run_id=run_id)
            if path is None:
                logger.warning("--resume-from-checkpoint latest: no complete checkpoint of this run in %s; "
                               "starting fresh", ckpt.checkpoints_dir(args.output_dir))
                return None
        else:
            path = Path(args.resume_from_checkpoint)
        saved = ckpt.read_state(path)
        ckpt.check_checkpoint_files(path)
    except ValueError as error:
        raise TrainingSetupError(str(error)) from None
    if saved.get("model_kind", args.model) != args.model:
        raise TrainingSetupError(f"checkpoint {path} is of --model {saved['model_kind']}, not {args.model}")
    args.run_id = saved.get("run_id") or new_run_id()  # a resumed run keeps its id
    return path


def _check_output_dir(args: argparse.Namespace, resume_from: Path | None) -> None:
    """A new run never mixes with another one's outputs: a folder holding a run is refused unless the run is
    resumed (same run id) or --overwrite-output-dir is given (the old outputs are removed when training starts)."""
    _check_writable(Path(args.output_dir))
    source = getattr(args, "model_name_or_path", None)
    if source is not None and Path(source).exists() and resume_from is None:
        output, model = Path(args.output_dir).resolve(), Path(source).resolve()
        if model == output or output in model.parents:
            raise TrainingSetupError(f"--model-name-or-path {source} lies in --output-dir {args.output_dir}: a new "
                                     "run there would replace the model it starts from; choose another --output-dir")
    if getattr(args, "overwrite_output_dir", False):
        args.run_id = getattr(args, "run_id", None) or new_run_id()
        return
    present = [name for name in run_artifacts(args.output_dir) if name in RUN_RESULTS or name.startswith("model-")]
    try:
        owner = read_run_id(args.output_dir)
    except ValueError as error:
        raise TrainingSetupError(str(error)) from None
    if resume_from is None and present:
        raise TrainingSetupError(
            f"--output-dir {args.output_dir} already holds a run ({', '.join(present[:4])}"
            f"{', ...' if len(present) > 4 else ''}); pass --resume-from-checkpoint latest to continue it or "
            "--overwrite-output-dir to replace it")
    if resume_from is not None and owner is not None and owner != args.run_id:
        raise TrainingSetupError(
            f"--output-dir {args.output_dir} holds run {owner}, but checkpoint {resume_from} is of run "
            f"{args.run_id}; resume into its own output dir or pass --overwrite-output-dir")
    args.run_id = getattr(args, "run_id", None) or new_run_id()


def _check_writable(output_dir: Path) -> None:
    """The run could save there: the nearest existing folder on the path is a writable folder (nothing created)."""
    existing = next((p for p in (output_dir, *output_dir.absolute().parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise TrainingSetupError(f"--output-dir {output_dir}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TrainingSetupError(f"--output-dir {output_dir}: {existing} is not writable")


def _check_sizes(args: argparse.Namespace, config: Any, splits: Any) -> None:
    """A multi-size dataset needs a model that runs on any size; size weights need a multi-size dataset."""
    weights = getattr(args, "size_weights", None) or []
    if splits.board_sizes and getattr(config, "fixed_board_size", False):
        raise TrainingSetupError(
            f"--dataset {' '.join(_names(args.dataset))} holds several board sizes ({', '.join(splits.board_sizes)}) but the model "
            f"is fixed to {config.board_height}x{config.board_width} boards (fixed_board_size=True); "
            "use --config-set fixed_board_size=false")
    if weights and not splits.board_sizes:
        raise TrainingSetupError("--size-weights needs a dataset with several board sizes")
    if weights:
        size_weights_for(splits.train, weights)  # names a size the dataset lacks


def _names(dataset: Any) -> list[str]:
    return [dataset] if isinstance(dataset, str) else list(dataset)


def _smoke_test(args: argparse.Namespace, config: Any, train: Any) -> None:
    """One forward on two rows (of each size), so a config the model cannot run fails before training starts."""
    _, model_cls = model_classes(args.model)
    model = build_model(args, config)
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
    """Run the loop; return the summary written to OUTPUT_DIR/metrics.json."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    args, splits = setup.args, setup.splits
    output_dir = Path(args.output_dir)
    logging_dir = Path(args.logging_dir) if args.logging_dir else output_dir / "logs"
    accelerator = Accelerator(
        cpu=_cpu_only_multi_process(),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=setup.trackers or None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(logging_dir)),
    )
    set_seed(args.seed, device_specific=True)
    model = build_model(args, setup.config)
    _, model_cls = model_classes(args.model)
    columns = forward_columns(model_cls, splits.train)
    num_workers = capped_workers(args.num_workers, "data loader workers")
    if isinstance(splits.train, MultiSizeSplit):  # one board size per batch
        weights = size_weights_for(splits.train, getattr(args, "size_weights", None) or [])
        train_loader, _ = make_multisize_train_loader(splits.train, columns, args.batch_size, args.seed,
                                                      num_workers, weights)
        eval_loader = (make_multisize_eval_loader(splits.eval, args.batch_size, num_workers)
                       if splits.eval is not None else None)
    else:
        train_loader, _ = make_train_loader(splits.train, columns, args.batch_size, args.seed, num_workers)
        eval_loader = make_eval_loader(splits.eval, args.batch_size, num_workers) if splits.eval is not None else None
    optimizer = torch.optim.AdamW(_param_groups(model, args.weight_decay), lr=args.learning_rate)

    # Prepare the loaders first: their per-process length sets the schedule.
    train_loader = accelerator.prepare(train_loader)
    eval_loader = accelerator.prepare(eval_loader) if eval_loader is not None else None
    steps_per_epoch = max(1, math.ceil(len(train_loader) / args.gradient_accumulation_steps))
    total_steps = args.max_steps or args.epochs * steps_per_epoch
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    # AcceleratedScheduler steps num_processes times per optimizer step, hence the factor.
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, args.warmup_steps * accelerator.num_processes, total_steps * accelerator.num_processes
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    root = ckpt.checkpoints_dir(output_dir)
    log = JsonlLog(output_dir / "train_log.jsonl", accelerator.is_main_process)
    state = LoopState()
    if accelerator.is_main_process:
        if setup.resume_from is None:  # a new run: the folder holds no results (checked), or --overwrite-output-dir
            clear_run_outputs(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_partial(root)
        write_run_file(output_dir, args.run_id, getattr(args, "command", None) or command_line())
    if setup.resume_from is not None:
        try:
            accelerator.load_state(str(setup.resume_from))
            state = LoopState(**ckpt.read_state(setup.resume_from)["loop"])
        except (ValueError, TypeError, KeyError, RuntimeError, OSError) as error:
            raise TrainingSetupError(f"checkpoint {setup.resume_from} cannot be loaded: "
                                     f"{type(error).__name__}: {str(error).splitlines()[0]}") from None
        log.truncate_after(state.global_step)
        if state.batch_in_epoch >= len(train_loader):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
        accelerator.print(f"resumed from {setup.resume_from} at step {state.global_step}")
    else:
        log.clear()
    accelerator.wait_for_everyone()
    accelerator.init_trackers(args.project_name, config=hparams_for_trackers(args))

    context = _Context(accelerator, model, optimizer, scheduler, eval_loader, columns, args, setup, state, log,
                       total_steps, num_epochs, root)
    context.batches_per_epoch = len(train_loader)
    context.start_samples = state.samples_seen
    progress = tqdm(total=total_steps, initial=state.global_step, desc=f"train {args.model}",
                    disable=args.disable_progress_bar or not accelerator.is_local_main_process, dynamic_ncols=True)
    with _StopOnSignal() as stop:
        context.stop_signal = stop
        try:
            stopped_because = _loop(context, train_loader, progress)
        finally:
            progress.close()
    summary = _finish(context, stopped_because)
    if stopped_because == "interrupted":
        summary["stop_signal"] = signal.Signals(stop.received).name
        accelerator.print(f"stopped by {summary['stop_signal']} at step {context.state.global_step}: checkpoint and "
                          f"model saved; continue with --resume-from-checkpoint latest")
    accelerator.end_training()
    if accelerator.num_processes == 1:
        _reset_accelerate_state()
    return summary


class _StopOnSignal:
    """SIGINT/SIGTERM ask the loop to stop after the current step (checkpoint, final model, clean exit);
    a second signal acts as usual. Only the main thread can install handlers; elsewhere this is a no-op."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.received = signum
        for sig, handler in self._previous.items():  # a second Ctrl-C interrupts at once
            signal.signal(sig, handler)

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _reset_accelerate_state() -> None:
    """Accelerate keeps process-wide singletons; reset them so a library caller (the demo, tests) can
    train again in the same process with other settings (e.g. another mixed precision)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _cpu_only_multi_process() -> bool:
    """Several launched processes but no GPU: Accelerate only sets up gloo DDP when told `cpu=True`;
    otherwise each process would train alone, all writing to the same OUTPUT_DIR."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


class _Context:
    """The pieces the loop, validation and saving share (kept in one object to keep signatures short)."""

    def __init__(self, accelerator, model, optimizer, scheduler, eval_loader, columns, args, setup, state, log,
                 total_steps, num_epochs, root) -> None:
        self.accelerator, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.eval_loader, self.columns, self.args, self.setup = eval_loader, columns, args, setup
        self.state, self.log, self.total_steps, self.num_epochs, self.root = state, log, total_steps, num_epochs, root
        self.invocation_start = time.monotonic()
        self.window = _Window()
        self.batches_per_epoch = 1
        self.start_samples = 0  # samples_seen when this invocation started (a resume starts above 0)
        self.stop_signal: _StopOnSignal | None = None


class _Window:
    """Running sums between two training logs."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.batches = 0
        self.samples = 0
        self.seconds = 0.0

    def add(self, parts: dict[str, float], samples: int, seconds: float) -> None:
        for name, value in parts.items():
            self.sums[name] += value
        self.batches += 1
        self.samples += samples
        self.seconds += seconds


def _loop(ctx: _Context, train_loader: Any, progress: Any) -> str:
    state, acc = ctx.state, ctx.accelerator
    ctx.model.train()
    if state.global_step >= ctx.total_steps:
        return "max_steps" if ctx.args.max_steps else "epochs"
    while state.epoch < ctx.num_epochs:
        loader = acc.skip_first_batches(train_loader, state.batch_in_epoch) if state.batch_in_epoch else train_loader
        loader.set_epoch(state.epoch)  # the shuffle order is a function of (seed, epoch) only
        for batch in loader:
            if not _train_batch(ctx, batch):
                continue
            progress.update(1)
            progress.set_postfix(loss=f"{ctx.window.sums['loss'] / max(ctx.window.batches, 1):.4f}", refresh=False)
            reason = _after_step(ctx)
            if reason:
                return reason
        state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    return "epochs"


def _train_batch(ctx: _Context, batch: dict[str, torch.Tensor]) -> bool:
    """Forward/backward one batch; True when it completed an optimizer step."""
    acc, args, state = ctx.accelerator, ctx.args, ctx.state
    start = time.perf_counter()
    with acc.accumulate(ctx.model):
        with acc.autocast():
            out = ctx.model(**{name: batch[name] for name in ctx.columns})
        _stop_if_not_finite(ctx, out.loss, "loss")
        acc.backward(out.loss)
        if acc.sync_gradients:
            # max_norm=inf measures without clipping; fp16's loss scaler makes (and skips) inf steps by design.
            norm = acc.clip_grad_norm_(ctx.model.parameters(), args.gradient_clip or float("inf"))
            if acc.mixed_precision != "fp16" and norm is not None:
                _stop_if_not_finite(ctx, torch.as_tensor(norm), "gradient norm")
        ctx.optimizer.step()
        ctx.scheduler.step()
        ctx.optimizer.zero_grad(set_to_none=True)
    samples = len(batch["state"]) * acc.num_processes
    parts = {"loss": float(out.loss.detach())} | {f"loss_{k}": float(v) for k, v in _loss_components(out).items()}
    seconds = time.perf_counter() - start
    ctx.window.add(parts, samples, seconds)
    state.batch_in_epoch += 1
    state.samples_seen += samples
    state.train_seconds += seconds
    if acc.sync_gradients:
        state.global_step += 1
        return True
    return False


def _stop_if_not_finite(ctx: _Context, value: torch.Tensor, what: str) -> None:
    """Raise NonFiniteLossError before a NaN/inf reaches the weights (every process agrees, so none hangs)."""
    bad = torch.tensor([0.0 if bool(torch.isfinite(value.detach()).all()) else 1.0], device=ctx.accelerator.device)
    if ctx.accelerator.num_processes > 1:
        bad = ctx.accelerator.reduce(bad, reduction="sum")
    if float(bad.sum()) == 0:
        return
    ctx.optimizer.zero_grad(set_to_none=True)
    last = ckpt.latest_checkpoint(ctx.root, run_id=getattr(ctx.args, "run_id", None))
    kept = f"the last good checkpoint is {last}" if last is not None else "no checkpoint was written yet"
    raise NonFiniteLossError(
        f"the {what} became {float(value.detach().float().reshape(-1)[0])} at step {ctx.state.global_step + 1}; "
        f"training stopped and {kept} (lower --learning-rate or the loss weights / gradient_multiplier)")


def _after_step(ctx: _Context) -> str | None:
    """Log, validate, checkpoint; return why to stop, if so."""
    state, args = ctx.state, ctx.args
    step = state.global_step
    if step % args.log_every == 0:
        _log_training(ctx)
    if ctx.eval_loader is not None and step % args.eval_every == 0:
        _run_validation(ctx)
    reason = _stop_reason(ctx)
    if step % args.save_every == 0 or reason:
        _save_checkpoint(ctx)
    return reason


def _stop_reason(ctx: _Context) -> str | None:
    if ctx.state.global_step >= ctx.total_steps:
        return "max_steps" if ctx.args.max_steps else "epochs"
    signalled = ctx.stop_signal is not None and ctx.stop_signal.received is not None
    over = ctx.args.max_train_minutes is not None and \
        (time.monotonic() - ctx.invocation_start) / 60.0 >= ctx.args.max_train_minutes
    flags = torch.tensor([float(signalled), float(over)], device=ctx.accelerator.device)
    if ctx.accelerator.num_processes > 1:  # processes must agree, or one would wait forever in the next collective
        flags = ctx.accelerator.reduce(flags, reduction="sum")
    if float(flags[0]) > 0:
        return "interrupted"
    return "time_budget" if float(flags[1]) > 0 else None


def _log_training(ctx: _Context) -> None:
    window, acc = ctx.window, ctx.accelerator
    if window.batches == 0:
        return
    names = sorted(window.sums)
    local = torch.tensor([window.sums[n] / window.batches for n in names], device=acc.device)
    means = acc.reduce(local, reduction="mean") if acc.num_processes > 1 else local
    entry = {f"train/{n}": float(v) for n, v in zip(names, means.tolist())}
    entry["train/learning_rate"] = float(ctx.scheduler.get_last_lr()[0])
    entry["train/samples_per_second"] = window.samples / max(window.seconds, 1e-9)
    entry["train/epoch"] = ctx.state.epoch + ctx.state.batch_in_epoch / max(1, _batches_per_epoch(ctx))
    acc.log(entry, step=ctx.state.global_step)
    ctx.log.write({"kind": "train", "step": ctx.state.global_step, "wall_seconds": _wall(ctx), **entry})
    ctx.window = _Window()


def _batches_per_epoch(ctx: _Context) -> int:
    return max(1, ctx.batches_per_epoch)


def _wall(ctx: _Context) -> float:
    return time.monotonic() - ctx.invocation_start


def _run_validation(ctx: _Context) -> dict[str, float]:
    state, args, acc = ctx.state, ctx.args, ctx.accelerator
    metrics = validate(acc, ctx.model, ctx.eval_loader, args.model, ctx.columns, args.seed)
    state.last_validation, state.last_validation_step = metrics, state.global_step
    acc.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.global_step)
    ctx.log.write({"kind": "eval", "step": state.global_step, "wall_seconds": _wall(ctx),
                   "samples_seen": state.samples_seen,
                   "samples_per_second": state.samples_seen / max(state.train_seconds, 1e-9), **metrics})
    name = args.best_metric or "action_accuracy"
    value = metrics.get(name)
    if value is None:  # e.g. loss_whatif without per-action columns
        logger.warning("--best-metric %s is not among the validation metrics %s", name, sorted(metrics))
        return metrics
    if is_improvement(name, value, state.best_value):
        state.best_value, state.best_step = value, state.global_step
        if acc.is_main_process:
            save_model_folder(acc.unwrap_model(ctx.model), Path(args.output_dir) / "best", _summary(ctx, "running"),
                              _card_info(ctx))
        acc.wait_for_everyone()
    acc.print(f"step {state.global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return metrics


def _save_checkpoint(ctx: _Context) -> None:
    payload = {
        "model_kind": ctx.args.model,
        "run_id": getattr(ctx.args, "run_id", None),
        "loop": asdict(ctx.state),
        "args": vars(ctx.args),
        "config": ctx.setup.config.to_dict(),
    }
    ckpt.save_checkpoint(ctx.accelerator, ctx.root, ctx.state.global_step, payload, ctx.args.checkpoints_total_limit)


def _summary(ctx: _Context, stopped_because: str) -> dict[str, Any]:
    state, acc = ctx.state, ctx.accelerator
    unwrapped = acc.unwrap_model(ctx.model)
    return {
        "model": ctx.args.model,
        "dataset": _dataset_names(ctx.args),
        "board_sizes": _trained_sizes(ctx),
        "base_model": getattr(ctx.args, "model_name_or_path", None),
        "global_step": state.global_step,
        "max_steps": ctx.total_steps,
        "epochs_completed": round(state.epoch + state.batch_in_epoch / max(1, _batches_per_epoch(ctx)), 4),
        "samples_seen": state.samples_seen,
        "train_seconds": round(state.train_seconds, 3),
        "wall_seconds_this_invocation": round(_wall(ctx), 3),
        "samples_per_second": round(state.samples_seen / max(state.train_seconds, 1e-9), 2),  # forward+backward+step
        # Everything included (data, validation, checkpoints), this invocation only.
        "samples_per_second_wall": round((state.samples_seen - ctx.start_samples) / max(_wall(ctx), 1e-9), 2),
        "num_processes": acc.num_processes,
        "mixed_precision": acc.mixed_precision,
        "num_parameters": sum(p.numel() for p in unwrapped.parameters()),
        "stopped_because": stopped_because,
        "best_metric": ctx.args.best_metric or "action_accuracy",
        "best_value": state.best_value,
        "best_step": state.best_step,
        "validation": state.last_validation,
        "validation_step": state.last_validation_step,
        "validation_split": ctx.setup.splits.eval_split,
        "evals": ctx.log.entries("eval") if acc.is_main_process else [],
        "command": getattr(ctx.args, "command", None) or command_line(),
        "provenance": provenance(getattr(ctx.args, "command", None) or command_line()),
    }


def _trained_sizes(ctx: _Context) -> list[str]:
    """The board sizes the model trained on ("HxW"), also for a one-size dataset."""
    splits, config = ctx.setup.splits, ctx.setup.config
    return list(getattr(splits, "board_sizes", ()) or [f"{config.board_height}x{config.board_width}"])


def _dataset_names(args: argparse.Namespace) -> str | list[str]:
    """The --dataset value as given: one name, or the list of mixed datasets."""
    names = [args.dataset] if isinstance(args.dataset, str) else list(args.dataset)
    return names[0] if len(names) == 1 else names


def _card_info(ctx: _Context) -> dict[str, Any]:
    return {"dataset": _dataset_names(ctx.args), "board_size": ", ".join(_trained_sizes(ctx)),
            "command": getattr(ctx.args, "command", None) or command_line(), "repo_id": Path(ctx.args.output_dir).name,
            "base_model": getattr(ctx.args, "model_name_or_path", None)}


def _finish(ctx: _Context, stopped_because: str) -> dict[str, Any]:
    """Final validation (unless this step was just validated), final model, metrics.json."""
    state, acc = ctx.state, ctx.accelerator
    if ctx.state.global_step % ctx.args.log_every:
        _log_training(ctx)
    if ctx.eval_loader is not None and state.last_validation_step != state.global_step:
        _run_validation(ctx)
    if not (ckpt.checkpoints_dir(ctx.args.output_dir) / f"checkpoint-{state.global_step}").is_dir():
        _save_checkpoint(ctx)
    summary = _summary(ctx, stopped_because)
    if acc.is_main_process:
        save_final_model(acc.unwrap_model(ctx.model), ctx.args.output_dir, summary, _card_info(ctx))
        Path(ctx.args.output_dir, "metrics.json").write_text(json.dumps(summary, indent=2, default=float))
        _plot_curves(Path(ctx.args.output_dir))
    acc.wait_for_everyone()
    acc.print(f"done ({stopped_because}) at step {state.global_step}: {summary['samples_per_second']} samples/s; "
              f"model saved to {ctx.args.output_dir}")
    return summary


def _plot_curves(output_dir: Path) -> None:
    """training_curves.png beside the model; a plotting failure must never lose a finished run."""
    from snake_world_eqm.evaluation.plots import plot_training_curves

    try:
        plot_training_curves(output_dir / "train_log.jsonl", output_dir / "training_curves.png")
    except Exception as error:  # noqa: BLE001
        logger.warning("could not plot training curves: %s", error)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norms and embeddings (1-D tensors): decaying them only hurts."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
