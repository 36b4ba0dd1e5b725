"""The layering rules of DESIGN.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "mailcore"

# Sans-IO modules: no sockets, no event loop, no clock, no storage.
SANS_IO_NAMES = ("protocol.py", "events.py", "replies.py", "sasl.py", "pop2_protocol.py")
FORBIDDEN = {"asyncio", "socket", "ssl", "time", "selectors", "mailcore.store"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _sans_io_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name in SANS_IO_NAMES)


def test_sans_io_modules_do_no_io() -> None:
    offenders = []
    for path in _sans_io_modules():
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_core_is_only_imported_through_public_wrappers_or_protocols() -> None:
    # The compiled module is private: users never see it, and the CLI and
    # adapters reach it through codecs.py or the protocol machines.
    assert (PACKAGE / "_core.pyi").exists()
    assert (PACKAGE / "py.typed").exists()
