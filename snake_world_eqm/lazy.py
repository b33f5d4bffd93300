"""Package namespaces whose public names load their module on first use (PEP 562).

`game`, `data` and `agents` re-export many names; importing all their modules eagerly would make every
`--help` wait for gymnasium, `datasets` or torch. A package lists what it exports, module by module, and
gets the `__getattr__`, `__dir__` and `__all__` that load each name when it is first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]) -> tuple[Callable, Callable, list[str]]:
    """`(__getattr__, __dir__, __all__)` for `package`, whose `exports` maps submodule -> public names."""
    module_of = {name: module for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(module_of))

    return __getattr__, __dir__, sorted(module_of)
