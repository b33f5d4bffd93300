"""Every number README.md and MODEL_CARD.md quote comes from a JSON in docs/results/ with its provenance.

docs/results/claims.json lists, per document, the sections whose numbers are results, the literal
strings quoted there and the JSON value behind each, and the literals that are not measurements
(targets, settings). The check is strict: a number in those sections that no claim or setting
covers fails, a claim whose literal left the text fails, and a claim whose JSON value does not round
to the quoted digits fails. How to add a claim: docs/results/README.md.

    python tests/test_claims.py       # lists the uncovered numbers, with the JSON leaves that match each
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
PROVENANCE_FIELDS = ("command", "revision", "machine", "date")  # as snake_world_eqm.provenance writes them
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")
CODE_SPAN = re.compile(r"`[^`]+`")  # inline code, over line breaks too
FENCE = re.compile(r"^```\w*$", re.MULTILINE)  # fence lines only: a fenced block's output lines are quoted results


def _load_claims(root: Path) -> dict[str, Any]:
    return json.loads((root / "docs" / "results" / "claims.json").read_text())


def _section(text: str, start: str, end: str | None) -> str:
    begin = text.index(start)  # a missing marker is a ValueError naming nothing: wrap it
    stop = text.index(end, begin) if end else len(text)
    return text[begin:stop]


def scoped_text(root: Path, document: str, spec: dict[str, Any]) -> tuple[str, list[str]]:
    """The text of the document's result sections, and problems (a section marker not found)."""
    text = (root / document).read_text()
    parts, problems = [], []
    for section in spec["sections"]:
        try:
            parts.append(_section(text, section["from"], section.get("to")))
        except ValueError:
            problems.append(f"{document}: section from {section['from']!r} to {section.get('to')!r} not found")
    # Inline code holds commands and paths (settings, not results): their numbers are not claims.
    return "\n".join(CODE_SPAN.sub(" ", FENCE.sub("", part)) for part in parts), problems


def _leaf(data: Any, key: str) -> Any:
    """`data` at a dotted key path; a key that itself holds dots ("whatif_exact.mean") is matched whole."""
    parts = key.split(".")
    while parts:
        if isinstance(data, list):
            data, parts = data[int(parts[0])], parts[1:]
            continue
        for size in range(len(parts), 0, -1):  # longest key first
            name = ".".join(parts[:size])
            if name in data:
                data, parts = data[name], parts[size:]
                break
        else:
            raise KeyError(".".join(parts))
    return data


def _quoted_numbers(literal: str) -> list[tuple[float, int, bool]]:
    """(value, decimals shown, is a percentage) of each number in a claim's literal."""
    quoted = []
    for match in NUMBER.finditer(literal):
        digits = match.group().replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        quoted.append((float(digits), decimals, literal[match.end():].lstrip().startswith("%")))
    return quoted


def _json(root: Path, file: str) -> Any:
    path = root / "docs" / "results" / file
    return _parsed(path, path.stat().st_mtime_ns, path.stat().st_size)


@functools.lru_cache(maxsize=256)
def _parsed(path: Path, mtime_ns: int, size: int) -> Any:
    # Keyed by the file's mtime and size, so an edited JSON is read again; the same file is parsed once per
    # check, not once per number (the edit-every-claim test checks the whole README once per claim).
    return json.loads(path.read_text())


def claimed_value(root: Path, source: str | dict[str, Any]) -> float:
    """The JSON value behind one number: "file.json:key.path", or {"value": ..., "divide_by": ..., "scale": ...}."""
    spec = {"value": source} if isinstance(source, str) else source
    file, key = spec["value"].split(":", 1)
    value = float(_leaf(_json(root, file), key))
    if "divide_by" in spec:
        other_file, other_key = spec["divide_by"].split(":", 1)
        value /= float(_leaf(_json(root, other_file), other_key))
    return value * float(spec.get("scale", 1.0))


def _source_files(source: str | dict[str, Any]) -> set[str]:
    spec = {"value": source} if isinstance(source, str) else source
    return {spec[name].split(":")[0] for name in ("value", "divide_by") if name in spec}


def _matches(quoted: tuple[float, int, bool], value: float) -> bool:
    number, decimals, percent = quoted
    shown = value * 100 if percent else value
    return math.isfinite(shown) and abs(shown - number) <= 0.5 * 10 ** -decimals + 1e-9


def _check_claim(root: Path, document: str, literal: str, sources: Any) -> tuple[list[str], set[str]]:
    """Problems with one claim, and the JSON files it reads. `sources`: one per number in the literal
    (a single source for a single number; null for a number that is a definition, not a measurement)."""
    quoted = _quoted_numbers(literal)
    sources = sources if isinstance(sources, list) else [sources]
    if len(sources) != len(quoted):
        return [f"{document}: claim {literal!r} quotes {len(quoted)} numbers but names {len(sources)} sources"], set()
    problems, files = [], set()
    for number, source in zip(quoted, sources):
        if source is None:
            continue
        try:
            value = claimed_value(root, source)
        except (KeyError, IndexError, TypeError, ValueError, FileNotFoundError) as error:
            problems.append(f"{document}: claim {literal!r}: its JSON value cannot be read ({error!r})")
            continue
        files |= _source_files(source)
        if not _matches(number, value):
            problems.append(f"{document}: {literal!r} quotes {number[0]:g}, the JSON says {value!r}")
    return problems, files


