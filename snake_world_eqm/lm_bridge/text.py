"""Texts the LM bridge learns to produce, their parser, and a small word-level tokenizer built locally.

An answer names the action, whether it eats, and which moves are deadly next, e.g.
``"action : right . eat : no . deadly : up , left ."``. The parser accepts any spacing and case, so it
also reads answers from a real Hub LM whose tokenizer decodes without the spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from snake_world_eqm.game import ACTION_NAMES, DEATH_EVENTS, Event

from .configuration_lm_bridge import DEFAULT_PROMPT

ACTION_WORDS = ACTION_NAMES
EATING_EVENTS = frozenset({Event.EAT, Event.WIN})  # both grow the snake
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
ANSWER_WORDS = ("action", "eat", "deadly", "yes", "no", "none", *ACTION_WORDS)
PUNCTUATION = (":", ".", ",", "?")
PROMPT_WORDS = ("what", "next", "which", "moves", "are", "does", "it", "snake", "world", "model", "answer")
IGNORE_INDEX = -100

_ACTION_RE = re.compile(r"action\s*:\s*(up|right|down|left)\b")
_EAT_RE = re.compile(r"eat\s*:\s*(yes|no)\b")
_DEADLY_RE = re.compile(r"deadly\s*:\s*((?:none|up|right|down|left)(?:\s*,\s*(?:up|right|down|left))*)")


@dataclass(frozen=True)
class SnakeAnswer:
    """What the LM should say about one board. `action` is an action index (0 up .. 3 left)."""

    action: int
    eats: bool
    deadly: frozenset[int]

    def __post_init__(self) -> None:
        if not 0 <= int(self.action) < len(ACTION_WORDS):
            raise ValueError(f"action must be in 0..3, got {self.action}")
        bad = [a for a in self.deadly if not 0 <= int(a) < len(ACTION_WORDS)]
        if bad:
            raise ValueError(f"deadly moves must be in 0..3, got {sorted(bad)}")


@dataclass(frozen=True)
class ParsedAnswer:
    """A parsed answer; a field is None when the text does not contain it in the expected form."""

    action: int | None
    eats: bool | None
    deadly: frozenset[int] | None


def answer_text(answer: SnakeAnswer) -> str:
    """The answer as the LM should write it (deadly moves in action order, "none" when there are none)."""
    deadly = " , ".join(ACTION_WORDS[a] for a in sorted(answer.deadly)) or "none"
    eat = "yes" if answer.eats else "no"
    return f"action : {ACTION_WORDS[answer.action]} . eat : {eat} . deadly : {deadly} ."


def parse_answer(text: str) -> ParsedAnswer:
    """Read an answer back; tolerant of spacing and case, strict about the words."""
    if not isinstance(text, str):
        raise TypeError(f"parse_answer expects a str, got {type(text).__name__}")
    lowered = text.lower()
    action_match = _ACTION_RE.search(lowered)
    eat_match = _EAT_RE.search(lowered)
    deadly_match = _DEADLY_RE.search(lowered)
    deadly = None
    if deadly_match:
        words = [w.strip() for w in deadly_match.group(1).split(",")]
        deadly = frozenset(ACTION_WORDS.index(w) for w in words if w != "none")
    return ParsedAnswer(
        action=ACTION_WORDS.index(action_match.group(1)) if action_match else None,
        eats=(eat_match.group(1) == "yes") if eat_match else None,
        deadly=deadly,
    )


def answers_from_columns(
    action: Sequence[int] | torch.Tensor,
    event: Sequence[int] | torch.Tensor,
    event_per_action: Sequence[Sequence[int]] | torch.Tensor,
) -> list[SnakeAnswer]:
    """Targets from dataset columns: the expert action, its event, and the event of every action."""
    action = torch.as_tensor(action).reshape(-1)
    event = torch.as_tensor(event).reshape(-1)
    event_per_action = torch.as_tensor(event_per_action)
    if event_per_action.ndim != 2 or event_per_action.shape[1] != len(ACTION_WORDS):
        raise ValueError(f"event_per_action must have shape (B, 4), got {tuple(event_per_action.shape)}")
    if not len(action) == len(event) == len(event_per_action):
        raise ValueError(
            f"column lengths differ: action {len(action)}, event {len(event)}, "
            f"event_per_action {len(event_per_action)}"
        )
    return [
        SnakeAnswer(
            action=int(a),
            eats=int(e) in EATING_EVENTS,
            deadly=frozenset(i for i, ev in enumerate(row.tolist()) if ev in DEATH_EVENTS),
        )
        for a, e, row in zip(action, event, event_per_action)
    ]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the fixed vocabulary of prompts and answers (nothing is downloaded)."""
    words = [*SPECIAL_TOKENS, *ANSWER_WORDS, *PUNCTUATION, *PROMPT_WORDS]
    vocab = {word: index for index, word in enumerate(dict.fromkeys(words))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    # Whitespace splits punctuation from words, so "left." and "left ." tokenise the same.
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>"
    )


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str = DEFAULT_PROMPT) -> list[int]:
    """BOS (when the tokenizer has one) followed by the prompt, without special tokens added twice."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id, *ids]
    if not ids:
        raise ValueError(
            "the prompt is empty and the tokenizer has no BOS token: the LM needs at least one token"
        )
    return ids


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, answers: Iterable[SnakeAnswer], prompt: str = DEFAULT_PROMPT
) -> dict[str, torch.Tensor]:
    """Tokenise `prompt + answer + EOS`, right-padded; labels are -100 on the prompt and the padding."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; the LM must learn where an answer ends")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    head = prompt_ids(tokenizer, prompt)
    rows, label_rows = [], []
    for answer in answers:
        # The leading space keeps BPE tokenizers from gluing the first answer word onto the prompt.
        body = tokenizer(" " + answer_text(answer), add_special_tokens=False)["input_ids"]
        body = [*body, tokenizer.eos_token_id]
        rows.append(head + body)
        label_rows.append([IGNORE_INDEX] * len(head) + body)
    if not rows:
        raise ValueError("encode_examples got no answers")
    length = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (row, label_row) in enumerate(zip(rows, label_rows)):
        input_ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(row)] = torch.tensor(label_row)
        attention_mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


__all__ = [
    "ACTION_WORDS",
    "IGNORE_INDEX",
    "ParsedAnswer",
    "SnakeAnswer",
    "answer_text",
    "answers_from_columns",
    "build_tokenizer",
    "encode_examples",
    "parse_answer",
    "prompt_ids",
]
