"""Size of a saved model folder: parameters and bytes on disk, printed as JSON (README's "0.49 M parameters, 1.9 MB").

    python benchmarks/checkpoint_size.py                                  # the shipped 10x10 checkpoint
    python benchmarks/checkpoint_size.py --model outputs/models/snake_world_eqm --json size.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors import safe_open

from snake_world_eqm.provenance import with_provenance, write_json
from snake_world_eqm.shipped import PRETRAINED_10X10


def measure(folder: Path) -> dict:
    weights = folder / "model.safetensors"
    with safe_open(str(weights), framework="pt") as handle:
        parameters = sum(_count(handle.get_slice(name).get_shape()) for name in handle.keys())
    return {
        "model": _shown(folder),
        "num_parameters": parameters,
        "num_parameters_millions": round(parameters / 1e6, 3),
        "weights_bytes": weights.stat().st_size,
        "weights_mib": round(weights.stat().st_size / 2**20, 3),
        "folder_bytes": sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()),
    }


def _shown(folder: Path) -> str:
    """The folder relative to the working directory when it is inside it (no machine-specific paths)."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _count(shape) -> int:
    total = 1
    for size in shape:
        total *= int(size)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path(PRETRAINED_10X10), help="saved model folder")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if not (args.model / "model.safetensors").is_file():
        parser.error(f"--model {args.model}: no model.safetensors in that folder")
    result = with_provenance(measure(args.model))
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
