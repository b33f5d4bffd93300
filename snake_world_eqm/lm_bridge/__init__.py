"""LM bridge: a causal LM that reads the EqM world model's prediction and answers in text."""

from transformers import AutoConfig, AutoModel

from .configuration_lm_bridge import DEFAULT_PROMPT, SnakeLMBridgeConfig
from .modeling_lm_bridge import (
    SnakeLMBridge,
    SnakeLMBridgeDecision,
    SnakeLMBridgeGenerateOutput,
    SnakeLMBridgeOutput,
    SnakeLMBridgePreTrainedModel,
    SnakeWorldFeatures,
)
from .text import (
    ParsedAnswer,
    SnakeAnswer,
    answer_text,
    answers_from_columns,
    build_tokenizer,
    encode_examples,
    parse_answer,
)

# Registered so that AutoConfig/AutoModel (and AutoTokenizer, which reads the config) resolve a saved bridge.
AutoConfig.register(SnakeLMBridgeConfig.model_type, SnakeLMBridgeConfig, exist_ok=True)
AutoModel.register(SnakeLMBridgeConfig, SnakeLMBridge, exist_ok=True)

__all__ = [
    "DEFAULT_PROMPT",
    "ParsedAnswer",
    "SnakeAnswer",
    "SnakeLMBridge",
    "SnakeLMBridgeConfig",
    "SnakeLMBridgeDecision",
    "SnakeLMBridgeGenerateOutput",
    "SnakeLMBridgeOutput",
    "SnakeLMBridgePreTrainedModel",
    "SnakeWorldFeatures",
    "answer_text",
    "answers_from_columns",
    "build_tokenizer",
    "encode_examples",
    "parse_answer",
]
