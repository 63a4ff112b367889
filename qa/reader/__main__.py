"""``python -m qa.reader [READER_DIR] [--force]``: build the reader's ONNX Runtime copies.

Run once by ``make setup``: the int8 and float32 copies; prints their paths. Without them the
reader runs in torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from qa.errors import QAError
from qa.reader.onnx import build


def main(argv: list[str] | None = None) -> int:
    """Build the int8 copy of a reader folder (default: the shipped reader)."""
    p = argparse.ArgumentParser(prog="python -m qa.reader", description=__doc__.split("\n")[0])
    p.add_argument("folder", nargs="?", type=Path, default=None, help="reader folder")
    p.add_argument("--force", action="store_true", help="rebuild even when the copy exists")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")  # the exporter's deprecation chatter is not for users
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    for precision in ("int8", "fp32"):
        try:
            path = build(args.folder, force=args.force, precision=precision)
        except (QAError, ImportError, OSError, RuntimeError) as exc:
            line = f"error: {precision} ONNX reader not built: {exc}".splitlines()[0]
            print(line, file=sys.stderr)
            return 1
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
