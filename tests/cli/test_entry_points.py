"""The scripts people run: benchmarks/ (as subprocesses, smallest arguments, their JSON parsed),
hub_scripts/ (--help, and a real run where it is cheap), the Accelerate configs, and bf16 mixed
precision on the CPU. Speed is never asserted here: benchmarks print it, tests only check the shape."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from snake_world_eqm.provenance import PROVENANCE_FIELDS
from tests.training_helpers import QUIET, REPO_ROOT, TINY_EQM, build_tiny_dataset, subprocess_env

BENCHMARKS = REPO_ROOT / "benchmarks"


def _benchmark(script: str, *args: str, timeout: int = 300) -> dict:
    """Run `python benchmarks/<script> args` and parse the JSON it prints (the last JSON object on stdout)."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    start = done.stdout.index("{")  # some scripts print progress lines first
    result = json.loads(done.stdout[start:])
    assert set(PROVENANCE_FIELDS) <= set(result["provenance"]), "benchmark JSON without provenance"
    return result


def test_expert_benchmark():
    result = _benchmark("expert.py", "--sizes", "6x6", "--games", "2", "--max-steps", "40",
                        "--throughput-batch", "16", "--single-decisions", "4")
    for start in ("start_3", "start_1"):  # both start kinds, each on the same games
        board = result["6x6"][start]
        assert board["games"] == 2 and sum(board["end_causes"].values()) == 2 and 0 < board["mean_fill"] <= 1
    assert result["6x6"]["throughput"]


def test_dataset_benchmark():
    result = _benchmark("dataset.py", "--num-samples", "200", "--size", "6", "--num-proc", "1")
    assert result["rows_written"] == 200 and result["board"] == "6x6" and result["rows_per_s"] > 0


def test_checkpoint_size_benchmark_counts_the_shipped_models_parameters(tmp_path):
    from snake_world_eqm import PRETRAINED_10X10, SnakeWorldEqM

    result = _benchmark("checkpoint_size.py", "--json", str(tmp_path / "size.json"))
    model = SnakeWorldEqM.from_pretrained(PRETRAINED_10X10)
    assert result["num_parameters"] == sum(p.numel() for p in model.parameters())
    assert result["weights_bytes"] == (Path(PRETRAINED_10X10) / "model.safetensors").stat().st_size
    written = json.loads((tmp_path / "size.json").read_text())
    assert written["num_parameters"] == result["num_parameters"] and "provenance" in written


@pytest.mark.slow
def test_model_speed_benchmark():
    result = _benchmark("model_speed.py", "--configs", "cpu_small", "--batch-sizes", "1", "--repeats", "1",
                        "--threads", "1")
    assert [entry["config"] for entry in result["results"]] == ["cpu_small"]


@pytest.mark.slow
def test_evaluate_benchmark_on_a_random_model():
    result = _benchmark("evaluate.py", "--random-model", "--board-size", "6", "--random-rows", "200",
                        "--max-rows", "30", "--games", "2", "--max-steps", "15", "--fixed-steps", "1,2",
                        "--adaptive-max-steps", "2", "--spread-seeds", "2", "--planner-horizon", "4", "--no-progress")
    assert 0.0 <= result["action_accuracy"] <= 1.0 and result["config"]["random_model"] is True
    assert result["config"]["games"] == 2 and result["play"]["expert"]["games"] >= 2  # per start length


@pytest.mark.slow
def test_play_speed_benchmark():
    result = _benchmark("play_speed.py", "--board-size", "6", "--games", "2", "--ticks", "1", "--planner-horizon", "4")
    assert result["seconds_per_tick"] and all(value >= 0 for value in result["seconds_per_tick"].values())


def test_planner_play_benchmark_writes_chunks_and_pools_them(tmp_path):
    for seed in ("1000", "1001"):
        done = subprocess.run([sys.executable, str(BENCHMARKS / "planner_play.py"), "--games", "1", "--seed", seed,
                               "--max-steps", "3", "--start-length", "1", "--output", str(tmp_path / f"{seed}.json")],
                              cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "planner_play.py"), "--pool", str(tmp_path / "1000.json"),
                           str(tmp_path / "1001.json"), "--output", str(tmp_path / "pooled.json")],
                          cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["games"] == 2 and pooled["start_length"] == 1 and pooled["seeds"] == [[1000, 1000], [1001, 1001]]
    assert pooled["cost"]["decisions"] == sum(pooled["steps_per_game"]) and pooled["capped"] + pooled["deaths"] == 2
    assert set(PROVENANCE_FIELDS) <= set(pooled["provenance"]) and len(pooled["parts"]) == 2


