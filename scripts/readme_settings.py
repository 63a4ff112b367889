"""Write the settings table (``qa.settings.settings_table()``) into README.md.

The table sits between the ``<!-- settings -->`` and ``<!-- /settings -->`` marker lines;
``tests/unit/cli/test_readme.py`` fails when the two differ.

Usage:
    python scripts/readme_settings.py [README] [--check]   # --check: exit 1 if out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- settings -->", "<!-- /settings -->"


def with_table(text: str, table: str) -> str:
    """``text`` with the lines between the two markers replaced by ``table``."""
    head, start, rest = text.partition(START + "\n")
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README: the {START} ... {END} markers are missing")
    return f"{head}{start}{table}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/readme_settings.py", description=__doc__)
    p.add_argument("readme", nargs="?", type=Path, default=ROOT / "README.md")
    p.add_argument("--check", action="store_true", help="only say whether it is up to date")
    args = p.parse_args(argv)
    old = args.readme.read_text(encoding="utf-8")
    new = with_table(old, settings_table())
    if args.check:
        if new != old:
            print(f"{args.readme}: the settings table is out of date (run `make docs`)")
            return 1
        return 0
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
        print(f"{args.readme}: settings table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
