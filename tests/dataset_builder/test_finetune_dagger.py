"""Fine-tuning from a checkpoint (folder or cached repo id, 1 and 2 processes), mixing datasets, on-policy
(DAgger) collection, the DAgger loop, and their input errors."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dataset_builder.builder import build_dataset
from dataset_builder.validate import validate_dataset
from snake_world_eqm import PRETRAINED_10X10, SnakeWorldEqM
from snake_world_eqm.data import GenerationConfig, load_snake_dataset
from snake_world_eqm.data.features import SOURCE_NAMES
from snake_world_eqm.training import main as train_main
from snake_world_eqm.training.data import load_splits
from tests.training_helpers import QUIET, REPO_ROOT, TINY_EQM, build_tiny_dataset, subprocess_env

SCRIPT = str(REPO_ROOT / "hub_scripts" / "train.py")
FAST = ["--batch-size", "8", "--max-eval-samples", "8", "--warmup-steps", "1", *QUIET]


@pytest.fixture(scope="module")
def data6(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("d6") / "snake6")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, data6):
    """A tiny EqM model and a tiny baseline on 6x6 boards (two optimizer steps each)."""
    root = tmp_path_factory.mktemp("models")
    for kind in ("eqm", "baseline"):
        assert train_main(["--model", kind, "--dataset", str(data6), "--output-dir", str(root / kind),
                           "--max-steps", "2", *TINY_EQM, *FAST]) == 0
    return root / "eqm", root / "baseline"


def _cached_repo(cache, repo_id: str, folder) -> None:
    """A pre-populated Hugging Face cache entry for a model repo (what a download would leave)."""
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def _finetune(parent, dataset, out, *extra) -> int:
    return train_main(["--model-name-or-path", str(parent), "--dataset", *map(str, dataset), "--output-dir", str(out),
                       *FAST, *extra])


# ---- fine-tuning ------------------------------------------------------------------------------------------


def test_finetuning_starts_from_the_checkpoint_weights_and_applies_sampler_overrides(tiny_models, data6, tmp_path):
    parent, _ = tiny_models
    out = tmp_path / "ft"
    # A vanishing learning rate and no weight decay: the result must still be the parent's weights.
    assert _finetune(parent, [data6], out, "--max-steps", "1", "--learning-rate", "1e-12", "--weight-decay", "0",
                     "--eqm-sampling-steps", "5", "--whatif-loss-weight", "0.5") == 0
    child, original = load_file(out / "model.safetensors"), load_file(parent / "model.safetensors")
    assert child.keys() == original.keys()
    for name in child:
        torch.testing.assert_close(child[name], original[name], atol=1e-6, rtol=0, msg=name)
    config = json.loads((out / "config.json").read_text())
    parent_config = json.loads((parent / "config.json").read_text())
    assert config["eqm_sampling_steps"] == 5 and config["whatif_loss_weight"] == 0.5
    assert config["d_model"] == parent_config["d_model"] and config["latent_dim"] == parent_config["latent_dim"]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["base_model"] == str(parent) and summary["model"] == "eqm"
    assert f"Fine-tuned from `{parent}`" in (out / "README.md").read_text()


def test_finetuning_resumes_from_its_latest_checkpoint(tiny_models, data6, tmp_path):
    parent, _ = tiny_models
    out = tmp_path / "resume"
    assert _finetune(parent, [data6], out, "--max-steps", "2", "--save-every", "1") == 0
    assert _finetune(parent, [data6], out, "--max-steps", "4", "--save-every", "1",
                     "--resume-from-checkpoint", "latest") == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["global_step"] == 4


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--d-model", "32"], "d_model=32 would change the architecture"),
        (["--config-set", "cnn_layers=7"], "cnn_layers=7 would change the architecture"),
        (["--model", "baseline"], "is a eqm model"),
        (["--config-preset", "cpu-small"], "--config-preset cannot be combined"),
    ],
)
def test_finetuning_flags_that_change_the_checkpoint_are_one_line_errors(tiny_models, data6, tmp_path, capsys,
                                                                         flags, message):
    parent, _ = tiny_models
    out = tmp_path / "never"
    assert _finetune(parent, [data6], out, "--max-steps", "1", *flags) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_finetuning_on_another_board_size_and_a_missing_checkpoint_are_errors(data6, tmp_path, capsys):
    assert _finetune(PRETRAINED_10X10, [data6], tmp_path / "a", "--max-steps", "1") == 2
    assert "plays 10x10 boards, but the dataset is 6x6" in capsys.readouterr().err
    assert _finetune(tmp_path / "nowhere", [data6], tmp_path / "b", "--max-steps", "1") == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_finetune_the_shipped_checkpoint_from_a_cached_repo_id_with_two_processes(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` (gloo on CPU), `--model-name-or-path org/snake-eqm`
    resolved offline from a pre-populated cache; the card names its parent."""
    data10 = tmp_path / "data10"
    build_dataset(GenerationConfig(num_samples=200, height=10, width=10, seed=4, split_fractions=(0.8, 0.2, 0.0)),
                  data10, progress=False)
    cache = tmp_path / "hub"
    _cached_repo(cache, "org/snake-eqm", PRETRAINED_10X10)
    out = tmp_path / "ft10"
    cli = shutil.which("accelerate")
    launch = [cli, "launch"] if cli else [sys.executable, "-m", "accelerate.commands.launch"]
    command = [*launch, "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu",
               "--num_processes", "2", SCRIPT, "--model-name-or-path", "org/snake-eqm", "--dataset", str(data10),
               "--output-dir", str(out), "--max-steps", "2", "--batch-size", "8", "--eval-every", "2",
               "--max-eval-samples", "8", "--warmup-steps", "1", "--eqm-sampling-steps", "3", *QUIET]
    env = subprocess_env(HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path), CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 2 and summary["base_model"] == "org/snake-eqm"
    card = (out / "README.md").read_text()
    assert "base_model: org/snake-eqm" in card
    model = SnakeWorldEqM.from_pretrained(out)
    shipped = json.loads((PRETRAINED_10X10 / "config.json").read_text())
    assert model.config.d_model == shipped["d_model"] and model.config.eqm_sampling_steps == 3


