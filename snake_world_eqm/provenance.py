"""Where a result came from: the command, the code revision, the machine and the date.

Every JSON under docs/results/ carries a `provenance` object made here, so a number quoted in
README.md or MODEL_CARD.md can be traced to the run that produced it (tests/test_claims.py checks
the quoting side). Scripts that write results call `provenance()` and store it under that key.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

PROVENANCE_FIELDS = ("command", "revision", "machine", "date")
_PACKAGE_DIR = Path(__file__).resolve().parent


def code_revision(folder: str | os.PathLike = _PACKAGE_DIR) -> str | None:
    """`git rev-parse HEAD` of the checkout holding this package, with `-dirty` for uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                 capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):  # no git, or a hung filesystem: the revision is unknown
        return None
    return head.stdout.strip() + ("-dirty" if changed.stdout.strip() else "")


def machine_info() -> dict[str, Any]:
    """Cores, load (results on a shared CPU are upper bounds; the load says how shared), accelerator."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "torch_threads": None,
        "accelerator": None,
    }
    torch = sys.modules.get("torch")  # never import torch just to describe the machine
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["accelerator"] = torch.cuda.get_device_name(0)
    return info


def provenance(command: str | list[str] | None = None) -> dict[str, Any]:
    """The provenance object: `command` defaults to this process's own command line."""
    if command is None:  # a script run as `python path.py ...` is recorded that way
        command = (["python"] if sys.argv and sys.argv[0].endswith(".py") else []) + list(sys.argv)
    if not isinstance(command, str):
        command = shlex.join(str(part) for part in command)
    return {
        "command": command,
        "revision": code_revision(),
        "machine": machine_info(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def with_provenance(result: dict[str, Any], command: str | list[str] | None = None) -> dict[str, Any]:
    """`result` plus a `provenance` key (kept if the result already has one)."""
    return result if "provenance" in result else {**result, "provenance": provenance(command)}


def write_json(path: str | os.PathLike, result: dict[str, Any], command: str | list[str] | None = None) -> Path:
    """Write `result` with its provenance as strict JSON (no NaN), via a temporary file renamed into place."""
    path = Path(path)
    text = json.dumps(with_provenance(result, command), indent=2, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)
    return path


__all__ = ["PROVENANCE_FIELDS", "code_revision", "machine_info", "provenance", "with_provenance", "write_json"]
