"""LM bridge: a causal LM that reads the EqM world model's prediction and answers in text."""

from __future__ import annotations

import importlib

# Heavy modules (torch, transformers) load on first attribute access, so `snake-eqm lm-train --help` and
# `import snake_world_eqm.lm_bridge.args` stay light. Importing the modeling module registers the
# AutoConfig/AutoModel classes (as `snake_world_eqm.modeling_snake_world_eqm` does for the world model).
_LAZY = {
    "DEFAULT_PROMPT": "args",
    "SnakeLMBridgeConfig": "configuration_lm_bridge",
    "SnakeLMBridge": "modeling_lm_bridge",
    "SnakeLMBridgeDecision": "modeling_lm_bridge",
    "SnakeLMBridgeGenerateOutput": "modeling_lm_bridge",
    "SnakeLMBridgeOutput": "modeling_lm_bridge",
    "SnakeLMBridgePreTrainedModel": "modeling_lm_bridge",
    "SnakeWorldFeatures": "modeling_lm_bridge",
    "ParsedAnswer": "text",
    "SnakeAnswer": "text",
    "answer_text": "text",
    "answers_from_columns": "text",
    "build_tokenizer": "text",
    "encode_examples": "text",
    "parse_answer": "text",
}


def __getattr__(name: str):
    if name in _LAZY:
        if _LAZY[name] != "args":
            importlib.import_module(f"{__name__}.modeling_lm_bridge")  # registers the Auto classes
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
