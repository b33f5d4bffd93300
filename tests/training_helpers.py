"""Shared pieces of the training tests: a tiny dataset and a tiny model's flags."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# A model of a few thousand parameters on 6x6 boards: seconds per run on a 2-core CPU.
TINY_EQM = [
    "--d-model", "16", "--num-layers", "1", "--num-heads", "2", "--dropout", "0.1",
    "--latent-dim", "8", "--eqm-hidden-dim", "16", "--eqm-num-layers", "1",
    "--config-set", "decoder_channels=8", "--config-set", "decoder_layers=1",
    "--eqm-sampling-steps", "3",
]
QUIET = ["--disable-progress-bar", "--report-to", "none"]


# `python -m dataset_builder` arguments for a small build: 900 rows of 6x6 in 3 seeded chunks of 300 (so 3 shards).
SMALL_BUILD_ARGS = ["--num-samples", "900", "--height", "6", "--width", "6", "--seed", "5", "--max-episode-steps", "60",
                    "--rows-per-chunk", "300", "--parallel-games", "6", "--no-progress"]


def build_tiny_dataset(folder: Path, num_samples: int = 300) -> Path:
    """A Hub-shaped dataset folder (README.md + data/*.parquet) from the real builder."""
    from dataset_builder.builder import build_dataset
    from snake_world_eqm.data import GenerationConfig

    config = GenerationConfig(num_samples=num_samples, height=6, width=6, seed=3, split_fractions=(0.7, 0.2, 0.1))
    build_dataset(config, folder, progress=False)
    return folder


def subprocess_env(**extra: str) -> dict[str, str]:
    """One thread per process: deterministic and kind to a shared CPU; no network."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def train_command(*args: str) -> list[str]:
    """`snake-eqm train ...` (the console script is `snake_world_eqm.cli:main`)."""
    return [sys.executable, "-m", "snake_world_eqm.cli", "train", *args]


def poison_forward(monkeypatch, model_class: type, after_calls: int, effect) -> None:
    """Wrap `model_class.forward`: from its `after_calls`-th training call on, apply `effect(output)` (a NaN
    loss, a signal to this process) to test how the training engine reacts."""
    original = model_class.forward
    calls = {"n": 0}

    @functools.wraps(original)  # the loop reads forward's signature to pick the dataset columns
    def forward(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] >= after_calls:
                effect(out)
        return out

    monkeypatch.setattr(model_class, "forward", forward)
