"""LM bridge texts: answers from dataset columns, the answer format, the parser, the local tokenizer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from snake_world_eqm.game import Event
from snake_world_eqm.lm_bridge.text import (
    IGNORE_INDEX,
    ParsedAnswer,
    SnakeAnswer,
    answer_text,
    answers_from_columns,
    build_tokenizer,
    encode_examples,
    parse_answer,
)

answers = st.builds(
    SnakeAnswer,
    action=st.integers(0, 3),
    eats=st.booleans(),
    deadly=st.frozensets(st.integers(0, 3)),
)


@given(answers)
def test_answer_text_parses_back(answer):
    assert parse_answer(answer_text(answer)) == ParsedAnswer(answer.action, answer.eats, answer.deadly)


@given(answers)
def test_answer_survives_the_local_tokenizer(answer):
    tokenizer = _TOKENIZER
    ids = tokenizer(answer_text(answer), add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert parse_answer(tokenizer.decode(ids)) == ParsedAnswer(answer.action, answer.eats, answer.deadly)


_TOKENIZER = build_tokenizer()


def test_parser_tolerates_spacing_and_case_but_not_wrong_words():
    assert parse_answer("Action:LEFT.eat:yes.deadly:up,down.") == ParsedAnswer(3, True, frozenset({0, 2}))
    assert parse_answer("deadly : none .") == ParsedAnswer(None, None, frozenset())
    assert parse_answer("action : north . eat : maybe") == ParsedAnswer(None, None, None)
    assert parse_answer("") == ParsedAnswer(None, None, None)
    with pytest.raises(TypeError, match="expects a str"):
        parse_answer(None)


def test_answers_from_columns_reads_expert_action_eating_and_deaths():
    got = answers_from_columns(
        action=[1, 2],
        event=[Event.EAT, Event.NONE],
        event_per_action=[
            [Event.WALL, Event.EAT, Event.NONE, Event.REVERSE],
            [Event.SELF, Event.WIN, Event.NONE, Event.NONE],
        ],
    )
    assert got == [SnakeAnswer(1, True, frozenset({0, 3})), SnakeAnswer(2, False, frozenset({0}))]
    assert answer_text(got[0]) == "action : right . eat : yes . deadly : up , left ."


def test_bad_columns_and_answers_are_clear_errors():
    with pytest.raises(ValueError, match=r"event_per_action must have shape \(B, 4\)"):
        answers_from_columns([0], [0], [[0, 0, 0]])
    with pytest.raises(ValueError, match="column lengths differ"):
        answers_from_columns([0, 1], [0], [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="action must be in 0..3"):
        SnakeAnswer(4, False, frozenset())
    with pytest.raises(ValueError, match="deadly moves must be in 0..3"):
        SnakeAnswer(0, False, frozenset({7}))


def test_encode_examples_labels_only_the_answer_and_eos():
    tokenizer = _TOKENIZER
    batch = encode_examples(tokenizer, [SnakeAnswer(0, False, frozenset()), SnakeAnswer(1, True, frozenset({2, 3}))])
    for row in range(2):
        ids, labels, mask = batch["input_ids"][row], batch["labels"][row], batch["attention_mask"][row]
        labelled = ids[labels != IGNORE_INDEX]
        assert torch.equal(labels[labels != IGNORE_INDEX], labelled)
        assert labelled[-1] == tokenizer.eos_token_id
        text = tokenizer.decode(labelled, skip_special_tokens=True)
        assert text == answer_text([SnakeAnswer(0, False, frozenset()), SnakeAnswer(1, True, frozenset({2, 3}))][row])
        assert ids[0] == tokenizer.bos_token_id and (labels[mask == 0] == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="no answers"):
        encode_examples(tokenizer, [])
