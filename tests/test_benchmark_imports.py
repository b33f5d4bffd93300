"""Every name benchmarks/*.py imports from the package (or dataset_builder) still exists, function-level
imports included: a benchmark that imports a renamed helper only inside main() answers --help and fails later
(issue #35: benchmarks/evaluate.py kept `load_models` after the CLI dropped it). Read with `ast`; only the
imported library modules are loaded, not the benchmarks themselves, so this stays cheap."""

from __future__ import annotations

import ast
import importlib
import importlib.util

import pytest

from tests.training_helpers import REPO_ROOT

BENCHMARKS = REPO_ROOT / "benchmarks"
OURS = ("snake_world_eqm", "dataset_builder")


def library_imports(path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) for every import of our packages in `path`, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in OURS:
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names if alias.name.split(".")[0] in OURS]
    return found


def unresolved(module: str, name: str | None) -> str | None:
    """Why `from module import name` (or `import module`) would fail, or None."""
    try:
        loaded = importlib.import_module(module)
    except ImportError as error:
        return f"module {module} does not import: {error}"
    if name is None or name == "*" or hasattr(loaded, name):
        return None
    if hasattr(loaded, "__path__") and importlib.util.find_spec(f"{module}.{name}") is not None:
        return None  # a submodule of a package, imported on demand
    return f"{module} has no {name!r}"


SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


def test_the_benchmarks_are_found_and_import_the_library():
    assert len(SCRIPTS) > 10 and any(library_imports(path) for path in SCRIPTS)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_every_library_name_a_benchmark_imports_exists(path):
    problems = [f"{path.name}:{line}: {why}" for module, name, line in library_imports(path)
                if (why := unresolved(module, name))]
    assert not problems, "\n".join(problems)


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text("def main():\n    from snake_world_eqm.evaluation.cli import load_models\n")
    [(module, name, line)] = library_imports(script)
    assert (module, name, line) == ("snake_world_eqm.evaluation.cli", "load_models", 2)
    assert "no 'load_models'" in unresolved(module, name)
