"""`snake-eqm push`: push a model, dataset or Space folder to the Hugging Face Hub (or only rewrite a card).

The parser loads nothing heavy, so `--help` answers at once; huggingface_hub and the card code (which reads
the evaluation tables) load in `main` after parsing.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = "Hub release: model cards and pushing model, dataset or Space folders (`snake-eqm push`)."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm push", description=DESCRIPTION)
    parser.add_argument("--model-dir", help="a folder written by save_pretrained")
    parser.add_argument("--dataset-dir", help="a folder written by `python -m dataset_builder`")
    parser.add_argument("--repo-id", help="target repo, e.g. org/snake-eqm (not with --space-id)")
    parser.add_argument("--space-id", default=None, help="build and push the demo Space (snake_world_eqm/app.py) "
                        "here, e.g. org/snake-eqm-demo; --model-id names the model it runs")
    parser.add_argument("--model-id", default=None, help="with --space-id: the Hub model the Space loads")
    parser.add_argument("--space-dir", default=None, help="with --space-id: keep the built Space folder here")
    parser.add_argument("--package-spec", default=None, help="with --space-id: the pip requirement that installs "
                        "snake-world-eqm in the Space (default snake-world-eqm[app]==VERSION)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--commit-message", default=None)
    parser.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    parser.add_argument("--token", default=None, help="defaults to the cached login / HF_TOKEN")
    parser.add_argument("--metrics-json", default=None, help="evaluation JSON to put in the model card")
    parser.add_argument("--dataset-id", default="org/snake-world", help="dataset named in the model card")
    parser.add_argument("--command", action="append", default=[], dest="commands",
                        help="another command the card should quote (dataset build, baseline training); repeatable")
    parser.add_argument("--card-only", action="store_true",
                        help="only (re)write the model folder's README.md card, push nothing")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the files that would be uploaded (and those left out), upload nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.space_id:
        return _push_space(args)
    if not args.repo_id:
        raise SystemExit("snake-eqm push: --repo-id is required (or --space-id for the demo Space)")
    if bool(args.model_dir) == bool(args.dataset_dir):
        raise SystemExit("snake-eqm push: give exactly one of --model-dir or --dataset-dir")
    if args.card_only and not args.model_dir:
        raise SystemExit("snake-eqm push: --card-only needs --model-dir")
    try:
        return _push_command(args)
    except (ValueError, OSError) as error:  # OSError covers ConnectionError, PermissionError, FileNotFoundError
        print(f"snake-eqm push: error: {error}", file=sys.stderr)
        return 1


def _push_command(args: argparse.Namespace) -> int:
    """Checks first (repo id, folder, Hub access), then the card in memory, then one upload."""
    from huggingface_hub import HfApi

    from snake_world_eqm.hub.cards import render_model_card, write_model_card
    from snake_world_eqm.hub.push import (
        check_hub_access,
        check_repo_id,
        print_upload_plan,
        push_folder,
        upload_folder_allowlisted,
    )

    check_repo_id(args.repo_id)
    folder, repo_type = (args.model_dir, "model") if args.model_dir else (args.dataset_dir, "dataset")
    if args.card_only:
        print(f"wrote {write_model_card(folder, args.metrics_json, args.repo_id, args.dataset_id, args.commands)}")
        return 0
    # Local checks (folder, card inputs) before the network; the card is built in memory, the folder untouched.
    card = None
    if repo_type == "model":
        card = str(render_model_card(folder, args.metrics_json, args.repo_id, args.dataset_id, args.commands))
    files = push_folder(folder, args.repo_id, repo_type=repo_type, card=card, dry_run=True)
    if args.dry_run:
        print_upload_plan(folder, files)
        return 0
    api = HfApi(token=args.token)
    print(f"pushing as {check_hub_access(api, args.token)}", file=sys.stderr)
    info = upload_folder_allowlisted(api, folder, args.repo_id, repo_type, files, private=args.private,
                                     commit_message=args.commit_message, revision=args.revision)
    if card is not None:  # the folder's card now matches the Hub's (written only after the upload succeeded)
        write_model_card(folder, args.metrics_json, args.repo_id, args.dataset_id, args.commands)
    print(f"pushed {folder} to {args.repo_id} ({repo_type}): {getattr(info, 'commit_url', info)}")
    return 0


def _push_space(args: argparse.Namespace) -> int:
    from snake_world_eqm.hub.space import push_space

    if args.model_dir or args.dataset_dir or args.repo_id or args.card_only:
        raise SystemExit("snake-eqm push: --space-id takes --model-id, not --model-dir/--dataset-dir/--repo-id/"
                         "--card-only")
    if not args.model_id:
        raise SystemExit("snake-eqm push: --space-id needs --model-id (the Hub model the Space runs)")
    try:
        info = push_space(args.space_id, args.model_id, folder=args.space_dir, package_spec=args.package_spec,
                          private=args.private, token=args.token, commit_message=args.commit_message,
                          revision=args.revision)
    except (ValueError, OSError) as error:  # OSError: no token, offline, no connection (check_hub_access)
        raise SystemExit(f"snake-eqm push: {error}") from None
    print(f"pushed the Space for {args.model_id} to {args.space_id}: {getattr(info, 'commit_url', info)}")
    return 0
