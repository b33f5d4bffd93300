"""LM bridge training: the engine learns answers from features; the command line runs end to end offline,
checkpoints, resumes exactly, and stops on a NaN loss."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
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
from snake_world_eqm.training import checkpoints
from snake_world_eqm.training.engine import EngineSettings
from tests.training_helpers import poison_forward


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


def test_bridge_learns_answers_that_are_a_function_of_the_prefix(tmp_path):
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
    settings = EngineSettings(output_dir=tmp_path / "run", run_id="test", command="test", learning_rate=3e-3,
                              max_steps=300, warmup_steps=30, gradient_clip=0.0, log_every=100, progress_bar=False)
    history = train_bridge(bridge, loader, names, settings)
    assert [row["step"] for row in history] == [100, 200, 300]
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


# ------------------------------------------------------------------------------------------------------
# The engine's guarantees, through `snake-eqm lm-train`


def _argv(dataset, out, *extra):
    return [
        "--dataset", str(dataset), "--random-eqm", "--board-size", "6", "--output-dir", str(out),
        "--lm-arch", "gpt2", "--lm-hidden-size", "32", "--lm-layers", "1", "--lm-heads", "2",
        "--max-train-samples", "48", "--max-eval-samples", "8", "--batch-size", "8", "--eval-split", "validation",
        "--report-to", "none", "--disable-progress-bar", *extra,
    ]  # fmt: skip


def _poison_forward(monkeypatch, after_calls: int, effect):
    poison_forward(monkeypatch, SnakeLMBridge, after_calls, effect)


def test_a_run_writes_complete_checkpoints_and_its_log(tiny_dataset, tmp_path):
    out = tmp_path / "bridge"
    assert main(_argv(tiny_dataset, out, "--max-steps", "4", "--save-every", "2", "--log-every", "1")) == 0
    found = checkpoints.complete_checkpoints(checkpoints.checkpoints_dir(out))
    assert [step for step, _ in found] == [2, 4]
    state = checkpoints.read_state(found[-1][1])
    assert state["model_kind"] == "lm_bridge" and state["loop"]["global_step"] == 4
    assert (found[-1][1] / "model.safetensors").is_file() and (found[-1][1] / "optimizer.bin").is_file()
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if row["kind"] == "train"] == [1, 2, 3, 4]
    assert [row["step"] for row in rows if row["kind"] == "eval"] == [4]
    history = json.loads((out / "lm_bridge_history.json").read_text())
    assert [row["step"] for row in history] == [1, 2, 3, 4]
    # A second run into the same folder must say whether it continues or replaces the first.
    assert main(_argv(tiny_dataset, out, "--max-steps", "4")) == 2


def test_a_stopped_run_resumed_with_latest_ends_with_the_weights_of_an_uninterrupted_one(
    tiny_dataset, tmp_path, monkeypatch
):
    steps = ["--max-steps", "12", "--save-every", "4"]  # 6 batches an epoch: the resumed part crosses an epoch
    reference, stopped = tmp_path / "reference", tmp_path / "stopped"
    assert main(_argv(tiny_dataset, reference, *steps)) == 0

    _poison_forward(monkeypatch, after_calls=5, effect=lambda output: os.kill(os.getpid(), signal.SIGTERM))
    assert main(_argv(tiny_dataset, stopped, *steps)) == 128 + signal.SIGTERM
    monkeypatch.undo()
    root = checkpoints.checkpoints_dir(stopped)
    stopped_at = checkpoints.complete_checkpoints(root)[-1][0]
    assert 5 <= stopped_at < 12
    assert json.loads((stopped / "lm_bridge_metrics.json").read_text())["stopped_because"] == "interrupted"

    assert main(_argv(tiny_dataset, stopped, *steps, "--resume-from-checkpoint", "latest")) == 0
    metrics = json.loads((stopped / "lm_bridge_metrics.json").read_text())
    assert metrics["train_steps"] == 12 and metrics["stopped_because"] == "max_steps"
    want, got = load_file(reference / "model.safetensors"), load_file(stopped / "model.safetensors")
    assert want.keys() == got.keys()
    mismatched = [name for name in want if not torch.equal(want[name], got[name])]
    assert mismatched == [], f"weights differ after resume: {mismatched[:5]}"


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "bridge"

    def make_nan(output):
        output.loss = output.loss * float("nan")

    _poison_forward(monkeypatch, after_calls=3, effect=make_nan)
    assert main(_argv(tiny_dataset, out, "--max-steps", "10", "--save-every", "1")) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "snake-eqm lm-train: error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "loss became nan at step 3" in lines[0] and "checkpoint-2" in lines[0]
    weights = load_file(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    assert all(torch.isfinite(value).all() for value in weights.values())
    assert not (out / "model.safetensors").exists()  # no final model made of NaNs


def test_a_huge_learning_rate_never_saves_a_nan_model(tiny_dataset, tmp_path, capsys):
    """Issue 28 item 13: --learning-rate 1e30 saved a model with NaN tensors, exit 0."""
    out = tmp_path / "bridge"
    assert main(_argv(tiny_dataset, out, "--max-steps", "3", "--learning-rate", "1e30", "--warmup-steps", "0")) == 1
    err = capsys.readouterr().err
    assert "nan" in err and "Traceback" not in err, err
    assert not (out / "model.safetensors").exists()


def test_nan_weights_after_a_finite_loss_are_never_saved(tiny_dataset, tmp_path, monkeypatch, capsys):
    """The update itself can overflow the weights while the loss it followed was finite: checked before saving."""
    original = torch.optim.AdamW.step

    def step_then_poison(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_poison)
    out = tmp_path / "bridge"
    assert main(_argv(tiny_dataset, out, "--max-steps", "1")) == 1
    err = capsys.readouterr().err
    assert "weights" in err and "Traceback" not in err, err
    assert not (out / "model.safetensors").exists() and not list((out / "checkpoints").glob("checkpoint-*"))


@pytest.mark.parametrize("flag, value", [("--time-limit-minutes", "-1"), ("--feature-batch-size", "0"),
                                         ("--gradient-accumulation-steps", "0"), ("--seed", "-1"),
                                         ("--seed", str(2**70)), ("--learning-rate", "nan")])
def test_bad_flag_values_stop_at_parse_time(tiny_dataset, tmp_path, capsys, flag, value):
    """Issue 28 items 13, 19: each is argparse's one-line error naming the flag; nothing is written."""
    assert main(_argv(tiny_dataset, tmp_path / "out", flag, value)) == 2
    err = capsys.readouterr().err
    assert flag.split("-")[-1] in err and "Traceback" not in err and not (tmp_path / "out").exists()
