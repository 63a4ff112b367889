"""Saved chats: every turn (question, answer, citations) in ``<index_dir>/chats.sqlite``.

The chat file is separate from the index store, so rebuilding or re-indexing never touches it.
A turn is stored as JSON of :class:`Turn`, the display form of a pipeline ``Response`` that
needs neither the index nor the models to be shown again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.followup import Exchange
from qa.types import Citation

if TYPE_CHECKING:
    from qa.types import Response

CHATS_FILE = "chats.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (chat_id, seq)
);
"""


@dataclass(frozen=True)
class Turn:
    """One question and what was shown for it.

    Attributes:
        question: The question as typed.
        searched_for: The rewritten query, or "" when the question was searched as typed.
        answer: The answer span, or None when nothing cleared the threshold.
        sentence: The sentence holding the answer.
        span: ``(start, end)`` of the answer inside ``sentence``.
        confidence: Confidence of the answer (of the best guess when there is no answer).
        cited: Number of the citation the answer comes from.
        citations: The numbered citations.
        filters: Filters in force, as shown ("since 2022-06-01, source cnn").
        k: Passages retrieved.
        seconds: Time taken.
        created: Unix time of the turn.
        kind: ``span`` (an exact answer in its sentence) or ``sentence`` (the sentence is the
            answer: no exact span was confident enough, or the sentence reader was chosen).
    """

    question: str
    searched_for: str = ""
    answer: str | None = None
    sentence: str = ""
    span: tuple[int, int] = (0, 0)
    confidence: float = 0.0
    cited: int | None = None
    citations: tuple[Citation, ...] = ()
    filters: str = ""
    k: int = 5
    seconds: float = 0.0
    created: float = field(default_factory=time.time)
    kind: str = "span"

    @classmethod
    def from_response(
        cls,
        resp: Response,
        *,
        searched_for: str = "",
        filters: str = "",
        k: int = 5,
        seconds: float = 0.0,
    ) -> Turn:
        """The display form of a pipeline response.

        Args:
            resp: The response.
            searched_for: The rewritten query ("" when not rewritten).
            filters: Filters in force, as text.
            k: Passages retrieved.
            seconds: Time taken.
        """
        ans = resp.answer
        cite = resp.answer_citation
        if ans is None:
            best = resp.answers[0].confidence if resp.answers else 0.0
            return cls(
                resp.question,
                searched_for,
                None,
                "",
                (0, 0),
                best,
                None,
                tuple(resp.citations),
                filters,
                k,
                seconds,
            )
        rel = (ans.span.start - ans.sentence_span.start, ans.span.end - ans.sentence_span.start)
        rel = (max(0, rel[0]), max(rel[0], min(len(ans.sentence), rel[1])))
        return cls(
            resp.question,
            searched_for,
            ans.text,
            ans.sentence,
            rel,
            ans.confidence,
            cite.n if cite else None,
            tuple(resp.citations),
            filters,
            k,
            seconds,
            kind=ans.kind,
        )

    @property
    def citation(self) -> Citation | None:
        """The citation the answer comes from."""
        return next((c for c in self.citations if c.n == self.cited), None)

    def exchange(self) -> Exchange:
        """What the follow-up rewriter needs of this turn."""
        cite = self.citation
        return Exchange(
            self.question,
            self.searched_for,
            self.answer or "",
            self.sentence,
            cite.title if cite else "",
        )

    def to_json(self) -> str:
        """JSON text of the turn."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Turn:
        """Inverse of :meth:`to_json`."""
        d: dict[str, Any] = json.loads(text)
        d["span"] = tuple(d.get("span", (0, 0)))
        d["citations"] = tuple(
            Citation(**{**c, "urls": tuple(c.get("urls", ()))}) for c in d.get("citations", [])
        )
        return cls(**d)


@dataclass(frozen=True)
class ChatSummary:
    """One saved chat as listed."""

    id: int
    title: str
    created: float
    updated: float
    turns: int


class ChatStore:
    """The chats of one index folder.

    Args:
        path: The SQLite file (created with its folder when missing).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)
        self.db.commit()

    @classmethod
    def for_index(cls, index_dir: Path) -> ChatStore:
        """The chat store beside an index folder's files."""
        return cls(index_dir / CHATS_FILE)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self.db.close()

    def new_chat(self, title: str = "") -> int:
        """Create a chat and return its id."""
        now = time.time()
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO chats(title, created, updated) VALUES(?, ?, ?)", (title, now, now)
            )
            self.db.commit()
            return int(cur.lastrowid or 0)

    def add_turn(self, chat_id: int, turn: Turn) -> None:
        """Append a turn; the chat takes its title from its first question."""
        with self._lock:
            row = self.db.execute(
                "SELECT COUNT(*) FROM turns WHERE chat_id=?", (chat_id,)
            ).fetchone()
            seq = int(row[0])
            self.db.execute(
                "INSERT INTO turns(chat_id, seq, data) VALUES(?, ?, ?)",
                (chat_id, seq, turn.to_json()),
            )
            self.db.execute(
                "UPDATE chats SET updated=?, title=CASE WHEN title='' THEN ? ELSE title END "
                "WHERE id=?",
                (time.time(), turn.question[:80], chat_id),
            )
            self.db.commit()

    def chats(self, limit: int = 200) -> list[ChatSummary]:
        """Saved chats with at least one turn, most recently updated first."""
        q = (
            "SELECT c.id, c.title, c.created, c.updated, COUNT(t.seq) FROM chats c "
            "JOIN turns t ON t.chat_id = c.id GROUP BY c.id ORDER BY c.updated DESC LIMIT ?"
        )
        with self._lock:
            rows = self.db.execute(q, (limit,)).fetchall()
        return [
            ChatSummary(int(r[0]), str(r[1]), float(r[2]), float(r[3]), int(r[4])) for r in rows
        ]

    def turns(self, chat_id: int) -> list[Turn]:
        """The turns of a chat in order."""
        with self._lock:
            rows = self.db.execute(
                "SELECT data FROM turns WHERE chat_id=? ORDER BY seq", (chat_id,)
            ).fetchall()
        return [Turn.from_json(r[0]) for r in rows]

    def recent_questions(self, limit: int = 200) -> list[str]:
        """Questions of all chats, oldest first (the input's history)."""
        q = "SELECT data FROM turns ORDER BY rowid DESC LIMIT ?"
        with self._lock:
            rows = self.db.execute(q, (limit,)).fetchall()
        return [str(json.loads(r[0]).get("question", "")) for r in reversed(rows)]

    def delete(self, chat_id: int) -> None:
        """Delete a chat and its turns."""
        with self._lock:
            self.db.execute("DELETE FROM turns WHERE chat_id=?", (chat_id,))
            self.db.execute("DELETE FROM chats WHERE id=?", (chat_id,))
            self.db.commit()
