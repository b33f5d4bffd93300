"""What a run leaves in OUTPUT_DIR besides checkpoints (models, card, metrics, the JSONL log), and which run
owns the folder: a new run never mixes with another one's outputs.

OUTPUT_DIR/                 final model (save_pretrained: config.json, model.safetensors, README.md)
OUTPUT_DIR/best/            the best model by --best-metric, same layout
OUTPUT_DIR/metrics.json     summary: final and best validation metrics, steps, wall time, samples/s
OUTPUT_DIR/train_log.jsonl  one JSON object per training log and per validation
OUTPUT_DIR/run.json         the run id (also in every checkpoint): `latest` only resumes this run's checkpoints
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snake_world_eqm.hub import build_model_card
from snake_world_eqm.output_guard import (
    OutputFolderError,
    atomic_write_text,
    guard_output_folder,
    move_files_into,
)

from . import checkpoints as ckpt
from .checkpoints import fsync_tree, replace_dir
from .errors import TrainingSetupError

logger = logging.getLogger("snake_world_eqm.training")

RUN_FILE = "run.json"
# What a run writes at the root of OUTPUT_DIR; a folder holding any of these belongs to a run.
RUN_ARTIFACTS = ("checkpoints", "best", "logs", RUN_FILE, "config.json", "model.safetensors",
                 "model.safetensors.index.json", "generation_config.json", "README.md", "metrics.json",
                 "train_log.jsonl", "training_curves.png", "configuration_snake_world_eqm.py",
                 "modeling_snake_world_eqm.py", "eqm.py", "lm_bridge_metrics.json", "lm_bridge_history.json")


# The results of a run: a new run must not overwrite or mix with these. The rest (run.json, logs, the curve of a
# run killed before its first checkpoint) is only bookkeeping, cleared when a new run starts.
RUN_RESULTS = ("checkpoints", "best", "config.json", "model.safetensors", "model.safetensors.index.json",
               "metrics.json", "lm_bridge_metrics.json")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def read_run_id(output_dir: str | Path) -> str | None:
    """The run id recorded in OUTPUT_DIR/run.json, or None (no run yet, or a folder from before run ids)."""
    path = Path(output_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text())["run_id"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is corrupt ({error}); pass --overwrite-output-dir to start a new run there") from None


@dataclass(frozen=True)
class RunPlacement:
    """Where a run starts: the checkpoint it resumes (None: a new run) and its run id (kept by a resume)."""

    resume_from: Path | None
    run_id: str


def place_run(output_dir: str | Path, resume: str | None, overwrite: bool, kind: str,
              protected: tuple[str | None, ...] = ()) -> RunPlacement:
    """Check OUTPUT_DIR and the checkpoint to resume, before anything is written; raise TrainingSetupError.

    `resume` is None, "latest" (the newest complete checkpoint of OUTPUT_DIR's own run; a fresh start when there
    is none) or a checkpoint folder. A folder holding another run's results is refused unless that run is
    resumed or `overwrite` is set (the old outputs are then removed when training starts). Through
    `output_guard.guard_output_folder`, a folder holding a dataset, a model no run wrote, a DAgger run or foreign
    files, the current folder (or one above it) and a `protected` input (the model fine-tuned, the datasets)
    are refused, with or without --overwrite-output-dir."""
    try:
        guard_output_folder(output_dir, "training run", True, "--output-dir", protected,
                            reuse_hint="--overwrite-output-dir")
    except OutputFolderError as error:
        raise TrainingSetupError(str(error)) from None
    check_writable(Path(output_dir))
    resume_from, run_id = _resume_point(output_dir, resume, overwrite, kind)
    if overwrite:
        return RunPlacement(resume_from, run_id or new_run_id())
    present = [name for name in run_artifacts(output_dir) if name in RUN_RESULTS or name.startswith("model-")]
    try:
        owner = read_run_id(output_dir)
    except ValueError as error:
        raise TrainingSetupError(str(error)) from None
    if resume_from is None and present:
        raise TrainingSetupError(
            f"--output-dir {output_dir} already holds a run ({', '.join(present[:4])}"
            f"{', ...' if len(present) > 4 else ''}); pass --resume-from-checkpoint latest to continue it or "
            "--overwrite-output-dir to replace it")
    if resume_from is not None and owner is not None and owner != run_id:
        raise TrainingSetupError(
            f"--output-dir {output_dir} holds run {owner}, but checkpoint {resume_from} is of run "
            f"{run_id}; resume into its own output dir or pass --overwrite-output-dir")
    return RunPlacement(resume_from, run_id or new_run_id())


def _resume_point(output_dir: str | Path, resume: str | None, overwrite: bool,
                  kind: str) -> tuple[Path | None, str | None]:
    """The checkpoint to resume (checked file by file) and its run id; `latest` only looks at OUTPUT_DIR's run."""
    if resume is None:
        return None, None
    root = ckpt.checkpoints_dir(output_dir)
    try:
        if resume == "latest":
            path = ckpt.latest_checkpoint(root, run_id=None if overwrite else read_run_id(output_dir))
            if path is None:
                logger.warning("--resume-from-checkpoint latest: no complete checkpoint of this run in %s; "
                               "starting fresh", root)
                return None, None
        else:
            path = Path(resume)
        saved = ckpt.read_state(path)
        ckpt.check_checkpoint_files(path)
    except ValueError as error:
        raise TrainingSetupError(str(error)) from None
    if saved.get("model_kind", kind) != kind:
        raise TrainingSetupError(f"checkpoint {path} is of --model {saved['model_kind']}, not {kind}")
    return path, saved.get("run_id") or new_run_id()  # a resumed run keeps its id


