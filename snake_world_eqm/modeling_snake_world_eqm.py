"""Snake world model trained by Equilibrium Matching (EqM), and its behaviour-cloning baseline.

transformers file convention: the configuration lives in `configuration_snake_world_eqm.py`, the pure EqM
math in `eqm.py` (both imported relatively, so `save_pretrained` copies them next to the weights for
`trust_remote_code=True`); board validation comes from the installed `snake_world_eqm.game`.

Shapes: boards (B, H, W) int cell codes (docs/ARCHITECTURE.md); h (B, d_model); a latent z (B, latent_dim);
the EqM sample x = [z, a] (B, latent_dim + 4) where a = action_scale · one_hot(action).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from snake_world_eqm.game.encoding import (
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_LEFT,
    encode_observation,
    validate_observation,
)
from snake_world_eqm.game.state import MAX_BOARD_SIZE, MIN_BOARD_SIZE, SnakeState

from .configuration_snake_world_eqm import SnakePolicyBaselineConfig, SnakeWorldEqMConfig
from .eqm import check_init_scale, gradient_scale, interpolate, nag_descent, target_gradient

_HEAD_CODES = tuple(range(HEAD_ALONE, HEAD_LEFT + 1))  # the lone head and the four pointing heads


# --------------------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------------------


@dataclass
class SnakeWorldEqMOutput(ModelOutput):
    r"""
    Training output of [`SnakeWorldEqM`]. Each loss term is a per-dimension (or per-cell) mean, reported apart.

    loss: weighted sum of the four terms.
    loss_state / loss_action: EqM field MSE on the latent block / the action block (expert transition).
    loss_recon: cross-entropy of the decoder on the next board from slightly noised target latents; with
        `next_state_per_action`, a `whatif_recon_fraction` share of rows use a random non-expert successor.
    loss_whatif: EqM field MSE on the latent block for all four successors with the action held clean.
    action_logits (B, 4): one-evaluation estimate of the clean action block from pure noise
        (x̂ = ε - f(ε)/c(0)); a cheap training-time accuracy probe, not the sampler's answer.
    latent_next (B, latent_dim): latent of `next_state` (with gradient; the EqM targets use it detached).
    """

    loss: torch.Tensor | None = None
    loss_state: torch.Tensor | None = None
    loss_action: torch.Tensor | None = None
    loss_recon: torch.Tensor | None = None
    loss_whatif: torch.Tensor | None = None
    action_logits: torch.Tensor | None = None
    latent_next: torch.Tensor | None = None


@dataclass
class SnakeWorldEqMSampleOutput(ModelOutput):
    r"""
    Output of [`SnakeWorldEqM.sample`].

    action (B,) long: argmax of the final action block (or the held action).
    action_logits (B, 4): the final action block (scale ≈ action_scale at a clean one-hot).
    latent_next (B, latent_dim): the final state block.
    next_board (B, H, W) long: `latent_next` decoded against the current board.
    num_steps (B,) long: field evaluations each sample used (adaptive stopping makes them differ).
    grad_norm (B,): ‖f‖ at the last evaluation (over the moving coordinates).
    action_grad_norm (B,): ‖f‖ of the action block alone at the last evaluation (0 when the action is held).
    trajectory (num_steps + 1, B, latent_dim + 4) or None.
    action_probs (B, 4) or None: with `prob_draws=K`, the smoothed votes of K free descents from N(0, I) —
        calibrated probabilities of the action (the softmax of `action_logits` is not: the block saturates).
    """

    action: torch.Tensor | None = None
    action_logits: torch.Tensor | None = None
    latent_next: torch.Tensor | None = None
    next_board: torch.Tensor | None = None
    num_steps: torch.Tensor | None = None
    grad_norm: torch.Tensor | None = None
    action_grad_norm: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    action_probs: torch.Tensor | None = None


@dataclass
class SnakePolicyBaselineOutput(ModelOutput):
    r"""Output of [`SnakePolicyBaseline`]: cross-entropy `loss` (when `action` is given) and `logits` (B, 4)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


# --------------------------------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------------------------------


def _as_board_tensor(obs) -> torch.Tensor:
    """SnakeState | sequence of SnakeState | np.ndarray | torch.Tensor → integer tensor (unchecked shape)."""
    if isinstance(obs, SnakeState):
        obs = encode_observation(obs)
    elif isinstance(obs, (list, tuple)) and obs and all(isinstance(s, SnakeState) for s in obs):
        obs = _stack_boards([encode_observation(s) for s in obs])
    elif isinstance(obs, (list, tuple)) and obs:  # nested lists, or a list of (H, W) arrays
        obs = _stack_boards(obs)
    if isinstance(obs, np.ndarray):
        if obs.dtype == object:
            raise TypeError("boards must be a numeric array of cell codes, got dtype=object")
        obs = torch.from_numpy(obs)
    if not isinstance(obs, torch.Tensor):
        raise TypeError(f"boards must be a SnakeState, numpy array or torch tensor, got {type(obs).__name__}")
    if obs.dtype == torch.bool or obs.is_complex():
        raise TypeError(f"boards must hold integer cell codes, got dtype {obs.dtype}")
    if obs.is_floating_point():
        if not torch.isfinite(obs).all():
            raise ValueError("boards contain NaN or infinite values")
        raise TypeError(f"boards must hold integer cell codes, got floating dtype {obs.dtype}")
    return obs


