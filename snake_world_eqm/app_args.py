"""Flags of `snake-eqm app`, kept apart from the app (which loads torch and gradio) so `--help` is instant."""

from __future__ import annotations

import argparse

from snake_world_eqm.argtypes import int_in_range, positive_int

DESCRIPTION = '`snake-eqm app`: watch, steer and question the world model in the browser (Gradio).'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm app", description=DESCRIPTION)
    parser.add_argument("--model", default=None, help="world model folder or Hub repo id (default: the shipped "
                        "10x10 checkpoint)")
    parser.add_argument("--port", type=int_in_range(1, 65535, "a port"), default=None, help="default: gradio's (7860, or the next free)")
    parser.add_argument("--host", default=None, help="default: gradio's (127.0.0.1 unless GRADIO_SERVER_NAME is set)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    return parser


