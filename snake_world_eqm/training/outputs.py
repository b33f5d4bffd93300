"""What a run leaves in OUTPUT_DIR besides checkpoints: models, card, metrics, the JSONL log.

OUTPUT_DIR/                 final model (save_pretrained: config.json, model.safetensors, README.md)
OUTPUT_DIR/best/            the best model by --best-metric, same layout
OUTPUT_DIR/metrics.json     summary: final and best validation metrics, steps, wall time, samples/s
OUTPUT_DIR/train_log.jsonl  one JSON object per training log and per validation
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from .checkpoints import _fsync_tree, replace_dir


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
    _fsync_tree(tmp)
    replace_dir(tmp, folder)
    return folder


def save_final_model(model: Any, output_dir: str | Path, metrics: dict[str, Any], card_info: dict[str, Any]) -> None:
    """The final model lives at OUTPUT_DIR's root, next to checkpoints/ and best/; those are kept."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    write_card(output_dir, metrics, card_info)


def write_card(folder: Path, metrics: dict[str, Any], card_info: dict[str, Any]) -> None:
    from snake_world_eqm.hub import build_model_card

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
