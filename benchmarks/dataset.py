"""Dataset build speed, end to end (batched generation + Arrow/parquet writing + card), as JSON.

    python benchmarks/dataset.py [--num-samples 400000] [--num-proc 2] [--augment] [--expert fill]
    python benchmarks/dataset.py --stages --num-proc 1     # where the CPU time goes

`rows_per_s` counts rows before augmentation (as `--num-samples` does), with the what-if columns.
On a shared machine the wall-clock rate depends on the other jobs; `rows_per_cpu_s` (CPU time of
this process and its finished workers) does not, and is the number to compare. `--stages` (one
process) adds the CPU seconds spent in the expert, in the engine's successors, and in the Arrow
tables and parquet files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import dataset_builder.builder as builder_module
import snake_world_eqm.game.batched as batched_module
import snake_world_eqm.game.expert as expert_module
from dataset_builder.builder import build_dataset
from snake_world_eqm.data.generate import GenerationConfig
from snake_world_eqm.game.state import DEFAULT_EXPERT, EXPERT_KINDS
from snake_world_eqm.provenance import with_provenance

TARGET_ROWS_PER_S = 60_000


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class StageClock:
    """CPU seconds spent inside some module functions, by wrapping them for the duration of a run."""

    def __init__(self, targets: dict[str, tuple[object, str]]) -> None:
        self.targets, self.seconds, self.saved = targets, {name: 0.0 for name in targets}, {}

    def __enter__(self):
        for name, (module, attribute) in self.targets.items():
            original = getattr(module, attribute)
            self.saved[name] = original

            def timed(*args, _original=original, _name=name, **kwargs):
                started = time.process_time()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds[_name] += time.process_time() - started

            setattr(module, attribute, timed)
        return self

    def __exit__(self, *exc) -> None:
        for name, (module, attribute) in self.targets.items():
            setattr(module, attribute, self.saved[name])


STAGES = {
    "expert": (expert_module, "expert_actions"),
    "successors": (batched_module, "batched_successors"),
    "arrow_tables": (builder_module, "rows_to_table"),
    "parquet_files": (builder_module.pq, "write_table"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=400_000)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--expert", default=DEFAULT_EXPERT, choices=EXPERT_KINDS)
    parser.add_argument("--stages", action="store_true", help="CPU seconds per stage (needs --num-proc 1)")
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.stages and args.num_proc != 1:
        parser.error("--stages measures inside this process: use --num-proc 1")
    config = GenerationConfig(
        num_samples=args.num_samples, height=args.size, width=args.size, seed=args.seed, expert=args.expert, augment=args.augment
    )
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "dataset"
        clock = StageClock(STAGES if args.stages else {})
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        with clock:
            result = build_dataset(config, output, num_proc=args.num_proc, progress=False, command="benchmarks/dataset.py")
        seconds = time.perf_counter() - start
        cpu_seconds = _cpu_seconds() - cpu_start
        parquet_bytes = sum(file.stat().st_size for file in (output / "data").glob("*.parquet"))
    rows_per_s = args.num_samples / seconds
    print(
        json.dumps(
            with_provenance({
                "benchmark": "dataset_build",
                "rows_per_s": round(rows_per_s, 1),
                "target_rows_per_s": TARGET_ROWS_PER_S,
                "meets_target": rows_per_s >= TARGET_ROWS_PER_S,
                "rows_before_augmentation": args.num_samples,
                "rows_written": result.stats.total_rows,
                "seconds": round(seconds, 3),
                # CPU time of this process and its finished workers: with other jobs on the machine
                # the wall-clock rate drops while this one does not.
                "cpu_seconds": round(cpu_seconds, 3),
                "rows_per_cpu_s": round(args.num_samples / cpu_seconds, 1),
                "num_proc": args.num_proc,
                "board": f"{args.size}x{args.size}",
                "expert": args.expert,
                "augment": args.augment,
                "parallel_games_per_chunk": config.games_for(config.chunk_rows(0)),
                "chunks": config.num_chunks,
                "parquet_bytes": parquet_bytes,
                "cpu_seconds_by_stage": {name: round(value, 3) for name, value in clock.seconds.items()} or None,
                "cpu_count": os.cpu_count(),
                "load_average_1min": os.getloadavg()[0],
                "python": platform.python_version(),
            })
        )
    )


if __name__ == "__main__":
    main()