# ---- several datasets -------------------------------------------------------------------------------------


def test_several_datasets_are_mixed_by_rows(data6, tmp_path):
    other = build_tiny_dataset(tmp_path / "other", num_samples=120)
    one = load_splits([str(data6)], "eqm")
    both = load_splits([str(data6), str(other)], "eqm", max_eval_samples=10)
    extra = load_snake_dataset(other)
    assert len(both.train) == len(one.train) + len(extra["train"])
    assert len(both.eval) == 10
    # Evaluation rows come from both datasets in proportion to their size.
    first_rows = load_snake_dataset(data6)["validation"].with_format("numpy")[:]["state"]
    from_first = sum(any(np.array_equal(row, known) for known in first_rows)
                     for row in both.eval.with_format("numpy")[:]["state"])
    assert 0 < from_first < 10


def test_datasets_of_different_board_sizes_train_a_size_free_model_only(data6, tmp_path, capsys):
    data8 = tmp_path / "d8"
    build_dataset(GenerationConfig(num_samples=100, height=8, width=8, seed=1), data8, progress=False)
    assert list(load_splits([str(data6), str(data8)], "eqm").board_sizes) == ["6x6", "8x8"]  # one size per batch
    assert train_main(["--dataset", str(data6), str(data8), "--output-dir", str(tmp_path / "never"), "--max-steps", "1",
                       "--config-set", "fixed_board_size=true", *TINY_EQM, *FAST]) == 2
    assert "holds several board sizes" in capsys.readouterr().err and not (tmp_path / "never").exists()


# ---- on-policy (DAgger) data --------------------------------------------------------------------------------


