"""Cheap periodic validation on a capped number of held-out rows.

Per-row results are gathered across processes (`gather_for_metrics` drops the padding of the
last batch) and averaged. Sampling uses a fixed generator and the global RNG is forked, so
validating never changes the training run's random stream (resume stays exact).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from snake_world_eqm.evaluation import metrics
from snake_world_eqm.game.batched import batched_successors
from snake_world_eqm.game.state import ACTION_NAMES

# What --best-metric may name, besides the validation losses (loss, loss_*).
EQM_METRICS = ("action_accuracy", "next_board_exact", "free_next_board_exact", "next_board_cell_accuracy",
               "validity", "coherence",
               "whatif_exact.mean", "sample_steps", "grad_norm")
BASELINE_METRICS = ("action_accuracy",)


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _successors(batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """(B,4,H,W) successors and (B,4) events, from the dataset or else the batched game engine."""
    if "next_state_per_action" in batch and "event_per_action" in batch:
        return _np(batch["next_state_per_action"]), _np(batch["event_per_action"])
    nxt, _, event, _ = batched_successors(_np(batch["state"]).astype(np.int8), np.random.default_rng(0))
    return np.asarray(nxt), np.asarray(event)


def _rows(values: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64), device=device).float()


def eqm_row_metrics(model: Any, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-row metrics of the EqM world model, (B,) float tensors; definitions from evaluation.metrics."""
    device = batch["state"].device
    state, action = batch["state"], _np(batch["action"])
    succ, succ_event = _successors(batch)
    rows_index = np.arange(len(action))
    target, target_event = _np(batch["next_state"]), succ_event[rows_index, action]
    out = model.sample(state, generator=generator, validate=False)
    pred_action, pred_board = _np(out.action), _np(out.next_board)
    values = {
        "action_accuracy": pred_action == action,
        # The free sample's board against the expert's successor: right only when the action is right too.
        "free_next_board_exact": metrics.exact_match(pred_board, target, target_event),
        "next_board_cell_accuracy": metrics.cell_accuracy(pred_board, target, target_event),
        "validity": metrics.validity(pred_board, succ, succ_event),
        "coherence": metrics.coherence(pred_board, pred_action, succ, succ_event),
        "sample_steps": _np(out.num_steps),
        "grad_norm": _np(out.grad_norm),
    }
    # What if: hold each action, descend the state only; is the decoded board that action's successor?
    hits = []
    for a, name in enumerate(ACTION_NAMES):
        held = torch.full((len(action),), a, dtype=torch.long, device=device)
        board = _np(model.sample(state, action=held, generator=generator, validate=False).next_board)
        hits.append(metrics.exact_match(board, succ[:, a], succ_event[:, a]))
        values[f"whatif_exact.{name}"] = hits[-1]
    values["whatif_exact.mean"] = np.stack(hits, 1).mean(1)
    # As in `snake-eqm evaluate`: the next board with the expert's action held (its what-if row).
    values["next_board_exact"] = np.stack(hits, 1)[rows_index, action]
    return {name: _rows(value, device) for name, value in values.items()}


def baseline_row_metrics(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    pred = model.select_action(batch["state"], validate=False).long()
    return {"action_accuracy": (pred == batch["action"]).float()}


def _loss_inputs(batch: dict[str, torch.Tensor], columns: list[str]) -> dict[str, torch.Tensor]:
    return {name: batch[name] for name in columns if name in batch}


@torch.no_grad()
def validate(accelerator: Any, model: Any, loader: Any, kind: str, forward_cols: list[str], seed: int) -> dict[str, float]:
    """Mean of each per-row metric over the (capped) validation rows, plus the validation loss."""
    unwrapped = accelerator.unwrap_model(model)
    was_training = unwrapped.training
    unwrapped.eval()
    totals: dict[str, float] = defaultdict(float)
    count = 0.0
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        generator = torch.Generator(device=accelerator.device).manual_seed(seed + accelerator.process_index)
        for batch in loader:
            with accelerator.autocast():
                out = unwrapped(**_loss_inputs(batch, forward_cols))
                rows = eqm_row_metrics(unwrapped, batch, generator) if kind == "eqm" else baseline_row_metrics(unwrapped, batch)
            rows["loss"] = out.loss.detach().float().expand(len(batch["state"]))
            for name, value in loss_components(out).items():
                rows[f"loss_{name}"] = value.expand(len(batch["state"]))
            gathered = accelerator.gather_for_metrics(rows)
            for name, value in gathered.items():
                totals[name] += float(value.double().sum())
            count += len(gathered["loss"])
    unwrapped.train(was_training)
    return {name: total / max(count, 1.0) for name, total in sorted(totals.items())} | {"num_rows": count}


def loss_components(out: Any) -> dict[str, torch.Tensor]:
    """loss_* scalars of a model output, without the 'loss_' prefix."""
    parts = {}
    for key, value in out.items():
        if key.startswith("loss_") and isinstance(value, torch.Tensor) and value.numel() == 1:
            parts[key[len("loss_"):]] = value.detach().float().reshape(())
    return parts
