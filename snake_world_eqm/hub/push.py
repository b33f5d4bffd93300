"""Pushing a model, dataset or Space folder to the Hub: only what its allow-list names, after every check.

Pushing uploads an allow-list of a folder's files (config, weights, card, remote code and named results for a
model; the card and data/*.parquet for a dataset; app, requirements and card for a Space), after checking the
repo id, the folder and the Hub access, in that order, so a bad input fails before anything is built or sent.
Symlinks that lead out of the folder and dotfiles are never uploaded; `print_upload_plan` shows what a
`--dry-run` would send and what it leaves behind.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.utils import HFValidationError, validate_repo_id

# The package's own source: remote-code files a model repo needs travel from here.
PACKAGE_DIR = Path(__file__).resolve().parent.parent

def check_model_folder(model_dir: str | Path) -> Path:
    """Refuse to push a folder a user could not load: missing files or a config that does not parse."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder {path} does not exist")
    has_weights = (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()
    missing = [name for name, present in (("config.json", (path / "config.json").is_file()),
                                          ("model.safetensors", has_weights)) if not present]
    if missing:
        raise ValueError(f"model folder {path} lacks {', '.join(missing)}: save it with save_pretrained first")
    try:
        config = json.loads((path / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path / 'config.json'} is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path / 'config.json'} is not a JSON object")
    return path


def check_dataset_folder(dataset_dir: str | Path) -> Path:
    path = Path(dataset_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder {path} does not exist")
    if not (path / "README.md").is_file():
        raise ValueError(f"dataset folder {path} has no README.md card: build it with `python -m dataset_builder`")
    if not any(path.glob("data/**/*.parquet")):  # data/*.parquet, or data/HxW/*.parquet for several sizes
        raise ValueError(f"dataset folder {path} has no data/*.parquet files")
    return path


def check_space_folder(folder: str | Path) -> Path:
    """A Space folder holds exactly the app, its requirements and its card (`hub.space.build_space_folder`)."""
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"space folder {path} does not exist")
    present = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    if present != sorted(SPACE_FILES):
        raise ValueError(f"space folder {path} must hold exactly {', '.join(SPACE_FILES)}; it holds "
                         f"{', '.join(present) or 'nothing'}")
    return path


# ----------------------------------------------------------------------------------------------------------
# What a push may upload: an allow-list, never "everything in the folder"

# A model folder: what from_pretrained reads, the card, and named results. Everything else (dotfiles such as
# .env, keys, tracker folders like wandb/ or runs/, checkpoints/, best/, logs) stays home.
MODEL_ALLOWED_PATTERNS = (
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json", "README.md",
    "metrics.json", "eval.json", "eval_*.json", "evaluation*.json", "training_curves.png", "plots/*.png",
)
# data/HxW/*.parquet: one config per board size (a multi-size dataset, dataset_builder/multisize.py)
DATASET_ALLOWED_PATTERNS = ("README.md", "data/*.parquet", "data/[0-9]*x[0-9]*/*.parquet")

# A Space folder: the app that runs `snake_world_eqm.app`, its requirements and its card.
SPACE_FILES = ("README.md", "app.py", "requirements.txt")


def check_repo_id(repo_id: str) -> str:
    """`org/name` with characters the Hub accepts; ValueError otherwise (checked before anything else)."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"invalid repo_id {repo_id!r}: {str(error).splitlines()[0]}") from None
    return repo_id


def check_hub_access(api: HfApi, token: str | None = None) -> str:
    """Fail fast, before the folder is touched: offline mode, no token, a rejected token or no connection.

    Returns the user name the token belongs to."""
    if constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConnectionError("HF_HUB_OFFLINE is set: pushing needs the network (unset it, or use --dry-run)")
    if not (token or api.token or get_token()):
        raise PermissionError("no Hugging Face token: run `hf auth login`, set HF_TOKEN or pass --token")
    try:
        user = api.whoami(token=token)
    except Exception as error:  # noqa: BLE001  (HTTP 401, DNS, timeouts: all mean "cannot push")
        raise ConnectionError(f"cannot reach the Hub with this token: {type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}") from None
    return str(user.get("name", "?")) if isinstance(user, Mapping) else "?"


def inside_folder(folder: Path, file: Path) -> bool:
    """The file (after following every symlink) lies inside the folder."""
    try:
        file.resolve(strict=True).relative_to(folder.resolve(strict=True))
    except (OSError, ValueError):
        return False
    return True


def cache_blob(folder: Path, file: Path) -> bool:
    """The folder is a Hugging Face cache snapshot (`.../snapshots/REV/`) and the file is one of its links into
    the repo's own `blobs/` (how the cache stores every file): its content belongs to the snapshot."""
    try:
        snapshot = folder.resolve(strict=True)
        target = file.resolve(strict=True)
    except OSError:
        return False
    if snapshot.parent.name != "snapshots":
        return False
    blobs = snapshot.parent.parent / "blobs"
    return target.parent == blobs and target.is_file()


def uploadable(folder: Path, file: Path) -> bool:
    """A file a push may read: inside the folder after following links, or an HF-cache snapshot's blob."""
    return inside_folder(folder, file) or cache_blob(folder, file)


def allowed_files(folder: str | Path, patterns: tuple[str, ...], extra: tuple[str, ...] = ()) -> dict[str, Path]:
    """{path in repo: local file} of the folder's files matching an allowed pattern.

    Patterns are relative paths (fnmatch per path segment); a file whose name or folder starts with a dot, or
    that is a symlink leading outside the folder (other than an HF-cache snapshot's links into its own
    `blobs/`), is never included. The local paths are absolute, so a relative `folder` works from anywhere."""
    folder = Path(folder).absolute()
    found: dict[str, Path] = {}
    for pattern in (*patterns, *extra):
        for file in sorted(folder.glob(pattern)):
            relative = file.relative_to(folder).as_posix()
            if any(part.startswith(".") for part in relative.split("/")):
                continue
            if file.is_file() and uploadable(folder, file):
                found[relative] = file
    return found


def skipped_files(folder: str | Path, allowed: Mapping[str, Any]) -> list[str]:
    """Everything under the folder that the allow-list leaves out (for the dry-run report); not followed into
    symlinked folders."""
    folder = Path(folder)
    skipped = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(files) + sorted(d for d in dirs if (Path(root) / d).is_symlink()):
            relative = (Path(root) / name).relative_to(folder).as_posix()
            if relative not in allowed:
                skipped.append(relative)
    return sorted(skipped)


def upload_folder_allowlisted(
    api: HfApi,
    folder: str | Path,
    repo_id: str,
    repo_type: str,
    allowed_paths: Mapping[str, str | Path | bytes] | Iterable[str],
    *,
    commit_message: str | None = None,
    revision: str | None = None,
    private: bool = False,
) -> Any:
    """Create the repo if needed and upload exactly `allowed_paths` ({path in repo: file under `folder`, or
    bytes}, or just relative paths, each uploaded under its own name) in one commit. Each local file is checked again to lie inside `folder` (symlinks resolved), so a
    caller's list cannot smuggle in a file from elsewhere. Reusable for model, dataset and Space repos."""
    if repo_type not in ("model", "dataset", "space"):
        raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}")
    check_repo_id(repo_id)
    folder = Path(folder).absolute()
    if not isinstance(allowed_paths, Mapping):
        allowed_paths = {str(name): str(name) for name in allowed_paths}
    operations = []
    for path_in_repo, source in sorted(allowed_paths.items()):
        if any(part in ("", ".", "..") or part.startswith(".") for part in path_in_repo.split("/")):
            raise ValueError(f"refusing to upload {path_in_repo!r}: hidden or not a plain relative path")
        if not isinstance(source, bytes):
            local = Path(source)
            local = local if local.is_absolute() else folder / local
            if not uploadable(folder, local) or not local.is_file():
                raise ValueError(f"refusing to upload {local}: not a file inside {folder}")
            source = str(local.resolve())
        operations.append(CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=source))
    if not operations:
        raise ValueError(f"nothing to upload from {folder}")
    space_sdk = {"space_sdk": "gradio"} if repo_type == "space" else {}
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **space_sdk)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    return api.create_commit(
        repo_id=repo_id,
        operations=operations,
        repo_type=repo_type,
        revision=revision,
        commit_message=commit_message or f"Upload {repo_type} with snake-world-eqm",
    )


