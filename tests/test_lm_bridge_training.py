"""LM bridge training: the loop learns answers from features; the command line runs end to end offline."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from transformers import AutoModel

from snake_world_eqm.data import GenerationConfig, generate_dataset_dict
from snake_world_eqm.lm_bridge import SnakeLMBridge, SnakeLMBridgeConfig, SnakeWorldFeatures, build_tokenizer
from snake_world_eqm.lm_bridge.text import SnakeAnswer, encode_examples
from snake_world_eqm.lm_bridge.training import (
    evaluate_bridge,
    main,
    make_loader,
    tiny_text_config,
    train_bridge,
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # These models are tiny: with several threads on a shared 2-core CPU, thread hand-offs cost more than the math.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rule_features(n: int, seed: int) -> tuple[dict[str, torch.Tensor], list[SnakeAnswer]]:
    """Features whose answer is a fixed rule: the arg-max action, its 'grows' flag, the 'terminal' flags."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 4, generator=g)
    whatif = torch.randint(0, 2, (n, 4, 2), generator=g).float()
    action = logits.argmax(-1)
    answers = [
        SnakeAnswer(int(a), bool(w[a, 1]), frozenset(int(i) for i in torch.nonzero(w[:, 0]).flatten()))
        for a, w in zip(action, whatif)
    ]
    features = {
        "latent_next": torch.randn(n, 4, generator=g),
        "action_logits": logits,
        "whatif": whatif.flatten(1),
        "eqm_action": torch.randint(0, 4, (n,), generator=g),  # deliberately unrelated: the LM must not copy it
    }
    return features, answers


def test_bridge_learns_answers_that_are_a_function_of_the_prefix():
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    config = SnakeLMBridgeConfig(
        text_config=tiny_text_config("llama", tokenizer, hidden_size=48, num_layers=1, num_heads=2),
        latent_dim=4,
        use_encoder_hidden=False,
        num_prefix_tokens=2,
    )
    bridge = SnakeLMBridge(config)
    bridge.tokenizer = tokenizer
    features, answers = rule_features(512, seed=0)
    loader, names = make_loader(features, encode_examples(tokenizer, answers), batch_size=64, shuffle=True)
    args = SimpleNamespace(learning_rate=3e-3, weight_decay=0.0, max_steps=300, epochs=1, log_every=100,
                           time_limit_minutes=None)  # fmt: skip
    history = train_bridge(bridge, loader, names, args, Accelerator(cpu=True))
    assert history[-1]["loss"] < history[0]["loss"]
    held_out, held_answers = rule_features(128, seed=1)
    metrics = evaluate_bridge(bridge, held_out, held_answers)
    # A 1-layer LM trained for 300 steps on 512 examples: chance is 25% for the action, ~6% for the deadly set.
    # (Not asserted: "eat" is the grows-flag *of the chosen action*, a composition this short run does not learn.)
    assert metrics["lm_action_parse_rate"] > 0.95
    assert metrics["lm_action_accuracy"] > 0.8
    assert metrics["deadly_accuracy"] > 0.8
    assert metrics["eqm_action_accuracy"] < 0.5  # the unrelated eqm_action is what a copying LM would score


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("snake6") / "data"
    config = GenerationConfig(num_samples=300, height=6, width=6, seed=0, split_fractions=(0.7, 0.15, 0.15))
    generate_dataset_dict(config, progress=False).save_to_disk(str(path))
    return path


def test_command_line_trains_saves_and_reports(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "bridge"
    argv = [
        "--dataset", str(tiny_dataset), "--random-eqm", "--board-size", "6", "--output-dir", str(out),
        "--lm-arch", "gpt2", "--lm-hidden-size", "32", "--lm-layers", "1", "--lm-heads", "2",
        "--max-steps", "3", "--max-train-samples", "48", "--max-eval-samples", "16", "--report-to", "none",
        "--eval-split", "validation",
    ]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((out / "lm_bridge_metrics.json").read_text())
    assert metrics["num_states"] == 16 and metrics["num_train_states"] == 48 and metrics["train_steps"] == 3
    for key in ("lm_action_accuracy", "eqm_action_accuracy", "deadly_accuracy", "eat_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{") :]) == metrics  # the JSON on stdout is the saved one
    loaded = AutoModel.from_pretrained(out)
    assert isinstance(loaded, SnakeLMBridge) and loaded.tokenizer is not None
    assert loaded.config.text_config.model_type == "gpt2" and loaded.config.eqm_config.board_height == 6


def test_command_line_needs_a_world_model(tiny_dataset, tmp_path):
    with pytest.raises(SystemExit, match="--eqm-model PATH"):
        main(["--dataset", str(tiny_dataset), "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="not in"):
        main(["--dataset", str(tiny_dataset), "--random-eqm", "--output-dir", str(tmp_path), "--eval-split", "nope"])


def test_features_object_roundtrip_is_usable_by_decide():
    tokenizer = build_tokenizer()
    config = SnakeLMBridgeConfig(
        text_config=tiny_text_config("gpt2", tokenizer, hidden_size=32, num_layers=1, num_heads=2),
        latent_dim=4,
        use_encoder_hidden=False,
    )
    bridge = SnakeLMBridge(config).eval()
    features, _ = rule_features(3, seed=2)
    decision = bridge.decide(features=SnakeWorldFeatures(**features), tokenizer=tokenizer)
    assert decision.action.shape == (3,)
