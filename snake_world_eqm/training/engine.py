"""The one Accelerate training loop of the package: every trainable model trains through `train(task, settings)`.

The engine owns what any run needs and nothing about a particular model:

- gradient accumulation (`accelerator.accumulate`), gradient clipping, AdamW with a warm-up + cosine schedule;
- a guard that stops the run before a NaN/inf loss or gradient reaches the weights (`NonFiniteLossError`);
- a clean stop on SIGINT/SIGTERM, on a time budget, at `max_steps` or after `epochs`: checkpoint, final save;
- periodic validation through the task's callback, and OUTPUT_DIR/best when a `best_metric` is named;
- crash-safe checkpoints (`checkpoints.py`) and exact resume: weights, optimizer, scheduler, RNG and the
  loop's own position (`LoopState`, in training_state.json);
- trackers (`Accelerator(log_with=...)`, tensorboard offline by default) and OUTPUT_DIR/train_log.jsonl.

What is particular to a model comes in a `TrainTask` (how to build it and its batches, the loss of one batch,
its validation metrics, what to save at the end); what the flags asked for comes in `EngineSettings`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from snake_world_eqm.output_guard import OutputFolderError, OutputLock

from . import checkpoints as ckpt
from .errors import NonFiniteLossError, TrainingSetupError
from .outputs import JsonlLog, clear_run_outputs, write_run_file
from .selection import is_improvement

logger = logging.getLogger("snake_world_eqm.training")


@dataclass(frozen=True)
class EngineSettings:
    """What a run was asked to do, built once from the parsed flags (the engine never reads `argparse`)."""

    output_dir: Path
    run_id: str
    command: str  # recorded in run.json, metrics and cards
    seed: int = 42
    epochs: int = 1
    max_steps: int | None = None  # optimizer steps; overrides epochs
    max_train_minutes: float | None = None  # time budget of this invocation
    gradient_accumulation_steps: int = 1
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int | None = 0  # None: a tenth of the run, at most 100
    gradient_clip: float = 1.0  # max grad norm; 0 measures without clipping
    mixed_precision: str | None = None
    log_every: int = 10
    eval_every: int | None = None  # None: validate only at the end
    save_every: int | None = None  # None: checkpoint only at the end
    checkpoints_total_limit: int | None = 3
    resume_from: Path | None = None  # a complete checkpoint of this run (checked by outputs.resolve_run)
    best_metric: str | None = None  # validation metric that selects OUTPUT_DIR/best; None: no best/
    trackers: tuple[str, ...] = ()
    logging_dir: Path | None = None  # default OUTPUT_DIR/logs
    project_name: str = "snake-world-eqm"
    progress_bar: bool = True
    flags: Mapping[str, Any] = field(default_factory=dict)  # the run's flags, for trackers and checkpoints

    @classmethod
    def from_flags(cls, args: Any, *, run_id: str, command: str, resume_from: Path | None,
                   trackers: Sequence[str], flags: Mapping[str, Any], **task_specific: Any) -> EngineSettings:
        """The settings of the shared flags (`training.flags`), read once; `task_specific` adds the rest."""
        return cls(
            output_dir=Path(args.output_dir), run_id=run_id, command=command, seed=args.seed, epochs=args.epochs,
            max_steps=args.max_steps, max_train_minutes=args.max_train_minutes,
            gradient_accumulation_steps=args.gradient_accumulation_steps, learning_rate=args.learning_rate,
            weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, gradient_clip=args.gradient_clip,
            mixed_precision=args.mixed_precision, log_every=args.log_every, eval_every=args.eval_every,
            save_every=args.save_every, checkpoints_total_limit=args.checkpoints_total_limit,
            resume_from=resume_from, trackers=tuple(trackers),
            logging_dir=Path(args.logging_dir) if args.logging_dir else None, project_name=args.project_name,
            progress_bar=not args.disable_progress_bar, flags=flags, **task_specific)


@dataclass
class TrainTask:
    """What the engine needs to know about one model. Every callable runs on every process.

    build_model():                 the model to train (called after the seed is set)
    build_loaders():               (training DataLoader, what `validate` reads or None); DataLoaders are prepared
    loss(model, batch):            (the loss to minimise, {name: scalar} logged as train/loss_<name>)
    batch_rows(batch):             rows in the batch on this process
    validate(acc, model, data):    {metric: value}, the same on every process
    save_best(run, folder):        write the best model so far (main process only)
    summarize(run, stopped):       the run's summary (every process)
    save_final(run, summary):      write the final model and results (main process only)
    """

    kind: str  # recorded in checkpoints: a checkpoint of another kind is refused on resume
    build_model: Callable[[], torch.nn.Module]
    build_loaders: Callable[[], tuple[Any, Any]]
    loss: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, dict[str, torch.Tensor]]]
    batch_rows: Callable[[Any], int]
    validate: Callable[[Any, torch.nn.Module, Any], dict[str, float]] | None = None
    save_best: Callable[[TrainingRun, Path], None] | None = None
    summarize: Callable[[TrainingRun, str], dict[str, Any]] | None = None
    save_final: Callable[[TrainingRun, dict[str, Any]], None] | None = None
    checkpoint_info: dict[str, Any] = field(default_factory=dict)  # extra keys of training_state.json
    label: str | None = None  # progress bar; default kind
    nan_hint: str = "lower --learning-rate"  # what to try when the loss becomes NaN/inf


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


class TrainingRun:
    """A run in progress: what the task's callbacks may read (accelerator, model, state, timing, log)."""

    def __init__(self, task: TrainTask, settings: EngineSettings, accelerator: Any, model: Any, optimizer: Any,
                 scheduler: Any, eval_data: Any, total_steps: int, batches_per_epoch: int) -> None:
        self.task, self.settings, self.accelerator = task, settings, accelerator
        self.model, self.optimizer, self.scheduler, self.eval_data = model, optimizer, scheduler, eval_data
        self.total_steps, self.batches_per_epoch = total_steps, max(1, batches_per_epoch)
        self.num_epochs = math.ceil(total_steps / max(1, math.ceil(batches_per_epoch /
                                                                  settings.gradient_accumulation_steps)))
        self.state = LoopState()
        self.log = JsonlLog(settings.output_dir / "train_log.jsonl", accelerator.is_main_process)
        self.checkpoints = ckpt.checkpoints_dir(settings.output_dir)
        self.started = time.monotonic()
        self.start_samples = 0  # samples_seen when this invocation started (a resume starts above 0)
        self.window = _Window()
        self.stop: _StopOnSignal | None = None

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def wall_seconds(self) -> float:
        """Seconds since this invocation started (a resumed run counts from its resume)."""
        return time.monotonic() - self.started

    def epochs_completed(self) -> float:
        return self.state.epoch + self.state.batch_in_epoch / self.batches_per_epoch


