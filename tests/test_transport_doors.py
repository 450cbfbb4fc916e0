"""The transports (the control socket, HTTP, the board) and the command table reach the core
only through the engine's methods, never its store."""

from __future__ import annotations

import ast
from pathlib import Path

import shiftd

PACKAGE = Path(shiftd.__file__).parent
TRANSPORTS = [
    PACKAGE / "commands.py",
    *(PACKAGE / "control").rglob("*.py"),
    *(PACKAGE / "http").rglob("*.py"),
    *(PACKAGE / "web").rglob("*.py"),
]


def _store_attributes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "store"
    ]


def test_no_transport_reaches_the_engines_store() -> None:
    found = [where for path in TRANSPORTS for where in _store_attributes(path)]
    assert found == []
