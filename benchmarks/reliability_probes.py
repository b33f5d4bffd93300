"""Bad-input and fault probes of issue 15, each run in a fresh subprocess; prints one JSON object per probe.

    PYTHONPATH=/work/main python benchmarks/reliability_probes.py > before.jsonl   # the code under test is
    PYTHONPATH=.          python benchmarks/reliability_probes.py > after.jsonl    # whatever PYTHONPATH names

Each probe reports what happened ("outcome": exit code, whether a traceback was printed, the last line) and a
probe-specific observation ("seen"), so the same script describes the old and the new behaviour. Probes that
would fork thousands of processes on a shared machine are not run against code that does not bound them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TIMEOUT = 60  # seconds before a probe counts as a hang
TINY = ("--d-model 16 --num-layers 1 --num-heads 2 --latent-dim 8 --eqm-hidden-dim 16 --eqm-num-layers 1 "
        "--config-set decoder_channels=8 --config-set decoder_layers=1 --eqm-sampling-steps 3 --batch-size 16 "
        "--max-eval-samples 8 --eval-every 1000 --warmup-steps 1 --disable-progress-bar --report-to none").split()


def env(**extra: str) -> dict[str, str]:
    base = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                PYTHONUNBUFFERED="1")
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def run(args: list[str], timeout: int = TIMEOUT, **env_extra) -> dict:
    """Run a command; summarise exit code, traceback, last stderr/stdout line, or a hang."""
    start = time.monotonic()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env(**env_extra),
                              preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        return {"exit": None, "hang": f"killed after {timeout} s"}
    err = [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip() and "it/s]" not in line
           and "%|" not in line]
    out = [line for line in proc.stdout.splitlines() if line.strip()]
    return {"exit": proc.returncode, "traceback": "Traceback" in proc.stderr,
            "last_err": err[-1][:220] if err else "", "last_out": out[-1][:220] if out else "",
            "seconds": round(time.monotonic() - start, 1)}


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a runaway model allocates, then fails


def py(code: str, timeout: int = TIMEOUT, **env_extra) -> dict:
    return run([sys.executable, "-c", textwrap.dedent(code)], timeout, **env_extra)


def cli(*args: str, timeout: int = TIMEOUT, **env_extra) -> dict:
    return run([sys.executable, "-m", "snake_world_eqm.cli", *args], timeout, **env_extra)


def builder(*args: str, timeout: int = TIMEOUT, **env_extra) -> dict:
    return run([sys.executable, "-m", "dataset_builder", *args], timeout, **env_extra)


# ------------------------------------------------------------------------------------------------------
# Fixtures (made with APIs both versions share)


def make_fixtures(root: Path) -> dict[str, Path]:
    paths = {"root": root, "data": root / "data6", "eqm": root / "eqm", "baseline": root / "baseline"}
    builder("--num-samples", "300", "--height", "6", "--width", "6", "--seed", "3", "--output", str(paths["data"]),
            "--no-progress")
    py(f"""
        from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig, SnakePolicyBaseline, SnakePolicyBaselineConfig
        cfg = SnakeWorldEqMConfig(board_height=6, board_width=6, d_model=16, num_layers=1, num_heads=2, latent_dim=8,
                                  eqm_hidden_dim=16, eqm_num_layers=1, decoder_channels=8, decoder_layers=1)
        SnakeWorldEqM(cfg).save_pretrained({str(paths['eqm'])!r})
        SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(cfg)).save_pretrained({str(paths['baseline'])!r})
    """)
    return paths


INTERCEPT = """
    import os, json
    from huggingface_hub import HfApi
    committed = []
    HfApi.create_repo = lambda self, repo_id, **kw: None
    HfApi.whoami = lambda self, token=None: {"name": "probe"}
    def create_commit(self, repo_id, operations, **kw):
        committed.extend(op.path_in_repo for op in operations)
    HfApi.create_commit = create_commit
    os.environ["HF_TOKEN"] = "hf_probe"
