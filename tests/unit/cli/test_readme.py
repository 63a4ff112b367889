"""The README's command reference and settings table agree with the code.

The reference (between ``<!-- cli -->`` and ``<!-- /cli -->``) has one ``### `newsqa NAME``
section per command, each with a table whose rows start with the option (`` `-k N` ``). Every
command and option of the click group must be documented there, and nothing else; an option
with a plain default shows it in its row. The settings table (between ``<!-- settings -->`` and
``<!-- /settings -->``) is ``qa.settings.settings_table()`` exactly: ``make docs`` rewrites it.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from qa import settings
from qa.cli.main import cli
from qa.tui.commands import COMMANDS

README = Path(__file__).resolve().parents[3] / "README.md"
COMMON = "--index-dir"  # every command has it; documented once, above the sections
OPTION = re.compile(r"`(--?[a-z][a-z0-9-]*)")


def _between(text: str, name: str) -> str:
    start, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
    assert start in text and end in text, f"README lacks the {start.strip()} markers"
    return text.split(start, 1)[1].split(end, 1)[0]


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sections(readme: str) -> dict[str, str]:
    """Command name -> its section of the reference."""
    reference = _between(readme, "cli")
    parts = re.split(r"^### `newsqa ([a-z-]+)[^\n]*\n", reference, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _rows(section: str) -> dict[str, list[str]]:
    """Option -> the cells of its table row."""
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `-"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            match = OPTION.match(cells[0])
            assert match, line
            rows[match.group(1)] = cells
    return rows


def _options(command: click.Command) -> dict[str, click.Option]:
    """Each option of a command by its names (``--json``, ``-k``), less the common one."""
    out = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                if name != COMMON:
                    out[name] = param
    return out


def test_every_command_has_a_section_and_no_section_is_stale(sections: dict[str, str]) -> None:
    assert set(sections) == set(cli.commands)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_option_is_documented_in_its_command_section(
    name: str, sections: dict[str, str]
) -> None:
    documented = _rows(sections.get(name, ""))
    actual = _options(cli.commands[name])
    missing = sorted(set(actual) - set(documented))
    stale = sorted(set(documented) - set(actual))
    assert not missing, f"newsqa {name}: options missing from the README: {missing}"
    assert not stale, f"newsqa {name}: README documents options it lacks: {stale}"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_documented_defaults_match(name: str, sections: dict[str, str]) -> None:
    rows = _rows(sections.get(name, ""))
    for opt_name, option in _options(cli.commands[name]).items():
        cells = rows.get(opt_name)
        if cells is None:
            continue  # reported by the test above
        default = option.default
        if option.is_flag:
            assert cells[1] == "off", f"newsqa {name} {opt_name}: a flag's default is off"
        elif isinstance(default, bool | int | float | str | Path) and default is not None:
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert shown in cells[1], f"newsqa {name} {opt_name}: default {shown} not shown"


def test_the_common_options_are_documented(readme: str) -> None:
    reference = _between(readme, "cli")
    head = reference.split("### ", 1)[0]
    for command in cli.commands.values():
        assert COMMON in {o for p in command.params for o in getattr(p, "opts", [])}
    assert f"`{COMMON} DIR`" in head
    for param in cli.params:  # the group's own (--version)
        for opt in getattr(param, "opts", []):
            assert opt in head, f"newsqa {opt} is not documented"


def test_the_settings_table_is_generated(readme: str) -> None:
    assert _between(readme, "settings").rstrip("\n") == settings.settings_table()


def test_every_chat_slash_command_is_documented(readme: str) -> None:
    chat = readme.split("## The chat", 1)[1].split("\n## ", 1)[0]
    for usage, _ in COMMANDS:
        assert f"`{usage.split()[0]}" in chat, f"chat command {usage} is not in the README"


def test_documented_paths_exist(readme: str) -> None:
    """Files and folders the README names in backquotes or links are in the repository."""
    root = README.parent
    names = re.findall(r"\]\(([\w./-]+)\)", readme)
    names += re.findall(r"`((?:qa|tests|docs|bench|scripts|corpus)/[\w./-]*)`", readme)
    missing = [n for n in names if not (root / n.rstrip("/")).exists()]
    assert not missing, f"README names paths that do not exist: {missing}"