class FixedPolicy:
    """Always 'up': a bad policy whose games die fast, so the expert's recoveries and deaths both appear."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, boards: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.zeros(len(boards), dtype=np.int64)


def test_dagger_collection_records_who_played_and_revalidates_with_zero_violations(tmp_path):
    policy = FixedPolicy()
    config = GenerationConfig(num_samples=600, height=6, width=6, seed=2, perturb_prob=0.1, beta=0.5,
                              one_cell_fraction=0.5, policy_name="fixed-up", policy=policy)
    out = build_dataset(config, tmp_path / "dagger", progress=False).path
    assert policy.calls > 0
    report = validate_dataset(out, progress=False)
    assert report.violations == 0, report.summary()
    rows = load_snake_dataset(out)["train"].with_format("numpy")[:]
    counts = np.bincount(rows["source"], minlength=len(SOURCE_NAMES))
    assert all(counts > 0), counts  # expert, policy and perturbed steps all occur
    policy_rows = rows["source"] == SOURCE_NAMES.index("policy")
    assert (rows["taken_action"][policy_rows] == 0).all()  # the policy's action was the one played
    expert_rows = rows["source"] == SOURCE_NAMES.index("expert")
    assert (rows["taken_action"][expert_rows] == rows["action"][expert_rows]).all()
    assert ((rows["state"] >= 2).sum(axis=(1, 2))[rows["step"] == 0] == 1).any()  # one-cell starts
    card = (out / "README.md").read_text()
    assert "fixed-up" in card and "beta = 0.5" in card


def test_validate_catches_a_step_labelled_expert_that_did_not_take_the_expert_action(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = GenerationConfig(num_samples=200, height=6, width=6, seed=5, perturb_prob=0.0, beta=1.0,
                              policy_name="fixed-up", policy=FixedPolicy())
    policy = config.policy
    out = build_dataset(config, tmp_path / "d", progress=False).path
    assert policy.calls == 0  # beta = 1: the expert plays every step, so the policy is never asked
    file = sorted((out / "data").glob("train-*.parquet"))[0]
    table = pq.read_table(file)
    taken = table.column("taken_action").to_numpy().copy()
    taken[3] = (taken[3] + 1) % 4  # says the expert played, but another action was taken
    table = table.set_column(table.schema.get_field_index("taken_action"), table.schema.field("taken_action"),
                             pa.array(taken, type=table.schema.field("taken_action").type))
    pq.write_table(table, file)
    report = validate_dataset(out, progress=False)
    assert report.by_check["source_expert_action"] == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--beta", "1.5"], "--beta: expected a number in [0, 1]"),
        (["--beta", "-0.1"], "--beta: expected a number in [0, 1]"),
        (["--height", "8", "--width", "8"], "plays 6x6 boards, but this dataset is 8x8"),
        (["--policy-agent", "planner", "@baseline"], "needs an EqM world model"),
        (["--num-proc", "2"], "drop --num-proc"),
        (["--policy-dtype", "float16"], "invalid choice: 'float16'"),
    ],
)
def test_dagger_collection_input_errors_are_one_line_and_write_nothing(tiny_models, tmp_path, flags, message):
    eqm, baseline = tiny_models
    policy = str(baseline) if "@baseline" in flags else str(eqm)
    flags = [flag for flag in flags if flag != "@baseline"]
    out = tmp_path / "never"
    command = [sys.executable, "-m", "dataset_builder", "--num-samples", "50", "--height", "6", "--width", "6",
               "--output", str(out), "--policy", policy, "--no-progress", *flags]
    proc = subprocess.run(command, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_a_bfloat16_policy_plays_the_same_moves_on_these_boards_and_bad_dtypes_are_refused(tiny_models):
    from snake_world_eqm.agents.factory import load_policy
    from snake_world_eqm.evaluation.closed_loop import initial_boards

    eqm, _ = tiny_models
    boards = initial_boards(32, 6, 6, seed=4)
    full = load_policy(str(eqm), "auto", 6, 6)(boards)
    assert full.shape == (32,)
    half = load_policy(str(eqm), "auto", 6, 6, dtype="bfloat16")(boards)
    # Autocast may flip a near-tie of an untrained model; most moves must agree.
    assert (half == full).mean() >= 0.75, (half, full)
    with pytest.raises(ValueError, match="--policy-dtype must be one of"):
        load_policy(str(eqm), "auto", 6, 6, dtype="float16")


def test_beta_without_a_policy_is_an_error(tmp_path):
    from dataset_builder.__main__ import main

    with pytest.raises(SystemExit):
        main(["--num-samples", "10", "--output", str(tmp_path / "x"), "--beta", "0.3"])
    assert not (tmp_path / "x").exists()


def test_dagger_loop_runs_rounds_and_resumes_without_redoing_them(tiny_models, data6, tmp_path, capsys):
    from dataset_builder.dagger import main as dagger_main

    eqm, _ = tiny_models
    argv = ["--model", str(eqm), "--dataset", str(data6), "--output-dir", str(tmp_path / "dagger"), "--rounds", "1",
            "--samples-per-round", "120", "--finetune-steps", "2", "--batch-size", "8", "--eval-games", "2",
            "--eval-max-steps", "20", "--train-args", "--max-eval-samples 8", "--no-progress"]
    assert dagger_main(argv) == 0
    log = json.loads((tmp_path / "dagger" / "dagger.json").read_text())
    assert [r["round"] for r in log["rounds"]] == [0, 1]
    assert log["command"] == "python -m dataset_builder dagger " + " ".join(shlex.quote(a) for a in argv)
    first = log["rounds"][1]
    assert first["rows_added"] == 120 and first["beta"] == 0.5 and first["finetune_steps"] == 2
    assert first["games"] == 4 and 0.0 <= first["held_out_action_accuracy"] <= 1.0
    assert "| 1 | 120 | 0.5 |" in capsys.readouterr().out
    marker = tmp_path / "dagger" / "round-1" / "round.json"
    before = marker.stat().st_mtime_ns
    assert dagger_main([*argv[:7], "2", *argv[8:]]) == 0  # two rounds now: round 1 is read back, round 2 runs
    assert marker.stat().st_mtime_ns == before
    log = json.loads((tmp_path / "dagger" / "dagger.json").read_text())
    assert [r["round"] for r in log["rounds"]] == [0, 1, 2] and log["rounds"][2]["beta"] == 0.25
    # The on-policy rows are labelled by the teacher of the data they are mixed with (data6: astar).
    card = (tmp_path / "dagger" / "round-2" / "data" / "README.md").read_text()
    assert "expert: astar" in card and "--expert astar" in card


def test_a_fine_tune_stopped_by_a_signal_records_no_round_and_a_rerun_finishes_it(tiny_models, data6, tmp_path,
                                                                                  capsys, monkeypatch):
    from dataset_builder.dagger import main as dagger_main
    from tests.training_helpers import poison_forward

    eqm, _ = tiny_models
    argv = ["--model", str(eqm), "--dataset", str(data6), "--output-dir", str(tmp_path / "dagger"), "--rounds", "1",
            "--samples-per-round", "60", "--finetune-steps", "3", "--batch-size", "8", "--eval-games", "1",
            "--eval-max-steps", "10", "--train-args", "--max-eval-samples 8", "--no-progress"]
    with monkeypatch.context() as patch:  # SIGTERM during round 1's fine-tune, as a scheduler's kill sends it
        poison_forward(patch, SnakeWorldEqM, after_calls=1, effect=lambda out: os.kill(os.getpid(), signal.SIGTERM))
        assert dagger_main(argv) == 128 + signal.SIGTERM
    assert "round 1's fine-tune was stopped by SIGTERM" in capsys.readouterr().err
    round_folder = tmp_path / "dagger" / "round-1"
    assert not (round_folder / "round.json").exists() and not (tmp_path / "dagger" / "dagger.json").exists()
    stopped_at = json.loads((round_folder / "model" / "metrics.json").read_text())["global_step"]
    assert stopped_at < 3
    assert dagger_main(argv) == 0  # the rerun keeps the collected rows and resumes the fine-tune
    record = json.loads((round_folder / "round.json").read_text())
    assert record["finetune_steps"] == 3 and record["rows_added"] == 60
    assert json.loads((round_folder / "model" / "metrics.json").read_text())["stopped_because"] == "max_steps"


def test_dagger_labels_with_the_datasets_expert_and_refuses_a_mix_of_teachers(tiny_models, data6, tmp_path, capsys):
    from dataset_builder.dagger import main as dagger_main
    from snake_world_eqm import PRETRAINED_10X10
    from snake_world_eqm.data import GenerationConfig
    from snake_world_eqm.data.loading import dataset_expert

    filled = tmp_path / "fill6"
    build_dataset(GenerationConfig(num_samples=40, height=6, width=6, seed=4, expert="fill"), filled, progress=False)
    assert dataset_expert([str(filled)]) == "fill" and dataset_expert([str(data6)]) == "astar"
    argv = ["--model", str(PRETRAINED_10X10), "--dataset", str(data6), str(filled), "--output-dir", str(tmp_path / "d")]
    assert dagger_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "different experts ['astar', 'fill']" in err and "--expert" in err
    assert not (tmp_path / "d").exists()
    assert dagger_main(["--model", str(tiny_models[0]), "--dataset", str(filled), "--output-dir", str(tmp_path / "f"),
                        "--rounds", "1", "--samples-per-round", "40", "--finetune-steps", "1", "--batch-size", "8",
                        "--eval-games", "1", "--eval-max-steps", "5", "--train-args", "--max-eval-samples 8",
                        "--no-progress"]) == 0
    card = (tmp_path / "f" / "round-1" / "data" / "README.md").read_text()
    assert "expert: fill" in card and "--expert fill" in card


def test_fatal_deviations_are_policy_mistakes_shortly_before_the_policy_died(tmp_path):
    from dataset_builder.dagger import fatal_deviation_rows, save_fatal_deviations

    config = GenerationConfig(num_samples=400, height=6, width=6, seed=8, perturb_prob=0.0, beta=0.3,
                              policy_name="fixed-up", policy=FixedPolicy())
    folder = build_dataset(config, tmp_path / "d", progress=False).path
    split = load_snake_dataset(folder, split="train")
    rows = fatal_deviation_rows(split, window=5)
    table = split.with_format("numpy")[:]
    died = table["terminated_per_action"][np.arange(len(split)), table["taken_action"]]
    assert rows.size > 0
    for row in rows:
        assert table["source"][row] == SOURCE_NAMES.index("policy") and table["taken_action"][row] != table["action"][row]
        later = np.arange(row, min(row + 6, len(split)))
        later = later[table["episode_id"][later] == table["episode_id"][row]]
        assert died[later].any()  # the same game ended in a death within the window
    # Every policy deviation followed by a death within the window is found.
    deviations = np.flatnonzero((table["source"] == 1) & (table["taken_action"] != table["action"]))
    expected = [r for r in deviations
                if any(died[k] and table["episode_id"][k] == table["episode_id"][r] for k in range(r, min(r + 6, len(split))))]
    assert rows.tolist() == expected
    count = save_fatal_deviations([folder], tmp_path / "hard", window=5, repeat=3)
    assert count == rows.size and len(load_snake_dataset(tmp_path / "hard", split="train")) == 3 * rows.size


def test_dagger_collection_plays_whole_episodes_so_long_snakes_are_seen(tiny_models, tmp_path):
    """256 games sharing a round's rows would each stop after a few steps (short snakes only); by default a
    round steps as few games as let each play a whole episode of up to 20 x cells steps."""
    from dataset_builder.dagger import collect, whole_episode_games

    assert whole_episode_games(40_000, 10, 10) == 20 and whole_episode_games(40_000, 16, 16) == 7
    assert whole_episode_games(100, 16, 16) == 1 and whole_episode_games(10**8, 6, 6) == 256
    eqm, _ = tiny_models
    longest = {}
    for games in (None, 256):  # beta 1: the route expert plays every step, so episodes last until the board is full
        out = tmp_path / f"games-{games}"
        collect(str(eqm), out, 1_500, 1.0, 6, 6, seed=3, expert="route", progress=False, parallel_games=games)
        rows = load_snake_dataset(out)["train"].with_format("numpy")[:]
        longest[games] = (int(rows["step"].max()), int(rows["snake_length"].max()))
        assert f"--parallel-games {games or 2}" in (out / "README.md").read_text()
    assert longest[256][0] < 6 and longest[256][1] < 10
    assert longest[None][0] > 100 and longest[None][1] > 20, longest
