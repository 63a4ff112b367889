"""What an indexing run reports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IndexReport:
    """What one indexing run did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    passages_embedded: int = 0
    passages_reused: int = 0
    truncated: int = 0
    headlines_added: int = 0
    seconds: float = 0.0
    generation: int = 0
    articles: int = 0
    passages: int = 0
    skips: list[str] = field(default_factory=list)