def _covered(text: str, literals: list[str]) -> list[bool]:
    """Per number in `text`: inside an occurrence of one of `literals`?"""
    spans = [(m.start(), m.start() + len(lit)) for lit in literals for m in re.finditer(re.escape(lit), text)]
    return [any(a <= n.start() and n.end() <= b for a, b in spans) for n in NUMBER.finditer(text)]


def check_claims(root: Path = REPO) -> list[str]:
    """Every problem with the quoted numbers of README.md and MODEL_CARD.md under `root` (empty: all good)."""
    problems: list[str] = []
    config = _load_claims(root)
    used_files: set[str] = set()
    for document, spec in config["documents"].items():
        text, missing = scoped_text(root, document, spec)
        problems += missing
        for literal, sources in spec["claims"].items():
            if literal not in text:
                problems.append(f"{document}: claim {literal!r} is no longer quoted in its sections")
                continue
            found, files = _check_claim(root, document, literal, sources)
            problems += found
            used_files |= files
        covered = _covered(text, [*spec["claims"], *spec.get("not_measurements", [])])
        for number, ok in zip(NUMBER.finditer(text), covered):
            if not ok:
                context = text[max(0, number.start() - 40): number.end() + 20].replace("\n", " ")
                problems.append(f"{document}: {number.group()!r} has no claim in docs/results/claims.json (…{context}…)")
    for file in sorted(used_files):
        data = _json(root, file)
        absent = [field for field in PROVENANCE_FIELDS if not (data.get("provenance") or {}).get(field)]
        if absent:
            problems.append(f"docs/results/{file}: provenance lacks {', '.join(absent)}")
    return problems


def test_every_quoted_number_has_a_json_with_provenance():
    problems = check_claims()
    assert problems == [], "\n".join(problems)


def _copy_documents(tmp_path: Path) -> Path:
    for document in _load_claims(REPO)["documents"]:
        shutil.copy(REPO / document, tmp_path / document)
    shutil.copytree(RESULTS, tmp_path / "docs" / "results", ignore=shutil.ignore_patterns("*.png", "plots"))
    return tmp_path


def test_a_number_edited_without_its_json_fails(tmp_path):
    root = _copy_documents(tmp_path)
    readme = root / "README.md"
    claims = _load_claims(root)["documents"]["README.md"]["claims"]
    for literal, sources in claims.items():
        first_measured = next(i for i, src in enumerate(sources if isinstance(sources, list) else [sources]) if src)
        match = list(NUMBER.finditer(literal))[first_measured]
        digits = match.group()
        edited_digits = digits[:-1] + str((int(digits[-1]) + 3) % 10)  # change the last shown digit
        edited = literal[: match.start()] + edited_digits + literal[match.end():]
        original = readme.read_text()
        readme.write_text(original.replace(literal, edited))
        problems = check_claims(root)
        readme.write_text(original)
        assert any(repr(literal) in problem for problem in problems), (literal, problems)


def test_a_new_number_without_a_claim_fails(tmp_path):
    root = _copy_documents(tmp_path)
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("What the numbers say:", "What the numbers say (42.5 per game):"))
    problems = check_claims(root)
    assert any("'42.5' has no claim" in problem for problem in problems), problems


def test_a_json_value_that_changed_fails(tmp_path):
    root = _copy_documents(tmp_path)
    claims = _load_claims(root)["documents"]["README.md"]["claims"]
    literal, source = next((lit, src) for lit, src in claims.items() if isinstance(src, str))
    file, key = source.split(":", 1)
    data = json.loads((root / "docs" / "results" / file).read_text())  # a fresh copy: the cached one is shared
    *path, last = key.split(".")
    parent = _leaf(data, ".".join(path)) if path else data
    parent[last] = float(parent[last]) * 1.5 + 1.0
    (root / "docs" / "results" / file).write_text(json.dumps(data))
    assert any(repr(literal) in problem for problem in check_claims(root))


def test_a_result_json_without_provenance_fails(tmp_path):
    root = _copy_documents(tmp_path)
    source = next(src for src in _load_claims(root)["documents"]["README.md"]["claims"].values() if isinstance(src, str))
    file = source.split(":")[0]
    path = root / "docs" / "results" / file
    data = json.loads(path.read_text())
    data["provenance"].pop("revision")
    path.write_text(json.dumps(data))
    assert f"docs/results/{file}: provenance lacks revision" in check_claims(root)


def _leaves(data: Any, prefix: str = ""):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, f"{prefix}{index}.")
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield prefix[:-1], float(data)


def suggest(root: Path = REPO) -> None:
    """Print each uncovered number with the JSON leaves it matches (to fill in claims.json by hand)."""
    config = _load_claims(root)
    files = sorted(path.name for path in (root / "docs" / "results").glob("*.json") if path.name != "claims.json")
    for document, spec in config["documents"].items():
        text, _ = scoped_text(root, document, spec)
        covered = _covered(text, [*spec["claims"], *spec.get("not_measurements", [])])
        for number, ok in zip(NUMBER.finditer(text), covered):
            if ok:
                continue
            hits = [f"{file}:{key}" for file in files
                    for key, value in _leaves(json.loads((root / "docs" / "results" / file).read_text()))
                    if _matches(_quoted_numbers(number.group())[0], value)]
            context = text[max(0, number.start() - 30): number.end() + 10].replace("\n", " ")
            print(f"{document}: {number.group()!r} …{context}… -> {hits[:4]}")


if __name__ == "__main__":
    suggest(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO)
