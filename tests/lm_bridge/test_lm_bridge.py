"""LM bridge: prefix projector over Llama- and GPT-2-style causal LMs built offline from configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, GPT2Config, LlamaConfig, PreTrainedModel

from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
from snake_world_eqm.game import encode_observation, new_game, step
from snake_world_eqm.lm_bridge import (
    SnakeLMBridge,
    SnakeLMBridgeConfig,
    SnakeWorldFeatures,
    answers_from_columns,
    build_tokenizer,
    encode_examples,
)
from snake_world_eqm.lm_bridge.text import IGNORE_INDEX, prompt_ids
from snake_world_eqm.lm_bridge.training import tiny_text_config
from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM

BOARD = 6
ARCHS = ("llama", "gpt2")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # These models are tiny: with several threads on a shared 2-core CPU, thread hand-offs cost more than the math.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def tiny_eqm_config() -> SnakeWorldEqMConfig:
    return SnakeWorldEqMConfig.cpu_small(
        board_height=BOARD, board_width=BOARD, d_model=16, cnn_channels=16, cnn_layers=1, latent_dim=8,
        latent_hidden_dim=16, decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=1,
        eqm_sampling_steps=2,
    )  # fmt: skip


def make_bridge(tokenizer, arch: str, with_world_model: bool = True, **kwargs) -> SnakeLMBridge:
    torch.manual_seed(0)
    text_config = tiny_text_config(arch, tokenizer, hidden_size=32, num_layers=1, num_heads=2)
    if with_world_model:
        kwargs.setdefault("eqm_config", tiny_eqm_config())
    else:
        kwargs.setdefault("latent_dim", 8)
        kwargs.setdefault("encoder_hidden_dim", 16)
    bridge = SnakeLMBridge(SnakeLMBridgeConfig(text_config=text_config, num_prefix_tokens=2, **kwargs))
    bridge.tokenizer = tokenizer
    return bridge.eval()


def legal_boards(count: int, seed: int = 0) -> torch.Tensor:
    """Boards from short random games (each a legal, non-terminal observation)."""
    rng = np.random.default_rng(seed)
    boards = []
    while len(boards) < count:
        state = new_game(BOARD, BOARD, rng)
        for _ in range(int(rng.integers(0, 6))):
            result = step(state, int(rng.integers(4)), rng)
            if result.terminated:
                break
            state = result.state
        boards.append(encode_observation(state))
    return torch.as_tensor(np.stack(boards)).long()


def random_features(batch: int, config: SnakeLMBridgeConfig, seed: int = 0) -> SnakeWorldFeatures:
    g = torch.Generator().manual_seed(seed)
    return SnakeWorldFeatures(
        latent_next=torch.randn(batch, config.latent_dim, generator=g),
        action_logits=torch.randn(batch, 4, generator=g),
        encoder_hidden=torch.randn(batch, config.encoder_hidden_dim, generator=g),
        whatif=torch.randint(0, 2, (batch, 8), generator=g).float(),
    )


def batch_texts(tokenizer, batch: int):
    answers = answers_from_columns(
        action=torch.arange(batch) % 4,
        event=torch.tensor([1, 0, 2, 0, 4, 0][:batch]),
        event_per_action=torch.tensor([[5, 0, 0, 2], [0, 1, 0, 5], [3, 3, 3, 5], [0, 0, 0, 5], [4, 2, 0, 5], [0] * 4])[
            :batch
        ],
    )
    return encode_examples(tokenizer, answers)


def feature_kwargs(features: SnakeWorldFeatures) -> dict:
    return {k: getattr(features, k) for k in ("latent_next", "action_logits", "encoder_hidden", "whatif")}


# ---------------------------------------------------------------------- training signal


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_projector_and_frozen_lm_gets_none(tokenizer, arch):
    bridge = make_bridge(tokenizer, arch, with_world_model=False, freeze_language_model=True).train()
    features = random_features(3, bridge.config)
    out = bridge(**batch_texts(tokenizer, 3), **feature_kwargs(features))
    out.loss.backward()
    for name, param in bridge.projector.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient in projector.{name}"
    assert all(p.grad is None for p in bridge.language_model.parameters())


def test_fine_tuned_lm_gets_gradients_world_model_never(tokenizer):
    bridge = make_bridge(tokenizer, "llama", freeze_language_model=False).train()
    features = bridge.world_features(legal_boards(3))
    bridge(**batch_texts(tokenizer, 3), **feature_kwargs(features)).loss.backward()
    embed = bridge.language_model.get_input_embeddings().weight
    assert embed.grad is not None and embed.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in bridge.world_model.parameters())
    assert not bridge.world_model.training, "the frozen world model must stay in eval mode while the bridge trains"


@pytest.mark.parametrize("arch", ARCHS)
def test_loss_is_only_on_answer_text(tokenizer, arch):
    bridge = make_bridge(tokenizer, arch, with_world_model=False)
    texts = batch_texts(tokenizer, 4)
    features = random_features(4, bridge.config)
    out = bridge(**texts, **feature_kwargs(features))
    k = bridge.config.num_prefix_tokens
    assert out.logits.shape[:2] == texts["input_ids"].shape, "logits must cover the text positions only"
    # Manual next-token loss over the text: position t predicts label t+1; the prompt and padding are -100.
    labels = texts["labels"]
    manual = F.cross_entropy(out.logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.loss, manual)
    # The labelled tokens are exactly the answer and its EOS (not the BOS/prompt, not the padding).
    n_prompt = len(prompt_ids(tokenizer))
    assert (labels[:, :n_prompt] == IGNORE_INDEX).all()
    eos_positions = (labels == tokenizer.eos_token_id).float().argmax(dim=1)
    assert ((labels != IGNORE_INDEX).sum(dim=1) == eos_positions - n_prompt + 1).all()
    # And the prefix really is attended to: other features change the loss.
    other = bridge(**texts, **feature_kwargs(random_features(4, bridge.config, seed=1)))
    assert not torch.allclose(out.loss, other.loss)
    assert out.prefix_embeds.shape == (4, k, 32)


def _assert_causal(bridge: SnakeLMBridge, tokenizer) -> None:
    """Changing the last text token must not change any earlier position's logits."""
    features = feature_kwargs(random_features(2, bridge.config))
    ids = batch_texts(tokenizer, 2)["input_ids"][:, :8]
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % len(tokenizer)
    before = bridge(input_ids=ids, **features).logits
    after = bridge(input_ids=changed, **features).logits
    torch.testing.assert_close(before[:, :-1], after[:, :-1], msg="the LM attends to future tokens")
    assert not torch.allclose(before[:, -1], after[:, -1])