def files_to_push(folder: str | Path, repo_type: str) -> dict[str, Path | bytes]:
    """The allow-listed files of a checked model or dataset folder, remote-code files included for a model."""
    if repo_type == "model":
        path = check_model_folder(folder)
        files = allowed_files(path, MODEL_ALLOWED_PATTERNS)
        _check_required_present(path, files)
        # The remote code is always the package's own source (never a same-named file of the folder, which a
        # user may have edited), sent as bytes: the upload itself only reads inside the folder.
        files.update({name: source.read_bytes() for name, source in remote_code_files(path).items()})
        return files
    if repo_type == "dataset":
        return allowed_files(check_dataset_folder(folder), DATASET_ALLOWED_PATTERNS)
    if repo_type == "space":  # the Space folder of hub.space.build_space_folder
        return allowed_files(check_space_folder(folder), SPACE_FILES)
    raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool = False,
    commit_message: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    api: HfApi | None = None,
    card: str | None = None,
    dry_run: bool = False,
) -> Any:
    """Upload the allow-listed files of a model, dataset or Space folder in one commit.

    Order matters: the repo id, the folder and the Hub access are checked before anything is built or sent.
    `card` (markdown) replaces the folder's README.md in the upload without touching the folder. With
    `dry_run` nothing is sent and the {path in repo: source} mapping is returned."""
    if repo_type not in ("model", "dataset", "space"):
        raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}")
    check_repo_id(repo_id)
    files: dict[str, Any] = dict(files_to_push(folder, repo_type))
    if card is not None:
        files["README.md"] = card.encode()
    if dry_run:
        return files
    api = api or HfApi(token=token)
    check_hub_access(api, token)
    return upload_folder_allowlisted(api, folder, repo_id, repo_type, files, commit_message=commit_message,
                                     revision=revision, private=private)


