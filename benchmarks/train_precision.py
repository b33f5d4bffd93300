"""fp32 against bf16 autocast training, at equal samples, in one run, as JSON (issue #34).

    python benchmarks/train_precision.py                       # cpu-small, 10x10, 400 steps of 256, one thread
    python benchmarks/train_precision.py --steps 200 --precisions no bf16 --threads 2

It builds one `route`-expert dataset, then trains the same model from the same seed on it with
`snake-eqm train` (the real training path, one process each, run one after the other) once per precision,
and reports for each: samples per second and per CPU-second (the child's own CPU time, steadier on a shared
machine), the ratio to fp32, and the held-out metrics after the same number of samples (action accuracy,
next-board exact, what-if exact) with their difference to fp32 in points. The issue's rule: a change that
alters training semantics (bf16 rounds) must stay within 0.3 points of fp32 after the same samples.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from snake_world_eqm.provenance import with_provenance

METRICS = ("action_accuracy", "next_board_exact", "whatif_exact.mean")
TOLERANCE_POINTS = 0.3


def _child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child command (which must succeed)."""
    cpu_before, start = _child_cpu_seconds(), time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, _child_cpu_seconds() - cpu_before


def build_data(folder: Path, rows: int, size: int, env: dict[str, str]) -> None:
    _run([sys.executable, "-m", "dataset_builder", "--num-samples", str(rows), "--height", str(size), "--width", str(size),
          "--expert", "route", "--seed", "0", "--num-proc", "1", "--output", str(folder), "--no-progress"], env)


def train(data: Path, output: Path, precision: str, args: argparse.Namespace, env: dict[str, str]) -> dict:
    command = [sys.executable, "-m", "snake_world_eqm.cli", "train", "--dataset", str(data),
               "--config-preset", args.preset, "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--learning-rate", str(args.learning_rate), "--warmup-steps", "20", "--eval-every", str(args.steps),
               "--max-eval-samples", str(args.eval_rows), "--save-every", str(args.steps), "--seed", "0",
               "--mixed-precision", precision, "--output-dir", str(output), "--report-to", "none",
               "--disable-progress-bar"]
    wall, cpu = _run(command, env)
    metrics = json.loads((output / "metrics.json").read_text())
    validation = metrics["validation"]
    samples = metrics["samples_seen"]
    return {
        "samples": samples,
        "train_samples_per_s": metrics["samples_per_second"],  # the training loop's own clock
        "process_wall_s": round(wall, 2),
        "process_cpu_s": round(cpu, 2),
        "samples_per_cpu_s": round(samples / cpu, 1),  # whole process: imports, data loading, evaluation too
        "held_out": {name: validation[name] for name in METRICS},
        "held_out_rows": validation.get("num_rows"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["no", "bf16"], choices=["no", "bf16"])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--rows", type=int, default=100_000, help="dataset rows (the route expert)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--eval-rows", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")]))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        build_data(data, args.rows, args.size, env)
        runs = {precision: train(data, Path(folder) / precision, precision, args, env) for precision in args.precisions}
    result: dict = {"benchmark": "train_precision", "preset": args.preset, "board": f"{args.size}x{args.size}",
                    "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads, "runs": runs}
    if "no" in runs:
        base = runs["no"]
        for run in runs.values():
            run["speedup_per_cpu_s_vs_fp32"] = round(run["samples_per_cpu_s"] / base["samples_per_cpu_s"], 3)
            run["speedup_train_loop_vs_fp32"] = round(run["train_samples_per_s"] / base["train_samples_per_s"], 3)
            points = {name: round(100 * (run["held_out"][name] - base["held_out"][name]), 2) for name in METRICS}
            run["points_vs_fp32"] = points
            run["within_tolerance"] = all(abs(value) <= TOLERANCE_POINTS for value in points.values())
    result["tolerance_points"] = TOLERANCE_POINTS
    result["load_average_before"], result["load_average_after"] = load_before, os.getloadavg()
    print(json.dumps(with_provenance(result)))


if __name__ == "__main__":
    main()