def test_paired_play_compares_two_agents_game_by_game(tmp_path):
    def summary(apples, causes):
        return {"start_lengths": [3, 1], "apples_per_game": apples, "end_cause_per_game": causes}

    play = {"planner": summary([10, 12, 7, 9], ["win", "cap", "cap", "self"]),
            "expert": summary([9, 12, 8, 5], ["cap", "win", "win", "cap"]),
            "short": summary([1, 2], ["cap", "cap"])}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"play": play}))
    result = _benchmark("paired_play.py", "--eval", str(path), "--agent", "planner", "--against", "expert",
                        "--output", str(tmp_path / "paired.json"))
    three, one, both = (result["by_start"][key] for key in ("3", "1", "both"))
    assert three["mean_difference"] == 0.5 and three["games"] == 2  # (10-9 + 12-12) / 2
    assert one["mean_difference"] == 1.5 and (one["planner_wins"], one["expert_wins"]) == (0, 1)
    assert both["mean_difference"] == 1.0 and (both["planner_wins"], both["expert_wins"]) == (1, 2)
    low, high = both["mean_difference_ci95"]
    assert -1.0 <= low <= 1.0 <= high <= 4.0  # per-game differences are 1, 0, -1, 4
    assert json.loads((tmp_path / "paired.json").read_text())["by_start"] == result["by_start"]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "paired_play.py"), "--eval", str(path), "--agent",
                           "planner", "--against", "short"], capture_output=True, text=True, env=subprocess_env())
    assert done.returncode != 0 and "did not play the same games" in done.stderr


def test_mutation_benchmark_knows_its_modules_and_their_tests():
    # The run itself takes minutes (not CI): check its table points at real files and its CLI starts.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import mutation
    finally:
        sys.path.remove(str(BENCHMARKS))
    for module, tests in mutation.MODULES.items():
        assert (REPO_ROOT / module).is_file(), module
        assert tests and all((REPO_ROOT / test).is_file() for test in tests), tests
    settings = mutation._mutmut_settings("snake_world_eqm/eqm.py", ["tests/model/test_eqm_math.py"])
    parsed = __import__("tomllib").loads(settings)["tool"]["mutmut"]
    assert parsed["only_mutate"] == ["snake_world_eqm/eqm.py"]
    assert parsed["pytest_add_cli_args_test_selection"] == ["tests/model/test_eqm_math.py"]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "mutation.py"), "--help"], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--modules" in done.stdout


_LEAKED_TQDM_LOCK = """
import io, os, signal, sys
sys.path.insert(0, sys.argv[1])
import mutation_pytest_plugin
from tqdm.auto import tqdm
tqdm(total=1, file=io.StringIO()).close()  # the lock exists before the forks, as in mutmut's runner

def child(unit):  # a mutmut worker: a fresh pytest session (the plugin's hook), then a bar
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # waiting on a leaked lock ends here, with a non-zero status
        try:
            mutation_pytest_plugin.pytest_configure(None)
            tqdm(total=1, unit=unit, file=io.StringIO()).close()
        except TypeError:  # unit=None: the display raises while tqdm holds its lock
            pass
        os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

sys.exit(abs(child(None)) + abs(child("row")))
"""


