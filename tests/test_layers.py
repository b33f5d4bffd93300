"""The library's imports point one way: the layer order written in docs/ARCHITECTURE.md, read as data.

Every import of every library module is read with `ast`, function-level imports included, and checked for:
an import circle, an import against the layer order, a private name imported from another module, a library
module importing tests or benchmarks, and a function-level import of the package's own modules outside the
modules that keep `--help` fast (listed in ARCHITECTURE.md). A copy of the tree with one planted upward
import shows that the check fails when it should.
"""

from __future__ import annotations

import ast
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("snake_world_eqm", "dataset_builder")


@dataclass
class Layering:
    layers: list[tuple[str, tuple[str, ...]]]  # (name, module prefixes), lowest first
    lazy_allowed: tuple[str, ...]  # modules that may import the package inside functions (fast --help)


@dataclass
class Report:
    circles: list[list[str]] = field(default_factory=list)
    upward: list[str] = field(default_factory=list)
    private: list[str] = field(default_factory=list)
    tests_or_benchmarks: list[str] = field(default_factory=list)
    lazy: list[str] = field(default_factory=list)  # function-level own imports outside `lazy_allowed`
    unplaced: list[str] = field(default_factory=list)  # modules in no layer

    def problems(self) -> dict:
        return {name: value for name, value in vars(self).items() if value}


def read_layering(architecture: Path) -> Layering:
    """The ```layers``` block ("name: prefix prefix ...", lowest first) and the ```lazy-imports``` block."""
    text = architecture.read_text()
    blocks = dict(re.findall(r"```(layers|lazy-imports)\n(.*?)```", text, flags=re.S))
    layers = []
    for line in blocks["layers"].splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, prefixes = line.partition(":")
            layers.append((name.strip(), tuple(prefixes.split())))
    lazy = tuple(line.split("#")[0].strip() for line in blocks["lazy-imports"].splitlines()
                 if line.split("#")[0].strip())
    return Layering(layers, lazy)


def library_modules(root: Path) -> dict[str, Path]:
    modules = {}
    for package in LIBRARY:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _targets(module: str, path: Path, node: ast.AST) -> list[tuple[str, str | None]]:
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    if node.level:  # relative: resolve against the importing module's package
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [(base, alias.name) for alias in node.names]


def import_edges(modules: dict[str, Path]) -> list[tuple[str, str, str | None, bool, str]]:
    """(importer, imported module, imported name, inside a function, raw target) for every import."""
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        in_function = {id(inner) for outer in ast.walk(tree)
                       if isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for inner in ast.walk(outer) if isinstance(inner, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target, name in _targets(module, path, node):
                resolved = f"{target}.{name}" if name and f"{target}.{name}" in modules else target
                while resolved and resolved not in modules:
                    resolved = resolved.rpartition(".")[0]
                edges.append((module, resolved, name, id(node) in in_function, target))
    return edges


def layer_of(module: str, layering: Layering) -> int | None:
    """The layer whose longest prefix names `module` ("name$" names that module only); None if none does."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(layering.layers):
        for prefix in prefixes:
            exact = prefix.endswith("$")
            prefix = prefix.rstrip("$")
            named = module == prefix or (not exact and module.startswith(prefix + "."))
            if named and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def check(root: Path) -> Report:
    layering = read_layering(root / "docs" / "ARCHITECTURE.md")
    modules = library_modules(root)
    report = Report(unplaced=sorted(m for m in modules if layer_of(m, layering) is None))
    graph: dict[str, set[str]] = {}
    for importer, imported, name, lazy, raw in import_edges(modules):
        if raw.split(".")[0] in ("tests", "benchmarks"):
            report.tests_or_benchmarks.append(f"{importer} -> {raw}")
        if not imported or imported == importer:
            continue
        graph.setdefault(importer, set()).add(imported)
        if name and name.startswith("_") and not name.startswith("__"):
            report.private.append(f"{importer} <- {imported}.{name}")
        low, high = layer_of(importer, layering), layer_of(imported, layering)
        if low is not None and high is not None and high > low:
            report.upward.append(f"{importer} ({layering.layers[low][0]}) -> {imported} "
                                 f"({layering.layers[high][0]})")
        if lazy and importer not in layering.lazy_allowed:
            report.lazy.append(f"{importer} -> {imported}")
    report.circles = _circles(graph)
    return report


def test_the_library_imports_follow_the_layers():
    report = check(ROOT)
    assert report.problems() == {}


def test_the_layers_are_read_from_architecture_md():
    layering = read_layering(ROOT / "docs" / "ARCHITECTURE.md")
    names = [name for name, _ in layering.layers]
    assert names.index("game") < names.index("agents") < names.index("evaluation") < names.index("hub")
    assert names.index("hub") < names.index("training, lm_bridge") < names.index("app, demo, cli")
    assert layer_of("snake_world_eqm.game.rules", layering) < layer_of("snake_world_eqm.agents.planner", layering)
    assert layer_of("snake_world_eqm.nowhere", layering) is None  # the package itself is named exactly


def _planted_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    for package in LIBRARY:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "checkpoints"))
    (copy / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "ARCHITECTURE.md", copy / "docs" / "ARCHITECTURE.md")
    return copy


def test_a_planted_upward_import_fails_the_check(tmp_path):
    copy = _planted_copy(tmp_path)
    assert check(copy).problems() == {}
    state = copy / "snake_world_eqm" / "game" / "state.py"
    state.write_text(state.read_text() + "\n\ndef planted():\n    from snake_world_eqm.app import GameSession\n")
    report = check(copy)
    assert any(line.startswith("snake_world_eqm.game.state (game) -> snake_world_eqm.app") for line in report.upward)
    assert report.lazy == ["snake_world_eqm.game.state -> snake_world_eqm.app"]


def test_a_planted_circle_private_name_and_test_import_fail_the_check(tmp_path):
    copy = _planted_copy(tmp_path)
    encoding = copy / "snake_world_eqm" / "game" / "state.py"
    encoding.write_text(encoding.read_text() + "\nfrom snake_world_eqm.game.encoding import _DIRECTION_OF_DELTA\n"
                        "import tests.game_helpers\n")
    report = check(copy)
    assert ["snake_world_eqm.game.encoding", "snake_world_eqm.game.state"] in report.circles
    assert "snake_world_eqm.game.state <- snake_world_eqm.game.encoding._DIRECTION_OF_DELTA" in report.private
    assert report.tests_or_benchmarks == ["snake_world_eqm.game.state -> tests.game_helpers"]


def test_a_module_in_no_layer_is_reported(tmp_path):
    copy = _planted_copy(tmp_path)
    (copy / "snake_world_eqm" / "stray.py").write_text("X = 1\n")
    assert check(copy).unplaced == ["snake_world_eqm.stray"]
