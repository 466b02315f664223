"""The tunnel core is sans-I/O (DESIGN.md, Conventions): no event loop, sockets, clocks or threads.

Read from source with ``ast`` so an import hidden in a function body counts too.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import shared.tunnel

FORBIDDEN = frozenset({"asyncio", "socket", "time", "selectors", "threading", "ssl"})
#: Pure modules outside shared/tunnel that the in-memory tests rely on.
ALSO_PURE = ("shared.testing",)


def _tunnel_modules() -> list[ModuleType]:
    names = [
        info.name for info in pkgutil.walk_packages(shared.tunnel.__path__, prefix="shared.tunnel.")
    ]
    return [shared.tunnel] + [importlib.import_module(n) for n in [*names, *ALSO_PURE]]


def _imported_roots(source: str) -> set[str]:
    """Top-level package names imported anywhere in ``source`` (statements and literal calls)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                roots.add(arg.value.split(".")[0])
    return roots


def _is_dynamic_import(func: ast.expr) -> bool:
    """``__import__(...)`` or ``importlib.import_module(...)``."""
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def test_every_tunnel_module_is_found() -> None:
    names = {m.__name__ for m in _tunnel_modules()}
    expected = {"frames", "errors", "identity", "control", "codes"}
    assert {f"shared.tunnel.{n}" for n in expected} <= names


@pytest.mark.parametrize("module", _tunnel_modules(), ids=lambda m: m.__name__)
def test_module_imports_no_io(module: ModuleType) -> None:
    assert module.__file__ is not None
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert not _imported_roots(source) & FORBIDDEN


@pytest.mark.parametrize(
    "snippet",
    [
        "import asyncio",
        "import time as t",
        "from socket import socket",
        "import ssl, json",
        "from threading import Lock",
        "def f():\n    import selectors",
        "__import__('time')",
        "importlib.import_module('asyncio.events')",
    ],
)
def test_checker_catches_io_imports(snippet: str) -> None:
    assert _imported_roots(snippet) & FORBIDDEN


def test_checker_allows_lookalikes() -> None:
    assert not _imported_roots("import timeit\nfrom . import socket\nimport datetime") & FORBIDDEN
