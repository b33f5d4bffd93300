"""Configurations of the Snake EqM world model and of its behaviour-cloning baseline.

It reads the game's constants from `snake_world_eqm.game` (as the modeling file does), so a checkpoint
loaded with ``trust_remote_code=True`` needs the package installed.
"""

from __future__ import annotations

import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from snake_world_eqm.game.encoding import NUM_CELL_CLASSES
from snake_world_eqm.game.state import MAX_BOARD_SIZE, MIN_BOARD_SIZE, NUM_ACTIONS

_SCHEDULES = ("linear", "truncated", "piecewise")
_CNN_MODES = ("replace", "append")
_ENERGY_TYPES = ("dot_product", "squared_l2")


# Type and range of every field: (kind, low, high), bounds inclusive unless named in _OPEN_BELOW/_OPEN_ABOVE.
# The ceilings keep a config.json from asking for absurd models (a million CNN layers hung a load at 10 GB);
# they sit far above anything we train. `None` is allowed exactly for the fields whose default is None.
_INT, _FLOAT, _BOOL = "int", "float", "bool"
_ENCODER_FIELDS = {
    "board_height": (_INT, MIN_BOARD_SIZE, MAX_BOARD_SIZE),
    "board_width": (_INT, MIN_BOARD_SIZE, MAX_BOARD_SIZE),
    "fixed_board_size": (_BOOL, None, None),
    "num_cell_classes": (_INT, NUM_CELL_CLASSES, NUM_CELL_CLASSES),
    "num_actions": (_INT, NUM_ACTIONS, NUM_ACTIONS),
    "d_model": (_INT, 1, 4096),
    "num_layers": (_INT, 0, 64),
    "num_heads": (_INT, 1, 256),
    "dropout": (_FLOAT, 0.0, 1.0),
    "ffn_dim": (_INT, 1, 65536),
    "use_cnn": (_BOOL, None, None),
    "cnn_channels": (_INT, 1, 4096),
    "cnn_layers": (_INT, 0, 64),
    "initializer_range": (_FLOAT, 0.0, 10.0),
}
_EQM_FIELDS = {
    **_ENCODER_FIELDS,
    "latent_dim": (_INT, 1, 4096),
    "latent_hidden_dim": (_INT, 1, 4096),
    "decoder_channels": (_INT, 1, 4096),
    "decoder_layers": (_INT, 0, 64),
    "decoder_noise_std": (_FLOAT, 0.0, 100.0),
    "decoder_global_context": (_BOOL, None, None),
    "food_head": (_BOOL, None, None),
    "recon_changed_weight": (_FLOAT, 0.0, 1e6),
    "whatif_recon_fraction": (_FLOAT, 0.0, 1.0),
    "eqm_hidden_dim": (_INT, 1, 8192),
    "eqm_num_layers": (_INT, 1, 64),
    "field_residual": (_BOOL, None, None),
    "gradient_multiplier": (_FLOAT, 0.0, 1e3),
    "schedule_a": (_FLOAT, 0.0, 1.0),
    "schedule_b": (_FLOAT, -1e3, 1e3),
    "action_scale": (_FLOAT, 0.0, 1e3),
    "state_loss_weight": (_FLOAT, 0.0, 1e6),
    "action_loss_weight": (_FLOAT, 0.0, 1e6),
    "recon_loss_weight": (_FLOAT, 0.0, 1e6),
    "whatif_loss_weight": (_FLOAT, 0.0, 1e6),
    "eqm_sampling_steps": (_INT, 1, 10_000),
    "eqm_step_size": (_FLOAT, 0.0, 100.0),
    "eqm_nag_momentum": (_FLOAT, 0.0, 1.0),
    "eqm_adaptive_threshold": (_FLOAT, 0.0, 1e6),
    "action_prob_smoothing": (_FLOAT, 0.0, 1e3),
    "use_explicit_energy": (_BOOL, None, None),
}
_BASELINE_FIELDS = {**_ENCODER_FIELDS, "head_hidden_dim": (_INT, 1, 8192)}
_OPEN_BELOW = {"initializer_range", "gradient_multiplier", "schedule_a", "action_scale", "eqm_step_size",
               "eqm_adaptive_threshold", "action_prob_smoothing"}
_OPEN_ABOVE = {"dropout", "schedule_a", "eqm_nag_momentum"}
_CHOICES = {"cnn_mode": _CNN_MODES, "gradient_schedule": _SCHEDULES, "energy_type": _ENERGY_TYPES}


def _check_field(cfg, name: str, spec: tuple) -> None:
    """Raise ValueError naming the field when its value has the wrong type or lies outside its range."""
    kind, low, high = spec
    value = getattr(cfg, name)
    if value is None and type(cfg).__dataclass_fields__[name].default is None:
        return
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a{'n integer' if kind == _INT else ' number'}, got {value!r}")
    if kind == _INT and not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    below = value <= low if name in _OPEN_BELOW else value < low
    above = value >= high if name in _OPEN_ABOVE else value > high
    if below or above:
        left, right = "(" if name in _OPEN_BELOW else "[", ")" if name in _OPEN_ABOVE else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")


