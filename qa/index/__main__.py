"""``python -m qa.index [--force]``: build the embedder's ONNX Runtime copies (fp32 and int8).

Run once by ``make setup``; prints their paths. Without them everything runs through torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from qa.errors import QAError
from qa.index.embed_onnx import PRECISIONS, build


def main(argv: list[str] | None = None) -> int:
    """Build the float32 and int8 copies of the default MiniLM embedder."""
    p = argparse.ArgumentParser(prog="python -m qa.index", description=__doc__.split("\n")[0])
    p.add_argument("--force", action="store_true", help="rebuild even when a copy exists")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")  # the exporter's deprecation chatter is not for users
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # "Loading weights" bars
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    for precision in PRECISIONS:
        try:
            path = build(precision, force=args.force)
        except (QAError, ImportError, OSError, RuntimeError) as exc:
            line = f"error: {precision} ONNX embedder not built: {exc}".splitlines()[0]
            print(line, file=sys.stderr)
            return 1
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
