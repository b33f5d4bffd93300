"""Dataset build speed, end to end (batched generation + Arrow/parquet writing + card), as JSON.

    python benchmarks/dataset.py [--num-samples 400000] [--num-proc 2] [--augment] [--expert astar]

`rows_per_s` counts rows before augmentation (as `--num-samples` does), with the what-if columns.
The machine is whatever runs it; compare numbers from the same machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from dataset_builder.builder import build_dataset
from snake_world_eqm.data.generate import GenerationConfig
from snake_world_eqm.provenance import with_provenance

TARGET_ROWS_PER_S = 60_000


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=400_000)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--expert", default="astar", choices=("astar", "heuristic"))
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = GenerationConfig(
        num_samples=args.num_samples, height=args.size, width=args.size, seed=args.seed, expert=args.expert, augment=args.augment
    )
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "dataset"
        start, cpu_start = time.perf_counter(), _cpu_seconds()
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
                "cpu_count": os.cpu_count(),
                "load_average_1min": os.getloadavg()[0],
                "python": platform.python_version(),
            })
        )
    )


if __name__ == "__main__":
    main()