def _stack_boards(boards) -> np.ndarray:
    """Stack boards given as a sequence; different shapes (ragged rows, mixed sizes) are a one-line error."""
    try:
        arrays = [np.asarray(board) for board in boards]
    except ValueError:  # numpy refuses ragged nested lists outright
        raise ValueError("boards are ragged (rows of different lengths); each board must be a full H x W grid") from None
    shapes = sorted({array.shape for array in arrays})
    if len(shapes) > 1 or any(array.dtype == object for array in arrays):
        raise ValueError(f"boards are ragged or of different sizes ({', '.join(map(str, shapes))}); "
                         "a batch holds whole boards of one size H x W")
    return np.stack(arrays)


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, current: torch.Tensor,
                        changed_weight: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Per-cell cross-entropy of decoder logits (B, H, W, C) against the next board, the (few) cells that change
    from `current` weighted 1 + `changed_weight` (the training loss, and `training.decoder_tune`'s)."""
    ce = F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none").view_as(target)
    ce = ce if dtype is None else ce.to(dtype)
    weight = 1.0 + changed_weight * (target != current).to(ce.dtype)
    return (ce * weight).sum() / weight.sum()


def prepare_boards(config, obs, device=None, validate: bool = True) -> torch.Tensor:
    """Check boards against `config` and return a (B, H, W) long tensor on `device`.

    Checks: type/dtype, rank 2 or 3, board size (fixed or within 4–32), codes in [0, 12), and with
    `validate=True` the game's legality check of every non-terminal board (all-EMPTY boards are allowed: they
    are the terminal observation).
    """
    boards = _as_board_tensor(obs)
    if boards.dim() == 2:
        boards = boards.unsqueeze(0)
    if boards.dim() != 3 or boards.shape[0] == 0:
        raise ValueError(f"boards must have shape (H, W) or (B, H, W) with B >= 1, got {tuple(boards.shape)}")
    height, width = boards.shape[-2:]
    if config.fixed_board_size and (height, width) != (config.board_height, config.board_width):
        raise ValueError(
            f"board size {height}x{width} does not match the config's {config.board_height}x{config.board_width} "
            "(set fixed_board_size=False to run on other sizes)"
        )
    if not (MIN_BOARD_SIZE <= height <= MAX_BOARD_SIZE and MIN_BOARD_SIZE <= width <= MAX_BOARD_SIZE):
        raise ValueError(f"board size {height}x{width} is outside the supported {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}")
    low, high = torch.stack(torch.aminmax(boards)).tolist()  # one pass, one host sync for both bounds
    if low < 0 or high >= config.num_cell_classes:
        raise ValueError(f"cell codes must be in [0, {config.num_cell_classes}), got values in [{low}, {high}]")
    if validate:
        _validate_legal(boards)
    return boards.to(device=device, dtype=torch.long)


def _validate_legal(boards: torch.Tensor) -> None:
    array = boards.detach().cpu().numpy().astype(np.int8)
    for i, board in enumerate(array):
        try:
            validate_observation(board, allow_terminal=True)
        except ValueError as err:
            raise ValueError(f"board {i} is not a legal Snake observation: {err}") from err


def _check_actions(action, batch: int, device) -> torch.Tensor:
    """Actions as a (B,) long tensor in [0, 4); a scalar is broadcast over the batch."""
    if isinstance(action, (bool, np.bool_)):  # True is an int to Python, but never meant as action 1
        raise TypeError(f"actions must be integers, got the boolean {action!r}")
    if isinstance(action, (int, np.integer)):
        action = torch.full((batch,), int(action))
    action = torch.as_tensor(action)
    if action.is_floating_point() or action.dtype == torch.bool:
        raise TypeError(f"actions must be integers, got dtype {action.dtype}")
    if action.dim() == 0:
        action = action.expand(batch)
    if action.shape != (batch,):
        raise ValueError(f"actions must have shape ({batch},), got {tuple(action.shape)}")
    if action.numel() and (int(action.min()) < 0 or int(action.max()) > 3):
        raise ValueError(f"actions must be in [0, 4), got values in [{int(action.min())}, {int(action.max())}]")
    return action.to(device=device, dtype=torch.long)


_MAX_SAMPLING_STEPS = 10_000


def _check_sampler_args(num_steps, step_size, momentum, threshold) -> tuple[int, float, float, float | None]:
    """The NAG sampler's knobs, checked: a NaN or a fractional step count would otherwise run silently."""
    if isinstance(num_steps, torch.Tensor) and num_steps.numel() == 1:
        num_steps = num_steps.item()
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
        raise ValueError(f"num_steps must be an integer, got {num_steps!r}")
    if not 1 <= num_steps <= _MAX_SAMPLING_STEPS:
        raise ValueError(f"num_steps must be in [1, {_MAX_SAMPLING_STEPS}], got {num_steps}")
    values = {}
    for name, value in (("step_size", step_size), ("momentum", momentum), ("adaptive_threshold", threshold)):
        if value is None and name == "adaptive_threshold":
            values[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        values[name] = float(value)
    if values["step_size"] <= 0:
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    if not 0.0 <= values["momentum"] < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if values["adaptive_threshold"] is not None and values["adaptive_threshold"] <= 0:
        raise ValueError(f"adaptive_threshold must be > 0 or None, got {threshold!r}")
    return int(num_steps), values["step_size"], values["momentum"], values["adaptive_threshold"]


def _check_training_boards(config, boards: torch.Tensor, name: str, extra_dims: int = 0) -> None:
    """Cheap checks for training tensors (no per-board legality check: that is the dataset's job)."""
    if not isinstance(boards, torch.Tensor) or boards.is_floating_point() or boards.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer torch tensor")
    if boards.dim() != 3 + extra_dims:
        raise ValueError(f"{name} must have {3 + extra_dims} dimensions, got shape {tuple(boards.shape)}")
    if config.fixed_board_size and tuple(boards.shape[-2:]) != (config.board_height, config.board_width):
        raise ValueError(f"{name} boards are {tuple(boards.shape[-2:])}, config expects "
                         f"({config.board_height}, {config.board_width})")
    if boards.numel() and (int(boards.min()) < 0 or int(boards.max()) >= config.num_cell_classes):
        raise ValueError(f"{name} holds cell codes outside [0, {config.num_cell_classes})")


# --------------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------------


class SnakeCellEmbedding(nn.Module):
    """Cell code embedding + learned row and column embeddings (2-D positions, any board up to 32x32)."""

    def __init__(self, num_codes: int, dim: int):
        super().__init__()
        self.code = nn.Embedding(num_codes, dim)
        self.row = nn.Embedding(MAX_BOARD_SIZE, dim)
        self.col = nn.Embedding(MAX_BOARD_SIZE, dim)

    def forward(self, boards: torch.Tensor) -> torch.Tensor:
        """(B, H, W) long → (B, H, W, dim)."""
        height, width = boards.shape[-2:]
        rows = self.row(torch.arange(height, device=boards.device))[:, None, :]
        cols = self.col(torch.arange(width, device=boards.device))[None, :, :]
        return self.code(boards) + rows + cols


class SnakeConvBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions (the first one dilated)."""

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x))))


class SnakeCNN(nn.Module):
    """Residual CNN over (B, C, H, W); dilations 1, 2, 4, 1, 2, 4... widen the view to the whole board."""

    def __init__(self, in_dim: int, channels: int, num_layers: int, out_dim: int):
        super().__init__()
        self.inp = nn.Conv2d(in_dim, channels, 1)
        self.blocks = nn.ModuleList(SnakeConvBlock(channels, (1, 2, 4)[i % 3]) for i in range(num_layers))
        self.out = nn.Conv2d(channels, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        for block in self.blocks:
            x = block(x)
        return self.out(F.gelu(x))


class SnakeBoardEncoder(nn.Module):
    """Board → per-cell features (B, H·W, d) and a pooled hidden state h (B, d).

    Transformer over cells (pre-norm), optionally with a CNN ("replace": CNN only; "append": CNN features
    added to each token before the transformer). h pools mean, max and the head cell's feature, so the
    action read-out sees the neighbourhood of the head directly.
    """

    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.embed = SnakeCellEmbedding(config.num_cell_classes, d)
        self.use_transformer = not (config.use_cnn and config.cnn_mode == "replace")
        self.cnn = None
        if config.use_cnn:
            self.cnn = SnakeCNN(d, config.cnn_channels or d, config.cnn_layers, d)
        self.layers = nn.ModuleList()
        if self.use_transformer:
            self.layers.extend(
                nn.TransformerEncoderLayer(
                    d, config.num_heads, config.ffn_dim or 4 * d, config.dropout,
                    activation="gelu", batch_first=True, norm_first=True,
                )
                for _ in range(config.num_layers)
            )
        self.norm = nn.LayerNorm(d)
        self.pool = nn.Linear(3 * d, d)
        self.pool_norm = nn.LayerNorm(d)

    def forward(self, boards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(boards)  # (B, H, W, d)
        if self.cnn is not None:
            conv = self.cnn(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            x = conv if not self.use_transformer else x + conv
        x = x.flatten(1, 2)  # (B, H·W, d)
        for layer in self.layers:
            x = layer(x)
        cells = self.norm(x)
        head = torch.isin(boards.flatten(1), torch.tensor(_HEAD_CODES, device=boards.device)).to(cells.dtype)
        head_feat = (cells * head[..., None]).sum(1) / head.sum(1, keepdim=True).clamp(min=1.0)
        pooled = torch.cat([cells.mean(1), cells.amax(1), head_feat], dim=-1)
        return cells, self.pool_norm(F.gelu(self.pool(pooled)))


class SnakeLatentEncoder(nn.Module):
    """(board, current board) → latent (B, latent_dim) of the board *relative to* the current one.

    The decoder sees the current board, and given it a legal successor is fixed by where the new head is (its
    code says where the neck is) and where new food appeared: the rest (old head turning into body, the tail
    moving unless the snake ate) follows locally. So the latent sums, over cells that changed into a head or
    FOOD code, an embedding of the (old code, new code) pair plus the cell's offset from the old head, then a
    linear map and a LayerNorm without affine (per-dimension RMS 1, like the N(0, I) noise EqM starts from).
    What the field must predict is then a function of the move alone, as easy as the action; a death
    (all-EMPTY board) has no such cell and maps to the zero latent.
    """

    def __init__(self, config):
        super().__init__()
        dim = config.latent_hidden_dim or config.d_model
        self.num_codes = config.num_cell_classes
        self.pair = nn.Embedding(self.num_codes * self.num_codes, dim)
        self.offset_row = nn.Embedding(2 * MAX_BOARD_SIZE - 1, dim)
        self.offset_col = nn.Embedding(2 * MAX_BOARD_SIZE - 1, dim)
        self.cell_mlp = nn.Sequential(nn.GELU(), nn.Linear(dim, dim), nn.GELU())
        self.proj = nn.Linear(dim, config.latent_dim)
        self.norm = nn.LayerNorm(config.latent_dim, elementwise_affine=False)

    def forward(self, boards: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        width = boards.shape[-1]
        kept = (boards != current) & (boards >= FOOD) & (boards <= _HEAD_CODES[-1])
        # At most two cells per board qualify, so embed only those (gather, MLP, scatter-add), not every cell.
        index, cell = kept.flatten(1).nonzero(as_tuple=True)
        head_row, head_col = _head_position(current)  # (B,), 0 when there is no head
        pair = current.flatten(1)[index, cell] * self.num_codes + boards.flatten(1)[index, cell]
        offset = MAX_BOARD_SIZE - 1
        tokens = (self.pair(pair) + self.offset_row(cell // width - head_row[index] + offset)
                  + self.offset_col(cell % width - head_col[index] + offset))
        feats = self.cell_mlp(tokens)
        pooled = feats.new_zeros(boards.shape[0], feats.shape[-1]).index_add(0, index, feats)
        return self.norm(self.proj(pooled))


def _head_position(boards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column (B,) of the head of each board (0, 0 for a board without one)."""
    is_head = (boards >= _HEAD_CODES[0]) & (boards <= _HEAD_CODES[-1])
    flat = is_head.flatten(1).to(torch.uint8).argmax(1)
    return flat // boards.shape[-1], flat % boards.shape[-1]


class SnakeFiLMConv(nn.Module):
    """Residual 3x3 conv block whose input is scaled and shifted by the latent (FiLM).

    The multiplicative term lets a cell compare its own position embedding with the position the latent
    names (e.g. where the new head or food is), which a plain additive broadcast cannot do in one layer.
    """

    def __init__(self, channels: int, latent_dim: int, global_context: bool = False):
        super().__init__()
        self.film = nn.Linear(latent_dim, 2 * channels)
        # Mean and max of the input over the board: what one cell decides (the new head landed on the food)
        # reaches cells far beyond the convs' reach (the tail, which then stays).
        self.context = nn.Linear(2 * channels, 2 * channels) if global_context else None
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        film = self.film(latent)
        if self.context is not None:
            film = film + self.context(torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1))
        scale, shift = film[..., None, None].chunk(2, dim=1)
        y = x * (1 + scale) + shift
        return x + self.conv2(F.gelu(self.conv1(F.gelu(y))))


class SnakeLatentDecoder(nn.Module):
    """(latent, current board) → per-cell logits (B, H, W, 12) of the next board."""

    def __init__(self, config):
        super().__init__()
        c = config.decoder_channels
        self.embed = SnakeCellEmbedding(config.num_cell_classes, c)
        # Each cell's offset from the current head: the latent names the new head and food by such offsets,
        # so a cell recognises itself with one multiplicative (FiLM) match instead of a long-range search.
        self.offset_row = nn.Embedding(2 * MAX_BOARD_SIZE - 1, c)
        self.offset_col = nn.Embedding(2 * MAX_BOARD_SIZE - 1, c)
        self.blocks = nn.ModuleList(SnakeFiLMConv(c, config.latent_dim, config.decoder_global_context)
                                    for _ in range(max(1, config.decoder_layers)))
        self.head = nn.Conv2d(c, config.num_cell_classes, 1)
        self.food_head = None
        if config.food_head:
            self.food_head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, 1, 1))

    def board_features(self, current: torch.Tensor) -> torch.Tensor:
        """Embedding of the current board (B, C, H, W); computed once and reusable for several latents."""
        height, width = current.shape[-2:]
        head_row, head_col = _head_position(current)
        rows = torch.arange(height, device=current.device)[None, :] - head_row[:, None] + MAX_BOARD_SIZE - 1
        cols = torch.arange(width, device=current.device)[None, :] - head_col[:, None] + MAX_BOARD_SIZE - 1
        x = self.embed(current) + self.offset_row(rows)[:, :, None] + self.offset_col(cols)[:, None, :]
        return x.permute(0, 3, 1, 2)

    def cell_features(self, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) features of every cell of the next board, before the read-outs."""
        x = features
        for block in self.blocks:
            x = block(x, latent)
        return F.gelu(x)

    def forward(self, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.cell_features(latent, features)).permute(0, 2, 3, 1)

    def food_logits(self, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(B, H, W) the food head's logits of where new food appears (needs `config.food_head`)."""
        return self.food_head(self.cell_features(latent, features)).squeeze(1)