def test_mutation_plugin_keeps_a_tqdm_lock_leaked_by_one_mutant_out_of_the_next(tmp_path):
    # Without the plugin the second worker waits on tqdm's fork-shared semaphore until the alarm.
    done = subprocess.run([sys.executable, "-c", _LEAKED_TQDM_LOCK, str(BENCHMARKS)], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import mutation
    finally:
        sys.path.remove(str(BENCHMARKS))
    parsed = __import__("tomllib").loads(mutation._mutmut_settings("a.py", ["tests/test_a.py"]))["tool"]["mutmut"]
    assert mutation.PLUGIN.name in parsed["also_copy"] and mutation.PLUGIN.stem in parsed["pytest_add_cli_args"]


def test_mutation_benchmark_scores_what_ran_and_merges_by_module(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import mutation
    finally:
        sys.path.remove(str(BENCHMARKS))
    statuses = {"m.x_f__mutmut_1": "killed", "m.x_f__mutmut_2": "timeout", "m.x_f__mutmut_3": "survived",
                "m.x_f__mutmut_4": "not checked", "m.x_f__mutmut_5": "no tests"}
    scored = mutation._score(statuses)
    assert scored["score"] == 0.5 and scored["total"] == 5 and scored["not_checked"] == 1  # 2 of the 4 that ran
    assert scored["no_tests"] == 1 and scored["meets_target"] is False
    earlier = {"tool": "mutmut", "modules": [{"module": "a.py", "score": 1.0}, {"module": "b.py", "score": 0.5}],
               "not_run": {"b.py": "later", "c.py": "later"}, "provenance": {"command": "old"}}
    (tmp_path / "m.json").write_text(json.dumps(earlier))
    merged = mutation._merged(tmp_path / "m.json", {"modules": [{"module": "b.py", "score": 0.9}],
                                                    "provenance": {"command": "new"}})
    assert [(m["module"], m["score"]) for m in merged["modules"]] == [("a.py", 1.0), ("b.py", 0.9)]
    assert merged["not_run"] == {"c.py": "later"} and merged["tool"] == "mutmut"
    assert merged["provenance"]["command"] == "new"


def test_demo_benchmark_summarises_the_report():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import demo as demo_benchmark
    finally:
        sys.path.remove(str(BENCHMARKS))
    from snake_world_eqm.demo import build_parser, resolve_defaults

    args = resolve_defaults(build_parser().parse_args(["--games", "3", "--max-steps", "30", "--threads", "2"]))
    report = {"action_accuracy": 0.5, "next_board_exact": 0.25,
              "play": {"eqm": {"mean_apples": 2.0, "games": 3}, "expert": {"mean_apples": 9.0, "games": 3}}}
    summary = demo_benchmark.summarize(report, 1.234, 2.468, {"before": 0.5, "after": 1.0}, args)
    assert summary["wall_minutes"] == 1.23 and summary["games"] == 3 and summary["max_steps"] == 30
    assert summary["cpu_minutes"] == 2.47 and summary["threads"] == 2 and summary["load_average_1min"]["after"] == 1.0
    assert summary["play"] == {"eqm": {"mean_apples": 2.0}, "expert": {"mean_apples": 9.0}}


# ---------------------------------------------------------------------------------------------- hub_scripts


HELP_MENTIONS = {"train.py": "--dataset", "evaluate.py": "--model", "push_to_hub.py": "--repo-id",
                 "train_lm_bridge.py": "--eqm-model"}


@pytest.mark.parametrize("script", sorted(path.name for path in (REPO_ROOT / "hub_scripts").glob("*.py")))
def test_hub_script_help(script, monkeypatch, capsys):
    expected = HELP_MENTIONS.get(script, "usage:")
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / "hub_scripts" / script), run_name="__main__")
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


