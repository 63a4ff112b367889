"""Build follow-up question pairs with gold answers from SQuAD, by a fixed rule.

Usage: python bench/followup_pairs.py ../shared/data/squad/dev-v1.1.json.gz \
       --out-dir bench/out [--per-article 10]

A SQuAD paragraph's questions were written one after another by one person about one text, so
two consecutive questions of a paragraph are a small conversation. A pair is kept when the
second question names a subject that the first one also names, and that mention is replaced by
the pronoun a person would type:

* Subjects: the article's title ("Nikola Tesla"; a parenthesis or ", State" dropped), the
  surname of a title that is a person ("Tesla"), and runs of capitalised words that both
  questions hold ("the Denver Broncos", "AFC"; not the question's first word alone).
* The pronoun comes from the article itself: over the sentences that name the subject, the
  first word of the next sentence when it is He/She/It/They (or His/Her/Its/Their); the most
  frequent wins if it has at least two votes and two thirds of them. A subject without such
  evidence gets "they" when it is one plural word that the article writes after "the" at
  least twice ("the Huguenots"), and is dropped otherwise.
* Sentences that start with the subject only (the next sentence's pronoun is then most often
  about it).
* Form: possessive before 's (its, their, his, her); subject form at the start or after an
  auxiliary (did, was, ...); "there" for "in/at X" when the pronoun is "it"; object form
  otherwise (it, them, him, her).
* Dropped by rule: the subject named twice in the second question or as part of a longer name
  (a capitalised word beside it, "University of Warsaw"); a mention after a determiner or a
  number ("many Apollo missions"), or used as a modifier ("the Amazon drainage basin"); an
  object-position mention followed by a plain word ("the language Luther used"); a second
  question that is the first one again or already holds a pronoun; fewer than three words.

At most ``--per-article`` pairs an article (chosen by a hash of the question id, so no article
dominates). Articles are split by a hash of their title into ``dev`` (choose policies on it)
and ``heldout`` (report on it). Each output line: ``{"id", "part", "title", "first",
"first_answers", "original", "follow_up", "subject", "pronoun", "answers"}``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AUX = set("did does do was is were are has have had can could will would should may might".split())
PRONOUN = {
    "he": {"subj": "he", "obj": "him", "poss": "his"},
    "she": {"subj": "she", "obj": "her", "poss": "her"},
    "it": {"subj": "it", "obj": "it", "poss": "its"},
    "they": {"subj": "they", "obj": "them", "poss": "their"},
}
_LEAD = {
    "he": "he",
    "his": "he",
    "she": "she",
    "her": "she",
    "it": "it",
    "its": "it",
    "they": "they",
    "their": "they",
}
# Pronouns already in a question: it leans on something else; a replacement would be ambiguous.
_HAS_PRONOUN = re.compile(r"\b(he|him|his|she|her|it|its|they|them|their|there)\b", re.I)
# Words that never start a name: a question's opening word and what may stand before a
# pronoun.
FUNCTION = AUX | set(
    """what who whom whose which when where why how in on at of for from by with to
    during after before since until about into over under between among through""".split()
)
# Before a mention followed by a plain word these make it a modifier ("the Amazon drainage
# basin", "many Apollo missions"), where no pronoun fits.
DETERMINERS = set(
    """the a an this that these those what which whose many much some any each every no
    other another his her its their our my your""".split()
)
_NEXT_OK = FUNCTION | {"and", "or", "but"}
_MIN_VOTES = 2
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"[\w'’-]+")


def split_key(text: str) -> int:
    """A stable number for ``text`` (split and sampling order)."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def title_subjects(title: str) -> list[str]:
    """The title's phrase: underscores to spaces, "(...)" and ", State" dropped."""
    t = re.sub(r"\s*\(.*?\)", "", title.replace("_", " ")).split(",")[0].strip()
    return [t] if t else []


def capital_runs(question: str) -> set[str]:
    """Runs of capitalised words (a leading "the" kept off), not the first word alone."""
    ws = _WORD.findall(question)
    runs, cur, start = set(), [], 0
    ws = [re.sub(r"['’]s$", "", w) for w in ws]
    for i, w in enumerate([*ws, ""]):
        if w[:1].isupper() or (cur and w.isdigit()):
            if not cur:
                start = i
            cur.append(w)
            continue
        named = not any(c.lower() in FUNCTION for c in cur)
        if cur and named and not (start == 0 and len(cur) == 1):
            runs.add(" ".join(cur))
        cur = []
    return runs


def mention(phrase: str, text: str) -> list[re.Match[str]]:
    """Word-bounded, case-insensitive occurrences of ``phrase`` (with a leading "the")."""
    return list(re.finditer(rf"(?<![\w-])(the\s+)?{re.escape(phrase)}(?![\w-])", text, re.I))