def check_writable(output_dir: Path) -> None:
    """The run could save there: the nearest existing folder on the path is a writable folder (nothing created)."""
    existing = next((p for p in (output_dir, *output_dir.absolute().parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise TrainingSetupError(f"--output-dir {output_dir}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TrainingSetupError(f"--output-dir {output_dir}: {existing} is not writable")


def write_run_file(output_dir: str | Path, run_id: str, command: str) -> None:
    path = Path(output_dir) / RUN_FILE
    tmp = path.with_name(f".tmp-{RUN_FILE}")
    tmp.write_text(json.dumps({"run_id": run_id, "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
                              indent=2))
    os.replace(tmp, path)


def run_artifacts(output_dir: str | Path) -> list[str]:
    """Names of the run outputs present in OUTPUT_DIR (empty for a new or unrelated folder)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    present = [name for name in RUN_ARTIFACTS if (folder / name).exists()]
    if "checkpoints" in present and not any(not p.name.startswith(".") for p in (folder / "checkpoints").iterdir()):
        present.remove("checkpoints")  # only leftovers of an interrupted write: nothing of a run to protect
    present += sorted(p.name for p in folder.glob("model-*-of-*.safetensors"))
    return present


def clear_run_outputs(output_dir: str | Path) -> None:
    """Remove a previous run's outputs (only the names a run writes; other files stay), so two runs never mix."""
    folder = Path(output_dir)
    for name in run_artifacts(folder) + [p.name for p in folder.glob(".tmp-*")]:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class JsonlLog:
    """Append-only run log; on resume, entries past the checkpoint's step are dropped."""

    def __init__(self, path: str | Path, enabled: bool) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def clear(self) -> None:
        if self.enabled and self.path.is_file():
            self.path.unlink()

    def write(self, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry, default=float) + "\n")

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [row for row in rows if kind is None or row.get("kind") == kind]


def command_line() -> str:
    """Fallback when the run did not record its command (library use without `run`)."""
    return shlex.join([Path(sys.argv[0]).name if sys.argv else "train", *sys.argv[1:]])


def save_model_folder(model: Any, folder: str | Path, metrics: dict[str, Any], card_info: dict[str, Any]) -> Path:
    """save_pretrained + card + metrics into a temporary folder, then rename it into place."""
    folder = Path(folder)
    tmp = folder.with_name(f".tmp-{folder.name}") if folder.name else folder
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    write_card(tmp, metrics, card_info)
    fsync_tree(tmp)
    replace_dir(tmp, folder)
    return folder


def save_final_model(model: Any, output_dir: str | Path, metrics: dict[str, Any], card_info: dict[str, Any]) -> None:
    """The final model lives at OUTPUT_DIR's root, next to checkpoints/ and best/; those are kept.

    Written beside (OUTPUT_DIR/.tmp-final), flushed, then each file renamed over its namesake, config.json last:
    a kill while saving leaves the previous model at the root (and a .tmp-* folder the next run removes)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = output_dir / ".tmp-final"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    write_card(staging, metrics, card_info)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    fsync_tree(staging)
    move_files_into(staging, output_dir, last=("config.json",))


def write_json(path: str | Path, payload: Any) -> None:
    """A JSON result file, written atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=float) + "\n")


def write_card(folder: Path, metrics: dict[str, Any], card_info: dict[str, Any]) -> None:
    datasets = card_info.get("dataset", "")
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    dataset_ids = [name if _is_repo_id(name) else "local-dataset" for name in datasets] or ["local-dataset"]
    base_model = card_info.get("base_model")
    card = build_model_card(
        None,  # the card's eval_results are for `snake-eqm evaluate` on the test split, not for these
        repo_id=card_info.get("repo_id", "snake-world-eqm"),
        dataset_id=dataset_ids[0],
        extra_datasets=dataset_ids[1:],
        base_model=base_model if base_model and _is_repo_id(base_model) else None,
        board_size=card_info.get("board_size", "?"),
        commands=[card_info.get("command", command_line())],
        extra_markdown=(f"Fine-tuned from `{base_model}`.\n\n" if base_model else "") + _training_summary(metrics),
    )
    card.save(folder / "README.md")


def _is_repo_id(name: str) -> bool:
    """A Hub repo id ("org/name") rather than a local path."""
    return str(name).count("/") == 1 and not Path(name).exists() and not str(name).startswith((".", "/", "~"))


def _training_summary(metrics: dict[str, Any]) -> str:
    keys = ("model", "global_step", "epochs_completed", "samples_seen", "train_seconds", "samples_per_second",
            "num_processes", "stopped_because", "best_metric", "best_value", "best_step")
    lines = ["## Training run", "", "| field | value |", "|---|---|"]
    lines += [f"| {key} | {metrics[key]} |" for key in keys if key in metrics]
    validation = {k: v for k, v in (metrics.get("validation") or {}).items() if isinstance(v, (int, float))}
    if validation:
        lines += ["", f"Validation at step {metrics.get('validation_step', '?')}:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4g} |" for key, value in validation.items()]
    lines.append("\nValidation metrics are measured on a capped number of held-out rows during training "
                 "(`validation` block of `metrics.json`); see `snake-eqm evaluate` for the full evaluation.")
    return "\n".join(lines)