HELP_COMMANDS = [
    ["-m", "snake_world_eqm.cli"],
    *(["-m", "snake_world_eqm.cli", name] for name in ("train", "evaluate", "evaluate-sizes", "play", "push", "demo",
                                                         "lm-train", "app")),
    ["-m", "dataset_builder"], *(["-m", "dataset_builder", sub] for sub in ("dagger", "validate", "push", "merge")),
    *([str(path)] for path in sorted((REPO_ROOT / "hub_scripts").glob("*.py"))),
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_every_command_answers_help_in_a_fresh_process(command):
    """Each command's --help exits 0 and prints its usage (its CPU time: benchmarks/help_speed.py)."""
    done = subprocess.run([sys.executable, *command, "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "snake", num_samples=200)


def test_hub_script_train_runs_in_bf16_on_the_cpu(tiny_dataset, tmp_path, monkeypatch):
    # hub_scripts/train.py as `python hub_scripts/train.py ...` would run it, with bf16 autocast on the CPU.
    out = tmp_path / "run"
    argv = ["train.py", "--dataset", str(tiny_dataset), "--output-dir", str(out), "--batch-size", "8",
            "--max-eval-samples", "8", "--max-steps", "2", "--eval-every", "2", "--mixed-precision", "bf16",
            *TINY_EQM, *QUIET]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / "hub_scripts" / "train.py"), run_name="__main__")
    assert exit_info.value.code == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["mixed_precision"] == "bf16" and summary["global_step"] == 2
    assert torch.isfinite(torch.tensor(summary["validation"]["loss"]))
    assert set(PROVENANCE_FIELDS) <= set(summary["provenance"])


def test_a_bf16_autocast_training_step_on_the_cpu():
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
    from snake_world_eqm.data import GenerationConfig, collate
    from snake_world_eqm.data.generate import play_chunk
    from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM

    torch.manual_seed(0)
    config = SnakeWorldEqMConfig.cpu_small(
        board_height=6, board_width=6, d_model=16, cnn_channels=16, cnn_layers=1, latent_dim=8,
        latent_hidden_dim=16, decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=1)
    model = SnakeWorldEqM(config).train()
    rows = play_chunk(GenerationConfig(num_samples=16, height=6, width=6, seed=1, rows_per_chunk=16, parallel_games=2), 0)
    batch = collate({name: rows[name] for name in ("state", "action", "next_state", "event",
                                                   "next_state_per_action", "event_per_action")})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)  # master weights stay fp32
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


# ------------------------------------------------------------------------------------------ accelerate_configs


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "accelerate_configs").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_config_parses_and_is_valid(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DistributedType

    raw = yaml.safe_load(path.read_text())
    config = ClusterConfig(**raw)  # unknown or missing fields raise here
    assert DistributedType(config.distributed_type) in set(DistributedType)
    assert config.mixed_precision in ("no", "fp16", "bf16", "fp8")
    assert config.num_processes >= 1 and config.num_machines == 1
    assert (config.use_cpu is True) == (path.name == "cpu.yaml")


def test_reproduce_recipe_commands_parse_with_their_real_command_lines(tmp_path, capsys):
    # The recipe is data; when a flag is renamed or removed, this fails before an hour-long run would.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import reproduce
    finally:
        sys.path.remove(str(BENCHMARKS))
    from dataset_builder.__main__ import build_parser as dataset_parser
    from snake_world_eqm.evaluation.cli import build_parser as evaluate_parser
    from snake_world_eqm.lm_bridge.training import build_parser as lm_parser
    from snake_world_eqm.training.args import build_parser as train_parser

    parsers = {"dataset": dataset_parser, "train": train_parser, "baseline": train_parser,
               "evaluate": evaluate_parser, "lm-bridge": lm_parser}
    steps = reproduce.commands(tmp_path / "work", tmp_path / "results", reproduce.STEPS)
    assert [step for step, _, _ in steps] == list(parsers)
    for step, argv, _ in steps:
        # python -m dataset_builder ARGS, or python -m snake_world_eqm.cli SUBCOMMAND ARGS
        module_args = argv[3:] if argv[2] == "dataset_builder" else argv[4:]
        parsers[step]().parse_args(module_args)
    assert reproduce.main(["--dry-run", "--workdir", str(tmp_path / "w"), "--results-dir", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.count("$ ") == len(parsers) and not (tmp_path / "r").exists()