def train(task: TrainTask, settings: EngineSettings) -> dict[str, Any]:
    """Train `task` as `settings` say; return the task's summary (plus `stop_signal` when a signal stopped it).

    OUTPUT_DIR is locked (output_guard.OutputLock) from before anything is written to the end: a second
    training into the same folder fails at once instead of replacing this run's files."""
    if int(os.environ.get("RANK", "0")) != 0:  # Accelerate's other processes: the main one holds the lock
        return _train(task, settings)
    try:
        lock = OutputLock(settings.output_dir, "--output-dir").acquire()
    except OutputFolderError as error:
        raise TrainingSetupError(str(error)) from None
    try:
        return _train(task, settings)
    finally:
        lock.release()


def _train(task: TrainTask, settings: EngineSettings) -> dict[str, Any]:
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    output_dir = settings.output_dir
    accelerator = Accelerator(
        cpu=_cpu_only_multi_process(),
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        mixed_precision=settings.mixed_precision,
        log_with=list(settings.trackers) or None,
        project_config=ProjectConfiguration(project_dir=str(output_dir),
                                            logging_dir=str(settings.logging_dir or output_dir / "logs")),
    )
    set_seed(settings.seed, device_specific=True)
    model = task.build_model()
    train_loader, eval_data = task.build_loaders()
    groups = param_groups(model, settings.weight_decay)
    if not any(group["params"] for group in groups):
        raise TrainingSetupError("nothing to train: the model has no trainable parameters")
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate)

    # Prepare the loaders first: their per-process length sets the schedule.
    train_loader = accelerator.prepare(train_loader)
    if isinstance(eval_data, torch.utils.data.DataLoader):
        eval_data = accelerator.prepare(eval_data)
    steps_per_epoch = max(1, math.ceil(len(train_loader) / settings.gradient_accumulation_steps))
    total_steps = settings.max_steps or settings.epochs * steps_per_epoch
    warmup = settings.warmup_steps if settings.warmup_steps is not None else min(100, total_steps // 10)
    # AcceleratedScheduler steps num_processes times per optimizer step, hence the factor.
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, warmup * accelerator.num_processes, total_steps * accelerator.num_processes
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    run = TrainingRun(task, settings, accelerator, model, optimizer, scheduler, eval_data, total_steps,
                      len(train_loader))
    _start_or_resume(run)
    accelerator.init_trackers(settings.project_name, config=hparams_for_trackers(settings.flags))
    progress = tqdm(total=total_steps, initial=run.state.global_step, desc=f"train {task.label or task.kind}",
                    disable=not settings.progress_bar or not accelerator.is_local_main_process, dynamic_ncols=True)
    with _StopOnSignal() as stop:
        run.stop = stop
        try:
            stopped_because = _loop(run, train_loader, progress)
        finally:
            progress.close()
    summary = _finish(run, stopped_because)
    if stopped_because == "interrupted":
        summary["stop_signal"] = signal.Signals(stop.received).name
        accelerator.print(f"stopped by {summary['stop_signal']} at step {run.state.global_step}: checkpoint and "
                          f"model saved; continue with --resume-from-checkpoint latest")
    accelerator.end_training()
    if accelerator.num_processes == 1:
        _reset_accelerate_state()
    return summary


def _start_or_resume(run: TrainingRun) -> None:
    """A new run clears OUTPUT_DIR's old results (checked before: only with --overwrite-output-dir); a resume
    loads the checkpoint and drops log lines written after it."""
    acc, settings = run.accelerator, run.settings
    if acc.is_main_process:
        if settings.resume_from is None:
            clear_run_outputs(settings.output_dir)
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_partial(run.checkpoints)
        write_run_file(settings.output_dir, settings.run_id, settings.command)
    if settings.resume_from is not None:
        try:
            acc.load_state(str(settings.resume_from))
            run.state = LoopState(**ckpt.read_state(settings.resume_from)["loop"])
        except (ValueError, TypeError, KeyError, RuntimeError, OSError, pickle.UnpicklingError, EOFError) as error:
            raise TrainingSetupError(f"checkpoint {settings.resume_from} cannot be loaded: "
                                     f"{ckpt.safe_reason(error)}") from None
        run.log.truncate_after(run.state.global_step)
        if run.state.batch_in_epoch >= run.batches_per_epoch:
            run.state.epoch, run.state.batch_in_epoch = run.state.epoch + 1, 0
        acc.print(f"resumed from {settings.resume_from} at step {run.state.global_step}")
    else:
        run.log.clear()
    run.start_samples = run.state.samples_seen
    acc.wait_for_everyone()


def _loop(run: TrainingRun, train_loader: Any, progress: Any) -> str:
    state = run.state
    run.model.train()
    if state.global_step >= run.total_steps:
        return _end_reason(run)
    while state.epoch < run.num_epochs:
        loader = (run.accelerator.skip_first_batches(train_loader, state.batch_in_epoch)
                  if state.batch_in_epoch else train_loader)
        loader.set_epoch(state.epoch)  # a shuffle that is a function of (seed, epoch) resumes exactly
        for batch in loader:
            if not _train_batch(run, batch):
                continue
            progress.update(1)
            progress.set_postfix(loss=f"{run.window.sums['loss'] / max(run.window.batches, 1):.4f}", refresh=False)
            reason = _after_step(run)
            if reason:
                return reason
        state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    return _end_reason(run)


def _end_reason(run: TrainingRun) -> str:
    return "max_steps" if run.settings.max_steps else "epochs"


def _train_batch(run: TrainingRun, batch: Any) -> bool:
    """Forward/backward one batch; True when it completed an optimizer step."""
    acc, state = run.accelerator, run.state
    start = time.perf_counter()
    with acc.accumulate(run.model):
        with acc.autocast():
            loss, parts = run.task.loss(run.model, batch)
        _stop_if_not_finite(run, loss, "loss")
        acc.backward(loss)
        if acc.sync_gradients:
            # max_norm=inf measures without clipping; fp16's loss scaler makes (and skips) inf steps by design.
            norm = acc.clip_grad_norm_(run.model.parameters(), run.settings.gradient_clip or float("inf"))
            if acc.mixed_precision != "fp16" and norm is not None:
                _stop_if_not_finite(run, torch.as_tensor(norm), "gradient norm")
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    samples = run.task.batch_rows(batch) * acc.num_processes
    logged = {"loss": float(loss.detach())} | {f"loss_{k}": float(v) for k, v in parts.items()}
    seconds = time.perf_counter() - start
    run.window.add(logged, samples, seconds)
    state.batch_in_epoch += 1
    state.samples_seen += samples
    state.train_seconds += seconds
    if acc.sync_gradients:
        state.global_step += 1
        return True
    return False


def _stop_if_not_finite(run: TrainingRun, value: torch.Tensor, what: str) -> None:
    """Raise NonFiniteLossError before a NaN/inf reaches the weights (every process agrees, so none hangs)."""
    acc = run.accelerator
    bad = torch.tensor([0.0 if bool(torch.isfinite(value.detach()).all()) else 1.0], device=acc.device)
    if acc.num_processes > 1:
        bad = acc.reduce(bad, reduction="sum")
    if float(bad.sum()) == 0:
        return
    run.optimizer.zero_grad(set_to_none=True)
    last = ckpt.latest_checkpoint(run.checkpoints, run_id=run.settings.run_id)
    kept = f"the last good checkpoint is {last}" if last is not None else "no checkpoint was written yet"
    raise NonFiniteLossError(
        f"the {what} became {float(value.detach().float().reshape(-1)[0])} at step {run.state.global_step + 1}; "
        f"training stopped and {kept} ({run.task.nan_hint})")


def _after_step(run: TrainingRun) -> str | None:
    """Log, validate, checkpoint; return why to stop, if so."""
    step, settings = run.state.global_step, run.settings
    if step % settings.log_every == 0:
        _log_training(run)
    if settings.eval_every and step % settings.eval_every == 0:
        run_validation(run)
    reason = _stop_reason(run)
    if (settings.save_every and step % settings.save_every == 0) or reason:
        save_checkpoint(run)
    return reason


def _stop_reason(run: TrainingRun) -> str | None:
    if run.state.global_step >= run.total_steps:
        return _end_reason(run)
    signalled = run.stop is not None and run.stop.received is not None
    budget = run.settings.max_train_minutes
    over = budget is not None and run.wall_seconds() / 60.0 >= budget
    flags = torch.tensor([float(signalled), float(over)], device=run.accelerator.device)
    if run.accelerator.num_processes > 1:  # processes must agree, or one would wait forever in the next collective
        flags = run.accelerator.reduce(flags, reduction="sum")
    if float(flags[0]) > 0:
        return "interrupted"
    return "time_budget" if float(flags[1]) > 0 else None


def _log_training(run: TrainingRun) -> None:
    window, acc = run.window, run.accelerator
    if window.batches == 0:
        return
    names = sorted(window.sums)
    local = torch.tensor([window.sums[n] / window.batches for n in names], device=acc.device)
    means = acc.reduce(local, reduction="mean") if acc.num_processes > 1 else local
    entry = {f"train/{n}": float(v) for n, v in zip(names, means.tolist())}
    entry["train/learning_rate"] = float(run.scheduler.get_last_lr()[0])
    entry["train/samples_per_second"] = window.samples / max(window.seconds, 1e-9)
    entry["train/epoch"] = run.epochs_completed()
    acc.log(entry, step=run.state.global_step)
    run.log.write({"kind": "train", "step": run.state.global_step, "wall_seconds": run.wall_seconds(), **entry})
    run.window = _Window()


def run_validation(run: TrainingRun) -> dict[str, float] | None:
    """Validate through the task (RNG forked: validating never changes the training stream), log, update best/."""
    task, state, acc = run.task, run.state, run.accelerator
    if task.validate is None or run.eval_data is None:
        return None
    devices = [acc.device] if acc.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        metrics = task.validate(acc, run.model, run.eval_data)
    run.model.train()
    state.last_validation, state.last_validation_step = metrics, state.global_step
    acc.log({f"eval/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}, step=state.global_step)
    run.log.write({"kind": "eval", "step": state.global_step, "wall_seconds": run.wall_seconds(),
                   "samples_seen": state.samples_seen,
                   "samples_per_second": state.samples_seen / max(state.train_seconds, 1e-9), **metrics})
    _update_best(run, metrics)
    acc.print(f"step {state.global_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                                        if isinstance(v, (int, float))))
    return metrics


def _update_best(run: TrainingRun, metrics: dict[str, float]) -> None:
    name, state = run.settings.best_metric, run.state
    if name is None:
        return
    value = metrics.get(name)
    if value is None:  # e.g. loss_whatif without per-action columns
        logger.warning("best metric %s is not among the validation metrics %s", name, sorted(metrics))
        return
    if is_improvement(name, value, state.best_value):
        state.best_value, state.best_step = value, state.global_step
        if run.task.save_best is not None and run.accelerator.is_main_process:
            run.task.save_best(run, run.settings.output_dir / "best")
        run.accelerator.wait_for_everyone()


def _check_weights_finite(run: TrainingRun) -> None:
    """A finite loss can still leave NaN/inf weights (a huge learning rate overflows the update): never save
    those as a checkpoint or a model (the last good checkpoint is kept)."""
    bad = sum(not bool(torch.isfinite(param.detach()).all()) for param in run.model.parameters())
    _stop_if_not_finite(run, torch.tensor(float("nan") if bad else 0.0), f"model's weights ({bad} tensors)")


def save_checkpoint(run: TrainingRun) -> None:
    """checkpoints/checkpoint-STEP (every process must call this)."""
    _check_weights_finite(run)
    payload = {
        "model_kind": run.task.kind,
        "run_id": run.settings.run_id,
        "loop": asdict(run.state),
        "args": dict(run.settings.flags),
        **run.task.checkpoint_info,
    }
    ckpt.save_checkpoint(run.accelerator, run.checkpoints, run.state.global_step, payload,
                         run.settings.checkpoints_total_limit)


def _finish(run: TrainingRun, stopped_because: str) -> dict[str, Any]:
    """Last log and validation (unless this step was just validated), last checkpoint, the task's final save."""
    state, acc = run.state, run.accelerator
    if state.global_step % run.settings.log_every:
        _log_training(run)
    if state.last_validation_step != state.global_step:
        run_validation(run)
    if not (run.checkpoints / f"checkpoint-{state.global_step}").is_dir():
        save_checkpoint(run)
    _check_weights_finite(run)
    summary = run.task.summarize(run, stopped_because) if run.task.summarize else {"stopped_because": stopped_because}
    if acc.is_main_process and run.task.save_final is not None:
        run.task.save_final(run, summary)
    acc.wait_for_everyone()
    acc.print(f"done ({stopped_because}) at step {state.global_step}: "
              f"{round(state.samples_seen / max(state.train_seconds, 1e-9), 2)} samples/s; "
              f"model saved to {run.settings.output_dir}")
    return summary


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


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters; no weight decay on biases, norms and embeddings (1-D tensors): decaying them only hurts."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def hparams_for_trackers(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Flat scalar dict: tensorboard's hparams plugin rejects None, lists and tuples."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif value is None:
            out[key] = "none"
        else:
            out[key] = json.dumps(value, default=str)
    return out
