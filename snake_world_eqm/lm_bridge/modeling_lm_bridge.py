"""The LM bridge: a causal LM that reads the EqM world model's prediction through prefix embeddings.

`final_action = language_model(latent_next, action_logits)` from the seed, made concrete: a LLaVA-style
projector maps `[latent_next, action_logits, (encoder hidden), (what-if flags)]` to `k` embeddings in the
LM's hidden size; they are prepended to the token embeddings through `inputs_embeds`, the attention mask
is extended, and the labels are -100 over them, so the loss is only on text. The LM answers in words and
`parse_answer` turns the answer back into an action.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from snake_world_eqm.game import EMPTY, HEAD_ALONE
from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM, prepare_boards

from .configuration_lm_bridge import WHATIF_FEATURES_PER_ACTION, SnakeLMBridgeConfig
from .text import IGNORE_INDEX, ParsedAnswer, parse_answer, prompt_ids

# Cell codes >= HEAD_ALONE are snake cells (docs/ARCHITECTURE.md, observation encoding).
_FIRST_SNAKE_CODE = HEAD_ALONE


@dataclass
class SnakeWorldFeatures(ModelOutput):
    """What the world model tells the LM about a batch of boards (all on the bridge's device)."""

    latent_next: torch.FloatTensor | None = None
    action_logits: torch.FloatTensor | None = None
    encoder_hidden: torch.FloatTensor | None = None
    whatif: torch.FloatTensor | None = None
    eqm_action: torch.LongTensor | None = None


@dataclass
class SnakeLMBridgeOutput(ModelOutput):
    """`logits` cover the text positions only (the prefix positions are dropped)."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    prefix_embeds: torch.FloatTensor | None = None


@dataclass
class SnakeLMBridgeGenerateOutput(ModelOutput):
    """`sequences` hold the new tokens only, never the prefix or the prompt."""

    sequences: torch.LongTensor | None = None
    texts: list[str] | None = None
    features: SnakeWorldFeatures | None = None


@dataclass
class SnakeLMBridgeDecision(ModelOutput):
    """`action` is the LM's parsed action, or the EqM action where the answer names none (`parsed_ok` False)."""

    action: torch.LongTensor | None = None
    eqm_action: torch.LongTensor | None = None
    parsed_ok: torch.BoolTensor | None = None
    answers: list[ParsedAnswer] | None = None
    texts: list[str] | None = None


class SnakeLMBridgeProjector(nn.Module):
    """LayerNorm → Linear → activation → Linear, reshaped to `num_prefix_tokens` embeddings.

    The LayerNorm puts the latent, the logits and the 0/1 what-if flags on one scale before mixing.
    """

    def __init__(self, config: SnakeLMBridgeConfig, lm_hidden_size: int):
        super().__init__()
        hidden = config.projector_hidden_dim or lm_hidden_size
        self.num_prefix_tokens = config.num_prefix_tokens
        self.lm_hidden_size = lm_hidden_size
        self.norm = nn.LayerNorm(config.feature_dim)
        self.linear_1 = nn.Linear(config.feature_dim, hidden)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(hidden, config.num_prefix_tokens * lm_hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.linear_2(self.act(self.linear_1(self.norm(features))))
        return hidden.view(features.shape[0], self.num_prefix_tokens, self.lm_hidden_size)


class SnakeLMBridgePreTrainedModel(PreTrainedModel):
    config: SnakeLMBridgeConfig
    config_class = SnakeLMBridgeConfig
    base_model_prefix = "bridge"
    supports_gradient_checkpointing = False
    _supports_sdpa = True


class SnakeLMBridge(SnakeLMBridgePreTrainedModel):
    """World model (frozen) → projector → causal LM. Saves, loads and pushes like any transformers model.

    Args:
        config: the bridge config.
        language_model: an already loaded causal LM to use instead of building one from `config.text_config`
            (e.g. `AutoModelForCausalLM.from_pretrained(name)`); its config must be `config.text_config`.
        world_model: an already trained `SnakeWorldEqM` to embed (its config must be `config.eqm_config`).
    """

    def __init__(
        self,
        config: SnakeLMBridgeConfig,
        language_model: PreTrainedModel | None = None,
        world_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        if language_model is None:
            language_model = AutoModelForCausalLM.from_config(config.text_config)
        else:
            _mark_initialized(language_model)
            if getattr(language_model.config, "_attn_implementation", None) is None:
                # None would dispatch to attention without the causal mask (the LM would see the answer).
                language_model.config._attn_implementation = self.config._attn_implementation or "eager"
        embeddings = _input_embeddings(language_model)
        self.language_model = language_model
        self.projector = SnakeLMBridgeProjector(config, embeddings.weight.shape[1])
        self.world_model = self._build_world_model(config, world_model)
        # Not a module: saved beside the weights by save_pretrained, found again by from_pretrained.
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.post_init()
        self._apply_freezing()

    # ------------------------------------------------------------------ construction helpers

    @staticmethod
    def _build_world_model(
        config: SnakeLMBridgeConfig, world_model: PreTrainedModel | None
    ) -> nn.Module | None:
        if world_model is not None:
            if config.eqm_config is None:
                raise ValueError("a world_model was given but config.eqm_config is None; use from_parts()")
            _mark_initialized(world_model)
            return world_model
        if config.eqm_config is None:
            return None
        return SnakeWorldEqM(config.eqm_config)

    @classmethod
    def from_parts(
        cls,
        language_model: PreTrainedModel,
        world_model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        **config_kwargs,
    ) -> SnakeLMBridge:
        """Build a bridge around an existing LM (and world model); the projector starts fresh."""
        # Building a composite config resets the sub-configs' attention implementation to None, and an LM
        # whose config says None runs *non-causal* attention: keep the implementation the LM was loaded with.
        attn_implementation = getattr(language_model.config, "_attn_implementation", None)
        config = SnakeLMBridgeConfig(
            text_config=language_model.config,
            eqm_config=world_model.config if world_model is not None else None,
            **config_kwargs,
        )
        if attn_implementation is not None:
            config.text_config._attn_implementation = attn_implementation
        bridge = cls(config, language_model=language_model, world_model=world_model)
        bridge.tokenizer = tokenizer
        return bridge

    def _apply_freezing(self) -> None:
        # The world model is a fixed teacher of features: it is never trained through the bridge.
        if self.world_model is not None:
            self.world_model.requires_grad_(False)
            self.world_model.eval()
        self.language_model.requires_grad_(not self.config.freeze_language_model)

    def train(self, mode: bool = True) -> SnakeLMBridge:
        super().train(mode)
        # Dropout in the frozen parts would only add noise to the features and the answers.
        if self.world_model is not None:
            self.world_model.eval()
        if self.config.freeze_language_model:
            self.language_model.eval()
        return self

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    # ------------------------------------------------------------------ world model → features → prefix

    @torch.no_grad()
    def world_features(
        self, obs, generator: torch.Generator | None = None, validate: bool = True
    ) -> SnakeWorldFeatures:
        """Run the embedded world model on boards `(H,W)`/`(B,H,W)` (tensor, array or SnakeState).

        `validate=False` skips the per-board legality check (for known-legal boards, e.g. a dataset).
        """
        if self.world_model is None:
            raise ValueError(
                "this bridge has no embedded world model (config.eqm_config is None); pass features"
            )
        # Checked once here; the six world-model calls below reuse the checked tensor.
        board = prepare_boards(self.world_model.config, obs, self.device, validate)
        sample = self.world_model.sample(board, generator=generator, validate=False)
        features = SnakeWorldFeatures(
            latent_next=sample.latent_next.float(),
            action_logits=sample.action_logits.float(),
            eqm_action=sample.action.long(),
        )
        if self.config.use_encoder_hidden:
            features.encoder_hidden = self.world_model.encode(board, validate=False).float()
        if self.config.use_whatif:
            features.whatif = self._whatif(board, generator)
        return features

    def _whatif(self, board: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Per action, with the action held fixed: does the predicted next board end the game, grow the snake?"""
        length_now = (board >= _FIRST_SNAKE_CODE).sum(dim=(1, 2))
        flags = []
        for action in range(self.config.num_actions):
            sample = self.world_model.sample(board, action=action, generator=generator, validate=False)
            predicted = sample.next_board
            terminal = (predicted == EMPTY).flatten(1).all(dim=1)  # the terminal board is all EMPTY
            grows = (predicted >= _FIRST_SNAKE_CODE).sum(dim=(1, 2)) > length_now
            flags.append(torch.stack([terminal, grows & ~terminal], dim=-1))
        return torch.stack(flags, dim=1).flatten(1).float()

    def feature_vector(
        self,
        latent_next: torch.Tensor,
        action_logits: torch.Tensor,
        encoder_hidden: torch.Tensor | None = None,
        whatif: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Check and concatenate the features in the order the projector expects."""
        cfg = self.config
        batch = _check_2d("latent_next", latent_next, cfg.latent_dim, "config.latent_dim")
        _check_2d("action_logits", action_logits, cfg.num_actions, "config.num_actions", batch)
        parts = [latent_next, action_logits]
        parts += _optional_part(
            "encoder_hidden", encoder_hidden, "use_encoder_hidden", cfg, cfg.encoder_hidden_dim, batch
        )
        whatif_dim = cfg.num_actions * WHATIF_FEATURES_PER_ACTION
        if whatif is not None and whatif.ndim == 3:
            whatif = whatif.flatten(1)
        parts += _optional_part("whatif", whatif, "use_whatif", cfg, whatif_dim, batch)
        return torch.cat([p.to(self.projector.linear_1.weight.dtype) for p in parts], dim=-1)

    def prefix_embeddings(self, **features) -> torch.Tensor:
        """`(B, num_prefix_tokens, lm_hidden)` embeddings from the world model's features."""
        return self.projector(self.feature_vector(**features))

    # ------------------------------------------------------------------ training forward

    def forward(
        self,
        input_ids: torch.LongTensor,
        latent_next: torch.Tensor,
        action_logits: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        encoder_hidden: torch.Tensor | None = None,
        whatif: torch.Tensor | None = None,
        **lm_kwargs,
    ) -> SnakeLMBridgeOutput:
        """Teacher-forced pass over `[prefix; text]`; `labels` are for the text, the prefix gets -100."""
        prefix = self.prefix_embeddings(
            latent_next=latent_next, action_logits=action_logits, encoder_hidden=encoder_hidden, whatif=whatif
        )
        if input_ids.ndim != 2 or input_ids.shape[0] != prefix.shape[0]:
            raise ValueError(
                f"input_ids must have shape ({prefix.shape[0]}, T), got {tuple(input_ids.shape)}"
            )
        inputs_embeds, attention_mask = self._with_prefix(prefix, input_ids, attention_mask)
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(
                    f"labels must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(labels.shape)}"
                )
            ignore = labels.new_full((labels.shape[0], prefix.shape[1]), IGNORE_INDEX)
            labels = torch.cat([ignore, labels], dim=1)
        out = self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **lm_kwargs
        )
        return SnakeLMBridgeOutput(
            loss=out.loss, logits=out.logits[:, prefix.shape[1] :], prefix_embeds=prefix
        )

    def _with_prefix(
        self, prefix: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        token_embeds = self.get_input_embeddings()(input_ids)
        inputs_embeds = torch.cat([prefix.to(token_embeds.dtype), token_embeds], dim=1)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        prefix_mask = attention_mask.new_ones((attention_mask.shape[0], prefix.shape[1]))
        return inputs_embeds, torch.cat([prefix_mask, attention_mask], dim=1)

    # ------------------------------------------------------------------ answering

    @torch.no_grad()
    def generate(
        self,
        obs=None,
        prompt: str | None = None,
        *,
        features: SnakeWorldFeatures | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        max_new_tokens: int | None = None,
        generator: torch.Generator | None = None,
        **generate_kwargs,
    ) -> SnakeLMBridgeGenerateOutput:
        """The LM's answer to `prompt` about the world model's prediction for `obs` (greedy by default)."""
        tokenizer = self._require_tokenizer(tokenizer)
        features = self._features_for(obs, features, generator)
        prefix = self.prefix_embeddings(**_projector_inputs(features))
        # One prompt for the whole batch: no padding between the prefix and the text.
        ids = torch.tensor([prompt_ids(tokenizer, prompt or self.config.prompt)], device=prefix.device)
        ids = ids.expand(prefix.shape[0], -1)
        inputs_embeds, attention_mask = self._with_prefix(prefix, ids, None)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        generate_kwargs.setdefault("do_sample", False)
        sequences = self.language_model.generate(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad_id,
            **generate_kwargs,
        )
        texts = tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return SnakeLMBridgeGenerateOutput(sequences=sequences, texts=texts, features=features)

    @torch.no_grad()
    def decide(
        self,
        obs=None,
        prompt: str | None = None,
        *,
        features: SnakeWorldFeatures | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        generator: torch.Generator | None = None,
    ) -> SnakeLMBridgeDecision:
        """`final_action = language_model(latent_next, action_logits)`: the LM's parsed action per board."""
        out = self.generate(obs, prompt, features=features, tokenizer=tokenizer, generator=generator)
        answers = [parse_answer(text) for text in out.texts]
        eqm_action = out.features.eqm_action
        if eqm_action is None:
            eqm_action = out.features.action_logits.argmax(dim=-1)
        parsed_ok = torch.tensor([a.action is not None for a in answers], device=eqm_action.device)
        parsed = torch.tensor(
            [a.action if a.action is not None else -1 for a in answers], device=eqm_action.device
        )
        action = torch.where(parsed_ok, parsed, eqm_action.long())
        return SnakeLMBridgeDecision(
            action=action, eqm_action=eqm_action, parsed_ok=parsed_ok, answers=answers, texts=out.texts
        )

    def _features_for(self, obs, features: SnakeWorldFeatures | None, generator) -> SnakeWorldFeatures:
        if (obs is None) == (features is None):
            raise ValueError("pass exactly one of obs (boards for the world model) or features")
        if features is not None:
            return features
        return self.world_features(obs, generator=generator)

    def _require_tokenizer(self, tokenizer: PreTrainedTokenizerBase | None) -> PreTrainedTokenizerBase:
        tokenizer = tokenizer or self.tokenizer
        if tokenizer is None:
            raise ValueError(
                "no tokenizer: pass tokenizer=... or set bridge.tokenizer (saved with the bridge)"
            )
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token; generation would not know where an answer ends")
        return tokenizer

    # ------------------------------------------------------------------ saving with the tokenizer

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> SnakeLMBridge:
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model.tokenizer = _load_tokenizer(pretrained_model_name_or_path, kwargs)
        model._apply_freezing()
        return model


# ---------------------------------------------------------------------- module helpers


def _input_embeddings(language_model: nn.Module) -> nn.Module:
    """The LM's token embedding table; the bridge cannot work without one and `inputs_embeds`."""
    name = type(language_model).__name__
    getter = getattr(language_model, "get_input_embeddings", None)
    try:
        embeddings = getter() if getter is not None else None
    except (NotImplementedError, AttributeError):
        embeddings = None
    if embeddings is None or getattr(embeddings, "weight", None) is None or embeddings.weight.ndim != 2:
        raise ValueError(
            f"language model {name} has no input embeddings (get_input_embeddings() returned none); "
            "the bridge prepends its prefix through inputs_embeds and needs a token embedding table"
        )
    params = inspect.signature(language_model.forward).parameters
    if "inputs_embeds" not in params:
        raise ValueError(
            f"language model {name}.forward does not accept inputs_embeds; the bridge cannot prefix it"
        )
    return embeddings


def _mark_initialized(module: nn.Module) -> None:
    # post_init() would otherwise re-initialise the weights of a model that was passed in already trained.
    for sub in module.modules():
        sub._is_hf_initialized = True


def _check_2d(name: str, value: torch.Tensor, dim: int, what: str, batch: int | None = None) -> int:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.ndim != 2 or value.shape[1] != dim:
        raise ValueError(f"{name} must have shape (B, {dim}) ({what}), got {tuple(value.shape)}")
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"{name} has batch size {value.shape[0]} but latent_next has {batch}")
    return value.shape[0]


def _optional_part(
    name: str, value: torch.Tensor | None, flag: str, config: SnakeLMBridgeConfig, dim: int, batch: int
) -> list[torch.Tensor]:
    used = getattr(config, flag)
    if used and value is None:
        raise ValueError(f"{name} is required: the config sets {flag}=True")
    if not used and value is not None:
        raise ValueError(f"{name} was given but the config does not use it ({flag}=False)")
    if not used:
        return []
    _check_2d(name, value, dim, f"{flag} size", batch)
    return [value]


def _projector_inputs(features: SnakeWorldFeatures) -> dict[str, torch.Tensor | None]:
    return {
        "latent_next": features.latent_next,
        "action_logits": features.action_logits,
        "encoder_hidden": features.encoder_hidden,
        "whatif": features.whatif,
    }


def _load_tokenizer(path, kwargs: dict) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved beside the weights, if any (a bridge saved without one loads without one)."""
    passthrough = {
        k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only") if k in kwargs
    }
    try:
        return AutoTokenizer.from_pretrained(path, **passthrough)
    except (OSError, ValueError):
        return None


# Registered so that AutoConfig/AutoModel (and AutoTokenizer, which reads the config) resolve a saved bridge.
AutoConfig.register(SnakeLMBridgeConfig.model_type, SnakeLMBridgeConfig, exist_ok=True)
AutoModel.register(SnakeLMBridgeConfig, SnakeLMBridge, exist_ok=True)

__all__ = [
    "SnakeLMBridge",
    "SnakeLMBridgeDecision",
    "SnakeLMBridgeGenerateOutput",
    "SnakeLMBridgeOutput",
    "SnakeLMBridgePreTrainedModel",
    "SnakeLMBridgeProjector",
    "SnakeWorldFeatures",
]