@pytest.mark.parametrize("arch", ARCHS)
def test_language_model_stays_causal_however_the_bridge_is_built(tokenizer, arch, tmp_path):
    from transformers import AutoModelForCausalLM

    _assert_causal(make_bridge(tokenizer, arch, with_world_model=False), tokenizer)
    lm = AutoModelForCausalLM.from_config(tiny_text_config(arch, tokenizer, hidden_size=32, num_layers=1, num_heads=2))
    # Regression: building the composite config once reset the LM's attention implementation to None, which
    # ran it without a causal mask (training loss near 0, answers garbage at generation).
    bridge = SnakeLMBridge.from_parts(lm, latent_dim=8, encoder_hidden_dim=16, num_prefix_tokens=2)
    _assert_causal(bridge.eval(), tokenizer)
    bridge.save_pretrained(tmp_path)
    _assert_causal(SnakeLMBridge.from_pretrained(tmp_path).eval(), tokenizer)


def test_padding_does_not_change_a_rows_loss_terms(tokenizer):
    bridge = make_bridge(tokenizer, "llama", with_world_model=False)
    features = random_features(2, bridge.config)
    texts = batch_texts(tokenizer, 2)
    both = bridge(**texts, **feature_kwargs(features)).logits[0]
    single_texts = {k: v[:1] for k, v in texts.items()}
    single_feats = {k: v[:1] for k, v in feature_kwargs(features).items()}
    alone = bridge(**single_texts, **single_feats).logits[0]
    length = int(texts["attention_mask"][0].sum())
    torch.testing.assert_close(both[:length], alone[:length], atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------- world model → answers


@pytest.mark.parametrize("arch", ARCHS)
def test_generate_returns_only_new_tokens_and_matches_greedy_forward(tokenizer, arch):
    bridge = make_bridge(tokenizer, arch)
    boards = legal_boards(3)
    features = bridge.world_features(boards, generator=torch.Generator().manual_seed(0))
    out = bridge.generate(features=features, max_new_tokens=4, min_new_tokens=4)
    assert out.sequences.shape == (3, 4)
    # Greedy continuation computed by hand with the teacher-forced forward over [prefix; prompt; generated].
    ids = torch.tensor([prompt_ids(tokenizer)] * 3)
    for position in range(4):
        logits = bridge(input_ids=ids, **feature_kwargs(features)).logits[:, -1]
        logits[:, tokenizer.eos_token_id] = -float("inf")  # min_new_tokens forbids EOS
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
        assert torch.equal(out.sequences[:, position], ids[:, -1]), f"token {position} differs"
    assert len(out.texts) == 3


def test_decide_runs_end_to_end(tokenizer):
    bridge = make_bridge(tokenizer, "llama")
    decision = bridge.decide(legal_boards(4), generator=torch.Generator().manual_seed(0))
    assert decision.action.shape == (4,) and decision.action.dtype == torch.long
    assert set(decision.action.tolist()) <= {0, 1, 2, 3} and len(decision.texts) == 4


@pytest.mark.parametrize("with_eqm_action", [True, False])
def test_decide_takes_the_parsed_action_and_falls_back_to_the_world_models(tokenizer, monkeypatch, with_eqm_action):
    # Known LM answers: two parse, two do not; the fallback must be the world model's action for that row.
    from snake_world_eqm.lm_bridge.modeling_lm_bridge import SnakeLMBridgeGenerateOutput

    bridge = make_bridge(tokenizer, "llama", with_world_model=False)
    texts = ["action : left . eat : no .", "no idea", "ACTION: up", "action : sideways"]
    world_action = torch.tensor([1, 2, 3, 1])
    # The sampled EqM action wins over the logits' argmax when present (they can differ); else the argmax.
    logits_action = (world_action + 1) % 4 if with_eqm_action else world_action
    features = SnakeWorldFeatures(action_logits=torch.nn.functional.one_hot(logits_action, 4).float(),
                                  eqm_action=world_action if with_eqm_action else None)
    monkeypatch.setattr(bridge, "generate", lambda *a, **k: SnakeLMBridgeGenerateOutput(texts=texts, features=features))
    decision = bridge.decide(features=features)
    assert decision.parsed_ok.tolist() == [True, False, True, False]
    assert decision.action.tolist() == [3, 2, 0, 1]  # left (parsed), 2 (fallback), up (parsed), 1 (fallback)
    assert decision.eqm_action.tolist() == world_action.tolist()


def test_world_features_whatif_flags_match_the_world_models_predictions(tokenizer):
    bridge = make_bridge(tokenizer, "gpt2")
    boards = legal_boards(5)
    features = bridge.world_features(boards, generator=torch.Generator().manual_seed(3))
    assert features.latent_next.shape == (5, 8) and features.encoder_hidden.shape == (5, 16)
    g = torch.Generator().manual_seed(3)
    bridge.world_model.sample(boards, generator=g)  # consume the same noise as world_features did
    for action in range(4):
        predicted = bridge.world_model.sample(boards, action=action, generator=g).next_board
        terminal = (predicted == 0).flatten(1).all(dim=1).float()
        torch.testing.assert_close(features.whatif.view(5, 4, 2)[:, action, 0], terminal)


# ---------------------------------------------------------------------- saving and loading


@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_round_trip(tokenizer, arch, tmp_path):
    bridge = make_bridge(tokenizer, arch)
    boards = legal_boards(3)
    before = bridge.decide(boards, generator=torch.Generator().manual_seed(1))
    bridge.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, SnakeLMBridge) and loaded.tokenizer is not None
    assert loaded.config.text_config.model_type == arch
    assert loaded.config.eqm_config.latent_dim == 8
    state, loaded_state = bridge.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for key in state:
        torch.testing.assert_close(state[key], loaded_state[key], msg=f"{key} changed in the round trip")
    after = loaded.eval().decide(boards, generator=torch.Generator().manual_seed(1))
    assert after.texts == before.texts and torch.equal(after.action, before.action)


