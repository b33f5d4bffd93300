"""Mutation testing of the core modules with mutmut; prints the score of each module as JSON.

Not part of CI: each module costs minutes of CPU. Every module is mutated in its own scratch copy of
the repository (mutmut reads its settings from the working directory's pyproject.toml and keeps its
state in `mutants/`), with only the test files that exercise it, so a run never touches this checkout.

    pip install -e .[mutation]
    python benchmarks/mutation.py                                  # every module in MODULES
    python benchmarks/mutation.py --modules snake_world_eqm/eqm.py --json docs/results/mutation.json

    # on a busy machine: keep the copy, strengthen the tests, then run only the survivors again
    python benchmarks/mutation.py --modules snake_world_eqm/game/rules.py --keep --show-diffs
    python benchmarks/mutation.py --modules snake_world_eqm/game/rules.py --rerun /tmp/snake-mutation-XXXX
    # a module too big to finish: a deterministic sample of mutant names (here every tenth)
    python benchmarks/mutation.py --modules snake_world_eqm/game/expert.py --sample '*__mutmut_*0'

Score = (killed + timed out) / (mutants - skipped - never run); a mutant no test covers counts as surviving.
A stopped run (--rerun COPY --report-only) or a sample is scored over the mutants that ran, and says so.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from snake_world_eqm.provenance import provenance, write_json  # noqa: E402

# Module -> the test files that are meant to catch its bugs (mutmut runs only those that reach a mutant).
MODULES = {
    "snake_world_eqm/eqm.py": ["tests/model/test_eqm_math.py"],
    "snake_world_eqm/evaluation/metrics.py": ["tests/evaluation/test_evaluation_metrics.py"],
    "dataset_builder/validate.py": ["tests/dataset_builder/test_dataset_validate.py"],
    "snake_world_eqm/training/selection.py": ["tests/training/test_training_best.py"],
    "snake_world_eqm/game/encoding.py": ["tests/game/test_game_encoding.py"],
    "snake_world_eqm/game/rules.py": ["tests/game/test_game_rules.py", "tests/game/test_bad_input_game.py"],
    # The batched engine is checked against the single-board rules in test_game_rules.py.
    "snake_world_eqm/game/batched.py": ["tests/game/test_game_batched.py", "tests/game/test_game_rules.py",
                                        "tests/game/test_bad_input_game.py"],
    "snake_world_eqm/game/expert.py": ["tests/game/test_game_expert.py", "tests/game/test_game_expert_fill.py"],
    # Issue #33: the modules the architecture issue moved.
    "snake_world_eqm/agents/simple.py": ["tests/agents/test_agents.py", "tests/agents/test_agents_contract.py",
                                         "tests/evaluation/test_evaluation_play.py"],
    "snake_world_eqm/agents/base.py": ["tests/agents/test_agents.py", "tests/agents/test_agents_contract.py",
                                       "tests/evaluation/test_evaluation_play.py"],
    "snake_world_eqm/evaluation/closed_loop.py": ["tests/evaluation/test_evaluation_play.py"],
    # Checkpoints: the unit tests first (milliseconds a mutant), then the in-process training runs and the kill test
    # that resume the same checkpoints through the engine.
    "snake_world_eqm/training/checkpoints.py": ["tests/training/test_checkpoints.py",
                                                "tests/training/test_bad_input_training.py",
                                                "tests/training/test_checkpoint_trust.py",
                                                "tests/training/test_training_run.py",
                                                "tests/training/test_training_best.py",
                                                "tests/training/test_training_resume.py"],
    # Not test_shipped_remote_code.py: it checks that the shipped folders' code files are symlinks, which the
    # scratch copy (copytree) turns into plain files.
    "snake_world_eqm/hub/push.py": ["tests/hub/test_push.py", "tests/hub/test_hub.py", "tests/hub/test_release.py",
                                    "tests/hub/test_security.py", "tests/hub/test_bad_input_hub.py",
                                    "tests/app/test_app.py"],
    # The dream's one transition: the unit tests of its functions first (milliseconds a mutant), then the dream env,
    # the dream beside the real game, the RL adapters and the open-loop replay that step through it.
    "snake_world_eqm/simulator/core.py": ["tests/simulator/test_core.py", "tests/simulator/test_side_by_side.py",
                                          "tests/simulator/test_dream_env.py", "tests/simulator/test_dream_rl.py",
                                          "tests/evaluation/test_open_loop.py"],
    "snake_world_eqm/evaluation/open_loop.py": ["tests/evaluation/test_open_loop_replay.py",
                                                "tests/evaluation/test_open_loop.py"],
}
COPIED = ("snake_world_eqm", "dataset_builder", "tests")
# Loaded into every test run mutmut makes (see its docstring: one mutant's leaked tqdm lock hung all later ones).
PLUGIN = Path(__file__).with_name("mutation_pytest_plugin.py")
TARGET_SCORE = 0.90
# mutmut's verdicts (mutmut.stats.status_by_exit_code); a module's counts list each, zeros included.
STATUSES = ("killed", "survived", "timeout", "no tests", "skipped", "suspicious", "segfault", "not checked",
            "caught by type check", "check was interrupted by user")
SURVIVING = ("survived", "no tests", "suspicious", "segfault")


def _mutmut_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("mutmut")
    found = beside_python if beside_python.exists() else shutil.which("mutmut")
    if not found:
        raise SystemExit("mutmut is not installed: pip install -e .[mutation]")
    return [str(found)]


def _mutmut_settings(module: str, tests: list[str]) -> str:
    quoted = lambda items: "[" + ", ".join(json.dumps(item) for item in items) + "]"  # noqa: E731
    return (
        "\n[tool.mutmut]\n"
        f"source_paths = {quoted(['snake_world_eqm', 'dataset_builder'])}\n"
        f"only_mutate = {quoted([module])}\n"
        f"also_copy = {quoted(['tests', PLUGIN.name])}\n"
        f"pytest_add_cli_args_test_selection = {quoted(tests)}\n"
        f"pytest_add_cli_args = {quoted(['-p', 'no:cacheprovider', '-p', PLUGIN.stem, '-q'])}\n"
    )


def _scratch_copy(module: str, tests: list[str]) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="snake-mutation-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants")
    for name in COPIED:
        shutil.copytree(REPO / name, scratch / name, ignore=ignore)
    shutil.copy2(PLUGIN, scratch / PLUGIN.name)  # also_copy puts it in mutants/, which is on the tests' sys.path
    pyproject = (REPO / "pyproject.toml").read_text()
    pyproject = re.sub(r"\n\[tool\.mutmut\][^\[]*", "\n", pyproject)  # our per-module settings replace any
    (scratch / "pyproject.toml").write_text(pyproject + _mutmut_settings(module, tests))
    return scratch


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the mutated copy under mutants/ must be the only one tests can import first
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return env


def _function_source(text: str, name: str) -> list[str]:
    """The lines of `def name(...)` in mutmut's rewritten module (up to the next line indented no deeper)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith(f"def {name}("):
            indent = len(line) - len(line.lstrip())
            body = [line]
            for following in lines[index + 1:]:
                dedented = following.strip() and len(following) - len(following.lstrip()) <= indent
                if dedented and not following.lstrip().startswith(")"):  # ")" closes a multi-line signature
                    break
                body.append(following)
            return body
    return []


