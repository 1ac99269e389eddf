"""The sans-IO rule: nothing in consent.core imports a server, an event loop or I/O."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

CORE = pathlib.Path(__file__).parents[2] / "src" / "consent" / "core"
FORBIDDEN = {
    "starlette",
    "asyncio",
    "anyio",
    "trio",
    "socket",
    "sqlite3",
    "psycopg",
    "uvicorn",
    "threading",
}


def imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_core_modules_import_nothing_forbidden() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        bad = imported_modules(path) & FORBIDDEN
        assert not bad, f"{path.name} imports {bad}"


def test_importing_the_core_loads_no_event_loop_or_framework() -> None:
    code = (
        "import sys, consent.core.cookies, consent.core.response, consent.core.inject, consent.core.endpoint;"
        "bad = {m for m in sys.modules if m.split('.')[0] in {'starlette', 'anyio', 'uvicorn'}};"
        "print(sorted(bad))"
    )
    # consent/__init__ imports the shells, so load the core modules without it.
    probe = (
        "import importlib.util, sys, types, pathlib;"
        f"root = pathlib.Path({str(CORE.parent)!r});"
        "pkg = types.ModuleType('consent'); pkg.__path__ = [str(root)]; sys.modules['consent'] = pkg;"
        + code
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
