"""`snake-eqm --help` and every subcommand's `--help` answer without loading torch or transformers.

The speed itself is measured in README.md (no wall-clock assertion here); what makes it fast is checked:
the heavy libraries are never imported on the help path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from snake_world_eqm.cli import SUBCOMMANDS

PROBE = textwrap.dedent("""
    import contextlib, io, json, sys
    from snake_world_eqm.cli import main
    codes, texts = {}, {}
    for command in json.loads(sys.argv[1]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                codes[command] = main([command, "--help"] if command else ["--help"])
            except SystemExit as exit_:
                codes[command] = exit_.code or 0
        texts[command] = out.getvalue()
    heavy = sorted(name for name in ("torch", "transformers", "datasets", "accelerate") if name in sys.modules)
    print(json.dumps({"codes": codes, "texts": texts, "heavy": heavy}))
""")


def test_help_of_every_command_loads_no_heavy_library():
    commands = ["", *SUBCOMMANDS]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["heavy"] == []
    assert all(code == 0 for code in result["codes"].values()), result["codes"]
    for command in SUBCOMMANDS:
        assert f"snake-eqm {command}" in result["texts"][command]  # each command's own usage, not the top one


def test_evaluate_help_names_the_real_default_step_counts():
    from snake_world_eqm.evaluation.cli import build_parser
    from snake_world_eqm.evaluation.evaluate import FIXED_STEP_COUNTS

    assert ",".join(map(str, FIXED_STEP_COUNTS)) in build_parser().format_help().replace("\n", " ")


def test_lm_train_help_path_and_its_training_module_share_one_parser():
    from snake_world_eqm.lm_bridge import args, training

    assert training.build_parser is args.build_parser