"""


def leaky_model_folder(p: dict, name: str) -> Path:
    folder = p["root"] / name
    shutil.copytree(p["eqm"], folder)
    (folder / "sub").mkdir()
    (folder / "sub" / ".env").write_text("HF_TOKEN=hf_secret\n")
    (folder / "id_rsa").write_text("key\n")
    (folder / "secrets.txt").write_text("pw\n")
    (folder / "wandb" / "run-1").mkdir(parents=True)
    (folder / "wandb" / "run-1" / "config.yaml").write_text("k: v\n")
    (folder / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-5" / "optimizer.bin").write_bytes(b"x")
    outside = p["root"] / f"{name}_system_file.txt"
    outside.write_text("system secret\n")
    (folder / "eval_notes.txt").symlink_to(outside)
    (folder / "training_curves.png").symlink_to(outside)  # an allowed name, but a link out of the folder
    return folder


# ------------------------------------------------------------------------------------------------------
# Probes


def probe_push_allow_list(p):
    folder = leaky_model_folder(p, "leaky_push")
    result = py(textwrap.dedent(INTERCEPT) + textwrap.dedent(f"""
        from snake_world_eqm.hub import main
        try:
            main(["--model-dir", {str(folder)!r}, "--repo-id", "org/m"])
        finally:
            print(json.dumps(sorted(committed)))
    """), HF_HUB_OFFLINE="0")
    return result | {"seen": "committed " + result["last_out"]}


def probe_push_dry_run(p):
    folder = leaky_model_folder(p, "leaky_dry")
    result = cli("push", "--model-dir", str(folder), "--repo-id", "org/m", "--dry-run")
    listed = subprocess.run([sys.executable, "-m", "snake_world_eqm.cli", "push", "--model-dir", str(folder),
                             "--repo-id", "org/m", "--dry-run"], capture_output=True, text=True, env=env()).stdout
    files = sorted(line.split()[0] for line in listed.splitlines() if line.startswith("  "))
    return result | {"seen": f"listed {files}" if files else "no --dry-run"}


def probe_dataset_push_allow_list(p):
    folder = p["root"] / "ds_push"
    shutil.copytree(p["data"], folder)
    (folder / ".env").write_text("k\n")
    (folder / "notes.txt").write_text("n\n")
    (folder / "data" / "extra.csv").write_text("x\n")
    result = py(textwrap.dedent(INTERCEPT) + textwrap.dedent(f"""
        from snake_world_eqm.hub import push_folder
        try:
            push_folder({str(folder)!r}, "org/ds", repo_type="dataset")
        finally:
            print(json.dumps(sorted(committed)))
    """), HF_HUB_OFFLINE="0")
    return result | {"seen": "committed " + result["last_out"]}


def _folder_state(folder: Path) -> str:
    readme = folder / "README.md"
    return readme.read_text()[:60] if readme.exists() else "<no README>"


def probe_push_no_token(p):
    folder = p["root"] / "no_token"
    shutil.copytree(p["eqm"], folder)
    before = _folder_state(folder)
    home = p["root"] / "empty_home"
    home.mkdir(exist_ok=True)
    result = cli("push", "--model-dir", str(folder), "--repo-id", "org/m", HF_TOKEN=None, HF_HOME=str(home),
                 HF_HUB_OFFLINE="0", timeout=90)
    return result | {"seen": f"folder changed: {before != _folder_state(folder)}"}


def probe_push_bad_repo_id(p):
    folder = p["root"] / "bad_id"
    shutil.copytree(p["eqm"], folder)
    before = _folder_state(folder)
    result = cli("push", "--model-dir", str(folder), "--repo-id", "bad id!/x")
    return result | {"seen": f"folder changed: {before != _folder_state(folder)}"}


def probe_validate_stale_cache(p):
    folder = p["root"] / "stale"
    shutil.copytree(p["data"], folder)
    cache = p["root"] / "stale_cache"
    builder("validate", str(folder), "--no-progress", HF_DATASETS_CACHE=str(cache))
    train = next((folder / "data").glob("train-*.parquet"))
    py(f"import pyarrow.parquet as pq; t = pq.read_table({str(train)!r}); pq.write_table(t.slice(0, 5), {str(train)!r})")
    result = builder("validate", str(folder), "--no-progress", HF_DATASETS_CACHE=str(cache))
    return result | {"seen": "after truncating train to 5 rows: " + (result["last_out"] or result["last_err"])}


def probe_validate_illegal_board(p):
    folder = p["root"] / "illegal"
    result = py(f"""
        import numpy as np, pyarrow.parquet as pq
        from pathlib import Path
        from snake_world_eqm.data import features
        from snake_world_eqm.data.generate import rows_to_table
        from snake_world_eqm.game import SnakeState, encode_observation, batched_successors, BODY_UP, EMPTY
        board = encode_observation(SnakeState(6, 6, ((2, 2), (2, 3), (2, 4)), (0, 0)))
        r, c = np.argwhere(board == EMPTY)[-1]; board[r, c] = BODY_UP        # a body cell no chain reaches
        b = board[None].astype(np.int8)
        nxt, rew, ev, term = batched_successors(b, np.random.default_rng(0))
        a = np.array([1])
        rows = dict(state=b, action=a, taken_action=a, next_state=nxt[:, 1], next_state_per_action=nxt,
                    reward_per_action=rew, terminated_per_action=term, event_per_action=ev, reward=rew[:, 1],
                    terminated=term[:, 1], event=ev[:, 1], step=np.array([0]), snake_length=(b >= 2).sum((1, 2)),
                    episode_id=np.array([0]), symmetry=np.array([0], dtype=np.int8), source=np.array([0]))
        feats = features(6, 6)
        Path({str(folder)!r}, "data").mkdir(parents=True)
        pq.write_table(rows_to_table({{k: v for k, v in rows.items() if k in feats}}, feats),
                       Path({str(folder)!r}, "data", "train-00000-of-00001.parquet"))
        from dataset_builder.validate import validate_dataset
        print(validate_dataset({str(folder)!r}, progress=False).summary().splitlines()[0])
    """)
    return result | {"seen": "disconnected body: " + result["last_out"]}


def _train(p, out: Path, *extra: str, timeout: int = 180) -> dict:
    return cli("train", "--dataset", str(p["data"]), "--output-dir", str(out), *TINY, *extra, timeout=timeout)


def probe_output_dir_reuse(p):
    out = p["root"] / "reuse"
    _train(p, out, "--max-steps", "2")
    result = _train(p, out, "--max-steps", "2", "--seed", "9")
    return result | {"seen": "second run into the same --output-dir: exit " + str(result["exit"])}


def probe_latest_resumes_other_run(p):
    """Run A finishes (checkpoint-6 + final model); run B (another seed) in the same dir is killed after its first
    checkpoint (step 2); which run does `latest` resume, and whose final model sits at the root meanwhile?"""
    out = p["root"] / "latest"
    _train(p, out, "--max-steps", "6", "--save-every", "6")
    help_text = subprocess.run([sys.executable, "-m", "snake_world_eqm.cli", "train", "--help"], capture_output=True,
                               text=True, env=env()).stdout
    flags = ["--overwrite-output-dir"] if "--overwrite-output-dir" in help_text else []
    run_b = subprocess.Popen([sys.executable, "-m", "snake_world_eqm.cli", "train", "--dataset", str(p["data"]),
                              "--output-dir", str(out), *TINY, "--max-steps", "100000", "--save-every", "2",
                              "--seed", "9", *flags], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (out / "checkpoints" / "checkpoint-2").is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    run_b.kill()
    run_b.wait()
    root_model = (out / "model.safetensors").exists()
    resume = subprocess.run([sys.executable, "-m", "snake_world_eqm.cli", "train", "--dataset", str(p["data"]),
                             "--output-dir", str(out), *TINY, "--max-steps", "8", "--seed", "9",
                             "--resume-from-checkpoint", "latest"], capture_output=True, text=True, env=env())
    line = next((x for x in (resume.stdout + resume.stderr).splitlines() if "resumed from" in x), "no resume line")
    return {"exit": resume.returncode, "seen": f"{flags or 'no flag'}: killed run B left a final model at the "
                                               f"root: {root_model}; latest: {line.strip()[-60:]}"}


def probe_config_set_nan(p):
    out = p["root"] / "nan"
    result = _train(p, out, "--max-steps", "3", "--config-set", "gradient_multiplier=NaN")
    weights = py(f"""
        import torch
        from safetensors.torch import load_file
        w = load_file({str(out / 'model.safetensors')!r})
        print("all-NaN weights" if all(torch.isnan(v).all() for v in w.values() if v.is_floating_point()) else
              "finite weights")
    """)
    return result | {"seen": weights["last_out"] or "no model written"}


def probe_nan_loss_midway(p):
    out = p["root"] / "nan_lr"
    result = _train(p, out, "--max-steps", "8", "--learning-rate", "1e30", "--gradient-clip", "0", "--save-every", "2")
    weights = py(f"""
        import torch
        from safetensors.torch import load_file
        w = load_file({str(out / 'model.safetensors')!r})
        print("final model has NaN" if any(torch.isnan(v).any() for v in w.values() if v.is_floating_point()) else
              "final model finite")
    """)
    return result | {"seen": weights["last_out"] or "no final model written"}


def probe_sampler_args(p):
    result = py(f"""
        import math
        from snake_world_eqm import SnakeWorldEqM
        from snake_world_eqm.game import new_game
        m = SnakeWorldEqM.from_pretrained({str(p['eqm'])!r})
        s = new_game(6, 6, 0)
        verdicts = []
        for kw in (dict(step_size=math.nan), dict(adaptive_threshold=math.nan), dict(num_steps=2.7)):
            try:
                m.sample(s, **kw); verdicts.append(f"{{kw}}: accepted")
            except Exception as e:
                verdicts.append(f"{{kw}}: {{type(e).__name__}}")
        print("; ".join(verdicts))
    """)
    return result | {"seen": result["last_out"]}


def probe_config_fields(p):
    result = py("""
        from snake_world_eqm import SnakeWorldEqMConfig
        verdicts = []
        for kw in (dict(d_model="64"), dict(eqm_step_size=1e308), dict(gradient_multiplier=float("nan"))):
            try:
                SnakeWorldEqMConfig(**kw); verdicts.append(f"{kw}: accepted")
            except Exception as e:
                verdicts.append(f"{kw}: {type(e).__name__}: {str(e)[:50]}")
        print("; ".join(verdicts))
    """)
    return result | {"seen": result["last_out"]}


def probe_wrong_class(p):
    result = py(f"""
        from snake_world_eqm import SnakePolicyBaseline
        m = SnakePolicyBaseline.from_pretrained({str(p['eqm'])!r})
        print("loaded", type(m).__name__)
    """)
    return result | {"seen": result["last_out"] or result["last_err"]}


def probe_evaluate_wrong_baseline(p):
    result = cli("evaluate", "--model", str(p["eqm"]), "--dataset", str(p["data"]), "--baseline", str(p["eqm"]),
                 "--games", "1", "--max-rows", "8", "--max-steps", "20", "--agents", "baseline", "--no-progress",
                 timeout=120)
    return result | {"seen": "evaluate --baseline <EqM folder>"}


def probe_cnn_layers(p):
    folder = p["root"] / "huge"
    shutil.copytree(p["eqm"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(use_cnn=True, cnn_layers=1_000_000)
    (folder / "config.json").write_text(json.dumps(config))
    result = py(f"from snake_world_eqm import SnakeWorldEqM; SnakeWorldEqM.from_pretrained({str(folder)!r})",
                timeout=30)
    return result | {"seen": "config.json with cnn_layers 1,000,000 (4 GB address-space limit, 30 s limit)"}


def probe_planner_depth(p):
    result = cli("play", "--agent", "planner", "--model", str(p["eqm"]), "--planner-horizon", "500", "--max-steps", "1",
                 "--gif", str(p["root"] / "planner.gif"), timeout=30)
    return result | {"seen": "play --planner-horizon 500 (30 s limit)"}


def probe_num_workers(p):
    code = "from snake_world_eqm.processes import capped_workers; print(capped_workers(99999))"
    check = py(code)
    if check["exit"] != 0:
        return {"exit": None, "seen": "not run: no bound in this code, it would fork up to 99,999 workers on a shared "
                                      "machine (issue 15 measured ~1,000 processes and memory exhaustion)"}
    out = p["root"] / "workers"
    result = _train(p, out, "--max-steps", "2", "--num-workers", "99999")
    return result | {"seen": "train --num-workers 99999: " + check["last_out"] + " workers used"}


def _cpu_seconds(pid: int) -> float:
    """CPU time a process has used (utime + stime); a pool worker that has it is generating, not idle."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def probe_builder_kill9(p):
    root = p["root"] / "kill9"
    root.mkdir()
    output = root / "big"
    proc = subprocess.Popen([sys.executable, "-m", "dataset_builder", "--num-samples", "400000", "--height", "6",
                             "--width", "6", "--rows-per-chunk", "4000", "--num-proc", "2", "--output", str(output),
                             "--no-progress"], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    while workers and min(_cpu_seconds(pid) for pid in workers) < 1.0 and time.monotonic() < deadline:
        time.sleep(0.2)  # busy with a chunk: an idle pool worker exits on its own when the parent dies
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    staged = lambda: sorted(str(x.relative_to(root)) for x in root.glob(".big.tmp-*/data/*"))  # noqa: E731
    at_death = staged()
    time.sleep(20)
    written_after = len(staged()) - len(at_death)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    builder("--num-samples", "100", "--height", "5", "--width", "5", "--output", str(output), "--no-progress")
    left = [x.name for x in root.iterdir() if x.name.startswith(".big.")]
    return {"exit": None, "seen": f"{len(workers)} workers; files written after the kill: {written_after}; still "
                                  f"running 20 s later: {len(alive)}; staging left after the next build: {left}"}


def probe_train_sigterm(p):
    out = p["root"] / "sigterm"
    proc = subprocess.Popen([sys.executable, "-m", "snake_world_eqm.cli", "train", "--dataset", str(p["data"]),
                             "--output-dir", str(out), *TINY, "--max-steps", "100000", "--save-every", "5"],
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (out / "checkpoints" / "checkpoint-5").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"exit": None, "hang": "did not exit within 120 s of SIGTERM"}
    checkpoints = sorted(x.name for x in (out / "checkpoints").iterdir()) if (out / "checkpoints").is_dir() else []
    return {"exit": proc.returncode, "traceback": "Traceback" in err,
            "seen": f"checkpoints {checkpoints}; metrics.json written: {(out / 'metrics.json').exists()}"}


def probe_evaluate_unwritable_json(p):
    result = cli("evaluate", "--model", str(p["eqm"]), "--dataset", str(p["data"]), "--json", "/proc/e.json",
                 "--games", "2", "--max-rows", "16", "--max-steps", "30", "--agents", "eqm,expert", "--no-progress",
                 timeout=300)
    return result | {"seen": f"failed after {result.get('seconds')} s (an evaluation of 16 rows, 2 games per agent)"}


def probe_missing_model_folder(p):
    result = py(f"from snake_world_eqm import SnakeWorldEqM; SnakeWorldEqM.from_pretrained({str(p['root'] / 'none')!r})")
    return result | {"seen": result["last_err"]}


def probe_truncated_safetensors(p):
    folder = p["root"] / "trunc"
    shutil.copytree(p["eqm"], folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    result = py(f"from snake_world_eqm import SnakeWorldEqM; SnakeWorldEqM.from_pretrained({str(folder)!r})")
    return result | {"seen": result["last_err"]}


def probe_corrupt_training_state(p):
    out = p["root"] / "corrupt"
    _train(p, out, "--max-steps", "2", "--save-every", "2")
    (out / "checkpoints" / "checkpoint-2" / "training_state.json").write_text('{"loop": ')
    result = _train(p, out, "--max-steps", "4", "--resume-from-checkpoint", "latest")
    return result | {"seen": result["last_err"]}


def probe_env_step_float(p):
    result = py("""
        from snake_world_eqm.game import SnakeEnv, SnakeState
        env = SnakeEnv(6, 6); env.reset(seed=0)
        verdicts = []
        try:
            env.step(2.5); verdicts.append("env.step(2.5) accepted")
        except Exception as e:
            verdicts.append(f"env.step(2.5): {type(e).__name__}")
        try:
            s = SnakeState(6, 6, ((1.7, 1.2),), (3, 3)); verdicts.append(f"SnakeState((1.7, 1.2)) became {s.body}")
        except Exception as e:
            verdicts.append(f"SnakeState((1.7, 1.2)): {type(e).__name__}")
        print("; ".join(verdicts))
    """)
    return result | {"seen": result["last_out"]}


def probe_batched_step_illegal(p):
    result = py("""
        import numpy as np
        from snake_world_eqm.game import SnakeState, encode_observation, batched_step
        import snake_world_eqm.game as game
        b = encode_observation(SnakeState(6, 6, ((2, 2), (2, 3)), (5, 5)))
        b[0, 0] = 7   # a disconnected body cell
        out = batched_step(b[None], np.array([0]))
        checked = getattr(game, "checked_batched_step", None)
        if checked is None:
            print("batched_step returned a board; no checked entry point")
        else:
            try:
                checked(b[None], np.array([0])); print("checked_batched_step accepted it")
            except Exception as e:
                print(f"batched_step unchecked (documented); checked_batched_step: {type(e).__name__}")
    """)
    return result | {"seen": result["last_out"]}


def probe_checkpoint_count(p):
    out = p["root"] / "count"
    result = _train(p, out, "--max-steps", "12", "--save-every", "2")
    count = len(list((out / "checkpoints").iterdir())) if (out / "checkpoints").is_dir() else 0
    return result | {"seen": f"12 steps, --save-every 2: {count} checkpoints kept"}


PROBES = [probe_push_allow_list, probe_push_dry_run, probe_dataset_push_allow_list, probe_push_no_token,
          probe_push_bad_repo_id, probe_validate_stale_cache, probe_validate_illegal_board, probe_output_dir_reuse,
          probe_latest_resumes_other_run, probe_config_set_nan, probe_nan_loss_midway, probe_sampler_args,
          probe_config_fields, probe_wrong_class, probe_evaluate_wrong_baseline, probe_cnn_layers, probe_planner_depth,
          probe_num_workers, probe_builder_kill9, probe_train_sigterm, probe_evaluate_unwritable_json,
          probe_missing_model_folder, probe_truncated_safetensors, probe_corrupt_training_state, probe_env_step_float,
          probe_batched_step_illegal, probe_checkpoint_count]


def main() -> None:
    only = set(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="probes-") as tmp:
        paths = make_fixtures(Path(tmp))
        for probe in PROBES:
            name = probe.__name__.removeprefix("probe_")
            if only and name not in only:
                continue
            try:
                result = probe(paths)
            except Exception as error:  # noqa: BLE001  (a probe's own failure is reported, not fatal)
                result = {"probe_error": f"{type(error).__name__}: {error}"}
            print(json.dumps({"probe": name, **result}), flush=True)


if __name__ == "__main__":
    main()