def _check_fields(cfg, specs: dict) -> None:
    for name, spec in specs.items():
        _check_field(cfg, name, spec)
    for name, choices in _CHOICES.items():
        if hasattr(cfg, name) and getattr(cfg, name) not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {getattr(cfg, name)!r}")


def _check_encoder_fields(cfg) -> None:
    """Cross-field checks of the encoder (both configs own the same encoder)."""
    if cfg.d_model % cfg.num_heads:
        raise ValueError(f"d_model ({cfg.d_model}) must be divisible by num_heads ({cfg.num_heads})")
    if cfg.use_cnn and cfg.cnn_layers < 1:
        raise ValueError("use_cnn=True needs cnn_layers >= 1")
    if not cfg.use_cnn and cfg.num_layers < 1:
        raise ValueError("a transformer encoder (use_cnn=False) needs num_layers >= 1")


def _coerce_floats(cfg, specs: dict) -> None:
    """JSON writes 1.0 as 1: accept an int for a float field (the strict dataclass wants a float)."""
    for name, (kind, _, _) in specs.items():
        value = getattr(cfg, name)
        if kind == _FLOAT and isinstance(value, int) and not isinstance(value, bool):
            setattr(cfg, name, float(value))


class _ModelTypeCheck:
    """`from_pretrained` of a folder saved by another model class is refused, not silently converted."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        config_dict, _ = cls.get_config_dict(pretrained_model_name_or_path, **{
            key: kwargs[key] for key in ("cache_dir", "force_download", "local_files_only", "token", "revision",
                                         "subfolder") if key in kwargs})
        found = config_dict.get("model_type")
        if found is not None and found != cls.model_type:
            raise ValueError(f"{pretrained_model_name_or_path} holds a {found!r} model, not {cls.model_type!r}: "
                             f"load it with the class made for {found!r}")
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)


@strict
class SnakeWorldEqMConfig(_ModelTypeCheck, PreTrainedConfig):
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
        decoder_global_context (False): each decoder block is also modulated by its input pooled over the whole
            board. A 3x3 conv stack sees only a few cells, so without it the far-away tail learns "did the snake
            eat?" from the latent's food part, which draws from noise rarely hold; with it, that is read where it
            happens (the new head on the old food) and carried to every cell (`training.decoder_tune`).
        food_head (False): a small conv head over the decoder's features that gives, for a move that eats, where
            the new food appears (`SnakeWorldEqM.food_log_weights`, sampled by the dream). The decoder's own FOOD
            channel learned the food the encoder's latent names; a draw from the descent names none, so the
            decoder's belief is narrow there. The head is trained alone on descent latents
            (`snake-eqm tune-decoder --part food-head`), leaving every board the decoder predicts unchanged.
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
        action_prob_smoothing (0.5): pseudo-count that turns the votes of `sample(prob_draws=K)`'s noise draws
            into action probabilities, (votes + s) / (K + 4s); fitted on held-out rows for a trained model
            (`evaluation.calibration.fit_vote_smoothing`, benchmarks/calibration.py).
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
    num_cell_classes: int = NUM_CELL_CLASSES
    num_actions: int = NUM_ACTIONS
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
    decoder_global_context: bool = False
    food_head: bool = False
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
    action_prob_smoothing: float = 0.5
    # explicit energy
    use_explicit_energy: bool = False
    energy_type: str = "dot_product"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.validate_fields()
        super().__post_init__(**kwargs)

    def validate_fields(self) -> None:
        """Type and range of every field, then the cross-field rules; ValueError names the first bad field."""
        _coerce_floats(self, _EQM_FIELDS)
        _check_fields(self, _EQM_FIELDS)
        _check_encoder_fields(self)

    @classmethod
    def recommended(cls, **overrides) -> SnakeWorldEqMConfig:
        """Seed-sized encoder with the objective and sampler we recommend for a trained model.

        With the linear schedule the ideal field is λ·(x - E[x | x_γ]), so one descent step contracts the
        error by |1 - ηλ|. The seed's λ=1, η=0.1 contracts by 0.9 per step (10 steps leave 35% of the error);
        λ=4, η=0.125 (ηλ=0.5) with light momentum leaves < 0.1% after 10 steps (how it was chosen:
        docs/results/README.md, experiments log).
        """
        preset = dict(gradient_multiplier=4.0, eqm_step_size=0.125, eqm_nag_momentum=0.2)
        preset.update(overrides)
        return cls(**preset)

    @classmethod
    def cpu_small(cls, **overrides) -> SnakeWorldEqMConfig:
        """Small, fast config for a ≤ 30-minute training on a 2-core CPU (CNN encoder, recommended sampler).

        A CNN encoder trains about ten times faster per sample than the seed's d_model 128 × 3 transformer
        on a CPU (DESIGN.md); what this preset reached is in docs/results/README.md, experiments log.
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
class SnakePolicyBaselineConfig(_ModelTypeCheck, PreTrainedConfig):
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
    num_cell_classes: int = NUM_CELL_CLASSES
    num_actions: int = NUM_ACTIONS
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
        self.validate_fields()
        super().__post_init__(**kwargs)

    def validate_fields(self) -> None:
        """Type and range of every field, then the cross-field rules; ValueError names the first bad field."""
        _coerce_floats(self, _BASELINE_FIELDS)
        _check_fields(self, _BASELINE_FIELDS)
        _check_encoder_fields(self)

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