class SnakeEqMField(nn.Module):
    """g(h, x): shared MLP trunk over [h, z, a], separate state and action heads that both see h again."""

    def __init__(self, config):
        super().__init__()
        d, e, lat, act = config.d_model, config.eqm_hidden_dim, config.latent_dim, config.num_actions
        layers = [nn.Linear(d + lat + act, e)]
        for _ in range(config.eqm_num_layers - 1):
            layers += [nn.GELU(), nn.Linear(e, e)]
        self.trunk = nn.Sequential(*layers)
        self.state_head = nn.Sequential(nn.GELU(), nn.Linear(e + d, e), nn.GELU(), nn.Linear(e, lat))
        self.action_head = nn.Sequential(nn.GELU(), nn.Linear(e + d, e), nn.GELU(), nn.Linear(e, act))

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk(torch.cat([h, x], dim=-1))
        t = torch.cat([t, h], dim=-1)
        return torch.cat([self.state_head(t), self.action_head(t)], dim=-1)


def _looks_like_local_path(name: str) -> bool:
    """A Hub repo id is `name` or `org/name`; anything else (absolute, ./, ~, deeper paths) is meant as a folder."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


# --------------------------------------------------------------------------------------------------------------
# Pretrained base
# --------------------------------------------------------------------------------------------------------------


class SnakePreTrainedModel(PreTrainedModel):
    """Weight init shared by both models (PyTorch-default scales, zero biases), via transformers.initialization
    so meta-device loading only initialises what the checkpoint does not provide."""

    base_model_prefix = "snake"
    main_input_name = "state"
    input_modalities = "image"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' loader, with errors that name the problem: a local folder that does not exist (rather
        than "not a valid repo id"), a truncated or corrupt weights file (its path), another model class."""
        path = Path(str(pretrained_model_name_or_path)).expanduser()
        if not path.exists() and _looks_like_local_path(str(pretrained_model_name_or_path)):
            raise FileNotFoundError(f"model folder {path} does not exist")
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError as error:
            weights = sorted(str(p) for p in path.glob("*.safetensors")) if path.is_dir() else []
            where = ", ".join(weights) or f"the weights of {pretrained_model_name_or_path}"
            raise OSError(f"cannot read {where}: truncated or corrupt safetensors file ({error})") from error

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
        else:
            super()._init_weights(module)  # LayerNorm, MultiheadAttention