def test_from_parts_keeps_given_weights(tokenizer):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(tiny_text_config("gpt2", tokenizer, 32, 1, 2))
    world = SnakeWorldEqM(tiny_eqm_config())
    lm_before = {k: v.clone() for k, v in lm.state_dict().items()}
    world_before = {k: v.clone() for k, v in world.state_dict().items()}
    bridge = SnakeLMBridge.from_parts(lm, world_model=world, tokenizer=tokenizer, freeze_language_model=True)
    for key, value in lm_before.items():
        torch.testing.assert_close(bridge.language_model.state_dict()[key], value)
    for key, value in world_before.items():
        torch.testing.assert_close(bridge.world_model.state_dict()[key], value)
    assert bridge.config.latent_dim == 8 and bridge.config.freeze_language_model


# ---------------------------------------------------------------------- bad input


def test_latent_of_wrong_size_is_a_clear_error(tokenizer):
    bridge = make_bridge(tokenizer, "llama", with_world_model=False)
    features = feature_kwargs(random_features(2, bridge.config))
    features["latent_next"] = torch.randn(2, 7)
    with pytest.raises(ValueError, match=r"latent_next must have shape \(B, 8\)"):
        bridge(**batch_texts(tokenizer, 2), **features)


def test_missing_and_unexpected_features_are_clear_errors(tokenizer):
    bridge = make_bridge(tokenizer, "llama", with_world_model=False, use_whatif=False)
    features = feature_kwargs(random_features(2, bridge.config))
    with pytest.raises(ValueError, match="whatif was given but the config does not use it"):
        bridge.prefix_embeddings(**features)
    features.pop("whatif")
    features.pop("encoder_hidden")
    with pytest.raises(ValueError, match="encoder_hidden is required"):
        bridge.prefix_embeddings(**features)
    features["encoder_hidden"] = torch.randn(3, 16)
    with pytest.raises(ValueError, match="batch size 3 but latent_next has 2"):
        bridge.prefix_embeddings(**features)


