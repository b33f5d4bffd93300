"""Configurations of the Snake EqM world model and of its behaviour-cloning baseline.

Self-contained (transformers convention): this file imports nothing from the rest of the package,
so it can be copied next to a checkpoint and loaded with ``trust_remote_code=True``.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# Mirrors snake_world_eqm.game (kept literal here so this file stays self-contained).
_NUM_CELL_CLASSES = 12
_NUM_ACTIONS = 4
_MIN_BOARD_SIZE, _MAX_BOARD_SIZE = 4, 32

_SCHEDULES = ("linear", "truncated", "piecewise")
_CNN_MODES = ("replace", "append")
_ENERGY_TYPES = ("dot_product", "squared_l2")


def _check_encoder_fields(cfg) -> None:
    """Shared checks of the encoder fields (both configs own the same encoder)."""
    for name in ("board_height", "board_width"):
        value = getattr(cfg, name)
        if not _MIN_BOARD_SIZE <= value <= _MAX_BOARD_SIZE:
            raise ValueError(f"{name} must be in [{_MIN_BOARD_SIZE}, {_MAX_BOARD_SIZE}], got {value}")
    if cfg.num_cell_classes != _NUM_CELL_CLASSES:
        raise ValueError(f"num_cell_classes must be {_NUM_CELL_CLASSES} (the board encoding), "
                         f"got {cfg.num_cell_classes}")
    if cfg.num_actions != _NUM_ACTIONS:
        raise ValueError(f"num_actions must be {_NUM_ACTIONS}, got {cfg.num_actions}")
    for name in ("d_model", "num_heads"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.num_layers < 0 or cfg.cnn_layers < 0:
        raise ValueError("num_layers and cnn_layers must be >= 0")
    if cfg.d_model % cfg.num_heads:
        raise ValueError(f"d_model ({cfg.d_model}) must be divisible by num_heads ({cfg.num_heads})")
    if cfg.cnn_mode not in _CNN_MODES:
        raise ValueError(f"cnn_mode must be one of {_CNN_MODES}, got {cfg.cnn_mode!r}")
    if cfg.use_cnn and cfg.cnn_layers < 1:
        raise ValueError("use_cnn=True needs cnn_layers >= 1")
    if not cfg.use_cnn and cfg.num_layers < 1:
        raise ValueError("a transformer encoder (use_cnn=False) needs num_layers >= 1")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")


@strict
class SnakeWorldEqMConfig(PreTrainedConfig):
    r"""
    Configuration of [`SnakeWorldEqM`], a Snake world model trained by Equilibrium Matching (EqM) that predicts
    the next board (as a latent) and the action jointly.

    The plain defaults are the design document's (seed) defaults. They are a GPU-sized transformer and a
    sampler (λ=1, η=0.1, μ=0.9) that converges slowly on an ideal field; see [`~SnakeWorldEqMConfig.recommended`]
    and [`~SnakeWorldEqMConfig.cpu_small`] for the presets we train with.

    Encoder:
        board_height, board_width (`int`, 10): board size (4–32). With `fixed_board_size=True` the model refuses
            other sizes; with `False` the same weights run on any size 4–32 (the code path never depends on it).
        d_model (128), num_layers (3), num_heads (4), dropout (0.1), ffn_dim (`None` → 4·d_model): transformer over
            cells with learned 2-D (row + column) positional embeddings.
        use_cnn (False), cnn_mode ("replace" | "append"), cnn_channels (`None` → d_model), cnn_layers (3):
            residual CNN over the cell embeddings; "replace" uses it instead of the transformer, "append" adds its
            features to every cell token before the transformer.
    Latent and decoder:
        latent_dim (64): size of a board's latent, layer-normalised without affine so it lives on the scale of N(0, I).
        latent_hidden_dim (`None` → d_model): width of the per-cell latent encoder.
        decoder_channels (64), decoder_layers (3): cell-wise conv decoder over the *current* board, modulated by
            the latent (the next board differs from the current one in ≤ 5 cells).
        decoder_noise_std (0.1): the decoder is trained on target latents plus this much Gaussian noise, so sampled
            (slightly off) latents still decode.
        recon_changed_weight (4.0): extra cross-entropy weight on cells that change between the boards.
        whatif_recon_fraction (0.5): with `next_state_per_action`, the share of rows whose decoder target is a
            random non-expert successor (deaths included) instead of the expert's (one decoder pass per row).
    EqM field and objective:
        eqm_hidden_dim (128), eqm_num_layers (3): shared MLP of the gradient field f(h, z, a); separate state and
            action heads that both see h again.
        field_residual (True): the field is `net(h, x) + λ·x`; for the linear schedule the network then only
            has to output -λ·E[x | x_γ, h] (a clean estimate), which trains much faster than the raw field.
        gradient_schedule ("linear" | "truncated" | "piecewise"), gradient_multiplier λ (1.0), schedule_a (0.8),
            schedule_b (1.5): c(γ), see `snake_world_eqm.eqm.gradient_scale`.
        action_scale (2.0): the action block is `action_scale · one_hot(a)`; 2 gives per-dimension RMS 1 over 4
            actions, the same as the normalised latent.
        state_loss_weight, action_loss_weight, recon_loss_weight, whatif_loss_weight (all 1.0): weights of the
            separately reported loss terms (each is a per-dimension mean, so they are already comparable).
    Sampling:
        eqm_sampling_steps (10), eqm_step_size η (0.1), eqm_nag_momentum μ (0.9), eqm_adaptive_threshold (None):
            NAG descent from N(0, I); a sample stops on its own when ‖f‖ < threshold.
    Explicit energy:
        use_explicit_energy (False), energy_type ("dot_product" | "squared_l2"): the field is the autograd
            gradient of a scalar energy E(h, x) = x·g(h, x) or -½‖g(h, x)‖².

    Example:
    ```python
    >>> from snake_world_eqm import SnakeWorldEqMConfig, SnakeWorldEqM
    >>> model = SnakeWorldEqM(SnakeWorldEqMConfig.cpu_small())
    ```
    """

    model_type = "snake_world_eqm"

    board_height: int = 10
    board_width: int = 10
    fixed_board_size: bool = True
    num_cell_classes: int = _NUM_CELL_CLASSES
    num_actions: int = _NUM_ACTIONS
    # encoder
    d_model: int = 128
    num_layers: int = 3
    num_heads: int = 4
    dropout: float = 0.1
    ffn_dim: int | None = None
    use_cnn: bool = False
    cnn_mode: str = "replace"
    cnn_channels: int | None = None
    cnn_layers: int = 3
    # latent + decoder
    latent_dim: int = 64
    latent_hidden_dim: int | None = None
    decoder_channels: int = 64
    decoder_layers: int = 3
    decoder_noise_std: float = 0.1
    recon_changed_weight: float = 4.0
    whatif_recon_fraction: float = 0.5
    # EqM field + objective
    eqm_hidden_dim: int = 128
    eqm_num_layers: int = 3
    field_residual: bool = True
    gradient_schedule: str = "linear"
    gradient_multiplier: float = 1.0
    schedule_a: float = 0.8
    schedule_b: float = 1.5
    action_scale: float = 2.0
    state_loss_weight: float = 1.0
    action_loss_weight: float = 1.0
    recon_loss_weight: float = 1.0
    whatif_loss_weight: float = 1.0
    # sampling
    eqm_sampling_steps: int = 10
    eqm_step_size: float = 0.1
    eqm_nag_momentum: float = 0.9
    eqm_adaptive_threshold: float | None = None
    # explicit energy
    use_explicit_energy: bool = False
    energy_type: str = "dot_product"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        _check_encoder_fields(self)
        if self.latent_dim < 1 or self.eqm_hidden_dim < 1 or self.eqm_num_layers < 1:
            raise ValueError("latent_dim, eqm_hidden_dim and eqm_num_layers must be >= 1")
        if self.decoder_channels < 1 or self.decoder_layers < 0:
            raise ValueError("decoder_channels must be >= 1 and decoder_layers >= 0")
        if not 0.0 <= self.whatif_recon_fraction <= 1.0:
            raise ValueError(f"whatif_recon_fraction must be in [0, 1], got {self.whatif_recon_fraction}")
        if self.gradient_schedule not in _SCHEDULES:
            raise ValueError(f"gradient_schedule must be one of {_SCHEDULES}, got {self.gradient_schedule!r}")
        if not 0.0 < self.schedule_a < 1.0:
            raise ValueError(f"schedule_a must be in (0, 1), got {self.schedule_a}")
        if self.gradient_multiplier <= 0 or self.action_scale <= 0:
            raise ValueError("gradient_multiplier and action_scale must be > 0")
        if self.eqm_sampling_steps < 1 or self.eqm_step_size <= 0:
            raise ValueError("eqm_sampling_steps must be >= 1 and eqm_step_size > 0")
        if not 0.0 <= self.eqm_nag_momentum < 1.0:
            raise ValueError(f"eqm_nag_momentum must be in [0, 1), got {self.eqm_nag_momentum}")
        if self.eqm_adaptive_threshold is not None and self.eqm_adaptive_threshold <= 0:
            raise ValueError("eqm_adaptive_threshold must be > 0 or None")
        if self.energy_type not in _ENERGY_TYPES:
            raise ValueError(f"energy_type must be one of {_ENERGY_TYPES}, got {self.energy_type!r}")
        super().__post_init__(**kwargs)

    @classmethod
    def recommended(cls, **overrides) -> SnakeWorldEqMConfig:
        """Seed-sized encoder with the objective and sampler we recommend for a trained model.

        With the linear schedule the ideal field is λ·(x - E[x | x_γ]), so one descent step contracts the
        error by |1 - ηλ|. The seed's λ=1, η=0.1 contracts by 0.9 per step (10 steps leave 35% of the error);
        λ=4, η=0.125 (ηλ=0.5) with light momentum leaves < 0.1% after 10 steps.
        Measured on a cpu_small model after ~7 CPU-minutes of training (A* data, 10x10, 2,000 held-out rows):
        this sampler, η=0.25/μ=0/4 steps and η=0.1/μ=0.9 all gave the same accuracy within 0.7 points, and
        `eqm_adaptive_threshold=2.0` cut the mean steps from 10 to 6.2 at no cost in accuracy.
        """
        preset = dict(gradient_multiplier=4.0, eqm_step_size=0.125, eqm_nag_momentum=0.2)
        preset.update(overrides)
        return cls(**preset)

    @classmethod
    def cpu_small(cls, **overrides) -> SnakeWorldEqMConfig:
        """Small, fast config for a ≤ 30-minute training on a 2-core CPU (CNN encoder, recommended sampler).

        A d_model 128 × 3 transformer trains at ~120 samples/s on such a CPU, a small CNN at ~1300 (DESIGN.md).
        Trained with AdamW (lr 2e-3, weight decay 0.01, grad-norm clip 1), batch 256, with
        `next_state_per_action`: after 751 steps (192k samples, 10x10 A* data, one contended CPU thread) it
        scored on 2,000 held-out rows: action accuracy 95.8% (same-encoder baseline 97.7% after 915 steps),
        next board exact (food respawn masked) 94.9%, coherent with its own action 99.0%, what-if exact 99.5%.
        """
        preset = dict(
            d_model=64, use_cnn=True, cnn_mode="replace", cnn_channels=64, cnn_layers=4, dropout=0.0,
            latent_dim=32, latent_hidden_dim=64, decoder_channels=32, decoder_layers=2,
            eqm_hidden_dim=128, eqm_num_layers=3, gradient_multiplier=4.0, eqm_step_size=0.125,
            eqm_nag_momentum=0.2,
        )
        preset.update(overrides)
        return cls(**preset)


@strict
class SnakePolicyBaselineConfig(PreTrainedConfig):
    r"""
    Configuration of [`SnakePolicyBaseline`]: the same encoder as [`SnakeWorldEqM`] with a plain classification
    head trained by cross-entropy (behaviour cloning). Encoder fields mean what they mean in
    [`SnakeWorldEqMConfig`]; `head_hidden_dim` (128) is the width of the classification MLP.
    Use [`~SnakePolicyBaselineConfig.from_eqm_config`] to get the encoder of a given EqM config.
    """

    model_type = "snake_policy_baseline"

    board_height: int = 10
    board_width: int = 10
    fixed_board_size: bool = True
    num_cell_classes: int = _NUM_CELL_CLASSES
    num_actions: int = _NUM_ACTIONS
    d_model: int = 128
    num_layers: int = 3
    num_heads: int = 4
    dropout: float = 0.1
    ffn_dim: int | None = None
    use_cnn: bool = False
    cnn_mode: str = "replace"
    cnn_channels: int | None = None
    cnn_layers: int = 3
    head_hidden_dim: int = 128
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        _check_encoder_fields(self)
        if self.head_hidden_dim < 1:
            raise ValueError(f"head_hidden_dim must be >= 1, got {self.head_hidden_dim}")
        super().__post_init__(**kwargs)

    @classmethod
    def from_eqm_config(cls, eqm_config: SnakeWorldEqMConfig, **overrides) -> SnakePolicyBaselineConfig:
        """The baseline with exactly the encoder of `eqm_config` (the fair comparison)."""
        keys = (
            "board_height", "board_width", "fixed_board_size", "d_model", "num_layers", "num_heads", "dropout",
            "ffn_dim", "use_cnn", "cnn_mode", "cnn_channels", "cnn_layers", "initializer_range",
        )
        fields = {k: getattr(eqm_config, k) for k in keys}
        fields["head_hidden_dim"] = eqm_config.eqm_hidden_dim
        fields.update(overrides)
        return cls(**fields)


__all__ = ["SnakeWorldEqMConfig", "SnakePolicyBaselineConfig"]
