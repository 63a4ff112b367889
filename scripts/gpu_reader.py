"""Move what reader training needs to a GPU machine in pieces, and bring the reader back.

The command behind ``python -m qa.train bundle`` (the library is :mod:`qa.train.bundle`),
kept at this path for ``scripts/gpu_train.sh`` and a checkout without an installed package.

Usage:
    python scripts/gpu_reader.py pack [--mpnet DIR] [--data FILE] [--out .gpu] [--chunk-mib 34]
    python scripts/gpu_reader.py unpack [--bundle .gpu] --dest DIR [--reader DIR]
    python scripts/gpu_reader.py split READER_DIR OUT_DIR
    python scripts/gpu_reader.py join PARTS_DIR READER_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.train.__main__ import bundle_command, run


def main(argv: list[str] | None = None) -> int:
    """Run one bundle sub-command; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    return run(lambda: bundle_command(args, prog="scripts/gpu_reader.py"))


if __name__ == "__main__":
    raise SystemExit(main())