class _NoEmbeddingsLM(PreTrainedModel):
    config_class = LlamaConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = nn.Linear(4, 4)
        self.post_init()

    def forward(self, inputs_embeds=None, **kwargs):
        return self.proj(inputs_embeds)


def test_lm_without_input_embeddings_is_a_clear_error(tokenizer):
    lm = _NoEmbeddingsLM(LlamaConfig(vocab_size=10, hidden_size=8, num_attention_heads=2, num_hidden_layers=1))
    with pytest.raises(ValueError, match="has no input embeddings"):
        SnakeLMBridge.from_parts(lm)


def test_bad_boards_and_missing_tokenizer_are_clear_errors(tokenizer):
    bridge = make_bridge(tokenizer, "gpt2")
    with pytest.raises(ValueError, match="board size 5x5"):
        bridge.world_features(torch.zeros(1, 5, 5, dtype=torch.long))
    bridge.tokenizer = None
    with pytest.raises(ValueError, match="no tokenizer"):
        bridge.generate(legal_boards(1))
    with pytest.raises(ValueError, match="exactly one of obs"):
        make_bridge(tokenizer, "gpt2").generate()
    no_world = make_bridge(tokenizer, "gpt2", with_world_model=False)
    with pytest.raises(ValueError, match="no embedded world model"):
        no_world.world_features(legal_boards(1))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        SnakeLMBridgeConfig(text_config=GPT2Config(n_embd=8, n_layer=1, n_head=2), num_prefix_tokens=0)
    with pytest.raises(ValueError, match="num_actions"):
        SnakeLMBridgeConfig(num_actions=5)
