"""A 50 MB line without spaces: how long chunking takes and whether every passage keeps the
200-token budget.

Usage: nice -n 10 /usr/bin/time -v python bench/long_line.py [--mb 50] [--out DIR]

Writes ``DIR/corpus/noise.txt`` (a title, a date and one line of seeded random lowercase
letters, as a base64 blob or a scraped page without spaces looks to a tokenizer) and one good
article, then splits the long article with the product's chunker (cl100k budget 200 and the
embedder's word-piece check) and prints passages, the largest token count and seconds. The
same corpus serves the end-to-end runs of docs/hostile-input.md (``newsqa index DIR/corpus``
with and without ``NEWSQA_MAX_ARTICLE_MB``).
"""

from __future__ import annotations

import argparse
import random
import string
import time
from pathlib import Path

from qa.index.chunk import Chunker
from qa.types import Article

GOOD = (
    "Harbour bakery wins prize\n\nJune 3, 2023\n\n"
    "The harbour bakery won the national sourdough prize for its rye loaf.\n\n"
    "Original url:\n<https://food.example/bakery>\n"
)


def write_corpus(folder: Path, mb: float) -> str:
    """The corpus folder with the long article; returns the long line."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    line = "".join(rng.choices(string.ascii_lowercase, k=int(mb * 1024 * 1024)))
    (folder / "noise.txt").write_text(f"A line without spaces\n\nMay 1, 2023\n\n{line}\n")
    (folder / "bakery.txt").write_text(GOOD)
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--out", type=Path, default=Path("bench/out/long-line"))
    args = ap.parse_args()
    line = write_corpus(args.out / "corpus", args.mb)
    chunker = Chunker()
    chunker.split(Article(title="Warm up", text="Warm up."))  # load both tokenizers first
    t0 = time.perf_counter()
    passages = chunker.split(Article(title="A line without spaces", text=line))
    seconds = time.perf_counter() - t0
    largest = max(chunker.counter(p.text) for p in passages)
    exact = all(line[p.start : p.end] == p.text for p in passages)
    print(
        f"{args.mb:g} MB line: {len(passages)} passages, largest {largest} tokens, "
        f"offsets exact: {exact}, {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
