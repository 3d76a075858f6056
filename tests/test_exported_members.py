"""Each public module's ``__all__`` is exactly what it defines publicly (httpx's test is the model).

Public = a top-level class, function or assignment whose name does not start with ``_``, defined
in the module itself (imports do not count). A module that grows a public name must export it
or make it private; ``__all__`` never lists a name the module does not define.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in ("shared",)
    for path in (ROOT / package).rglob("*.py")
    if path.name != "__init__.py" or path.parent != ROOT / package
)


def _defined(module: str) -> set[str]:
    source = (ROOT / Path(*module.split("."))).with_suffix(".py")
    if not source.exists():
        source = ROOT / Path(*module.split(".")) / "__init__.py"
    names: set[str] = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for leaf in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(leaf, ast.Name):
                        names.add(leaf.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_") and n not in {"T", "M", "log"}}


@pytest.mark.parametrize("module", MODULES)
def test_all_is_what_the_module_defines(module: str) -> None:
    mod = importlib.import_module(module)
    exported = set(getattr(mod, "__all__", ()))
    assert hasattr(mod, "__all__"), f"{module} has no __all__"
    assert exported == _defined(module), (
        f"{module}: not exported {sorted(_defined(module) - exported)}, "
        f"exported but not defined {sorted(exported - _defined(module))}"
    )
