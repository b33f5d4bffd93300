"""Where a training step's time goes, and what the step variants cost, side by side in one run, as JSON.

    python benchmarks/train_step.py                          # cpu-small, 10x10, batch 256, one thread
    python benchmarks/train_step.py --variants fp32 bf16 --repeats 10 --threads 2

For the `cpu_small` model on one board size it reports:
  * FLOPs per sample of a training step (forward + backward, counted by `torch.utils.flop_counter`);
  * this machine's measured peak for the same kind of work (a 3x3 convolution of the model's width, and a
    square matmul) on the same threads, and the step's achieved FLOP per CPU-second against it: the roofline;
  * CPU time by operator kind (convolutions, GELU, normalisation, the optimizer, the rest) from
    `torch.profiler`, so one sees what a faster step has to shrink;
  * samples per CPU-second of each step variant (fp32 eager = today's step; channels-last; bf16 autocast;
    `torch.compile`; bf16 + compile) and its ratio to fp32 eager, measured in this one process so the ratios
    are fair on a shared machine. The variants change only how the step runs, except bf16, which rounds; its
    effect on what is learned is measured separately at equal samples (docs/results/, issue #34).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os

import torch
from model_speed import make_batch, median_seconds  # benchmarks/ is on sys.path when this file runs
from torch.utils.flop_counter import FlopCounterMode

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.provenance import with_provenance

VARIANTS = ("fp32", "channels_last", "bf16", "compile", "bf16_compile")


def build_step(variant: str, config: SnakeWorldEqMConfig, inputs: dict):
    """One optimizer step (forward + backward + AdamW) of a fresh model, run the way `variant` says."""
    torch.manual_seed(0)
    model = SnakeWorldEqM(config).train()
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    forward = torch.compile(model) if "compile" in variant else model
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if "bf16" in variant else contextlib.nullcontext

    def step():
        with autocast():
            loss = forward(**inputs).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, model


def cpu_seconds_per_step(step, repeats: int, warmup: int) -> tuple[float, float]:
    """Median process-CPU and wall seconds of a step (CPU time is the steadier measure on a shared machine)."""
    wall, cpu = median_seconds(step, repeats, warmup)
    return cpu, wall


def flops_per_sample(config: SnakeWorldEqMConfig, inputs: dict) -> float:
    model = SnakeWorldEqM(config).train()
    with FlopCounterMode(display=False) as counter:
        model(**inputs).loss.backward()
    return counter.get_total_flops() / len(inputs["state"])


def measured_peaks(channels: int, size: int, batch: int, repeats: int) -> dict[str, float]:
    """FLOP/s of a plain 3x3 convolution at the model's width and board, and of a 1024 x 1024 matmul."""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    x = torch.randn(batch, channels, size, size)
    conv_flops = 2 * batch * channels * channels * 9 * size * size
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    with torch.no_grad():
        conv_cpu, _ = cpu_seconds_per_step(lambda: conv(x), repeats, 2)
        mm_cpu, _ = cpu_seconds_per_step(lambda: a @ b, repeats, 2)
    # Per CPU-second, as the step is measured: on a shared machine wall time would count the other jobs too.
    return {"conv3x3_flop_per_cpu_s": conv_flops / conv_cpu, "matmul_flop_per_cpu_s": 2 * 1024**3 / mm_cpu}


def time_by_operator(step, steps: int) -> dict[str, float]:
    """Share of the profiled CPU time per operator kind (self time, so nothing is counted twice)."""
    kinds = {"convolution": ("conv", "mkldnn_convolution"), "gelu": ("gelu",), "normalisation": ("norm",),
             "optimizer": ("adamw", "_foreach", "addcdiv", "lerp"), "embedding": ("embedding",),
             "softmax_and_loss": ("softmax", "nll", "cross_entropy")}
    totals = dict.fromkeys([*kinds, "other"], 0.0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    for event in profiler.key_averages():
        name = event.key.lower()
        kind = next((k for k, words in kinds.items() if any(w in name for w in words)), "other")
        totals[kind] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {kind: round(value / whole, 3) for kind, value in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    config = SnakeWorldEqMConfig.cpu_small(board_height=args.size, board_width=args.size)
    inputs = make_batch(args.batch_size, args.size, max_length=30)  # long snakes too, as training sees them
    flops = flops_per_sample(config, inputs)
    peaks = measured_peaks(config.cnn_channels or config.d_model, args.size, args.batch_size, args.repeats)
    variants = {}
    for variant in args.variants:
        step, _ = build_step(variant, config, inputs)
        cpu, wall = cpu_seconds_per_step(step, args.repeats, warmup=3 if "compile" in variant else 2)
        variants[variant] = {"cpu_s_per_step": round(cpu, 4), "wall_s_per_step": round(wall, 4),
                             "samples_per_cpu_s": round(args.batch_size / cpu, 1),
                             "samples_per_s": round(args.batch_size / wall, 1),
                             "achieved_flop_per_cpu_s": round(flops * args.batch_size / cpu)}
    base = variants.get("fp32")
    for result in variants.values():
        result["speedup_per_cpu_s_vs_fp32"] = round(base["cpu_s_per_step"] / result["cpu_s_per_step"], 3) if base else None
    fp32_step, _ = build_step("fp32", config, inputs)
    fp32_step()
    result = {
        "benchmark": "train_step",
        "model": "cpu_small", "board": f"{args.size}x{args.size}", "batch_size": args.batch_size,
        "threads": args.threads,
        "forward_backward_flops_per_sample": round(flops),
        "peaks": {name: round(value) for name, value in peaks.items()},
        "fp32_share_of_conv_peak": round(base["achieved_flop_per_cpu_s"] / peaks["conv3x3_flop_per_cpu_s"], 3)
        if base else None,
        "fp32_share_of_matmul_peak": round(base["achieved_flop_per_cpu_s"] / peaks["matmul_flop_per_cpu_s"], 3)
        if base else None,
        "fp32_cpu_share_by_operator": time_by_operator(fp32_step, 3),
        "variants": variants,
        "load_average_1min": os.getloadavg()[0],
    }
    text = json.dumps(with_provenance(result), indent=2)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