# --------------------------------------------------------------------------------------------------------------
# EqM world model
# --------------------------------------------------------------------------------------------------------------


class SnakeWorldEqM(SnakePreTrainedModel):
    """Joint (next board, action) model: an EqM gradient field over [latent of the next board, action],
    conditioned on the encoded current board. See docs/ARCHITECTURE.md for the API."""

    config_class = SnakeWorldEqMConfig

    def __init__(self, config: SnakeWorldEqMConfig):
        super().__init__(config)
        self.encoder = SnakeBoardEncoder(config)
        self.latent_encoder = SnakeLatentEncoder(config)
        self.decoder = SnakeLatentDecoder(config)
        self.field_net = SnakeEqMField(config)
        self.post_init()

    # ---- pieces ------------------------------------------------------------------------------------------

    @property
    def sample_dim(self) -> int:
        return self.config.latent_dim + self.config.num_actions

    def _schedule(self, gamma: torch.Tensor) -> torch.Tensor:
        c = self.config
        return gradient_scale(gamma, c.gradient_schedule, c.gradient_multiplier, c.schedule_a, c.schedule_b)

    def _target(self, x, noise, gamma):
        c = self.config
        return target_gradient(x, noise, gamma, c.gradient_schedule, c.gradient_multiplier, c.schedule_a, c.schedule_b)

    def _action_vector(self, action: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(action, self.config.num_actions).to(self.dtype)
        return self.config.action_scale * onehot

    def _energy_from_raw(self, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.config.energy_type == "dot_product":
            return (x * raw).sum(-1)
        return -0.5 * raw.pow(2).sum(-1)

    def _raw_field(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raw = self.field_net(h, x)
        if self.config.field_residual:
            # With the linear schedule the ideal field is λ·(x - E[x | x_γ, h]); adding λ·x leaves the network
            # the (scaled, negated) clean estimate, a function mostly of h and far easier to fit.
            raw = raw + self.config.gradient_multiplier * x
        return raw

    def field(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The EqM gradient field f(h, x) (B, latent_dim + 4); with an explicit energy, f = ∇ₓE."""
        if not self.config.use_explicit_energy:
            return self._raw_field(h, x)
        build_graph = torch.is_grad_enabled() and self.training
        # Gradients must exist here even when the caller runs under torch.no_grad() (sampling).
        with torch.enable_grad():
            x_in = x if x.requires_grad else x.detach().requires_grad_(True)
            energy = self._energy_from_raw(self._raw_field(h, x_in), x_in)
            (grad,) = torch.autograd.grad(energy.sum(), x_in, create_graph=build_graph)
        return grad

    def encode(self, obs, validate: bool = True) -> torch.Tensor:
        """Hidden state h (B, d_model) of one board or a batch."""
        boards = prepare_boards(self.config, obs, self.device, validate)
        return self.encoder(boards)[1]

    def to_latent(self, board, current_board) -> torch.Tensor:
        """Normalised latent (B, latent_dim) of boards (B, H, W) (or one (H, W) board), relative to the
        current boards they follow (the latent names the change; `decode_latent` inverts it)."""
        boards = prepare_boards(self.config, board, self.device, validate=False)
        current = prepare_boards(self.config, current_board, self.device, validate=False)
        if boards.shape != current.shape:
            raise ValueError(f"board shape {tuple(boards.shape)} != current_board shape {tuple(current.shape)}")
        return self.latent_encoder(boards, current)

    def _check_latent(self, latent: torch.Tensor, batch: int) -> torch.Tensor:
        if not isinstance(latent, torch.Tensor) or not latent.is_floating_point():
            raise TypeError("latent must be a floating torch tensor")
        if latent.dim() == 1:
            latent = latent.unsqueeze(0)
        if latent.shape != (batch, self.config.latent_dim):
            raise ValueError(f"latent must have shape ({batch}, {self.config.latent_dim}), got {tuple(latent.shape)}")
        if not torch.isfinite(latent).all():
            raise ValueError("latent contains NaN or infinite values")
        return latent.to(device=self.device, dtype=self.dtype)

    def from_latent(self, latent: torch.Tensor, current_board=None) -> torch.Tensor:
        """Per-cell logits (B, H, W, 12) of the next board a latent names: the next state's representation
        in board space (its argmax is the board, as in `decode_latent`).

        The latent names the *change* from the current board, so decoding needs that board. The seed's
        one-argument form `model.from_latent(result['latent_next'])` works for the `latent_next` of this
        model's most recent `sample()` call, decoded against the boards that call saw; any other latent
        without `current_board` is refused (a ValueError), never decoded against the wrong board.
        """
        if current_board is None:
            current_board = self._boards_of_last_sample(latent)
        boards = prepare_boards(self.config, current_board, self.device, validate=False)
        latent = self._check_latent(latent, boards.shape[0])
        return self.decoder(latent, self.decoder.board_features(boards))

    def _boards_of_last_sample(self, latent) -> torch.Tensor:
        """The boards behind `latent` when it is the `latent_next` the last `sample()` returned."""
        last = getattr(self, "_last_sample", None)
        if last is not None and isinstance(latent, torch.Tensor):
            last_latent, last_boards = last
            candidate = latent.unsqueeze(0) if latent.dim() == 1 else latent
            if candidate is last_latent or (candidate.shape == last_latent.shape
                                            and torch.equal(candidate.to(last_latent.device), last_latent)):
                return last_boards
        raise ValueError("from_latent(latent) without current_board decodes only the latent_next of the last "
                         "sample() call; pass the board it follows: from_latent(latent, current_board)")

    def food_log_weights(self, latent: torch.Tensor, current_board) -> torch.Tensor:
        """(B, H, W) unnormalised log-probabilities of where new food appears on the board `latent` names:
        the food head's logits when the model has one (`config.food_head`), else the decoder's log p(FOOD)
        per cell. The dream draws an eating move's new food from them over the cells left empty."""
        boards = prepare_boards(self.config, current_board, self.device, validate=False)
        latent = self._check_latent(latent, boards.shape[0])
        features = self.decoder.board_features(boards)
        if self.decoder.food_head is not None:
            return self.decoder.food_logits(latent, features)
        return torch.log_softmax(self.decoder(latent, features), dim=-1)[..., FOOD]

    def decode_latent(self, latent: torch.Tensor, current_board) -> torch.Tensor:
        """The board (B, H, W) long a latent names (argmax of `from_latent`)."""
        return self.from_latent(latent, current_board).argmax(-1)

    def energy(self, obs, latent: torch.Tensor, action_vec: torch.Tensor, validate: bool = True) -> torch.Tensor:
        """Explicit energy E(h, [latent, action_vec]) (B,); needs `use_explicit_energy=True`.
        validate=False scores boards without the legality check (e.g. corrupted boards for an AUROC)."""
        if not self.config.use_explicit_energy:
            raise ValueError("energy() needs a model configured with use_explicit_energy=True")
        h = self.encode(obs, validate)
        latent = self._check_latent(latent, h.shape[0])
        if action_vec.shape != (h.shape[0], self.config.num_actions):
            raise ValueError(f"action_vec must have shape ({h.shape[0]}, {self.config.num_actions})")
        x = torch.cat([latent, action_vec.to(latent)], dim=-1)
        return self._energy_from_raw(self._raw_field(h, x), x)

    # ---- training ----------------------------------------------------------------------------------------

    def forward(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        next_state: torch.Tensor,
        next_state_per_action: torch.Tensor | None = None,
        **kwargs,
    ) -> SnakeWorldEqMOutput:
        """EqM training losses for a batch of transitions (see `SnakeWorldEqMOutput`).

        state, next_state (B, H, W) and next_state_per_action (B, 4, H, W) hold integer cell codes; action (B,)
        is the expert's action. Extra collated columns (reward, event, ...) are accepted and ignored.
        """
        cfg = self.config
        _check_training_boards(cfg, state, "state")
        _check_training_boards(cfg, next_state, "next_state")
        batch = state.shape[0]
        if next_state.shape != state.shape:
            raise ValueError(f"next_state shape {tuple(next_state.shape)} != state shape {tuple(state.shape)}")
        action = _check_actions(action, batch, self.device)
        state, next_state = state.to(self.device, torch.long), next_state.to(self.device, torch.long)

        _, h = self.encoder(state)
        board_feats = self.decoder.board_features(state)
        latent = self.latent_encoder(next_state, state)

        # Joint EqM term on the expert transition; targets use the stopped-gradient latent.
        x = torch.cat([latent.detach(), self._action_vector(action)], dim=-1)
        noise = torch.randn_like(x)
        gamma = torch.rand(batch, device=x.device, dtype=x.dtype)
        f = self.field(h, interpolate(x, noise, gamma))
        target = self._target(x, noise, gamma)
        lat = cfg.latent_dim
        loss_state = F.mse_loss(f[:, :lat], target[:, :lat])
        loss_action = F.mse_loss(f[:, lat:], target[:, lat:])

        recon_latent, recon_target = latent, next_state
        loss_whatif = torch.zeros((), device=x.device, dtype=x.dtype)
        if next_state_per_action is not None:
            loss_whatif, alt_latent, alt_board = self._whatif_terms(h, state, action, next_state, next_state_per_action)
            # The decoder runs once per row: a share of rows practise a non-expert successor instead.
            swap = torch.rand(batch, device=x.device) < cfg.whatif_recon_fraction
            recon_latent = torch.where(swap[:, None], alt_latent, latent)
            recon_target = torch.where(swap[:, None, None], alt_board, next_state)
        loss_recon = self._recon_loss(recon_latent, recon_target, board_feats, state)

        # One field evaluation at pure noise gives the denoised action estimate x̂ = ε - f(ε)/c(0).
        with torch.no_grad():
            eps = torch.randn_like(x)
            c0 = self._schedule(torch.zeros((), device=x.device, dtype=x.dtype))
            action_logits = (eps - self.field(h.detach(), eps) / c0)[:, lat:]

        loss = (cfg.state_loss_weight * loss_state + cfg.action_loss_weight * loss_action
                + cfg.recon_loss_weight * loss_recon + cfg.whatif_loss_weight * loss_whatif)
        return SnakeWorldEqMOutput(
            loss=loss, loss_state=loss_state.detach(), loss_action=loss_action.detach(),
            loss_recon=loss_recon.detach(), loss_whatif=loss_whatif.detach(),
            action_logits=action_logits, latent_next=latent,
        )

    def _whatif_terms(self, h, state, action, next_state, per_action):
        """EqM state-block loss for all 4 successors with the action held clean, plus one non-expert
        successor per sample (latent, board) for the decoder."""
        cfg = self.config
        _check_training_boards(cfg, per_action, "next_state_per_action", extra_dims=1)
        batch, num_actions = state.shape[0], cfg.num_actions
        if per_action.shape[:2] != (batch, num_actions) or per_action.shape[2:] != state.shape[1:]:
            raise ValueError(f"next_state_per_action must have shape ({batch}, {num_actions}, H, W), "
                             f"got {tuple(per_action.shape)}")
        per_action = per_action.to(self.device, torch.long)
        rows = torch.arange(batch, device=self.device)
        if not torch.equal(per_action[rows, action], next_state):
            raise ValueError("next_state must equal next_state_per_action[action] for every row")

        current = state.repeat_interleave(num_actions, dim=0)
        latents = self.latent_encoder(per_action.flatten(0, 1), current)  # (B·4, L)
        actions = torch.arange(num_actions, device=self.device).repeat(batch)
        z = latents.detach()
        noise = torch.randn_like(z)
        gamma = torch.rand(z.shape[0], device=z.device, dtype=z.dtype)
        x = torch.cat([interpolate(z, noise, gamma), self._action_vector(actions)], dim=-1)
        f = self.field(h.repeat_interleave(num_actions, dim=0), x)
        loss = F.mse_loss(f[:, : cfg.latent_dim], self._target(z, noise, gamma))

        # Decoder practice on a non-expert successor (deaths included), chosen at random per row.
        other = (action + torch.randint(1, num_actions, (batch,), device=self.device)) % num_actions
        alt_latent = latents.view(batch, num_actions, -1)[rows, other]
        return loss, alt_latent, per_action[rows, other]

    def _recon_loss(self, latent, target, board_feats, current):
        """Cross-entropy of the decoder from noised latents, up-weighting the (few) cells that change."""
        cfg = self.config
        noisy = latent + cfg.decoder_noise_std * torch.randn_like(latent) if self.training else latent
        return reconstruction_loss(self.decoder(noisy, board_feats), target, current, cfg.recon_changed_weight,
                                   dtype=latent.dtype)

    # ---- inference ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        obs,
        action=None,
        num_steps: int | None = None,
        step_size: float | None = None,
        momentum: float | None = None,
        adaptive_threshold: float | None = None,
        generator: torch.Generator | None = None,
        return_trajectory: bool = False,
        validate: bool = True,
        init_scale: float = 1.0,
        prob_draws: int = 0,
    ) -> SnakeWorldEqMSampleOutput:
        """Sample (next board, action) by NAG descent on the field from x₀ ~ N(0, init_scale² I).

        obs: SnakeState, list of SnakeState, numpy array or tensor, (H, W) or (B, H, W).
        action: None (sample it) or an int / (B,) actions to hold fixed: only the state block descends and
            the result is that action's predicted successor.
        num_steps / step_size / momentum / adaptive_threshold default to the config's eqm_* values.
        generator: a torch.Generator on the model's device, for reproducible noise.
        validate: run the game's legality check on every board (turn off in hot loops over known-good boards).
        init_scale: 1 is EqM's noise start. 0 starts every descent at the origin (the noise's mean): the
            sample becomes deterministic, the field's most central answer, and one such draw chooses moves
            about as well as a vote over several noise draws (docs/results/eval_10x10.json). Keep noise where
            diversity is the point (several rollouts, disagreement across seeds).
        prob_draws: K > 0 also runs K free descents per board from N(0, I) and returns `action_probs`, their
            votes smoothed by `config.action_prob_smoothing` (K times the field evaluations of one sample).
        """
        cfg = self.config
        init_scale = check_init_scale(init_scale)
        boards = prepare_boards(cfg, obs, self.device, validate)
        batch, lat = boards.shape[0], cfg.latent_dim
        num_steps, step_size, momentum, threshold = _check_sampler_args(
            cfg.eqm_sampling_steps if num_steps is None else num_steps,
            cfg.eqm_step_size if step_size is None else step_size,
            cfg.eqm_nag_momentum if momentum is None else momentum,
            cfg.eqm_adaptive_threshold if adaptive_threshold is None else adaptive_threshold,
        )

        _, h = self.encoder(boards)  # encoded once; only the cheap field runs per step
        x0 = init_scale * torch.randn(batch, self.sample_dim, generator=generator, device=self.device, dtype=self.dtype)
        mask = None
        if action is not None:
            held = _check_actions(action, batch, self.device)
            x0[:, lat:] = self._action_vector(held)
            mask = torch.cat([torch.ones(lat), torch.zeros(cfg.num_actions)]).to(x0)

        def field_fn(p, index):
            return self.field(h if index.numel() == batch else h[index], p)

        result = nag_descent(field_fn, x0, num_steps, step_size, momentum, threshold, mask, return_trajectory)
        latent, action_block = result.x[:, :lat], result.x[:, lat:]
        chosen = held if action is not None else action_block.argmax(-1)
        action_grad_norm = torch.zeros(batch, device=self.device) if action is not None else result.last_field[:, lat:].norm(dim=-1)
        next_board = self.decoder(latent, self.decoder.board_features(boards)).argmax(-1)
        # The game's rule: a terminal (all-EMPTY) board stays terminal, whatever the decoder would draw from it.
        next_board = next_board.masked_fill((boards == EMPTY).flatten(1).all(-1)[:, None, None], EMPTY)
        self._last_sample = (latent, boards)  # lets the seed's one-argument `from_latent(latent_next)` decode
        action_probs = None
        if prob_draws:
            action_probs = self._vote_probabilities(h, prob_draws, (num_steps, step_size, momentum, threshold),
                                                    generator)
        return SnakeWorldEqMSampleOutput(
            action=chosen, action_logits=action_block, latent_next=latent, next_board=next_board,
            num_steps=result.num_steps, grad_norm=result.grad_norm, action_grad_norm=action_grad_norm,
            trajectory=result.trajectory, action_probs=action_probs,
        )

    def _vote_probabilities(self, h: torch.Tensor, draws: int, descent: tuple, generator) -> torch.Tensor:
        """(B, 4): how often `draws` free descents from N(0, I) settle on each action, smoothed."""
        if isinstance(draws, bool) or not isinstance(draws, int) or not 0 < draws <= 1024:
            raise ValueError(f"prob_draws must be an integer from 1 to 1024, got {draws!r}")
        cfg, batch = self.config, h.shape[0]
        repeated = h.repeat_interleave(draws, dim=0)
        x0 = torch.randn(batch * draws, self.sample_dim, generator=generator, device=self.device, dtype=self.dtype)

        def field_fn(p, index):
            return self.field(repeated if index.numel() == repeated.shape[0] else repeated[index], p)

        settled = nag_descent(field_fn, x0, *descent, None, False).x[:, cfg.latent_dim:].argmax(-1)
        votes = F.one_hot(settled, cfg.num_actions).view(batch, draws, cfg.num_actions).sum(1).to(self.dtype)
        smoothing = cfg.action_prob_smoothing
        return (votes + smoothing) / (draws + cfg.num_actions * smoothing)

    def select_action(self, obs, **sample_kwargs) -> torch.Tensor:
        """The sampled action(s) (B,) long (lerobot-style policy API)."""
        return self.sample(obs, **sample_kwargs).action


# --------------------------------------------------------------------------------------------------------------
# Behaviour-cloning baseline
# --------------------------------------------------------------------------------------------------------------


class SnakePolicyBaseline(SnakePreTrainedModel):
    """The same board encoder with a plain classification head trained by cross-entropy."""

    config_class = SnakePolicyBaselineConfig

    def __init__(self, config: SnakePolicyBaselineConfig):
        super().__init__(config)
        self.encoder = SnakeBoardEncoder(config)
        self.head = nn.Sequential(
            nn.Linear(config.d_model, config.head_hidden_dim), nn.GELU(), nn.Linear(config.head_hidden_dim, config.num_actions)
        )
        self.post_init()

    def forward(self, state: torch.Tensor, action: torch.Tensor | None = None, **kwargs) -> SnakePolicyBaselineOutput:
        """Action logits (B, 4) for boards (B, H, W); cross-entropy loss when the expert `action` is given."""
        _check_training_boards(self.config, state, "state")
        logits = self.head(self.encoder(state.to(self.device, torch.long))[1])
        loss = None
        if action is not None:
            loss = F.cross_entropy(logits, _check_actions(action, state.shape[0], self.device))
        return SnakePolicyBaselineOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def select_action(self, obs, validate: bool = True) -> torch.Tensor:
        """Greedy action(s) (B,) long for one board or a batch (SnakeState, numpy or torch)."""
        boards = prepare_boards(self.config, obs, self.device, validate)
        return self.head(self.encoder(boards)[1]).argmax(-1)


# --------------------------------------------------------------------------------------------------------------
# Auto classes
# --------------------------------------------------------------------------------------------------------------

# save_pretrained then writes auto_map and copies this file, the configuration and eqm.py next to the weights.
SnakeWorldEqMConfig.register_for_auto_class()
SnakeWorldEqM.register_for_auto_class("AutoModel")
SnakePolicyBaselineConfig.register_for_auto_class()
SnakePolicyBaseline.register_for_auto_class("AutoModel")

if __name__ == "snake_world_eqm.modeling_snake_world_eqm":
    # Only the installed package registers; a copy loaded as remote code must not re-point the mapping.
    AutoConfig.register(SnakeWorldEqMConfig.model_type, SnakeWorldEqMConfig, exist_ok=True)
    AutoModel.register(SnakeWorldEqMConfig, SnakeWorldEqM, exist_ok=True)
    AutoConfig.register(SnakePolicyBaselineConfig.model_type, SnakePolicyBaselineConfig, exist_ok=True)
    AutoModel.register(SnakePolicyBaselineConfig, SnakePolicyBaseline, exist_ok=True)


__all__ = [
    "SnakeWorldEqM",
    "SnakePolicyBaseline",
    "SnakePreTrainedModel",
    "SnakeWorldEqMOutput",
    "SnakeWorldEqMSampleOutput",
    "SnakePolicyBaselineOutput",
    "prepare_boards",
    "reconstruction_loss",
]
