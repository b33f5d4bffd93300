"""Configuration of the LM bridge: a causal LM that reads the EqM world model's prediction."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
from snake_world_eqm.game.state import NUM_ACTIONS

from .args import DEFAULT_PROMPT  # defined beside the flags, which load without transformers

# Per action, the what-if features are (predicted terminal, predicted growth): see
# `SnakeLMBridge.world_features`.
WHATIF_FEATURES_PER_ACTION = 2


class SnakeLMBridgeConfig(PreTrainedConfig):
    r"""
    Configuration of [`SnakeLMBridge`].

    The bridge maps the world model's prediction (`latent_next`, `action_logits`, optionally the encoder's
    hidden state and the what-if predictions of all four actions) to `num_prefix_tokens` embeddings in the
    language model's hidden size, which are prepended to the token embeddings.

    Args:
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the causal language model (any `AutoModelForCausalLM` type; Llama by default).
        eqm_config (`dict` or `SnakeWorldEqMConfig`, *optional*):
            Config of the embedded world model. `None` means no embedded world model: the prefix features are
            then passed explicitly to `forward`/`generate`.
        latent_dim (`int`): size of `latent_next`; taken from `eqm_config` when there is one.
        encoder_hidden_dim (`int`): size of the encoder's hidden state; taken from `eqm_config.d_model`.
        use_encoder_hidden (`bool`): also feed the encoder's hidden state of the current board. Deadly moves are a
            function of the current board, which `latent_next` alone need not carry.
        use_whatif (`bool`): also feed, for each action, whether the world model predicts a terminal board and
            a longer snake when that action is held fixed.
        num_prefix_tokens (`int`): how many prefix embeddings the projector produces.
        projector_hidden_dim (`int`, *optional*): width of the projector's hidden layer (LM hidden size if None).
        projector_hidden_act (`str`): activation between the projector's two linear layers.
        freeze_language_model (`bool`): train the projector only.
        prompt (`str`): the default question put after the prefix.
        max_new_tokens (`int`): default answer length limit for `generate`.
    """

    model_type = "snake_lm_bridge"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "eqm_config": SubConfigSpec(config_class=SnakeWorldEqMConfig, optional=True),
    }

    text_config: dict | PreTrainedConfig | None = None
    eqm_config: dict | PreTrainedConfig | None = None
    latent_dim: int = 64
    encoder_hidden_dim: int = 128
    num_actions: int = NUM_ACTIONS
    use_encoder_hidden: bool = True
    use_whatif: bool = True
    num_prefix_tokens: int = 4
    projector_hidden_dim: int | None = None
    projector_hidden_act: str = "gelu"
    freeze_language_model: bool = False
    prompt: str = DEFAULT_PROMPT
    max_new_tokens: int = 24
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.eqm_config is not None:
            # One source of truth for the feature sizes: the world model that produces them.
            self.latent_dim = int(self.eqm_config.latent_dim)
            self.encoder_hidden_dim = int(self.eqm_config.d_model)
        # Same workaround as LLaVA: tying is a property of the text model saved in its own config.
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True
        self._validate_bridge_fields()

    def _validate_bridge_fields(self) -> None:
        positive = {
            "latent_dim": self.latent_dim,
            "num_actions": self.num_actions,
            "num_prefix_tokens": self.num_prefix_tokens,
            "max_new_tokens": self.max_new_tokens,
        }
        if self.use_encoder_hidden:
            positive["encoder_hidden_dim"] = self.encoder_hidden_dim
        if self.projector_hidden_dim is not None:
            positive["projector_hidden_dim"] = self.projector_hidden_dim
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SnakeLMBridgeConfig.{name} must be a positive integer, got {value!r}")
        if self.num_actions != NUM_ACTIONS:
            raise ValueError(
                f"SnakeLMBridgeConfig.num_actions must be {NUM_ACTIONS} (Snake), got {self.num_actions}"
            )

    @property
    def feature_dim(self) -> int:
        """Length of the feature vector the projector reads."""
        dim = self.latent_dim + self.num_actions
        if self.use_encoder_hidden:
            dim += self.encoder_hidden_dim
        if self.use_whatif:
            dim += self.num_actions * WHATIF_FEATURES_PER_ACTION
        return dim


__all__ = ["SnakeLMBridgeConfig", "DEFAULT_PROMPT", "NUM_ACTIONS", "WHATIF_FEATURES_PER_ACTION"]
