"""The package's shape: stages import one way, no cycles, UI libraries only in the UI.

Imports inside functions count too: a lazy import hides a cycle from Python, not from a
reader of the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

QA = Path(__file__).resolve().parents[2] / "qa"
UI_LIBRARIES = ("click", "rich", "textual")
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(QA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(QA.rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> set[str]:
    """qa modules (and external top-level packages, prefixed ``ext:``) that ``path`` imports."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from qa.tui import messages` imports the submodule, not qa/tui/__init__'s code
            subs = [f"{node.module}.{a.name}" for a in node.names]
            names = [s if s in known else node.module for s in subs]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "qa":
                out.add("ext:" + name.split(".")[0])
            elif name in known:
                out.add(name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(p, known) - {m} for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among qa modules (package __init__ files that only re-export skipped)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n.startswith("ext:"):
                continue
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_there_is_no_import_cycle() -> None:
    assert _cycle(_graph()) is None


def test_the_cycle_check_can_fail() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_cli_and_the_chat_import_ui_libraries() -> None:
    offenders = {
        m: sorted(i for i in deps if i.removeprefix("ext:") in UI_LIBRARIES)
        for m, deps in _graph().items()
        if not m.startswith(("qa.cli", "qa.tui"))
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_the_core_never_imports_the_ui() -> None:
    offenders = {
        m: sorted(d for d in deps if d.startswith(("qa.cli", "qa.tui")))
        for m, deps in _graph().items()
        if not m.startswith(("qa.cli", "qa.tui"))
    }
    assert {m: d for m, d in offenders.items() if d} == {}


@pytest.mark.parametrize("reader_side", ["qa.search", "qa.answer", "qa.reader", "qa.followup"])
def test_searching_and_answering_never_import_the_indexer(reader_side: str) -> None:
    offenders = {
        m: sorted(d for d in deps if d in ("qa.index.indexer", "qa.index.watch"))
        for m, deps in _graph().items()
        if m == reader_side or m.startswith(reader_side + ".")
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_argparse_and_exit_live_in_main_modules() -> None:
    offenders = []
    for name, path in _modules().items():
        if path.name == "__main__.py" or name.startswith(("qa.cli", "qa.tui")):
            continue
        text = path.read_text(encoding="utf-8")
        if "import argparse" in text or "sys.exit(" in text or "SystemExit" in text:
            offenders.append(name)
    assert offenders == []


def test_no_module_is_too_long() -> None:
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