def pronoun_evidence(phrase: str, sentences: list[str], text: str) -> str | None:
    """The pronoun the article uses for ``phrase`` (see the module's rule), or None."""
    votes: Counter[str] = Counter()
    for i, s in enumerate(sentences[:-1]):
        m = mention(phrase, s)
        if m and m[0].start() == 0:
            lead = sentences[i + 1].split(" ", 1)[0].lower()
            if lead in _LEAD:
                votes[_LEAD[lead]] += 1
    if votes:
        (best, n), total = votes.most_common(1)[0], sum(votes.values())
        if n >= _MIN_VOTES and 3 * n >= 2 * total:
            return best
    # A group named in the plural ("the Broncos", "the Huguenots"), not a surname ("Jones").
    plural = phrase.endswith("s") and not phrase.endswith(("ss", "us", "is"))
    if " " not in phrase and plural and phrase[:1].isupper():
        the = re.findall(rf"\bthe {re.escape(phrase)}\b", text)
        return "they" if len(the) >= _MIN_VOTES else None
    return None


def replace(question: str, phrase: str, pronoun: str) -> str | None:
    """``question`` with its one mention of ``phrase`` replaced, or None (dropped by rule)."""
    found = mention(phrase, question)
    if len(found) != 1:
        return None
    m = found[0]
    before, after = question[: m.start()], question[m.end() :]
    prev = _WORD.findall(before)
    nxt = _WORD.findall(after)
    if nxt and nxt[0][:1].isupper() and not after.startswith(("'", "’")):
        return None
    if prev and prev[-1][:1].isupper() and prev[-1].lower() not in FUNCTION:
        return None
    possessive = re.match(r"['’]s\b", after) is not None
    plain_next = bool(nxt) and nxt[0][:1].islower() and nxt[0].lower() not in _NEXT_OK
    if prev and (prev[-1].lower() in DETERMINERS or prev[-1][:1].isdigit()) and not possessive:
        return None
    if m.group(1) is not None and plain_next and not possessive:
        return None
    if len(prev) >= 2 and prev[-1].lower() in ("of", "'s") and prev[-2][:1].isupper():
        return None
    forms = PRONOUN[pronoun]
    if possessive:
        word, after = forms["poss"], after[2:]
    elif not prev or prev[-1].lower() in AUX:
        word = forms["subj"]
    elif pronoun == "it" and prev[-1].lower() in ("in", "at"):
        before = before[: before.lower().rstrip().rfind(prev[-1].lower())]
        word = "there"
    elif plain_next:
        return None  # "the language Luther used": no object form fits
    else:
        word = forms["obj"]
    out = f"{before}{word}{after}"
    out = out[:1].upper() + out[1:]
    return out if len(_WORD.findall(out)) >= 3 else None


def article_pairs(article: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every pair of an article that the rule keeps."""
    title = article["title"]
    text = " ".join(p["context"] for p in article["paragraphs"])
    sentences = _SENT.split(text)
    subjects = title_subjects(title)
    cache: dict[str, str | None] = {}

    def pronoun_of(phrase: str) -> str | None:
        if phrase not in cache:
            cache[phrase] = pronoun_evidence(phrase, sentences, text)
        return cache[phrase]

    if subjects and pronoun_of(subjects[0]) in ("he", "she") and " " in subjects[0]:
        surname = subjects[0].split()[-1]
        if surname.lower() not in FUNCTION:
            subjects.append(surname)
    for para in article["paragraphs"]:
        qas = para["qas"]
        for q1, q2 in itertools.pairwise(qas):
            first, second = q1["question"].strip(), q2["question"].strip()
            if first.lower() == second.lower() or _HAS_PRONOUN.search(second):
                continue
            shared = [s for s in capital_runs(second) if mention(s, first)]
            cands = [s for s in subjects if mention(s, first) and mention(s, second)] + shared
            for subject in sorted(set(cands), key=len, reverse=True):
                pron = pronoun_of(subject)
                new = replace(second, subject, pron) if pron else None
                if new and pron:
                    yield {
                        "id": q2["id"],
                        "title": title,
                        "first": first,
                        "first_answers": [a["text"] for a in q1["answers"]],
                        "original": second,
                        "follow_up": new,
                        "subject": subject,
                        "pronoun": pron,
                        "answers": [a["text"] for a in q2["answers"]],
                    }
                    break


def build(squad: Path, per_article: int) -> dict[str, list[dict[str, Any]]]:
    """Pairs of each part (``dev``, ``heldout``), at most ``per_article`` an article."""
    with gzip.open(squad, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    parts: dict[str, list[dict[str, Any]]] = {"dev": [], "heldout": []}
    for article in data:
        part = "dev" if split_key(article["title"]) % 2 == 0 else "heldout"
        pairs = sorted(article_pairs(article), key=lambda p: split_key(p["id"]))
        parts[part] += [{**p, "part": part} for p in pairs[:per_article]]
    return parts


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("squad", type=Path)
    ap.add_argument("--out-dir", type=Path, default=Path("bench/out"))
    ap.add_argument("--per-article", type=int, default=10)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for part, pairs in build(args.squad, args.per_article).items():
        path = args.out_dir / f"followup-pairs-{part}.jsonl"
        path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        arts = len({p["title"] for p in pairs})
        prons = Counter(p["pronoun"] for p in pairs)
        print(f"{path}: {len(pairs)} pairs from {arts} articles; pronouns {dict(prons)}")


if __name__ == "__main__":
    main()