# The remote code a model repo may carry: the package's own modules, by name (never names read from a config,
# which would let `auto_map` pull any `.py` file of the folder into the upload).
REMOTE_CODE_FILES = ("configuration_snake_world_eqm.py", "modeling_snake_world_eqm.py", "eqm.py")


def remote_code_files(folder: Path) -> dict[str, Path]:
    """{name: the package's source} of the remote code when the config has an `auto_map` (else none).

    Every module the `auto_map` names must be one of REMOTE_CODE_FILES: a config naming another module is
    refused (the pushed repo could not load it, and a push never picks files by a config's contents)."""
    auto_map = json.loads((folder / "config.json").read_text()).get("auto_map") or {}
    if not auto_map:
        return {}
    if not isinstance(auto_map, Mapping):
        raise ValueError(f"{folder / 'config.json'}: auto_map is not a JSON object")
    references = [ref for value in auto_map.values() for ref in (value if isinstance(value, list) else [value])]
    ours = {name.removesuffix(".py") for name in REMOTE_CODE_FILES}
    foreign = sorted({str(ref).split("--")[-1].split(".")[0] for ref in references
                      if ref is not None and str(ref).split("--")[-1].split(".")[0] not in ours})
    if foreign:
        raise ValueError(f"{folder / 'config.json'}: auto_map names module(s) {', '.join(foreign)} that are not "
                         f"part of snake-world-eqm (only {', '.join(REMOTE_CODE_FILES)} are pushed); fix the config")
    return {name: PACKAGE_DIR / name for name in REMOTE_CODE_FILES}


def _check_required_present(folder: Path, files: Mapping[str, Path]) -> None:
    """The config and weights are on the upload list; a link out of the folder would leave them behind."""
    weights = ("model.safetensors", "model.safetensors.index.json")
    missing = [name for name in ("config.json",) if name not in files]
    if not any(name in files for name in weights):
        missing.append("model.safetensors")
    if missing:
        raise ValueError(f"model folder {folder}: {', '.join(missing)} is a link leading out of the folder (not an "
                         "HF-cache snapshot's blob), so it would not be pushed; copy the real file into the folder")
    shards = json.loads((folder / "model.safetensors.index.json").read_text()).get("weight_map", {}) \
        if "model.safetensors.index.json" in files else {}
    lost = sorted({name for name in shards.values() if name not in files})
    if lost:
        raise ValueError(f"model folder {folder}: weight shard(s) {', '.join(lost)} are missing or links leading "
                         "out of the folder; copy the real files into the folder")


def print_upload_plan(folder: str | Path, files: Mapping[str, Any], out=None) -> None:
    """What a push sends, one file a line, then what it leaves behind."""
    out = out or sys.stdout
    print(f"would upload {len(files)} file(s) from {folder}:", file=out)
    for name, source in sorted(files.items()):
        size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
        origin = " (generated / from the package)" if isinstance(source, bytes) else ""
        print(f"  {name}  {size} bytes{origin}", file=out)
    skipped = skipped_files(folder, files)
    if skipped:
        print(f"left out ({len(skipped)}, not on the allow-list or a link out of the folder): "
              + ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else ""), file=out)