def _mutant_diff(mutated_module: str, mutant: str) -> str:
    """The changed lines of one mutant against the original function (read from mutants/, no mutmut process)."""
    short = mutant.rsplit(".", 1)[-1]
    original = re.sub(r"__mutmut_\d+$", "__mutmut_orig", short)
    before = [line.replace(original, short) for line in _function_source(mutated_module, original)]
    after = _function_source(mutated_module, short)
    changed = difflib.unified_diff(before, after, lineterm="", n=0)
    return "\n".join(line.strip() for line in changed if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def _survivors(scratch: Path, module: str, statuses: dict[str, str], show: bool) -> list[dict[str, str]]:
    mutated_module = (scratch / "mutants" / module).read_text() if show else ""
    survivors = []
    for name, status in statuses.items():
        if status in SURVIVING:
            entry = {"mutant": name, "status": status}
            if show:
                entry["diff"] = _mutant_diff(mutated_module, name)
            survivors.append(entry)
    return survivors


def _refresh_tests(scratch: Path, env: dict[str, str]) -> list[str]:
    """Copy this checkout's tests into a kept scratch copy (mutmut runs them from mutants/); return its survivors."""
    for target in (scratch / "tests", scratch / "mutants" / "tests"):
        shutil.copytree(REPO / "tests", target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return [name for name, status in _statuses(scratch, env).items() if status in SURVIVING]


def _statuses(scratch: Path, env: dict[str, str]) -> dict[str, str]:
    """mutant name -> mutmut's status ("killed", "survived", "not checked", ...) for every mutant of the copy."""
    listing = subprocess.run([*_mutmut_command(), "results", "--all", "true"], cwd=scratch, env=env,
                             capture_output=True, text=True, check=True)
    statuses = {}
    for line in listing.stdout.splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and "__mutmut_" in name:
            statuses[name] = status
    return statuses


def _score(statuses: dict[str, str]) -> dict:
    """Counts per status and the score over the mutants that were run (a sampled run leaves the rest unchecked)."""
    counts = {key.replace(" ", "_"): 0 for key in STATUSES}
    for status in statuses.values():
        counts[status.replace(" ", "_")] = counts.get(status.replace(" ", "_"), 0) + 1
    counted = len(statuses) - counts["skipped"] - counts["not_checked"]
    killed = counts["killed"] + counts["timeout"]
    return {
        "score": round(killed / counted, 4) if counted else None,
        "meets_target": bool(counted) and killed / counted >= TARGET_SCORE,
        "total": len(statuses),
        **counts,
    }


def mutate_module(module: str, tests: list[str], max_children: int, show: bool, keep: bool,
                  sample: list[str] | None = None, rerun: Path | None = None, report_only: bool = False) -> dict:
    env = _environment()
    scratch = rerun if rerun else _scratch_copy(module, tests)
    # A sample is a list of mutmut name patterns (fnmatch), e.g. "*__mutmut_*0" for every tenth mutant.
    selected = sample or []
    if rerun and not report_only:  # new tests only add kills, so only the earlier run's survivors need running again
        selected = _refresh_tests(rerun, env)
    start = time.monotonic()
    try:
        run = None
        if (selected or not rerun) and not report_only:
            run = subprocess.run([*_mutmut_command(), "run", "--max-children", str(max_children), *selected],
                                 cwd=scratch, env=env, capture_output=True, text=True)
        if run is not None and run.returncode != 0:
            return {"module": module, "tests": tests, "error": (run.stdout + run.stderr)[-2000:]}
        statuses = _statuses(scratch, env)
        sampled = {"sample": sample, "mutants_in_module": len(statuses)} if sample else {}
        if rerun and not report_only:
            sampled["survivors_run_again_with_current_tests"] = len(selected)
        if sample:  # score only the mutants the sample selected
            statuses = {name: status for name, status in statuses.items()
                        if any(fnmatch.fnmatch(name, pattern) for pattern in sample)}
        if any(status == "not checked" for status in statuses.values()):  # a stopped run: scored over what ran
            sampled["partial"] = "some mutants were never run (not_checked); the score is over the mutants that ran"
        return {
            "module": module,
            "tests": tests,
            **sampled,
            **_score(statuses),
            "seconds": round(time.monotonic() - start, 1),
            "survivors": _survivors(scratch, module, statuses, show),
        }
    finally:
        if keep or rerun:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", nargs="+", default=list(MODULES), choices=list(MODULES), metavar="MODULE")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutant runs (default 1: a shared CPU)")
    parser.add_argument("--show-diffs", action="store_true", help="include each survivor's diff")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies (to `mutmut browse` them)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--rerun", type=Path, metavar="SCRATCH",
                        help="a scratch copy kept by --keep (one module): copy the current tests into it and run "
                             "only its surviving mutants again")
    parser.add_argument("--report-only", action="store_true",
                        help="with --rerun: run nothing, report the kept copy as it stands (e.g. a run stopped early)")
    parser.add_argument("--sample", nargs="+", metavar="PATTERN",
                        help="run only the mutants whose names match these fnmatch patterns (a deterministic "
                             "subset for a module too big to finish, e.g. '*__mutmut_*0' for every tenth); the "
                             "score is then over the sample")
    args = parser.parse_args(argv)
    modules = []
    for module in args.modules:
        modules.append(mutate_module(module, MODULES[module], args.max_children, args.show_diffs, args.keep,
                                       args.sample, args.rerun, args.report_only))
        done = modules[-1]  # one line per module as it finishes: a full run takes a while
        print(f"{module}: score {done.get('score')} ({done.get('killed')} killed, {done.get('survived')} survived, "
              f"{done.get('no_tests')} without tests) {done.get('error', '')[:200]}", file=sys.stderr, flush=True)
    for module in modules:
        module["provenance"] = provenance()  # each module's entry says how it was run, also after a merge
    result = {"target_score": TARGET_SCORE, "modules": modules, "provenance": provenance()}
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, _merged(args.json, result) if args.json.exists() else result)
    return 0


def _merged(path: Path, result: dict) -> dict:
    """An earlier result file with this run's modules replacing (or joining) its entries of the same module."""
    earlier = json.loads(path.read_text())
    fresh = {module["module"]: module for module in result["modules"]}
    kept = [module for module in earlier.get("modules", []) if module["module"] not in fresh]
    not_run = {name: why for name, why in earlier.get("not_run", {}).items() if name not in fresh}
    merged = {**earlier, "modules": kept + list(fresh.values()), "provenance": result["provenance"]}
    if not_run:
        merged["not_run"] = not_run
    else:
        merged.pop("not_run", None)
    merged["provenance"]["note"] = "each module keeps the provenance of its own run"
    return merged


if __name__ == "__main__":
    raise SystemExit(main())
